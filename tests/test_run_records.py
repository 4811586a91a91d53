"""What a run records about itself (summary.json's launch, time, host, code and data fields,
the final model.pt), the progress bar, and the command line's conveniences (--version,
experiment=NAME without +, a suggestion on a typo, --help | head)."""

from __future__ import annotations

import json
import subprocess

import pytest
import torch

from compoptim.cli.precheck import check_command_line
from compoptim.comm import run_local
from compoptim.data import load_dataset
from compoptim.errors import UserError
from compoptim.models import build_model
from compoptim.optim import ALGORITHMS
from compoptim.registry import to_plain
from compoptim.topology import ring
from compoptim.train import Trainer
from compoptim.train.progress import EpochProgress
from compoptim.train.record import dataset_hash
from tests.conftest import compose_config, tool

SMALL = ("model=mlp", "model.hidden=[8]", "trainer.epochs=1")


def train(tmp_path, *overrides, launch=None):
    cfg = compose_config(*SMALL, *overrides)

    def node(comm):
        trainer = Trainer(cfg, comm, tmp_path, torch.device("cpu"), log=lambda _m: None, launch=launch)
        trainer.fit()
        return trainer.flat.params.clone()

    return cfg, run_local(ring(2), node)


def test_summary_records_launch_time_hosts_code_backend_and_data(tmp_path):
    _, _ = train(tmp_path, launch={"command": ["compoptim-run", "model=mlp"], "overrides": ["model=mlp"]})
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["command"] == ["compoptim-run", "model=mlp"] and summary["overrides"] == ["model=mlp"]
    assert summary["started_at"] <= summary["ended_at"] and summary["started_at"].endswith("+00:00")
    assert len(summary["hosts"]) == 1 and summary["hosts"][0]
    assert summary["code"]["version"] == "0.1.0" and set(summary["code"]) == {"version", "git_commit", "git_dirty"}
    assert summary["backend"] == "mpi"  # the config's name (run_local is driven by hand here)
    digits = load_dataset(to_plain(compose_config().dataset))
    assert summary["dataset_hash"] == dataset_hash(digits)


def test_dataset_hash_tells_data_apart():
    a = load_dataset({"name": "synthetic", "seed": 0})
    assert dataset_hash(a) == dataset_hash(load_dataset({"name": "synthetic", "seed": 0}))
    assert dataset_hash(a) != dataset_hash(load_dataset({"name": "synthetic", "seed": 1}))


def test_the_final_averaged_model_is_saved_and_loads_with_weights_only(tmp_path):
    cfg, params = train(tmp_path)
    state = torch.load(tmp_path / "model.pt", weights_only=True)
    data = load_dataset(to_plain(cfg.dataset))
    model = build_model(to_plain(cfg.model), data.input_shape, data.num_classes)
    model.load_state_dict(state)
    flat = torch.cat([p.detach().reshape(-1) for p in model.parameters()])
    assert torch.allclose(flat, (params[0] + params[1]) / 2, atol=1e-6)  # x̄, the nodes' average


def test_save_model_false_writes_no_model(tmp_path):
    train(tmp_path, "trainer.save_model=false")
    assert (tmp_path / "summary.json").exists() and not (tmp_path / "model.pt").exists()


def test_progress_bar_on_a_terminal_only(capsys):
    batches = list(range(25))
    quiet = EpochProgress(iter(batches), 25, 1, 3, enabled=False)
    seen = []
    for b in quiet:
        seen.append(b)
        quiet.step(lambda: 1.0)
    assert seen == batches and capsys.readouterr().out == ""
    shown = EpochProgress(iter(batches), 25, 2, 3, enabled=True)
    losses = []
    for _ in shown:
        shown.step(lambda: losses.append(1) or 0.5)
    assert len(losses) == 2  # the running loss is read every 10 steps only (a device sync)
    assert "epoch 2/3" in capsys.readouterr().out


