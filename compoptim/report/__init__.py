"""Read run directories back into tables and figures (the report reads only what runs write)."""

from compoptim.report.grouping import FACTS, Group, dimensions, group_runs
from compoptim.report.runs import Run, find_runs, load_run, load_runs, load_topologies, varying_keys
from compoptim.report.topology_figure import draw_topology

__all__ = ["FACTS", "Group", "Run", "dimensions", "draw_topology", "find_runs", "group_runs", "load_run", "load_runs",
           "load_topologies", "varying_keys"]
