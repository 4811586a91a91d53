"""Finding run directories and reading back what runs write (the report reads nothing else)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from compoptim.report import files
from compoptim.report.files import Damaged

# Config keys that describe the machine or the outputs, never a grouping dimension.
# (The backend a run used is the summary's fact, see grouping.py.)
NOT_DIMENSIONS = ("hydra.", "trainer.device", "trainer.threads", "backend.")


UNREADABLE = "unreadable"


@dataclass
class Run:
    """One run directory: its flattened config, summary, metrics (None: no evaluations yet),
    topology and partition (None: not written, or damaged) and status: finished, failed, running
    (or killed: a summary that never reached the end) or unreadable (a damaged file: ``error``
    says which and how). ``warnings`` are the lines the report prints about its files."""

    path: Path
    status: str
    config: dict[str, Any] = field(default_factory=dict)
    summary: dict[str, Any] = field(default_factory=dict)
    metrics: pd.DataFrame | None = None
    error: str | None = None
    topology: dict[str, Any] | None = None
    partition: dict[str, Any] | None = None
    warnings: list[str] = field(default_factory=list)


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
    """Read one run; a damaged file (see files.py) becomes a warning, never an exception. A damaged
    summary, config or metrics.csv makes the whole run unreadable: nothing of it is reported but the
    damage. A metrics.csv whose last line was cut mid-row loses that row (of a run that did not finish);
    a damaged topology.json or partition.json is not drawn."""
    path = Path(path)
    try:
        summary = files.read_summary(path)
        config = flatten(files.read_config(path))
        metrics = files.read_metrics(path, summary)
    except Damaged as exc:
        return Run(path, UNREADABLE, error=str(exc), warnings=[f"{path / exc.file}: {exc.what}; listed as unreadable"])
    warnings = []
    if metrics.cut:
        warnings.append(f"{path / files.METRICS}: last line cut mid-row (partial write); that row is left out")
    topology = _drawing(path, files.read_topology, warnings)
    partition = _drawing(path, files.read_partition, warnings)
    return Run(path, summary["status"], config, summary, metrics.frame, summary.get("error"), topology, partition,
               warnings)


def _drawing(path: Path, read, warnings: list[str]) -> dict[str, Any] | None:
    """A file the report only draws: damaged, it is not drawn, and the run is reported without it."""
    try:
        return read(path)
    except Damaged as exc:
        warnings.append(f"{path / exc.file}: {exc.what}; not drawn")
        return None


def load_runs(paths: list[Path]) -> list[Run]:
    return [load_run(p) for p in find_runs(paths)]


def flatten(tree: Any, prefix: str = "") -> dict[str, Any]:
    """{'optimizer': {'lr': 0.1}} -> {'optimizer.lr': 0.1}; lists (and any value but a number,
    string, boolean or null) become their text."""
    if not isinstance(tree, dict):
        return {prefix[:-1]: tree if tree is None or isinstance(tree, (str, int, float)) else str(tree)}
    out: dict[str, Any] = {}
    for key, value in tree.items():
        out.update(flatten(value, f"{prefix}{key}."))
    return out


def varying_keys(runs: list[Run]) -> list[str]:
    """Config keys whose values differ between runs: the grouping dimensions.

    The seed is excluded (it is averaged over), and so is a setting that only differs
    because its group's option differs (optimizer.betas, which only adam's runs have, when
    optimizer.name is sgd for some runs and adam for others): a key under a group whose
    ``name`` varies is kept only if the runs that have it disagree on it. So a step size
    that changes together with the optimizer (sgd at lr 0.1, adam at 0.001) stays in the
    labels: the algorithms did not run at the same step. Groups nest
    (dataset.partition.alpha belongs to dataset.partition); the innermost group whose name
    varies decides.
    """
    keys = sorted({k for r in runs for k in r.config})
    candidates = [k for k in keys if k != "seed" and not k.startswith(NOT_DIMENSIONS)
                  and len({repr(r.config.get(k)) for r in runs}) > 1]
    groups = option_groups(candidates)
    dimensions = []
    for key in candidates:
        group = owner(key, groups)
        if group is not None and len({repr(r.config[key]) for r in runs if key in r.config}) == 1:
            continue  # only some options have it, all at one value: the option says it
        dimensions.append(key)
    return dimensions


def option_groups(keys: list[str]) -> list[str]:
    """The config groups whose option (``<group>.name``) is among ``keys``."""
    return [k[: -len(".name")] for k in keys if k.endswith(".name")]


def owner(key: str, groups: list[str]) -> str | None:
    """The innermost of ``groups`` that ``key`` is a setting of (a group's own ``.name`` is not)."""
    owners = [g for g in groups if key.startswith(f"{g}.") and key != f"{g}.name"]
    return max(owners, key=len, default=None)


def load_topologies(runs: list[Run]) -> dict[str, dict]:
    """The distinct topologies of the runs (topology.json), keyed like ``topology-ring-n8``."""
    return _distinct([r.topology for r in runs], lambda spec: f"topology-{spec['name']}-n{spec['n']}")


def load_partitions(runs: list[Run]) -> dict[str, tuple[dict, list[Path]]]:
    """The distinct per-node label histograms (partition.json), keyed like ``partition-label-n5``,
    each with the runs that trained on it."""
    specs = _distinct([r.partition for r in runs],
                      lambda spec: f"partition-{spec['partition']}-n{len(spec['label_histogram'])}")
    return {stem: (spec, [r.path for r in runs if r.partition == spec]) for stem, spec in specs.items()}


def _distinct(specs: list[dict | None], stem_of) -> dict[str, dict]:
    """Each distinct spec (None: a run without that file) under a unique file-name stem (``stem``,
    ``stem-2``, ...)."""
    found: dict[str, dict] = {}
    for spec in specs:
        if spec is None or spec in found.values():
            continue
        stem, k = stem_of(spec), 1
        while f"{stem}{'' if k == 1 else f'-{k}'}" in found:
            k += 1
        found[f"{stem}{'' if k == 1 else f'-{k}'}"] = spec
    return found
