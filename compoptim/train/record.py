"""What a run records about itself beyond its numbers: how it was started, where, when, and
with which code and data, so two runs can be told apart (the report never averages runs
that differ in any of it)."""

from __future__ import annotations

import hashlib
import socket
import subprocess
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import torch

import compoptim
from compoptim.comm.base import Communicator
from compoptim.data import Dataset

_HOST_BYTES = 64


def timestamp() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def code_version() -> dict[str, Any]:
    """The package version, and the git commit (and whether the tree has uncommitted
    changes) when compoptim runs from a checkout; null outside one."""
    root = Path(compoptim.__file__).resolve().parent.parent

    def git(*args: str) -> str | None:
        try:
            done = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, timeout=10,
                                  check=False)
        except (OSError, subprocess.SubprocessError):
            return None
        return done.stdout.strip() if done.returncode == 0 else None

    commit = git("rev-parse", "HEAD") if (root / ".git").exists() else None
    status = git("status", "--porcelain", "--untracked-files=no") if commit else None
    return {"version": compoptim.__version__, "git_commit": commit,
            "git_dirty": None if status is None else bool(status)}


def dataset_hash(data: Dataset) -> str:
    """A digest of every tensor the run trains and tests on: runs on different files differ."""
    digest = hashlib.blake2b(digest_size=16)
    for tensor in (data.x_train, data.y_train, data.x_test, data.y_test):
        array = np.ascontiguousarray(tensor.detach().cpu().numpy())
        digest.update(f"{array.dtype}{array.shape}".encode())
        digest.update(memoryview(array).cast("B"))
    return digest.hexdigest()


def host_names(comm: Communicator) -> list[str]:
    """The distinct host names of all nodes, in rank order (one metric reduction)."""
    table = torch.zeros(comm.size, _HOST_BYTES, dtype=torch.float64)
    name = socket.gethostname().encode()[:_HOST_BYTES]
    table[comm.rank, : len(name)] = torch.tensor(list(name), dtype=torch.float64)
    comm.allreduce_(table, "sum")
    names = [bytes(int(b) for b in row if b).decode(errors="replace") for row in table.tolist()]
    return list(dict.fromkeys(names))


def launch_record(command: Sequence[str] | None, overrides: Sequence[str] | None) -> dict[str, Any]:
    return {"command": None if command is None else list(command),
            "overrides": None if overrides is None else list(overrides)}
