"""Every setting of every config group, drawn at its edges (0, negatives, ints beyond 64
bits, floats beyond float32, nan and inf, empty lists, unicode strings): the run either
refuses the command line with one line before anything trains, or trains with finite numbers.

Each example is one command line for ``compoptim.run`` (in this process, backend=local, two
nodes, one short epoch of a small model): a group in focus with one of its options drawn
(or the run's own settings), up to three settings set to drawn values, now and then another
group's option. A refusal is a ``UserError`` of one line; a run may also end as ``Diverged``
(a finite setting, lr=3e38, that blew the numbers up: the trainer's own stop), never with
another exception. Anything else is a bug in the factory that owns the key.
"""

from __future__ import annotations

import dataclasses
import math
import time
import traceback
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import compoptim
from compoptim.config import GROUPS, group_options, snapshot
from compoptim.config.generate import type_text
from compoptim.config.schema import CONFIG_MODULE, RunConfig, TrainerConfig
from compoptim.errors import UserError
from compoptim.registry import resolved_hints
from compoptim.train.signals import Diverged

pytestmark = pytest.mark.slow

MAX_EXAMPLES = 50  # about 40 s on a loaded 2-core machine (a refusal takes 0.2 s, a run 1 s); 50 s the file

# The cheap run every example starts from; a drawn option or setting replaces its key. sgd
# gossips exactly, or compressed with a compressor (dsgd, the default, refuses one).
BASE = {"optimizer": "sgd", "model": "logreg", "dataset": "digits", "trainer.epochs": "1", "trainer.batch_size": "512",
        "backend": "local", "backend.nodes": "2", "trainer.save_model": "false", "trainer.threads": "1"}

# The options conf/config.yaml chooses for the groups BASE leaves alone (left off the command line).
DEFAULT_OPTIONS = {"compressor": "none", "topology": "ring", "dataset/partition": "iid",
                   "network": "ideal", "parallel": "data", "logger": "none"}
# Options that only work together: character text and the character model.
PAIRED = {"dataset": "shakespeare", "model": "char_gpt"}
# A text for dataset=shakespeare at its default path (the real one is a download).
TEXT = "First Citizen: Before we proceed any further, hear me speak. All: Speak, speak.\n" * 40

# Options left out, each for a reason that is not a setting's edge:
SKIPPED = {
    # One step takes 17 s (resnet20) and 150 s (resnet18) here; their one setting, bn_stats,
    # is a choice its factory checks (tests/test_models.py).
    "model": {"resnet18", "resnet20"},
    # backend=mpi needs one process per rank: compoptim.run refuses it (tests/test_api.py).
    "backend": {"mpi"},
}
# Settings left out: download=true would fetch from the network.
FIXED = {("dataset", "download")}
# Ints whose valid large values only mean more time (epochs to train, blocks to build): drawn
# small or beyond int64 here, never in between.
WORK = {"trainer.epochs", "model.layers"}
INT_EDGES = [1, 0, -1, 2, 3, 2**63, -(2**63) - 1, 10**23]
INT_HUGE = [2**31, 2**63 - 1]  # valid int64: a clean refusal or a run, except for WORK
TINY = 1e-44  # a float32 subnormal: held, and as good as 0 for a fraction
FLOAT_EDGES = [0.5, 0.0, -1.0, 1.0, 2.0, 1e-50, TINY, 1e30, 3.5e38, 1e39, -1e39, 1e308, math.inf, -math.inf,
               math.nan]
STR_EDGES = ["", "nan", "inf", "ünïcødé ☃", "none", "1e39", "auto"]


def _yaml_entry(group: str, option: str) -> str:
    """The registered entry a yaml option extends (fp16 -> cast), or the option itself."""
    text = resources.files(CONFIG_MODULE).joinpath(*group.split("/"), f"{option}.yaml")
    if not text.is_file():
        return option
    for item in yaml.safe_load(text.read_text()).get("defaults", []):
        if isinstance(item, str) and item.startswith(f"/schema/{group}/"):
            return item.split("/")[-1].split("@")[0]
    return option


def _option_fields() -> dict[str, dict[str, list[tuple[str, str]]]]:
    """{group: {option: [(setting, type text), ...]}} for every option drawn here."""
    saved = snapshot.load()
    fields: dict[str, dict[str, list[tuple[str, str]]]] = {}
    for group in (*GROUPS, "dataset/partition"):
        options = group_options(group) if group in GROUPS else sorted(saved[group])
        fields[group] = {o: [(name, kind) for name, kind, _ in saved[group][_yaml_entry(group, o)]
                             if kind != "Any" and (group, name) not in FIXED]
                         for o in options if o not in SKIPPED.get(group, ())}
    return fields


