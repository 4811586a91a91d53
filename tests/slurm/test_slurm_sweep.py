"""A sweep as SLURM jobs (``hydra/launcher=submitit_slurm_mpi``): each job gets the ranks it
asked for, and its metrics equal those of the same sweep under ``hydra/launcher=mpi``."""

from __future__ import annotations

import json

import pytest

from tests.conftest import replacing, tool
from tests.mpi.test_sweeps_mpi import SWEEP, jobs
from tests.slurm.cluster import WAIT_S

pytest.importorskip("hydra_plugins.hydra_submitit_launcher", reason="needs pip install 'compoptim[slurm]'")

# Two ranks per job, one core each (the partition lets the jobs share this machine's cores).
SLURM_JOBS = ("hydra/launcher=submitit_slurm_mpi", "hydra.launcher.tasks_per_node=2", "hydra.launcher.cpus_per_task=1",
              "hydra.launcher.timeout_min=10")


def test_a_sweep_of_slurm_jobs_equals_the_mpi_launchers(cluster, tmp_path):
    slurm = cluster.run(tool("compoptim-run"), "-m", *SWEEP, *SLURM_JOBS, "hydra.sweep.dir=slurm", cwd=tmp_path,
                        timeout=WAIT_S)
    assert slurm.returncode == 0, slurm.stderr
    launched = cluster.run(tool("compoptim-run"), "-m", *SWEEP, "hydra/launcher=mpi", "hydra.launcher.nprocs=2",
                           "hydra.launcher.max_parallel=2", f"hydra.launcher.mpirun={tool('mpirun')}",
                           "hydra.sweep.dir=launched", cwd=tmp_path, timeout=WAIT_S)
    assert launched.returncode == 0, launched.stderr
    a, b = jobs(tmp_path / "slurm"), jobs(tmp_path / "launched")
    assert len(a) == 4 and a == b
    for job in range(4):
        run = tmp_path / "slurm" / str(job)
        assert json.loads((run / "summary.json").read_text())["n_nodes"] == 2
        assert [p.parent for p in run.rglob(".hydra")] == [run]  # rank 0 alone writes Hydra's files
    # One array of 4 jobs, each with 2 SLURM tasks (submitit's per-task logs).
    tasks = sorted(p.name for p in (tmp_path / "slurm" / ".submitit").glob("*/*_log.out"))
    array = tasks[0].split("_")[0]
    assert tasks == [f"{array}_{j}_{t}_log.out" for j in range(4) for t in range(2)]
    assert "finished, test acc" in slurm.stdout + slurm.stderr


def test_a_sweep_slurm_refuses_ends_in_one_line(cluster, tmp_path):
    """timeout_min above the partition's 30 minutes: sbatch refuses the array (EnforcePartLimits)."""
    too_long = replacing(list(SLURM_JOBS), "hydra.launcher.timeout_min=60")
    proc = cluster.run(tool("compoptim-run"), "-m", "seed=0,1", *too_long, "hydra.sweep.dir=sweep", cwd=tmp_path,
                       timeout=120)
    assert proc.returncode == 1
    assert proc.stderr.splitlines()[-1] == (
        "compoptim-run: error: SLURM refused the sweep's 2 jobs: sbatch: error: Batch job submission failed: "
        "Requested time limit is invalid (missing or exceeds some limit)"), proc.stderr
    assert not list((tmp_path / "sweep").glob("[0-9]*"))
