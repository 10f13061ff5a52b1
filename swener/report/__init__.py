"""The report: runs collected by the results.json schema, KD effects with intervals, markdown tables, plots.

collect (read and pair the runs) -> stats (bootstrap, verdicts, costs: the summary) -> markdown
and plots -> build (REPORT.md, results.json, the PNGs). The package's API is re-exported here.
"""
from swener.report.build import build, load_teacher  # noqa: F401
from swener.report.collect import collect, load_run  # noqa: F401
from swener.report.markdown import compare_table, render_markdown  # noqa: F401
from swener.report.stats import kd_effect, summarize, verdict  # noqa: F401
from swener.runs import find_results  # noqa: F401
