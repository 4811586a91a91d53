"""Settings that pass a simple check but cannot work, and command lines Hydra would run
silently wrong (or not at all): each is one line naming the key, before anything trains.
One test per cause, parametrized over its cases."""

from __future__ import annotations

import math
import subprocess
from pathlib import Path

import pytest
import torch

import compoptim
from compoptim.cli.precheck import check_command_line
from compoptim.comm import BACKENDS
from compoptim.config import snapshot
from compoptim.errors import FLOAT32_MAX, FLOAT32_SMALLEST, INT64_MAX, INT64_MIN, UserError, check_range
from compoptim.models import build_model
from compoptim.registry import to_plain
from compoptim.train import Trainer
from compoptim.train.node import build_node
from compoptim.train.schedules import LRSchedule
from hydra_plugins.compoptim_plugins.mpi_launcher import MPILauncher
from tests.conftest import compose_config, replacing, tool

TINY = ["backend=local", "backend.nodes=2", "model=logreg", "trainer.epochs=1", "trainer.batch_size=512",
        "trainer.save_model=false"]

# (value, what the message says after the key): numbers no layer can hold.
UNHOLDABLE = [
    (math.inf, "must be a finite number; got inf"),
    (-math.inf, "must be a finite number; got -inf"),
    (math.nan, "must be a finite number; got nan"),
    (1e39, "must be at most 3.403e+38 in magnitude (float32); got 1e+39"),
    (-1e39, "must be at most 3.403e+38 in magnitude (float32); got -1e+39"),
    (1e-50, "must be 0 or at least 1.401e-45 in magnitude (float32 rounds it to 0); got 1e-50"),
    (2**63, f"must fit in 64 bits ({INT64_MIN} .. {INT64_MAX}); got {2**63}"),
    (-(2**63) - 1, f"must fit in 64 bits ({INT64_MIN} .. {INT64_MAX}); got {-(2**63) - 1}"),
    (10**23, f"must fit in 64 bits ({INT64_MIN} .. {INT64_MAX}); got {10**23}"),
]


def _numeric(kind: str) -> bool:
    return kind.removeprefix("Optional[").removeprefix("list[").rstrip("]") in ("int", "float")


@pytest.mark.parametrize(("value", "expected"), UNHOLDABLE)
def test_a_number_no_layer_can_hold_is_refused_at_the_boundary_naming_its_full_key(value, expected):
    """to_plain is the one check every entry point passes: a top-level key, a nested one and
    a list element are all named in full."""
    for cfg, key in [({"seed": value}, "seed"), ({"optimizer": {"name": "sgd", "lr": value}}, "optimizer.lr"),
                     ({"optimizer": {"betas": [0.9, value]}}, "optimizer.betas[1]"),
                     ({"dataset": {"partition": {"alpha": value}}}, "dataset.partition.alpha")]:
        with pytest.raises(UserError) as err:
            to_plain(cfg)
        assert str(err.value) == f"{key} {expected}"


def test_every_numeric_setting_of_every_option_is_checked_and_no_default_is_refused():
    """Over the schema snapshot: every option's every number (ints, floats, their lists and
    Optionals), so a setting added later is covered without a line here."""
    checked = 0
    for group, options in snapshot.load().items():
        key = group.replace("/", ".")
        for option, fields in options.items():
            defaults = {name: default for name, _, default in fields if default != "???"}
            assert to_plain({key: {"name": option, **defaults}})  # no default is inf, nan or out of range
            for name, kind, _ in fields:
                if _numeric(kind):
                    bad = [math.inf] if kind.startswith("list[") else math.inf
                    with pytest.raises(UserError, match=rf"^{key}\.{name}(\[0\])? must be a finite number"):
                        to_plain({key: {"name": option, name: bad}})
                    checked += 1
    assert checked > 100


@pytest.mark.parametrize("value", [FLOAT32_MAX, -FLOAT32_MAX, FLOAT32_SMALLEST, 0.0, -0.0, 1e-8, INT64_MAX, INT64_MIN,
                                   True, "inf", None])
