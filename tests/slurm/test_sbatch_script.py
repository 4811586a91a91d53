"""The sbatch script of docs/scale.md, as written, trains with 4 ranks inside an allocation."""

from __future__ import annotations

import json

from tests.conftest import tool
from tests.slurm.cluster import doc_script

# The run's settings, given to the script as its arguments (as the docs show); 4 ranks share
# this machine's cores, one torch thread each.
SETTINGS = ("trainer.epochs=2", "trainer.threads=1")


def test_the_documented_sbatch_script_trains_with_4_ranks(cluster, tmp_path):
    job = cluster.sbatch(doc_script(tmp_path), *SETTINGS, options=("--overcommit",), cwd=tmp_path)
    assert cluster.wait_end(job) == "COMPLETED", (tmp_path / f"slurm-{job}.out").read_text()
    run = tmp_path / "runs" / job
    summary = json.loads((run / "summary.json").read_text())
    assert summary["status"] == "finished" and summary["n_nodes"] == 4
    assert summary["epochs"] == 2 and summary["test_acc"] > 0.25  # above chance (0.1) after 2 epochs
    log = (tmp_path / f"slurm-{job}.out").read_text()
    assert log.count("epoch   2/2") == 1  # rank 0 alone prints progress
    assert sorted(p.name for p in tmp_path.iterdir()) == ["job.sh", "runs", f"slurm-{job}.out"]


def test_srun_without_a_pmi_is_refused_in_one_line(cluster, tmp_path):
    """Without --mpi, this cluster (like most) gives the tasks no PMI: each would be a world of
    one, training its own copy; every task stops at once instead, writing nothing."""
    proc = cluster.run("srun", "--ntasks=2", "--overcommit", tool("compoptim-run"), "trainer.epochs=1",
                       "hydra.run.dir=run", cwd=tmp_path, timeout=120)
    assert proc.returncode == 1
    errors = set(proc.stderr.splitlines()) - {line for line in proc.stderr.splitlines() if line.startswith("srun:")}
    assert len(errors) == 1, proc.stderr
    (error,) = errors
    assert error.startswith("compoptim-run: error: started by srun as one of 2 tasks but MPI sees only 1: ")
    assert "use srun --mpi=pmi2" in error
    assert not (tmp_path / "run").exists()
