"""The parts of hydra/launcher=submitit_slurm_mpi that need no SLURM: its config, how it reads
squeue, how a job ended without a result is recorded and reported (the whole path runs
against a real SLURM in tests/slurm/)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from hydra.core.utils import JobReturn, JobStatus
from hydra.errors import HydraException

from compoptim.cli.precheck import check_command_line, describe_config_error
from compoptim.config.plugins import missing_package
from compoptim.train.writer import mark_killed
from hydra_plugins.compoptim_plugins.failures import JobFailed, end_on_failures
from tests.conftest import compose_config

slurm_launcher = pytest.importorskip("hydra_plugins.compoptim_plugins.slurm_launcher",
                                     reason="needs pip install 'compoptim[slurm]'")


def test_the_preset_asks_srun_for_pmi2_and_sigterm_before_the_time_limit():
    compose_config()
    from compoptim.config import composer

    with composer() as compose:
        launcher = compose(["hydra/launcher=submitit_slurm_mpi"], hydra=True).hydra.launcher
    assert launcher._target_ == "hydra_plugins.compoptim_plugins.slurm_launcher.SlurmMPILauncher"
    assert list(launcher.srun_args) == ["--mpi=pmi2"]
    assert dict(launcher.additional_parameters) == {"signal": "TERM@120"}
    assert (launcher.nodes, launcher.tasks_per_node, launcher.cpus_per_task) == (1, 4, 2)


def test_a_missing_slurm_package_is_named_in_one_line(monkeypatch):
    monkeypatch.setitem(sys.modules, "hydra_plugins.hydra_submitit_launcher", None)
    message = missing_package("hydra/launcher", "submitit_slurm_mpi")
    assert message.startswith('hydra/launcher=submitit_slurm_mpi needs pip install "compoptim[slurm]" (')
    assert missing_package("hydra/launcher", "mpi") is None
    compose_config()
    assert check_command_line(["hydra/launcher=submitit_slurm_mpi"], multirun=True)[0] == message


def test_a_config_error_keeps_the_line_its_heading_introduces():
    exc = HydraException("In 'hydra/launcher/x': ConfigKeyError raised while composing config:\nKey 'srun_args' "
                         "not in 'SlurmQueueConf'\n    full_key: hydra.launcher.srun_args")
    assert describe_config_error(exc) == ("In 'hydra/launcher/x': ConfigKeyError raised while composing config: "
                                          "Key 'srun_args' not in 'SlurmQueueConf'")


def fake_squeue(monkeypatch, answers: dict[str, tuple[int, str, str]]) -> list[list[str]]:
    """squeue answering ``answers[ids] = (returncode, stdout, stderr)``; the calls made."""
    calls = []

    def run(cmd, **kwargs):
        calls.append(cmd)
        code, out, err = answers[cmd[-1]]
        return subprocess.CompletedProcess(cmd, code, out, err)

    monkeypatch.setattr(slurm_launcher.subprocess, "run", run)
    return calls


def test_squeue_states_and_reasons_are_read_per_job(monkeypatch):
    fake_squeue(monkeypatch, {"7_0,7_1,8": (0, "7_0|RUNNING|None\n7_1|PENDING|PartitionTimeLimit\n", "")})
    assert slurm_launcher.slurm_states(["7_0", "7_1", "8"]) == {
        "7_0": ("RUNNING", "None"), "7_1": ("PENDING", "PartitionTimeLimit"), "8": ("UNKNOWN", "")}


def test_a_job_squeue_forgot_is_unknown_and_a_busy_controller_means_ask_again(monkeypatch):
    # squeue refuses the whole list when one id is unknown (older than MinJobAge): asked one by one.
    calls = fake_squeue(monkeypatch, {"1,2": (1, "", "slurm_load_jobs error: Invalid job id specified"),
                                      "1": (1, "", "slurm_load_jobs error: Invalid job id specified"),
                                      "2": (0, "2|COMPLETED|None\n", "")})
    assert slurm_launcher.slurm_states(["1", "2"]) == {"1": ("UNKNOWN", ""), "2": ("COMPLETED", "None")}
    assert [c[-1] for c in calls] == ["1,2", "1", "2"]
    fake_squeue(monkeypatch, {"3": (1, "", "slurm_load_jobs error: Socket timed out on send/recv operation")})
    assert slurm_launcher.slurm_states(["3"]) == {"3": ("RUNNING", "")}


def test_mark_killed_changes_only_a_running_status(tmp_path):
    (tmp_path / "summary.json").write_text(json.dumps({"status": "running", "test_acc": 0.5}))
    assert mark_killed(tmp_path, "SLURM job 7 ended NODE_FAIL")
    assert json.loads((tmp_path / "summary.json").read_text()) == {
        "status": "killed", "error": "SLURM job 7 ended NODE_FAIL", "test_acc": 0.5}
    for status in ("killed", "finished", "preempted"):
        (tmp_path / "summary.json").write_text(json.dumps({"status": status}))
        assert not mark_killed(tmp_path, "again")
        assert json.loads((tmp_path / "summary.json").read_text()) == {"status": status}
    assert not mark_killed(tmp_path / "absent", "no run")


def test_failed_jobs_end_the_sweep_in_one_line_naming_each():
    ok = JobReturn(overrides=["seed=0"], task_name="compoptim", status=JobStatus.COMPLETED, _return_value=0.9)
    failed = [slurm_launcher._failed(i, [f"seed={i}"], f"SLURM job 7_{i} ended FAILED without a result")
              for i in (1, 2)]
    results = end_on_failures([ok, *failed])
    assert results[0].return_value == 0.9
    # SystemExit (JobFailed): Hydra's plugin scan may have loaded failures.py again by now.
    with pytest.raises(SystemExit) as exc:
        _ = results[1].return_value
    assert type(exc.value).__name__ == JobFailed.__name__
    assert str(exc.value) == ("compoptim-run: error: 2 of 3 jobs failed: job 1 (seed=1): SLURM job 7_1 ended FAILED "
                              "without a result; job 2 (seed=2): SLURM job 7_2 ended FAILED without a result")
