"""Finding run directories and reading back what runs write (the report reads nothing else)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

# Config keys that describe the machine or the outputs, never a grouping dimension.
# (The backend a run used is the summary's fact, see grouping.py.)
NOT_DIMENSIONS = ("hydra.", "trainer.device", "trainer.threads", "backend.")


@dataclass
class Run:
    """One run directory: its flattened config, summary, metrics (None if unreadable) and
    status: finished, failed, running (or killed: a summary that never reached the end) or
    unreadable."""

    path: Path
    status: str
    config: dict[str, Any] = field(default_factory=dict)
    summary: dict[str, Any] = field(default_factory=dict)
    metrics: pd.DataFrame | None = None
    error: str | None = None


def find_runs(paths: list[Path]) -> list[Path]:
    """Every directory holding a summary.json at or below each path, in path order (numbers
    compared as numbers, so a sweep's job 10 comes after job 9)."""
    runs: list[Path] = []
    for path in paths:
        found = sorted((p.parent for p in Path(path).rglob("summary.json")), key=_natural)
        runs.extend(r for r in found if r not in runs)
    return runs


def _natural(path: Path) -> list:
    return [(0, int(part), "") if part.isdigit() else (1, 0, part) for part in re.split(r"(\d+)", str(path))]


def load_run(path: Path) -> Run:
    """Read one run; anything missing or corrupt becomes a status, never an exception."""
    path = Path(path)
    try:
        summary = json.loads((path / "summary.json").read_text())
    except (OSError, ValueError) as exc:
        return Run(path, "unreadable", error=f"summary.json: {exc.__class__.__name__}")
    try:
        config = flatten(yaml.safe_load((path / "config.resolved.yaml").read_text()) or {})
    except (OSError, yaml.YAMLError):
        config = {}
    try:
        metrics = pd.read_csv(path / "metrics.csv")
    except (OSError, ValueError, pd.errors.EmptyDataError):
        metrics = None
    status = str(summary.get("status", "unreadable"))
    return Run(path, status, config, summary, metrics, summary.get("error"))


def load_runs(paths: list[Path]) -> list[Run]:
    return [load_run(p) for p in find_runs(paths)]


def flatten(tree: Any, prefix: str = "") -> dict[str, Any]:
    """{'optimizer': {'lr': 0.1}} -> {'optimizer.lr': 0.1}; lists become their text."""
    if not isinstance(tree, dict):
        return {prefix[:-1]: str(tree) if isinstance(tree, list) else tree}
    out: dict[str, Any] = {}
    for key, value in tree.items():
        out.update(flatten(value, f"{prefix}{key}."))
    return out


def varying_keys(runs: list[Run]) -> list[str]:
    """Config keys whose values differ between runs: the grouping dimensions.

    The seed is excluded (it is averaged over), and so is a setting that only differs
    because its group's option differs (optimizer.betas when optimizer.name is sgd for some
    runs and adam for others): a key under a group whose ``name`` varies is kept only if it
    also varies among runs of the same option. Groups nest (dataset.partition.alpha belongs
    to dataset.partition); the innermost group whose name varies decides.
    """
    keys = sorted({k for r in runs for k in r.config})
    candidates = [k for k in keys if k != "seed" and not k.startswith(NOT_DIMENSIONS)
                  and len({repr(r.config.get(k)) for r in runs}) > 1]
    groups = option_groups(candidates)
    dimensions = []
    for key in candidates:
        group = owner(key, groups)
        if group is not None:
            options: dict[Any, set[str]] = {}
            for r in runs:
                options.setdefault(r.config.get(f"{group}.name"), set()).add(repr(r.config.get(key)))
            if all(len(values) == 1 for values in options.values()):
                continue
        dimensions.append(key)
    return dimensions


def option_groups(keys: list[str]) -> list[str]:
    """The config groups whose option (``<group>.name``) is among ``keys``."""
    return [k[: -len(".name")] for k in keys if k.endswith(".name")]


def owner(key: str, groups: list[str]) -> str | None:
    """The innermost of ``groups`` that ``key`` is a setting of (a group's own ``.name`` is not)."""
    owners = [g for g in groups if key.startswith(f"{g}.") and key != f"{g}.name"]
    return max(owners, key=len, default=None)


def load_topologies(runs: list[Path]) -> dict[str, dict]:
    """The distinct topologies of the runs (topology.json), keyed like ``topology-ring-n8``."""
    return _distinct(runs, "topology.json", lambda spec: f"topology-{spec['name']}-n{spec['n']}")


def load_partitions(runs: list[Path]) -> dict[str, tuple[dict, list[Path]]]:
    """The distinct per-node label histograms (partition.json), keyed like ``partition-label-n5``,
    each with the runs that trained on it."""
    specs = _distinct(runs, "partition.json",
                      lambda spec: f"partition-{spec['partition']}-n{len(spec['label_histogram'])}")
    users: dict[str, list[Path]] = {stem: [] for stem in specs}
    for run in runs:
        spec = _read_json(Path(run) / "partition.json")
        users.update({stem: [*users[stem], Path(run)] for stem, known in specs.items() if known == spec})
    return {stem: (spec, users[stem]) for stem, spec in specs.items()}


def _distinct(runs: list[Path], name: str, stem_of) -> dict[str, dict]:
    """Each distinct JSON file ``name`` among the runs, under a unique file-name stem
    (``stem``, ``stem-2``, ...); unreadable files are skipped."""
    found: dict[str, dict] = {}
    for run in runs:
        spec = _read_json(Path(run) / name)
        if spec is None or spec in found.values():
            continue
        stem, k = stem_of(spec), 1
        while f"{stem}{'' if k == 1 else f'-{k}'}" in found:
            k += 1
        found[f"{stem}{'' if k == 1 else f'-{k}'}"] = spec
    return found


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None
