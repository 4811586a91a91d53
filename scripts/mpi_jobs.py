"""Shared by the benchmark scripts: run this script's worker under mpirun and read its result.

The worker prints one line ``RESULT <json>`` on rank 0; everything else is ignored.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path


def default_mpirun() -> str:
    """This venv's mpirun (the mpich wheel's), else the one on PATH."""
    mpirun = Path(sys.executable).with_name("mpirun")
    return str(mpirun if mpirun.exists() else "mpirun")


def mpirun_flags(mpirun: str) -> list[str]:
    """Open MPI refuses more ranks than cores unless told; MPICH needs nothing."""
    version = subprocess.run([mpirun, "--version"], capture_output=True, text=True, check=False).stdout
    return ["--oversubscribe"] if "Open MPI" in version or "OpenRTE" in version else []


def run_worker(script: str, np_: int, args: list[str], timeout_s: float = 3600,
               mpirun_args: list[str] | None = None, mpirun: str | None = None) -> list[dict]:
    """``mpirun [mpirun_args] -np np_ python script --worker *args``; the rows the worker reported."""
    cmd = [mpirun or default_mpirun(), *(mpirun_args or []), "-np", str(np_), sys.executable,
           script, "--worker", *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s, check=False,
                          env={**os.environ, "PYTHONUNBUFFERED": "1"})
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    if proc.returncode != 0 or not lines:
        sys.exit(f"mpirun -np {np_} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return json.loads(lines[0][len("RESULT "):])


def markdown_table(head: str, rows: list[str]) -> str:
    """``head`` is the header row ('| a | b |'); the separator row is added."""
    return "\n".join([head, "|---" * (head.count("|") - 1) + "|", *rows])
