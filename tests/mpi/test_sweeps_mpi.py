"""Sweeps across MPI: -m under mpirun (one collective run per job) and the mpi launcher (each
job its own mpirun, jobs in parallel) give the same per-job metrics; a failed job is
reported while the others finish."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from compoptim.cli.report import main as report_main
from tests.conftest import tool
from tests.mpi.test_cli_mpi import launch

pytestmark = pytest.mark.mpi

SWEEP = ["optimizer=sgd,adam", "seed=0,1", "trainer.epochs=1", "trainer.threads=1", "model=mlp", "model.hidden=[16]"]


def jobs(sweep_dir: Path) -> dict[tuple[str, str], list[dict]]:
    """(optimizer, seed) -> metrics rows without timings, for every job of a sweep."""
    out = {}
    for summary in sorted(sweep_dir.rglob("summary.json")):
        run = summary.parent
        config = (run / "config.resolved.yaml").read_text().splitlines()
        seed = next(line for line in config if line.startswith("seed:"))
        optimizer = next(line for i, line in enumerate(config) if config[i - 1] == "optimizer:")
        with open(run / "metrics.csv") as f:
            out[(optimizer, seed)] = [{k: v for k, v in r.items() if "time" not in k} for r in csv.DictReader(f)]
    return out


def test_mpirun_multirun_and_the_mpi_launcher_agree(tmp_path):
    collective = launch(2, ["-m", *SWEEP, "hydra.sweep.dir=collective"], tmp_path)
    assert collective.returncode == 0, collective.stderr
    assert len(list((tmp_path / "collective").glob("multirun.yaml"))) == 1
    launched = launch(None, ["-m", *SWEEP, "hydra.sweep.dir=launched", "hydra/launcher=mpi",
                             "hydra.launcher.nprocs=2", "hydra.launcher.max_parallel=2",
                             f"hydra.launcher.mpirun={tool('mpirun')}"], tmp_path)
    assert launched.returncode == 0, launched.stderr
    a, b = jobs(tmp_path / "collective"), jobs(tmp_path / "launched")
    assert len(a) == 4 and a == b
    for job in (tmp_path / "launched").glob("[0-9]"):
        assert json.loads((job / "summary.json").read_text())["n_nodes"] == 2
    report_main([str(tmp_path / "launched")])
    assert "optimizer=adam" in (tmp_path / "launched" / "report" / "summary.md").read_text()


def test_a_failed_job_is_reported_and_the_others_finish(tmp_path):
    result = launch(None, ["-m", "optimizer.lr=0.1,-1,0.05", "trainer.epochs=1", "model=mlp", "model.hidden=[16]",
                           "hydra.sweep.dir=sweep", "hydra/launcher=mpi", "hydra.launcher.nprocs=2",
                           f"hydra.launcher.mpirun={tool('mpirun')}"], tmp_path)
    assert result.returncode == 1
    assert "compoptim-run: error: 1 of 3 jobs failed: job 1 (optimizer.lr=-1" in result.stderr
    assert "optimizer.lr must be > 0; got -1" in result.stderr
    statuses = [json.loads((tmp_path / "sweep" / str(i) / "summary.json").read_text())["status"] for i in range(3)]
    assert statuses == ["finished", "failed", "finished"]


def test_a_sweep_prints_its_directory_and_one_line_per_job(tmp_path):
    """In-process sweep and mpi launcher alike: the sweep directory, then per finished job its
    overrides, status, final metric and directory."""
    small = ["seed=0,1", "trainer.epochs=1", "trainer.threads=1", "model=mlp", "model.hidden=[8]"]
    local = launch(None, ["-m", *small, "backend=local", "backend.nodes=2", "hydra.sweep.dir=local"], tmp_path)
    assert local.returncode == 0, local.stderr
    assert "sweep directory: local" in local.stdout
    for job in (0, 1):
        assert f"job {job} (seed={job} trainer.epochs=1 " in local.stdout
        assert "backend.nodes=2): finished, test acc " in local.stdout
    launched = launch(None, ["-m", *small, "hydra.sweep.dir=launched", "hydra/launcher=mpi", "hydra.launcher.nprocs=2"],
                      tmp_path)
    assert launched.returncode == 0, launched.stderr
    output = launched.stdout + launched.stderr
    assert "sweep directory: launched" in output and "job #1 (seed=1 trainer.epochs=1 " in output
    assert "model.hidden=[8]): finished, test acc " in output
