"""What the experiment is: the settings every run shares, and those that come with each option
of a group whose option varies (adam's betas, top-k's ratio)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd

from compoptim.report.formatting import number
from compoptim.report.grouping import FACTS, dimension_text, fact
from compoptim.report.runs import Run, option_groups, owner, varying_keys

ALL_RUNS = "all runs"
_ENVIRONMENT = {"device": lambda s: s.get("device"), "torch": lambda s: (s.get("versions") or {}).get("torch"),
                "python": lambda s: (s.get("versions") or {}).get("python")}
# The facts' lines on the page, named apart from the config groups (backend.name is what was asked for,
# the fact what ran).
_FACT_LINES = {"n_nodes": "nodes", "backend": "backend used", "dataset_hash": "dataset hash"}
# The page reads top down: where and with what code it ran, what is trained on what, how; the rest after.
_PAGE_ORDER = (*(_FACT_LINES.get(f, f) for f in FACTS), *_ENVIRONMENT, "model", "dataset", "topology", "optimizer",
               "compressor", "trainer")


class _Differs:
    """Marks a setting that is not shared (it differs between the runs, or some lack it)."""


_DIFFERS = _Differs()


def settings_table(runs: Sequence[Run]) -> pd.DataFrame:
    """Long form (scope, setting, value): scope 'all runs' for what every run shares (the facts,
    the environment, then every config key but hydra's, in config order), 'optimizer=adam' for
    what the runs of that option share beyond that while the option varies."""
    runs = list(runs)
    rows = [(ALL_RUNS, f, _shared([fact(r, f) for r in runs])) for f in FACTS]
    rows += [(ALL_RUNS, name, _shared([get(r.summary) for r in runs])) for name, get in _ENVIRONMENT.items()]
    keys = [k for k in dict.fromkeys(k for r in runs for k in r.config) if not k.startswith("hydra.")]
    shared = {k: _shared([r.config.get(k, _DIFFERS) for r in runs]) for k in keys}
    rows += [(ALL_RUNS, k, v) for k, v in shared.items()]
    dims = set(varying_keys(runs))
    groups = option_groups([k for k, v in shared.items() if v is _DIFFERS])
    for group in groups:
        for option in dict.fromkeys(r.config.get(f"{group}.name") for r in runs):
            members = [r for r in runs if r.config.get(f"{group}.name") == option]
            rows += [(dimension_text(f"{group}.name", option), k, _shared([r.config.get(k, _DIFFERS) for r in members]))
                     for k in keys if shared[k] is _DIFFERS and k not in dims and owner(k, groups) == group]
    return pd.DataFrame([r for r in rows if r[2] is not _DIFFERS], columns=["scope", "setting", "value"])


def _shared(values: Sequence[Any]) -> Any:
    first = values[0] if values else _DIFFERS
    return first if all(repr(v) == repr(first) for v in values) else _DIFFERS


def page_rows(table: pd.DataFrame) -> list[tuple[str, str]]:
    """One line per config group for the page, its option first: ('optimizer', 'sgd: lr=0.1, momentum=0'),
    ('optimizer=adam', 'betas=[0.9, 0.999]'); facts and environment one per line; top-level keys under 'run'."""
    heads: dict[str, str] = {}
    lines: dict[str, list[str]] = {}
    for scope, setting, val in table.itertuples(index=False):
        text = "null" if val is None else number(val)
        if scope == ALL_RUNS and (setting in FACTS or setting in _ENVIRONMENT):
            heads[_FACT_LINES.get(setting, setting)] = text
            continue
        prefix = setting.split(".")[0] if scope == ALL_RUNS else scope.split("=")[0]
        line = scope if scope != ALL_RUNS else prefix if "." in setting else "run"
        rest = setting[len(prefix) + 1:] if line != "run" else setting
        if rest == "name":
            heads[line] = text
        else:
            lines.setdefault(line, []).append(f"{rest.removesuffix('.name')}={text}")
    names = list(dict.fromkeys([*heads, *lines]))
    names.sort(key=_page_position)
    return [(n, ": ".join(p for p in (heads.get(n), ", ".join(lines.get(n, []))) if p)) for n in names]


def _page_position(line: str) -> int:
    group = line.split("=")[0].split(".")[0]
    return _PAGE_ORDER.index(group) if group in _PAGE_ORDER else len(_PAGE_ORDER)
