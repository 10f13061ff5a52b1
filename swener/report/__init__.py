"""The report: runs collected by the results.json schema, KD effects with intervals, markdown tables, plots.

The package's API (what the command line and the tests call) is re-exported here.
"""
from swener.report.build import build, collect, compare_table, find_results, kd_effect, render_markdown, summarize, verdict  # noqa: F401
