from pathlib import Path

import pytest
from omegaconf import OmegaConf

from compoptim.cli.help import help_text
from compoptim.cli.precheck import check_command_line, group_options, prepare_output_dir
from compoptim.config import GROUPS
from compoptim.optim import ALGORITHMS
from compoptim.topology import build_topology
from tests.conftest import compose_config

OPTIMIZER_NAMES = ", ".join(sorted(ALGORITHMS))


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


@pytest.mark.parametrize("option", group_options("topology"))
def test_every_topology_option_builds_from_its_config(option, tmp_path):
    edges = tmp_path / "ring8.txt"
    edges.write_text("".join(f"{i} {(i + 1) % 8}\n" for i in range(8)))
    from_file = option in ("from_edges", "from_directed_edges")
    cfg = compose_config(f"topology={option}", f"topology.path={edges}" if from_file else "seed=3")
    topo = build_topology(cfg.topology, 8)
    assert topo.n == 8 and topo.name == ("none" if option == "disconnected" else option)


def test_defaults_are_lenet5_on_digits_with_dsgd_on_a_ring():
    cfg = compose_config()
    assert (cfg.optimizer.name, cfg.compressor.name, cfg.topology.name, cfg.model.name, cfg.dataset.name) == (
        "dsgd", "none", "ring", "lenet5", "digits")
    for key in ("epochs", "batch_size", "eval_every", "device", "threads"):
        assert key in cfg.trainer
    assert "lr" in cfg.optimizer and "seed" in cfg


@pytest.mark.slow
def test_every_optimizer_option_is_a_registered_algorithm():


    names = {compose_config(f"optimizer={o}").optimizer.name for o in group_options("optimizer")}
    assert names == set(ALGORITHMS)
    assert compose_config("optimizer=dsgd").optimizer.gossip == "exact"


@pytest.mark.parametrize(
    "overrides, expected",
    [
        (["optimizer=adamm"], f"unknown optimizer 'adamm'; available: {OPTIMIZER_NAMES}"),
        (["model=vgg"], "unknown model 'vgg'; available: "),
        (["trainer.epochs=abc"], "bad value for trainer.epochs: Value 'abc' of type 'str' could not be converted"),
        (["trainer.device=gpu"],
         "bad value for trainer.device: Invalid value 'gpu', expected one of [cpu, cuda, auto]"),
        (["optimizer.foo=1"],
         "unknown config key 'optimizer.foo'; allowed keys here: name, lr, comm_set, gossip, gamma, gamma_y, order, "
         "period, tracking, l1, overlap, momentum, dampening, nesterov, weight_decay"),
        (["+optimizer.foo=1"], "unknown config key 'optimizer.foo'; allowed keys here: name, lr,"),
        (["+trainer.bogus=1"], "unknown config key 'trainer.bogus'; allowed keys here: epochs,"),
        (["+bogus=1"], "unknown config key 'bogus'; allowed keys here: seed, nodes, resume, experiment, trainer,"),
        (["~seed"], "config key 'seed' is required and cannot be removed"),
        (["hydra.foo=1"], "unknown config key 'hydra.foo'"),
        (["hydra.job.chdir=maybe"], "bad value for hydra.job.chdir"),
        (["hydra.run.dir=${oc.env:COMPOPTIM_NOT_SET}"], "bad value for hydra.run.dir"),
        (["a=[b"], "cannot parse overrides"),
        (["seed=1,2"], "'seed=1,2' lists several values; add -m (--multirun) to run one job per value"),
    ],
)
def test_bad_command_lines_give_one_line(overrides, expected):
    compose_config()  # registers the run_stamp resolver
    message, output_dir = check_command_line(overrides, multirun=False)
    assert message is not None and expected in message
    assert "\n" not in message and output_dir is None


def test_sweeps_check_every_value():
    compose_config()
    message, _ = check_command_line(["optimizer=dsgd,adamm"], multirun=True)
    assert message == f"unknown optimizer 'adamm'; available: {OPTIMIZER_NAMES}; did you mean 'adam'?"


@pytest.mark.slow
def test_good_command_lines_name_their_output_dir():
    compose_config()
    assert check_command_line(["optimizer=sgd", "model=mlp", "model.hidden=[8,8]"], multirun=False) == (
        None, Path("outputs/test"))
    assert check_command_line(["optimizer=dsgd,sgd", "seed=range(0,3)"], multirun=True) == (
        None, Path("multirun/test"))
    assert check_command_line(["hydra.run.dir=x/y"], multirun=False) == (None, Path("x/y"))
    # a quoted comma is a value, not a sweep
    assert check_command_line(["dataset=mnist", "dataset.root='a,b'"], multirun=False)[0] is None


