"""Shared test helpers: composing the real Hydra config, and where the MPI tools live."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest
from hydra import compose, initialize_config_module
from omegaconf import DictConfig, OmegaConf

from compoptim.cli.plugins import register_plugins
from compoptim.config import register_schemas

BIN = Path(sys.executable).parent


def compose_config(*overrides: str) -> DictConfig:
    """The config compoptim-run would get for these command-line overrides."""
    register_schemas()
    register_plugins()
    if not OmegaConf.has_resolver("run_stamp"):
        OmegaConf.register_new_resolver("run_stamp", lambda: "test")
    with initialize_config_module("compoptim.conf", version_base="1.3"):
        return compose("config", overrides=list(overrides))


def tool(name: str) -> str:
    """A console script or MPI launcher from this environment (the venv pip installed into)."""
    path = BIN / name
    if path.exists():
        return str(path)
    found = shutil.which(name)
    if found is None:
        pytest.skip(f"{name} not found next to {sys.executable} or on PATH")
    return found


@pytest.fixture
def in_tmp(tmp_path, monkeypatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path


def mpi_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONUNBUFFERED"] = "1"
    return env
