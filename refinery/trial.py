"""`--limit N`: a trial run over the first N input records, in input order.

Cutting happens after planning, on the planned units, so the records processed are exactly
the first N of the batch (file order, then record order) whatever the cluster size.  A
limited run is a different batch: its batch key carries the limit (batch.batch_key).
"""

from __future__ import annotations

from dataclasses import replace

from refinery.readers import WorkUnit, scan_file


def unit_records(unit: WorkUnit, totals: dict[str, int]) -> int:
    """Records in the unit; a file's last unit (count None) needs the file's total (scanned once)."""
    if unit.count is not None:
        return unit.count
    if unit.file.uri not in totals:
        totals[unit.file.uri] = scan_file(unit.file)[0]
    return max(0, totals[unit.file.uri] - unit.start)


def limit_units(units: list[WorkUnit], limit: int) -> list[WorkUnit]:
    """The units covering the first `limit` records; the last one cut short."""
    if limit < 1:
        raise ValueError("--limit must be at least 1")
    out: list[WorkUnit] = []
    left = limit
    totals: dict[str, int] = {}
    for unit in units:
        if left <= 0:
            break
        n = unit_records(unit, totals)
        if n == 0:
            continue
        if n > left:
            unit = replace(unit, count=left)
            n = left
        out.append(replace(unit, index=len(out)))
        left -= n
    return out
