"""Shared test helpers: composing the real Hydra config, and where the MPI tools live."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest
from omegaconf import DictConfig

from compoptim import config

BIN = Path(sys.executable).parent


def compose_config(*overrides: str) -> DictConfig:
    """The config compoptim-run would get for these command-line overrides."""
    return config.compose_config(overrides, stamp="test")


def replacing(overrides: list[str], *new: str) -> list[str]:
    """``overrides`` with each of ``new`` instead of the override of its key (compoptim-run
    refuses a key given twice)."""
    keys = {o.split("=", 1)[0] for o in new}
    return [o for o in overrides if o.split("=", 1)[0] not in keys] + list(new)


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