def test_the_edges_themselves_and_what_is_not_a_number_pass(value):
    assert to_plain({"optimizer": {"lr": value}}) == {"optimizer": {"lr": value}}


# (override, message): numbers that pass a "> 0" check, refused on the command line.
COMMAND_LINES = [
    (["optimizer.lr=inf"], "optimizer.lr must be a finite number; got inf"),
    (["optimizer.lr=-inf"], "optimizer.lr must be a finite number; got -inf"),
    (["optimizer.lr=nan"], "optimizer.lr must be a finite number; got nan"),
    (["optimizer.lr='nan'"], "optimizer.lr must be a finite number; got nan"),  # a string OmegaConf reads as a float
    (["optimizer.lr=1e39"], "optimizer.lr must be at most 3.403e+38 in magnitude (float32); got 1e+39"),
    (["optimizer=adam", "optimizer.eps=1e-50"],
     "optimizer.eps must be 0 or at least 1.401e-45 in magnitude (float32 rounds it to 0); got 1e-50"),
    (["optimizer=adam", "optimizer.betas=[0.9,inf]"], "optimizer.betas[1] must be a finite number; got inf"),
    (["seed=99999999999999999999999"],
     f"seed must fit in 64 bits ({INT64_MIN} .. {INT64_MAX}); got 99999999999999999999999"),
    (["trainer.epochs=-9223372036854775809"],
     f"trainer.epochs must fit in 64 bits ({INT64_MIN} .. {INT64_MAX}); got -9223372036854775809"),
    (["optimizer.lr=1" + "0" * 400], "bad value for optimizer.lr: int too large to convert to float"),
]


@pytest.mark.parametrize(("overrides", "expected"), COMMAND_LINES)
def test_the_command_line_check_and_compoptim_run_refuse_them_before_anything_is_written(
        in_tmp, overrides, expected):
    compose_config()  # registers the run_stamp resolver
    assert check_command_line(overrides, multirun=False) == (expected, None)
    with pytest.raises(UserError) as err:
        compoptim.run(replacing(TINY, *overrides))
    assert str(err.value) == expected
    assert list(in_tmp.iterdir()) == []  # no run directory, no reserved stamp


@pytest.mark.parametrize("build", ["trainer", "node"])
def test_the_trainer_and_build_node_refuse_them_before_building_anything(tmp_path, build):
    """Callers that skip the command line (scripts, tests) pass the same boundary."""
    cfg = to_plain(compose_config(*TINY))
    cfg["optimizer"]["lr"] = math.inf
    with pytest.raises(UserError, match=r"^optimizer.lr must be a finite number; got inf$"):
        if build == "trainer":
            Trainer(cfg, comm=None, run_dir=tmp_path, device=torch.device("cpu"))
        else:
            build_node(cfg, comm=None, device=torch.device("cpu"))
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("value", [math.inf, math.nan, -math.inf])
def test_check_range_refuses_what_is_not_a_finite_number(value):
    """A factory called from Python with inf (lr=inf passes "> 0") gets the same line."""
    with pytest.raises(UserError, match=rf"^optimizer.lr must be a finite number; got {value}$"):
        check_range("optimizer.lr", value, 0.0, low_open=True)


@pytest.mark.parametrize("timeout", [0, 0.0, -1, -0.5])
def test_backend_timeout_must_be_positive(timeout):
    with pytest.raises(UserError, match=rf"^backend.timeout_s must be > 0; got {timeout:g}$"):
        BACKENDS.build({"name": "mpi", "timeout_s": timeout})
    assert BACKENDS.build({"name": "mpi", "timeout_s": None}).timeout_s is None
    assert BACKENDS.build({"name": "mpi", "timeout_s": 2.5}).timeout_s == 2.5