def _run_fields() -> list[tuple[str, str]]:
    """The run's own settings (seed, nodes, trainer.*) as (key, type text); resume and
    experiment need a run or a preset of their own."""
    def of(cls: type, prefix: str) -> list[tuple[str, str]]:
        hints = resolved_hints(cls)
        return [(prefix + f.name, "str" if f.name == "device" else type_text(hints[f.name]))
                for f in dataclasses.fields(cls) if f.name not in ("trainer", "resume", "experiment")
                and type_text(hints[f.name]) != "Any"]
    return of(RunConfig, "") + of(TrainerConfig, "trainer.")


FIELDS = _option_fields()
RUN_FIELDS = _run_fields()


def values(kind: str, key: str) -> st.SearchStrategy[Any]:
    """Values for a setting of config type ``kind``: its edges, and now and then one of another type."""
    if kind.startswith("Optional["):
        return st.none() | values(kind[len("Optional["):-1], key)
    if kind.startswith("list["):
        return st.lists(values(kind[len("list["):-1], key), max_size=3)
    edges = {"int": INT_EDGES if key in WORK else INT_EDGES + INT_HUGE,
             "float": FLOAT_EDGES + INT_EDGES,
             "bool": [True, False], "str": STR_EDGES}[kind]
    return st.sampled_from([*edges, "abc"])  # and the wrong type: a composition error (a plain string for str)


def hydra_value(value: Any) -> str:
    """``value`` as Hydra's override grammar reads it back."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf") if math.isinf(value) else repr(value)
    if isinstance(value, list):
        return "[" + ",".join(hydra_value(v) for v in value) + "]"
    if isinstance(value, str):
        return value if value == "abc" else f"'{value}'"  # a bare word, or a quoted string
    return str(value)


@st.composite
def command_lines(draw: st.DrawFn) -> dict[str, str]:
    """{key: value}: the base run with one setting in focus (a group, one of its options,
    one of that option's settings; or one of the run's own) and up to two more, of the
    options in use, set to drawn values; now and then another group's option drawn too."""
    chosen = {**DEFAULT_OPTIONS, **BASE}
    group = draw(st.sampled_from(["run", *FIELDS]))
    if group != "run":
        chosen[group] = draw(st.sampled_from(sorted(FIELDS[group])))
    for other in draw(st.lists(st.sampled_from(list(FIELDS)), max_size=1)):
        chosen[other] = draw(st.sampled_from(sorted(FIELDS[other])))
    for paired, option in PAIRED.items():  # a text dataset needs the text model, and back
        if chosen[paired] == option:
            chosen.update(PAIRED)
    own = {g: [(f"{g.replace('/', '.')}.{name}", kind) for name, kind in options[chosen[g]]]
           for g, options in FIELDS.items()}
    focus = RUN_FIELDS if group == "run" else own[group]
    settable = RUN_FIELDS + [field for fields in own.values() for field in fields]
    picked = draw(st.lists(st.sampled_from(focus), max_size=1)) if focus else []
    picked += draw(st.lists(st.sampled_from(settable), max_size=2))
    for key, kind in picked:
        chosen[key] = hydra_value(draw(values(kind, key)))
    return {key: value for key, value in chosen.items() if DEFAULT_OPTIONS.get(key) != value}


STATS = {"examples": 0, "refused": 0, "trained": 0, "diverged": 0, "seconds": 0.0}


def run_outcome(line: dict[str, str]) -> str:
    """Run the command line ``line`` in a fresh folder: "refused", "trained" or "diverged";
    a failure of the test for any other end."""
    overrides = [f"{key}={value}" for key, value in line.items()]
    try:
        result = compoptim.run(overrides, run_dir="run")
    except (UserError, Diverged) as exc:
        cause = exc.__cause__
        if cause is not None and not isinstance(cause, (UserError, Diverged)):
            pytest.fail(f"{overrides}: a node failed with {type(cause).__name__}, not a clean refusal:\n"
                        + "".join(traceback.format_exception(cause)))
        assert "\n" not in str(exc).strip(), f"{overrides}: a message of several lines: {exc}"
        if isinstance(exc, Diverged) or isinstance(cause, Diverged):
            return "diverged"  # a finite setting (lr=3e38) that blew the numbers up: the trainer's stop
        assert not Path("run", "metrics.csv").exists(), f"{overrides}: refused after training began: {exc}"
        return "refused"
    assert result.summary["status"] == "finished", overrides
    final = result.metrics.iloc[-1]
    assert final["step"] >= 1, overrides
    assert math.isfinite(final["train_loss"]) and math.isfinite(final["test_loss"]), overrides
    return "trained"


