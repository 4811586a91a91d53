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
    (1, "gpipe", "float64", 1e-10), (2, "gpipe", "float64", 1e-10), (2, "1f1b", "float64", 1e-10),
    (4, "gpipe", "float64", 1e-10),
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


def test_two_stages_times_two_replicas_with_exact_gossip_is_dpsgd_on_two_nodes(tmp_path):
    """Each stage's parameters gossiped (D-PSGD, ring of the replicas) among the ranks that hold
    that stage equals D-PSGD on 2 nodes with the whole model and the same data order."""
    done = subprocess.run([tool("mpirun"), "-np", "4", sys.executable, str(CHECK.with_name("hybrid_check.py"))],
                          cwd=tmp_path, capture_output=True, text=True, timeout=240, env=mpi_env(), check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    found = re.search(r"replicas \[\[0, 1\], \[2, 3\]\] .*max \|hybrid - dsgd\| = (\S+), parameters moved (\S+), "
                      r"gossip bytes (\S+)", done.stdout)
    assert found, done.stdout
    assert float(found.group(1)) < 1e-10 and float(found.group(2)) > 1e-3 and float(found.group(3)) > 0