MISSING = "/nonexistent/mpirun"
LAUNCHER = [
    (["hydra.launcher.nprocs=0"], "hydra.launcher.nprocs must be >= 1; got 0"),
    (["hydra.launcher.nprocs=-4"], "hydra.launcher.nprocs must be >= 1; got -4"),
    (["hydra.launcher.max_parallel=0"], "hydra.launcher.max_parallel must be >= 1; got 0"),
    (["hydra.launcher.timeout_s=0"], "hydra.launcher.timeout_s must be > 0; got 0"),
    (["hydra.launcher.timeout_s=inf"], "hydra.launcher.timeout_s must be a finite number; got inf"),
    ([f"hydra.launcher.mpirun={MISSING}"],
     f"hydra.launcher.mpirun={MISSING} is not an executable program (a path, or a name on PATH); "
     f"set hydra.launcher.mpirun=PATH"),
    (["hydra.launcher.program=nonexistent-compoptim-run"],
     "hydra.launcher.program=nonexistent-compoptim-run is not an executable program (a path, or a name on PATH); "
     "set hydra.launcher.program=PATH"),
]


@pytest.mark.parametrize(("overrides", "expected"), LAUNCHER)
def test_mpi_launcher_settings_no_job_could_run_with_are_refused_before_the_sweep(overrides, expected):
    compose_config()
    mpirun = f"hydra.launcher.mpirun={tool('mpirun')}"
    line = ["hydra/launcher=mpi", *([] if any("mpirun=" in o for o in overrides) else [mpirun]), *overrides,
            "seed=0,1"]
    assert check_command_line(line, multirun=True) == (expected, None)
    settings = {"nprocs": 2, "mpirun": tool("mpirun"), "program": tool("compoptim-run"), "max_parallel": 1,
                "timeout_s": None}
    key, value = overrides[0].removeprefix("hydra.launcher.").split("=")
    settings[key] = {"nprocs": int, "max_parallel": int, "timeout_s": float}.get(key, str)(value)
    with pytest.raises(UserError) as err:  # the launcher itself, for callers that skip the check
        MPILauncher(**settings)
    assert str(err.value) == expected


@pytest.mark.parametrize("multirun", [False, True])
@pytest.mark.parametrize(("overrides", "twice"), [
    (["seed=1", "seed=2"], "seed is given twice on the command line: 'seed=1' and 'seed=2'"),
    (["optimizer=sgd", "model=mlp", "optimizer=adam"],
     "optimizer is given twice on the command line: 'optimizer=sgd' and 'optimizer=adam'"),
    (["~seed", "seed=3"], "seed is given twice on the command line: '~seed' and 'seed=3'"),
    (["optimizer.lr=0.1", "++optimizer.lr=0.2"],
     "optimizer.lr is given twice on the command line: 'optimizer.lr=0.1' and '++optimizer.lr=0.2'"),
    (["dataset/partition=label", "dataset.partition=iid"],
     "dataset.partition is given twice on the command line: 'dataset/partition=label' and 'dataset.partition=iid'"),
])
def test_a_key_given_twice_is_refused_where_hydra_would_keep_the_last(overrides, twice, multirun):
    compose_config()
    assert check_command_line(overrides, multirun) == (f"{twice}; Hydra would silently keep the last: give it once",
                                                       None)


@pytest.mark.parametrize(("overrides", "expected"), [
    (["seed="], "'seed=' gives seed no values, so the sweep has no jobs; list one or more (for an empty string, "
                "write seed='')"),
    (["seed=range(0,0)"], "'seed=range(0,0)' gives seed no values, so the sweep has no jobs; list one or more"),
    (["optimizer=sgd,adam", "seed=range(5,2)"],
     "'seed=range(5,2)' gives seed no values, so the sweep has no jobs; list one or more"),
    (["optimizer="], "'optimizer=' gives optimizer no values, so the sweep has no jobs; list one or more"),
    (["optimizer=glob(nothing*)"],
     "'optimizer=glob(nothing*)' gives optimizer no values, so the sweep has no jobs; list one or more"),
])
def test_a_sweep_with_no_jobs_is_refused(overrides, expected):
    compose_config()
    assert check_command_line(overrides, multirun=True) == (expected, None)