@pytest.fixture
def in_fresh_folder(tmp_path_factory, monkeypatch):
    """A function-scoped fixture runs once for all of Hypothesis's examples: each example asks
    for its own folder (with the text dataset=shakespeare reads)."""
    def make() -> Path:
        folder = tmp_path_factory.mktemp("run")
        (folder / "data" / "shakespeare").mkdir(parents=True)
        (folder / "data" / "shakespeare" / "input.txt").write_text(TEXT)
        monkeypatch.chdir(folder)
        return folder
    return make


# Regressions: command lines that ended in a traceback before their factory checked the value.
REGRESSIONS = [
    {"optimizer": "damsco", "optimizer.betas": "[]"},  # IndexError in the rule
    {"optimizer": "dadagrad", "optimizer.betas": "[0.5]"},  # IndexError
    {"model": "mlp", "model.hidden": f"[{2**31}]"},  # the allocator's RuntimeError
    {"model": "mlp", "model.hidden": f"[{2**63 - 1}]"},  # storage size overflow
    {"dataset": "shakespeare", "model": "char_gpt", "model.heads": "0"},  # ZeroDivisionError
    {"dataset": "shakespeare", "model": "char_gpt", "model.width": "0"},  # ZeroDivisionError (no parameters)
    {"dataset": "shakespeare", "model": "char_gpt", "model.dropout": "-1.0"},  # torch's ValueError
    {"backend.nodes": str(2**31)},  # numpy's MemoryError for the n x n mixing matrix
]


@settings(max_examples=MAX_EXAMPLES, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(line=command_lines())
def test_every_setting_is_refused_in_one_line_or_trains(line, in_fresh_folder):
    start = time.perf_counter()
    in_fresh_folder()
    STATS[run_outcome(line)] += 1
    STATS["examples"] += 1
    STATS["seconds"] += time.perf_counter() - start


@pytest.mark.parametrize("change", REGRESSIONS, ids=lambda c: " ".join(f"{k}={v}" for k, v in c.items()))
def test_settings_that_once_ended_in_a_traceback_are_refused_in_one_line(change, in_fresh_folder):
    in_fresh_folder()
    assert run_outcome({**BASE, **change}) == "refused"


# (change, the file that crashed): tracebacks the property test found outside the factories, now refusals.
ONCE_CRASHED = [
    ({"trainer.threads": str(2**31)}, "cli/world.py set_threads"),
    ({"dataset": "synthetic", "dataset.samples": str(2**40)}, "data/synthetic.py"),
    ({"dataset": "synthetic", "dataset.features": str(2**31)}, "data/synthetic.py"),
    ({"dataset": "synthetic", "dataset.classes": str(2**31)}, "data/synthetic.py"),
    ({"dataset": "synthetic", "dataset.groups": str(2**63 - 1)}, "data/synthetic.py"),
    ({"dataset": "synthetic", "dataset.image_shape": f"[{2**63 - 1},1,1]"}, "data/synthetic.py"),
    ({"dataset": "shakespeare", "model": "char_gpt", "dataset.context": str(2**63 - 1)}, "data/shakespeare.py"),
    ({"dataset.test_fraction": str(TINY)}, "data/digits.py (no test sample), train/record.py"),
]


@pytest.mark.parametrize(("change", "where"), ONCE_CRASHED,
                         ids=[f"{list(c.items())[-1][0]}: {w}" for c, w in ONCE_CRASHED])
def test_settings_that_once_crashed_outside_the_factories_are_refused(change, where, in_fresh_folder):
    in_fresh_folder()
    assert run_outcome({**BASE, **change}) == "refused"


@pytest.fixture(scope="module", autouse=True)
def report_counts():
    yield
    if STATS["examples"]:  # shown with -s
        print(f"\n{STATS['examples']} examples ({STATS['refused']} refused in one line, {STATS['trained']} trained, "
              f"{STATS['diverged']} diverged) in {STATS['seconds']:.1f} s")
