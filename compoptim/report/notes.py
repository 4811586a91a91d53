"""The notes at the top of the page: what a reader must know before trusting the numbers."""

from __future__ import annotations

from collections.abc import Sequence

from compoptim.report.formatting import number
from compoptim.report.grouping import FACTS, UNKNOWN, Group, fact, recorded
from compoptim.report.runs import Run, varying_keys


def notes(listed: list[Run], runs: list[Run], groups: list[Group], group_keys: Sequence[str],
          metric: str) -> list[str]:
    """What a reader must know before trusting the numbers: duplicates, pooled keys, facts some
    runs do not record, modified checkouts, every run that did not finish (an unreadable one with
    the file that is damaged), and what was left out of the files of the others (a cut row)."""
    lines = []
    for group in groups:
        if group.duplicate_of:
            lines.append(f"{group.label}: {len(group.duplicate_of)} duplicate run(s) (same settings, code, dataset "
                         f"and seed as another run); each seed counts once{_spread(group, metric)}")
    pooled = [k for k in varying_keys(runs) if k not in group_keys]
    if pooled:
        lines.append(f"--group-by pools runs that differ in {', '.join(pooled)}: their numbers are averaged together")
    for name in FACTS:
        missing = sum(not recorded(r, name) for r in runs)
        if missing:
            what = "code (version and git commit)" if name == "code" else name
            lines.append(f"{missing} of {len(runs)} runs do not record {what} (older runs, or no git checkout): "
                         f"{UNKNOWN} is a value of its own, never equal to a recorded one")
    dirty = sum(str(fact(r, "code")).endswith("+dirty") for r in runs)
    if dirty:
        lines.append(f"{dirty} runs ran from a modified git checkout: the same commit may hold different code")
    lines += [f"{r.path}: {r.status}{f' ({r.error})' if r.error else ''}" for r in listed if r.status != "finished"]
    lines += [warning for r in runs for warning in r.warnings]
    return lines


def _spread(group: Group, metric: str) -> str:
    """How far duplicates' final metric is from the run counted for their seed (0 for a deterministic rerun)."""
    by_path = {r.path: r for r in group.members}
    gaps = [abs(float(by_path[d].metrics[metric].iloc[-1]) - float(by_path[k].metrics[metric].iloc[-1]))
            for d, k in group.duplicate_of.items()
            if all(by_path[p].status == "finished" and by_path[p].metrics is not None and metric in by_path[p].metrics
                   for p in (d, k))]
    return f"; their final {metric} differs from it by up to {number(max(gaps))}" if gaps else ""
