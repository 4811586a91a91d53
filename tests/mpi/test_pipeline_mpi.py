"""The pipeline engine (torch.distributed.pipelining over gloo, started from MPI) under real
mpirun: S stages of one replica train exactly as one process on the same batches."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import mpi_env, tool

pytestmark = pytest.mark.mpi
CHECK = Path(__file__).with_name("pipeline_check.py")


@pytest.mark.parametrize("np_, schedule, dtype, tolerance", [
    (2, "gpipe", "float64", 1e-10), (2, "1f1b", "float64", 1e-10), (4, "gpipe", "float64", 1e-10),
    (4, "1f1b", "float64", 1e-10), (4, "1f1b", "float32", 1e-6),
])
def test_a_pipeline_of_one_replica_is_single_process_training(tmp_path, np_, schedule, dtype, tolerance):
    done = subprocess.run([tool("mpirun"), "-np", str(np_), sys.executable, str(CHECK), schedule, dtype],
                          cwd=tmp_path, capture_output=True, text=True, timeout=240, env=mpi_env(), check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    found = re.search(r"stages \[(.*)\] .*max \|pipeline - single\| = (\S+), parameters moved (\S+)", done.stdout)
    assert found, done.stdout
    assert len(found.group(1).split(",")) == np_
    assert float(found.group(2)) < tolerance and float(found.group(3)) > 1e-3  # it trained, and exactly
