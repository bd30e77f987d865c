"""Run reports: what one batch (one commit) did, from the commit record, its shards and rejects.

`refinery report COMMIT|BATCH [--html FILE]` and the service's `/v1/batches/{id}/report` build
the same Report (build.py) and render it as a terminal table (text.py) or an HTML page with
histograms (html.py).
"""

from refinery.report.build import Report, build_report, find_commit

__all__ = ["Report", "build_report", "find_commit"]