def test_experiment_without_plus_and_with_plus_compose_alike():
    plain, plus = compose_config("experiment=quick"), compose_config("+experiment=quick")
    assert plain == plus and plain.backend.name == "local"
    assert check_command_line(["experiment=quick"], multirun=True)[0] is None
    message, _ = check_command_line(["experiment=quik"], multirun=True)
    assert message.startswith("unknown experiment 'quik'; available: ") and message.endswith("did you mean 'quick'?")


def test_a_typo_suggests_the_closest_name():
    message, _ = check_command_line(["compressor=topkk"], multirun=False)
    assert message.endswith("did you mean 'topk'?")
    with pytest.raises(UserError, match=r"unknown optimizer 'chocosgd'; available: .*; did you mean 'choco_sgd'\?"):
        ALGORITHMS["chocosgd"]
    with pytest.raises(UserError) as far:
        ALGORITHMS["zzz"]
    assert "did you mean" not in str(far.value)


@pytest.mark.parametrize("program", ["compoptim-run", "compoptim-report"])
def test_version_names_compoptim_torch_hydra_and_mpi(program):
    out = subprocess.run([tool(program), "--version"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stderr == ""
    assert out.stdout.startswith(f"{program} 0.1.0 (torch ") and "hydra 1.3" in out.stdout


def test_help_into_a_closed_pipe_ends_without_a_traceback():
    """``--help | head``: the reader is gone before the text is written (closed here first)."""
    proc = subprocess.Popen([tool("compoptim-run"), "--help"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.close()
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0 and b"Traceback" not in err and b"BrokenPipe" not in err, err.decode()


def test_the_trainer_shows_a_bar_on_a_terminal_and_plain_lines_otherwise(tmp_path, monkeypatch, capsys):
    import compoptim.train.trainer as trainer_module

    monkeypatch.setattr(trainer_module, "on_terminal", lambda: True)
    cfg = compose_config(*SMALL)
    run_local(ring(1), lambda comm: Trainer(cfg, comm, tmp_path / "tty", torch.device("cpu"), log=print).fit())
    shown = capsys.readouterr().out
    assert "epoch 1/1:" in shown and "step/s" in shown  # tqdm's bar: the epoch, steps and rate
    monkeypatch.setattr(trainer_module, "on_terminal", lambda: False)
    run_local(ring(1), lambda comm: Trainer(cfg, comm, tmp_path / "log", torch.device("cpu"), log=print).fit())
    plain = capsys.readouterr().out
    assert "step/s" not in plain and "epoch   1/1 | train loss" in plain


@pytest.mark.slow  # two compoptim-run subprocesses
def test_a_finished_run_is_never_overwritten_and_a_busy_directory_is_refused(tmp_path):
    """Starting into a finished run's directory without resume=true is refused in one line,
    touching nothing; a directory another run holds the lock of is refused too."""
    import fcntl
    import os

    args = [tool("compoptim-run"), "backend=local", "backend.nodes=2", *SMALL, "hydra.run.dir=run"]
    first = subprocess.run(args, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert first.returncode == 0, first.stderr
    before = {p.name: p.read_bytes() for p in (tmp_path / "run").iterdir() if p.is_file()}
    again = subprocess.run(args, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert again.returncode == 2 and again.stderr.strip().splitlines() == [
        "compoptim-run: error: run already holds a run (summary.json); continue it with resume=true "
        "hydra.run.dir=run, or choose another directory with hydra.run.dir=PATH"]
    after = {p.name: p.read_bytes() for p in (tmp_path / "run").iterdir() if p.is_file()}
    assert after == before and not (tmp_path / "run" / ".hydra" / "overrides.yaml").read_text().count("resume")
    (tmp_path / "busy").mkdir()
    fd = os.open(tmp_path / "busy" / ".compoptim.lock", os.O_CREAT | os.O_RDWR)
    fcntl.flock(fd, fcntl.LOCK_EX)  # as a run writing there holds it
    try:
        busy = subprocess.run([*args[:-1], "hydra.run.dir=busy"], cwd=tmp_path, capture_output=True, text=True,
                              timeout=300)
    finally:
        os.close(fd)
    assert busy.returncode == 2 and "another run is writing into busy" in busy.stderr
    assert not (tmp_path / "busy" / "summary.json").exists()
