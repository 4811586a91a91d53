import itertools

import pytest
from omegaconf import OmegaConf

from compoptim.cli.help import help_text
from compoptim.cli.precheck import check_command_line, check_output_dir, check_overrides, group_options
from compoptim.config import GROUPS
from tests.conftest import compose_config


def test_every_group_has_its_first_options():
    assert {"dsgd", "sgd"} <= set(group_options("optimizer"))
    assert "none" in group_options("compressor")
    assert "ring" in group_options("topology")
    assert {"lenet5", "mlp"} <= set(group_options("model"))
    assert {"digits", "mnist", "fashion_mnist"} <= set(group_options("dataset"))


@pytest.mark.parametrize("group, option", [(g, o) for g in GROUPS for o in group_options(g)])
def test_every_option_composes(group, option):
    cfg = compose_config(f"{group}={option}")
    assert cfg[group].name  # every option names what it builds
    OmegaConf.to_container(cfg, resolve=True, throw_on_missing=True)


def test_defaults_are_lenet5_on_digits_with_dsgd_on_a_ring():
    cfg = compose_config()
    assert (cfg.optimizer.name, cfg.compressor.name, cfg.topology.name, cfg.model.name, cfg.dataset.name) == (
        "dsgd", "none", "ring", "lenet5", "digits")
    for key in ("epochs", "batch_size", "eval_every", "device", "threads"):
        assert key in cfg.trainer
    assert "lr" in cfg.optimizer and "seed" in cfg


def test_sgd_is_an_alias_of_dsgd():
    assert compose_config("optimizer=sgd").optimizer == compose_config("optimizer=dsgd").optimizer


@pytest.mark.parametrize(
    "overrides, expected",
    [
        (["optimizer=adamm"], "unknown optimizer 'adamm'; available: dsgd, sgd"),
        (["model=vgg"], "unknown model 'vgg'; available: "),
        (["trainer.epochs=abc"], "bad value for trainer.epochs: Value 'abc' of type 'str' could not be converted"),
        (["trainer.device=gpu"],
         "bad value for trainer.device: Invalid value 'gpu', expected one of [cpu, cuda, auto]"),
        (["optimizer.foo=1"],
         "unknown config key 'optimizer.foo'; allowed keys here: name, lr, momentum, weight_decay"),
        (["trainer.bogus=1"], "unknown config key 'trainer.bogus'; allowed keys here: epochs,"),
        (["optimizer=dsgd,adamm"], "unknown optimizer 'adamm'"),
        (["a=[b"], "cannot parse overrides"),
    ],
)
def test_bad_overrides_give_one_line(overrides, expected):
    message = check_overrides(overrides)
    assert message is not None and expected in message
    assert "\n" not in message


def test_good_overrides_and_sweeps_pass():
    assert check_overrides(["optimizer=sgd", "model=mlp", "trainer.epochs=2", "hydra.run.dir=x"]) is None
    assert check_overrides(["optimizer=dsgd,sgd", "seed=range(0,3)"]) is None


def test_all_option_pairs_compose():
    for (g1, g2) in itertools.combinations(GROUPS, 2):
        for o1, o2 in itertools.product(group_options(g1), group_options(g2)):
            compose_config(f"{g1}={o1}", f"{g2}={o2}")


def test_sweep_values_without_multirun_are_refused():
    message = check_command_line(["seed=1,2"], multirun=False)
    assert message == "'seed=1,2' lists several values; add -m (--multirun) to run one job per value"
    assert check_command_line(["model=mlp", "model.hidden=[8,8]"], multirun=False) is None


def test_output_dir_is_created_or_refused_in_one_line(tmp_path):
    compose_config()  # registers the run_stamp resolver
    assert check_output_dir([f"hydra.run.dir={tmp_path}/run"], multirun=False) is None
    assert (tmp_path / "run").is_dir()
    assert check_output_dir([f"hydra.sweep.dir={tmp_path}/sweep", "seed=0,1"], multirun=True) is None
    assert (tmp_path / "sweep").is_dir()
    blocker = tmp_path / "file"
    blocker.write_text("")
    message = check_output_dir([f"hydra.run.dir={blocker}/run"], multirun=False)
    assert message.startswith(f"cannot create the output directory {blocker}/run")
    assert message.endswith("choose another with hydra.run.dir=PATH")


def test_help_lists_every_group_with_its_options_and_the_defaults():
    text = help_text()
    for group in GROUPS:
        assert f"  {group:<11} " in text
        for option in group_options(group):
            assert option in text
    assert "dsgd*" in text and "ring*" in text and "lenet5*" in text and "digits*" in text
    assert "schema" not in text
