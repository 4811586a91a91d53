"""Read run directories back into tables (the report reads only what runs write)."""

from compoptim.report.runs import SUMMARY_COLUMNS, find_runs, load_summaries, load_topologies
from compoptim.report.topology_figure import draw_topology

__all__ = ["SUMMARY_COLUMNS", "draw_topology", "find_runs", "load_summaries", "load_topologies"]
