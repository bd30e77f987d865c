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