def test_a_glob_sweep_over_a_group_checks_its_options_and_a_sweep_needs_multirun():
    compose_config()
    assert check_command_line(["optimizer=glob(dsg*)"], multirun=True) == (None, Path("multirun/test"))
    assert check_command_line(["seed=range(0,1)"], multirun=False) == (
        "'seed=range(0,1)' is a sweep; add -m (--multirun), or give its one value alone", None)


@pytest.mark.slow
@pytest.mark.parametrize(("args", "expected"), [
    (["optimizer.lr=inf"], "optimizer.lr must be a finite number; got inf"),
    (["seed=1", "seed=2"], "seed is given twice on the command line: 'seed=1' and 'seed=2'; Hydra would silently "
                           "keep the last: give it once"),
    (["-m", "seed=range(0,0)"], "'seed=range(0,0)' gives seed no values, so the sweep has no jobs; list one or more"),
    (["-m", "hydra/launcher=mpi", "hydra.launcher.nprocs=0", "seed=0,1"], "hydra.launcher.nprocs must be >= 1; got 0"),
])
def test_compoptim_run_prints_one_line_exits_2_and_writes_nothing(tmp_path, args, expected):
    done = subprocess.run([tool("compoptim-run"), *args, "backend=local"], cwd=tmp_path, capture_output=True,
                          text=True, timeout=120, check=False)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [f"compoptim-run: error: {expected}"]
    assert list(tmp_path.iterdir()) == []


# Bugs the property test (test_settings_property.py) found: tracebacks where one line belongs.
@pytest.mark.parametrize("optimizer", ["adam", "damsco", "damsgrad", "dadagrad"])
@pytest.mark.parametrize("betas", ["[]", "[0.9]", "[0.9,0.9,0.9]"])
def test_betas_of_the_wrong_length_are_one_line_for_every_optimizer_that_takes_two(in_tmp, optimizer, betas):
    with pytest.raises(UserError, match=r"^optimizer.betas must be two numbers \[beta1, beta2\]; got \["):
        compoptim.run([*TINY, f"optimizer={optimizer}", f"optimizer.betas={betas}"], run_dir="run")


@pytest.mark.parametrize(("hidden", "expected"), [
    ([2**31], r"^model=mlp with these settings has 1,707,249,500,170 parameters and buffers \(6,360.0 GiB\), more "
              r"than this machine's memory \("),
    ([10, 2**63 - 1], r"^model=mlp: these settings give a tensor too large to exist \(Storage size calculation "
                      r"overflowed"),
])
def test_a_model_too_large_to_hold_is_refused_before_anything_is_allocated(hidden, expected):
    with pytest.raises(UserError, match=expected):
        build_model({"name": "mlp", "hidden": hidden}, (1, 28, 28), 10)


@pytest.mark.parametrize(("setting", "expected"), [
    ({"heads": 0}, "model.heads must be >= 1; got 0"),
    ({"heads": -2}, "model.heads must be >= 1; got -2"),
    ({"width": 0}, "model.width must be >= 1; got 0"),
    ({"layers": -1}, "model.layers must be >= 0; got -1"),
    ({"dropout": -0.1}, "model.dropout must be >= 0 and < 1; got -0.1"),
    ({"dropout": 1.0}, "model.dropout must be >= 0 and < 1; got 1"),
])
def test_char_gpt_sizes_and_dropout_out_of_range_are_one_line(setting, expected):
    with pytest.raises(UserError) as err:
        build_model({"name": "char_gpt", **setting}, (16,), 30)
    assert str(err.value) == expected


@pytest.mark.parametrize("milestones", [[0], [-1], [3, 0]])
def test_lr_milestones_are_epochs_after_which_lr_decays(milestones):
    with pytest.raises(UserError, match=r"^trainer.lr_milestones must be epochs >= 1 \(after which lr \*= lr_decay"):
        LRSchedule("step", steps_per_epoch=10, epochs=5, milestones=milestones)
