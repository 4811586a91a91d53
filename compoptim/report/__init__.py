"""Read run directories back into tables and figures (the report reads only what runs write)."""

from compoptim.report.runs import (
    SUMMARY_COLUMNS,
    Run,
    find_runs,
    load_run,
    load_runs,
    load_summaries,
    load_topologies,
    varying_keys,
)
from compoptim.report.topology_figure import draw_topology

__all__ = ["SUMMARY_COLUMNS", "Run", "draw_topology", "find_runs", "load_run", "load_runs", "load_summaries",
           "load_topologies", "varying_keys"]
