"""schemas.json: every registered option's fields, generated from the factories' signatures,
so the CLI composes configs (``--help``, a config error, shell completion) without importing
the layers that define the factories (torch). The signatures stay the truth: a run and the
test suite check that the snapshot matches them, and a stale one is a one-line error naming
the command that rewrites it:

    python -m compoptim.config
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from compoptim.errors import UserError
from compoptim.registry import Registry

SNAPSHOT = Path(__file__).with_name("schemas.json")
REWRITE = "python -m compoptim.config"


def registries() -> dict[str, Registry]:
    """The registry behind each config group (``dataset/partition`` is a group inside dataset)."""
    from compoptim.comm import BACKENDS, NETWORKS
    from compoptim.compress import COMPRESSORS
    from compoptim.data import DATASETS, PARTITIONS
    from compoptim.models import MODELS
    from compoptim.optim import ALGORITHMS
    from compoptim.parallel.plan import PARALLEL
    from compoptim.topology import TOPOLOGIES
    from compoptim.train.loggers import LOGGERS

    return {"optimizer": ALGORITHMS, "compressor": COMPRESSORS, "topology": TOPOLOGIES, "model": MODELS,
            "dataset": DATASETS, "dataset/partition": PARTITIONS, "backend": BACKENDS, "network": NETWORKS,
            "parallel": PARALLEL, "logger": LOGGERS}


def describe() -> dict[str, dict[str, list[list[Any]]]]:
    """{group: {option: [[setting, type, default], ...]}} from the live registries."""
    from compoptim.config.generate import entry_fields

    return {group: {name: [list(f) for f in entry_fields(registry.group, entry, registry.extra(entry))]
                    for name, entry in registry.items()}
            for group, registry in registries().items()}


@cache
def load() -> dict[str, dict[str, list[list[Any]]]]:
    try:
        return json.loads(SNAPSHOT.read_text())
    except (OSError, ValueError):
        raise UserError(f"cannot read {SNAPSHOT}; write it with: {REWRITE}") from None


def check() -> None:
    """Refuse to run with a snapshot that differs from the code (a setting, type or default
    changed since it was written): the composed config would not be the factories'."""
    live, saved = describe(), load()
    if live != saved:
        stale = sorted(f"{g}={o}" for g in live.keys() | saved.keys()
                       for o in live.get(g, {}).keys() | saved.get(g, {}).keys()
                       if live.get(g, {}).get(o) != saved.get(g, {}).get(o))
        raise UserError(f"{SNAPSHOT.name} does not match the code for {', '.join(stale)}; rewrite it with: {REWRITE}")


def write() -> None:
    """One line per option, so a changed setting is a one-line diff."""
    groups = []
    for group, options in sorted(describe().items()):
        lines = [f"  {json.dumps(name)}: {json.dumps(fields)}" for name, fields in sorted(options.items())]
        groups.append(f" {json.dumps(group)}: {{\n" + ",\n".join(lines) + "\n }")
    SNAPSHOT.write_text("{\n" + ",\n".join(groups) + "\n}\n")
