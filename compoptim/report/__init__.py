"""Read run directories back into tables (the report reads only what runs write)."""

from compoptim.report.runs import SUMMARY_COLUMNS, find_runs, load_summaries

__all__ = ["SUMMARY_COLUMNS", "find_runs", "load_summaries"]
