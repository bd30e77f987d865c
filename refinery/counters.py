"""Per-stage counters: documents in/out, drops by reason, seconds.

Workers fill one Counters per work unit; the driver merges them in unit order,
and the merged dict is stored with the commit and exported as metrics.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field


@dataclass
class StageCounters:
    docs_in: int = 0
    docs_out: int = 0
    dropped: Counter = field(default_factory=Counter)
    seconds: float = 0.0
    events: Counter = field(default_factory=Counter)  # StageResult.counts (e.g. pii spans by kind)

    def to_dict(self) -> dict:
        out = {
            "in": self.docs_in,
            "out": self.docs_out,
            "dropped": dict(sorted(self.dropped.items())),
            "seconds": round(self.seconds, 3),
        }
        if self.events:  # only stages that report events carry the key: older records stay as they were
            out["events"] = dict(sorted(self.events.items()))
        return out


RAW_COPY_REASON = "exact_raw"  # refinery/dedup/raw.py: raw-byte copies, dropped right after `read`
DEDUP_STAGE = "dedup"
READ_STAGE = "read"


class Counters:
    def __init__(self) -> None:
        self.stages: dict[str, StageCounters] = {}

    def stage(self, name: str) -> StageCounters:
        return self.stages.setdefault(name, StageCounters())

    def merge(self, other: "Counters | dict") -> None:
        items = other.stages.items() if isinstance(other, Counters) else Counters.from_dict(other).stages.items()
        for name, c in items:
            mine = self.stage(name)
            mine.docs_in += c.docs_in
            mine.docs_out += c.docs_out
            mine.dropped.update(c.dropped)
            mine.seconds += c.seconds
            mine.events.update(c.events)

    def to_dict(self) -> dict:
        return {name: c.to_dict() for name, c in self.stages.items()}

    @classmethod
    def from_dict(cls, data: dict) -> "Counters":
        out = cls()
        for name, d in data.items():
            out.stages[name] = StageCounters(d["in"], d["out"], Counter(d["dropped"]), d["seconds"], Counter(d.get("events", {})))
        return out

    def table(self) -> str:
        """A fixed-width per-stage table for the terminal."""
        rows = [("stage", "in", "out", "dropped", "seconds", "docs/s", "top drop reasons")]
        for name, c in self.stages.items():
            dropped = sum(c.dropped.values())
            rate = f"{c.docs_in / c.seconds:.1f}" if c.seconds > 0 else "-"
            top = ", ".join(f"{r}={n}" for r, n in c.dropped.most_common(3))
            rows.append((name, str(c.docs_in), str(c.docs_out), str(dropped), f"{c.seconds:.1f}", rate, top))
        widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
        lines = ["  ".join(cell.ljust(w) if i in (0, 6) else cell.rjust(w) for i, (cell, w) in enumerate(zip(r, widths))) for r in rows]
        lines.insert(1, "-" * len(lines[0]))
        return "\n".join(lines)


def in_pipeline_order(counters: Counters, stages: list[str], dedup_drops: dict[str, int] | None) -> Counters:
    """Worker counters plus the driver's dedup decisions, in the pipeline's stage order.

    Dedup decides in the driver after the workers ran every stage, among the documents every
    worker stage kept; so a document dedup drops passed perplexity and toxicity in the workers.
    Moving it to the stage's place in the pipeline means taking it out of the later stages' in
    and out: then in = out + dropped for every stage and next.in = out along the chain, except
    that raw-byte copies (`dedup:exact_raw`) leave right after `read`, before `extract`:
    read.out = extract.in + dedup.dropped[exact_raw]; dedup.in counts them with what the stage
    before it kept (`refinery report` shows them as their own row after `read`).
    """
    out = Counters()
    worker_dedup = counters.stages.get(DEDUP_STAGE)
    raw = worker_dedup.dropped.get(RAW_COPY_REASON, 0) if worker_dedup else 0
    decided = sum((dedup_drops or {}).values())
    names = [READ_STAGE] + [n for n in stages if n != READ_STAGE]
    after_dedup = False
    for name in names:
        c = out.stage(name)
        if name == DEDUP_STAGE and dedup_drops is not None:
            prev = list(out.stages.values())[-2] if len(out.stages) > 1 else None
            c.docs_in = (prev.docs_out if prev else 0) + raw
            if raw:
                c.dropped[RAW_COPY_REASON] += raw
            for reason, n in sorted(dedup_drops.items()):
                c.dropped[reason] += n
            c.docs_out = c.docs_in - sum(c.dropped.values())
            c.seconds = worker_dedup.seconds if worker_dedup else 0.0
            after_dedup = True
            continue
        src = counters.stages.get(name)
        if src is None:
            continue
        c.docs_in, c.docs_out, c.seconds = src.docs_in, src.docs_out, src.seconds
        c.dropped.update(src.dropped)
        if after_dedup:
            c.docs_in -= decided
            c.docs_out -= decided
    for name, src in counters.stages.items():  # a stage the list does not name (none today): kept, last
        if name not in out.stages:
            out.merge(Counters.from_dict({name: src.to_dict()}))
    return out