def test_output_dir_is_created_or_refused_in_one_line(tmp_path):
    assert prepare_output_dir(tmp_path / "run", multirun=False) is None
    assert (tmp_path / "run").is_dir()
    blocker = tmp_path / "file"
    blocker.write_text("")
    message = prepare_output_dir(blocker / "run", multirun=True)
    assert message.startswith(f"cannot create the output directory {blocker}/run")
    assert message.endswith("choose another with hydra.sweep.dir=PATH")


@pytest.mark.slow
def test_options_of_all_groups_compose_together():
    """Every option of every group, each composed together with options of all other groups
    (cycling through them), so no option depends on another group's default."""
    options = {g: group_options(g) for g in GROUPS}
    for i in range(max(len(o) for o in options.values())):
        cfg = compose_config(*(f"{g}={o[i % len(o)]}" for g, o in options.items()))
        OmegaConf.to_container(cfg, resolve=True)


def test_help_lists_every_group_with_its_options_and_the_defaults():
    text = help_text()
    for group in GROUPS:
        assert f"  {group:<11} " in text
        for option in group_options(group):
            assert option in text
    assert "dsgd*" in text and "ring*" in text and "lenet5*" in text and "digits*" in text
    assert "schema" not in text


def test_every_schema_is_its_factorys_signature():
    """Each setting is declared once, in its factory: the schema has exactly its settings
    (plus the group builder's extra ones), with the factory's defaults."""
    import dataclasses

    from compoptim.config.snapshot import registries
    from compoptim.registry import to_plain

    compose_config()  # registers the schemas
    for group, registry in registries().items():
        for name, entry in registry.items():
            schema = OmegaConf.structured(next(iter(_stored(group, name))))
            extra = [key for key, _, _ in registry.extra(entry)]
            assert list(schema.keys()) == ["name", *entry.settings(), *extra], (group, name)
            for key, default in entry.defaults().items():
                assert to_plain(schema[key]) == to_plain(default), (group, name, key)
            assert dataclasses.is_dataclass(OmegaConf.get_type(schema))


def test_yaml_options_hold_only_values_that_differ_from_the_defaults():
    from compoptim.config.schema import yaml_options
    from compoptim.config.snapshot import registries
    from compoptim.registry import to_plain

    conf = Path(__file__).resolve().parents[1] / "conf"
    checked = 0
    for group, registry in registries().items():
        for option in yaml_options(group):
            values = OmegaConf.to_container(OmegaConf.load(conf / group / f"{option}.yaml"))
            entry = registry[values.get("name", option)]
            defaults = {**entry.defaults(), **{k: d for k, _, d in registry.extra(entry)}}
            settings = {k: v for k, v in values.items() if k not in ("defaults", "name")}
            for key, value in settings.items():
                assert key in defaults, (group, option, key)
                assert to_plain(value) != to_plain(defaults[key]), f"{group}/{option}.yaml repeats {key}'s default"
                checked += 1
            # a yaml under the entry's own name that changes nothing would shadow the ConfigStore's option
            assert option != entry.name or settings or len(values.get("defaults", [])) > 2, (group, option)
    assert checked > 0


def _stored(group, name):
    from hydra.core.config_store import ConfigStore

    node = ConfigStore.instance().load(f"schema/{group}/{name}.yaml").node
    yield OmegaConf.get_type(node)


def test_the_schema_snapshot_matches_the_code(monkeypatch):
    """schemas.json (what the CLI composes with, without importing torch) is the registries'
    own description; a stale one is refused in one line naming the option and the fix."""
    from compoptim.config import snapshot
    from compoptim.errors import UserError

    assert snapshot.describe() == snapshot.load()
    snapshot.check()
    stale = {**snapshot.load(), "optimizer": {**snapshot.load()["optimizer"], "dsgd": [["lr", "float", 0.3]]}}
    monkeypatch.setattr(snapshot, "load", lambda: stale)
    with pytest.raises(UserError, match=r"schemas\.json does not match the code for optimizer=dsgd; rewrite it "
                                        r"with: python -m compoptim\.config"):
        snapshot.check()


def test_the_command_line_checks_import_no_torch():
    """--help and a config error answer without the training layers (start-up time)."""
    import subprocess
    import sys

    code = ("import sys; from compoptim.cli.precheck import check_command_line; from compoptim.cli.help import "
            "help_text; from compoptim.config import compose_config; compose_config(); help_text(); "
            "check_command_line(['optimizer=adamm'], False); print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.stdout.strip() == "False", out.stderr
