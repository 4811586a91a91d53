"""Which runs may be averaged: groups of runs that differ in nothing but the seed, one run per seed.

A group is fixed by its config dimensions (the keys that vary, or ``--group-by``) and by the
facts of the run that change its result without being config keys: how many nodes it ran on,
the backend, the code (version and git commit) and the dataset (a hash of the tensors). A fact
a run does not record (older runs) is "unknown", a value of its own: it never equals a known one.

Runs identical in every config key (the machine-only ones aside), every fact and the seed are
*duplicates*: each seed counts once in its group's numbers (its first finished run, in path
order); the others are listed as duplicates of it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from compoptim.report.runs import NOT_DIMENSIONS, Run

UNKNOWN = "unknown"
FACTS = ("n_nodes", "backend", "code", "dataset_hash")
# Older runs wrote the communicator's class name; newer ones the config name.
_BACKEND_NAMES = {"MPICommunicator": "mpi", "LocalCommunicator": "local"}


def fact(run: Run, name: str) -> Any:
    """The value of fact ``name`` (one of FACTS) for ``run``; UNKNOWN when it is not recorded."""
    summary = run.summary
    if name == "code":
        return code_version(summary)
    if name == "backend":
        backend = summary.get("backend")
        return UNKNOWN if backend is None else _BACKEND_NAMES.get(backend, backend)
    if name == "dataset_hash":
        digest = summary.get("dataset_hash")
        return UNKNOWN if not digest else str(digest)[:12]
    value = summary.get(name)
    return UNKNOWN if value is None else value


def code_version(summary: dict[str, Any]) -> str:
    """'0.1.0@3f2a9c1b2d4e', with '+dirty' for a modified checkout; unknown parts say so."""
    code = summary.get("code") or {}
    version = code.get("version") or (summary.get("versions") or {}).get("compoptim") or UNKNOWN
    commit = code.get("git_commit")
    dirty = "+dirty" if code.get("git_dirty") else ""
    return f"{version}@{commit[:12] if commit else UNKNOWN}{dirty}"


def recorded(run: Run, name: str) -> bool:
    """Whether the run records fact ``name`` in full (the code: its version and its git commit)."""
    return UNKNOWN not in str(fact(run, name)).removesuffix("+dirty").split("@")


def dimensions(runs: Sequence[Run], group_keys: Sequence[str]) -> list[str]:
    """The config keys, then the facts that differ between the runs: everything a group is fixed by."""
    return [*group_keys, *(f for f in FACTS if len({repr(fact(r, f)) for r in runs}) > 1)]


def value(run: Run, dimension: str) -> Any:
    return fact(run, dimension) if dimension in FACTS else run.config.get(dimension)


def dimension_text(dimension: str, val: Any) -> str:
    """'optimizer=adam' for optimizer.name (an option by its group's name), 'n_nodes=8' for a fact."""
    name = dimension[: -len(".name")] if dimension.endswith(".name") else dimension
    return f"{name}={val}"


def group_label(run: Run, dims: Sequence[str]) -> str:
    """'optimizer=adam, compressor=topk, n_nodes=8'; 'all runs' when nothing varies."""
    return ", ".join(dimension_text(d, value(run, d)) for d in dims) or "all runs"


@dataclass
class Group:
    """The runs of one group; ``counted`` holds one run per seed, ``duplicate_of`` maps every
    other run to the run that counts for its seed."""

    label: str
    values: dict[str, Any]
    members: list[Run] = field(default_factory=list)
    counted: list[Run] = field(default_factory=list)
    duplicate_of: dict[Path, Path] = field(default_factory=dict)

    @property
    def finished(self) -> list[Run]:
        return [r for r in self.counted if r.status == "finished"]

    @property
    def seeds(self) -> list[Any]:
        return sorted({r.config.get("seed") for r in self.members},
                      key=lambda s: (0, s, "") if isinstance(s, int) else (1, 0, str(s)))


def group_runs(runs: Sequence[Run], group_keys: Sequence[str]) -> list[Group]:
    """The groups in order of their first run; within each, one counted run per distinct setting and seed."""
    dims = dimensions(runs, group_keys)
    groups: dict[str, Group] = {}
    for run in runs:
        label = group_label(run, dims)
        groups.setdefault(label, Group(label, {d: value(run, d) for d in dims})).members.append(run)
    for group in groups.values():
        by_identity: dict[str, list[Run]] = {}
        for run in group.members:
            by_identity.setdefault(_identity(run), []).append(run)
        for same in by_identity.values():
            kept = next((r for r in same if r.status == "finished"), same[0])
            group.counted.append(kept)
            group.duplicate_of.update({r.path: kept.path for r in same if r is not kept})
    return list(groups.values())


def _identity(run: Run) -> str:
    """Everything that can change a run's numbers: its config (machine-only keys aside), facts and seed.
    (With --group-by, runs of one group may differ in config keys that are not dimensions: not duplicates.)"""
    config = sorted((k, repr(v)) for k, v in run.config.items() if not k.startswith(NOT_DIMENSIONS))
    return repr((config, [repr(fact(run, f)) for f in FACTS]))
