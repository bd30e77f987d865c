"""Computing a run report from a commit: stage flow, kept fraction by language and domain,
score distributions, example rejects.

Every number comes from the commit itself: the flow from the commit record's counters (the
counters every drop is counted in, whatever `rejects.mode`), the breakdowns from the shards'
and the rejects table's columns.  With `rejects.mode` other than `all` the rejects table holds
only some drops, so the breakdowns are marked partial (the flow is still exact).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np
import pyarrow.parquet as pq

from refinery.counters import DEDUP_STAGE, RAW_COPY_REASON, READ_STAGE
from refinery.errors import StoreError
from refinery.store import CommitRecord, CorpusStore

# Score columns drawn as histograms when present, with the range of their bins.
HISTOGRAM_COLUMNS = {
    "quality_score": (0.0, 1.0),
    "perplexity": None,  # range from the data (log-scaled bins)
    "toxicity": (0.0, 1.0),
    "language_score": (0.0, 1.0),
}
BINS = 20


@dataclass
class FlowRow:
    """One row of the stage table: documents in, out and dropped, in pipeline order."""

    stage: str
    docs_in: int
    docs_out: int
    dropped: dict[str, int]
    seconds: float

    @property
    def kept_fraction(self) -> float | None:
        return self.docs_out / self.docs_in if self.docs_in else None


@dataclass
class Breakdown:
    key: str  # a language or a domain
    docs_in: int
    kept: int

    @property
    def kept_fraction(self) -> float:
        return self.kept / self.docs_in if self.docs_in else 0.0


@dataclass
class Histogram:
    column: str
    edges: list[float]
    kept: list[int]
    rejected: list[int]
    log: bool = False


@dataclass
class Report:
    commit: int
    batch_key: str
    pipeline: str
    created_at: str
    docs_in: int
    docs_out: int
    flow: list[FlowRow]
    by_language: list[Breakdown]
    by_domain: list[Breakdown]
    histograms: list[Histogram]
    examples: dict[str, list[dict]]  # "stage:reason" -> example reject rows (doc_id, url, detail, ...)
    rejects_mode: str = "all"
    partial: bool = False  # the rejects table does not hold every drop (rejects.mode sample/none)
    labels: dict = field(default_factory=dict)

    @property
    def kept_fraction(self) -> float:
        return self.docs_out / self.docs_in if self.docs_in else 0.0

    def to_dict(self) -> dict:
        out = asdict(self)
        out["kept_fraction"] = self.kept_fraction
        for row, d in zip(self.flow, out["flow"]):
            d["kept_fraction"] = row.kept_fraction
        for name in ("by_language", "by_domain"):
            for b, d in zip(getattr(self, name), out[name]):
                d["kept_fraction"] = b.kept_fraction
        return out


def find_commit(store: CorpusStore, ref: str | int) -> CommitRecord:
    """A commit by number, or by batch key (a unique prefix of at least 8 hex digits will do)."""
    text = str(ref).strip()
    if text.isdigit() and len(text) < 16:
        number = int(text)
        if number not in store.commit_numbers():
            raise StoreError(f"no commit {number} in {store.root} (commits: {_span(store.commit_numbers())})")
        return store.commit(number)
    if len(text) < 8 or any(c not in "0123456789abcdef" for c in text.lower()):
        raise StoreError(f"{text!r}: give a commit number or a batch key (at least 8 hex digits)")
    hits = [r for r in store.commits() if r.batch_key.startswith(text.lower())]
    if not hits:
        raise StoreError(f"no commit of batch key {text} in {store.root}")
    if len(hits) > 1:
        raise StoreError(f"batch key prefix {text} matches commits {', '.join(str(r.commit) for r in hits)}")
    return hits[0]


def _span(numbers: list[int]) -> str:
    return f"{numbers[0]}..{numbers[-1]}" if numbers else "none"


def flow_rows(counters: dict) -> list[FlowRow]:
    """The commit's counters as a chain in = out + dropped, next.in = out.

    Raw-byte copies are counted under `dedup` (that is the stage whose rule drops them) but leave
    right after `read`, before `extract`: they get their own row there, `dedup (raw copies)`, and
    the `dedup` row keeps only the drops it decided after the per-document stages."""
    rows: list[FlowRow] = []
    raw = counters.get(DEDUP_STAGE, {}).get("dropped", {}).get(RAW_COPY_REASON, 0)
    for name, c in counters.items():
        dropped = {r: n for r, n in c["dropped"].items() if n}
        docs_in, docs_out = c["in"], c["out"]
        if name == DEDUP_STAGE and raw:
            dropped.pop(RAW_COPY_REASON, None)
            docs_in -= raw
        rows.append(FlowRow(name, docs_in, docs_out, dropped, c.get("seconds", 0.0)))
        if name == READ_STAGE and raw:
            rows.append(FlowRow(f"{DEDUP_STAGE} (raw copies)", docs_out, docs_out - raw, {RAW_COPY_REASON: raw}, 0.0))
    return rows


def domain(url: str | None) -> str:
    if not url:
        return "(no url)"
    host = (urlsplit(url).hostname or "").lower()
    return host.removeprefix("www.") or "(no host)"


def _read(store: CorpusStore, entries, columns: list[str]) -> dict[str, list]:
    """The wanted columns of the files (those a file lacks come back as None: older commits)."""
    out: dict[str, list] = {c: [] for c in columns}
    for e in entries:
        path = Path(store.root) / e.path
        names = set(pq.read_schema(path).names)
        present = [c for c in columns if c in names]
        table = pq.read_table(path, columns=present)
        for c in columns:
            out[c].extend(table.column(c).to_pylist() if c in present else [None] * table.num_rows)
    return out


def _breakdown(kept: list, rejected: list, top: int) -> list[Breakdown]:
    k = Counter(x or "(unknown)" for x in kept)
    r = Counter(x or "(unknown)" for x in rejected)
    rows = [Breakdown(key, k[key] + r[key], k[key]) for key in set(k) | set(r)]
    rows.sort(key=lambda b: (-b.docs_in, b.key))
    return rows[:top]


def _histogram(column: str, kept: list, rejected: list) -> Histogram | None:
    kv = np.array([v for v in kept if v is not None], dtype=float)
    rv = np.array([v for v in rejected if v is not None], dtype=float)
    if kv.size + rv.size == 0:
        return None
    span = HISTOGRAM_COLUMNS[column]
    log = span is None
    if log:
        both = np.concatenate([kv, rv])
        lo, hi = max(float(both.min()), 1e-3), max(float(both.max()), 1e-3)
        hi = hi * 1.0001 if hi > lo else lo * 10
        edges = np.geomspace(lo, hi, BINS + 1)
        kv, rv = np.clip(kv, lo, hi), np.clip(rv, lo, hi)
    else:
        edges = np.linspace(span[0], span[1], BINS + 1)
        kv, rv = np.clip(kv, *span), np.clip(rv, *span)
    return Histogram(
        column,
        [round(float(e), 6) for e in edges],
        np.histogram(kv, edges)[0].tolist(),
        np.histogram(rv, edges)[0].tolist(),
        log,
    )


def build_report(store: CorpusStore, record: CommitRecord, top: int = 20, examples_per_reason: int = 3) -> Report:
    """The report of one commit (`top` languages/domains, `examples_per_reason` rejects per reason)."""
    score_cols = list(HISTOGRAM_COLUMNS)
    kept = _read(store, record.shards, ["url", "language", *score_cols])
    rej = _read(store, record.rejects, ["doc_id", "url", "stage", "reason", "detail", "language", *score_cols])
    flow = flow_rows(record.counters)
    dropped_total = sum(sum(r.dropped.values()) for r in flow)
    partial = len(rej["doc_id"]) != dropped_total
    examples: dict[str, list[dict]] = defaultdict(list)
    for i, (stage, reason) in enumerate(zip(rej["stage"], rej["reason"])):
        key = f"{stage}:{reason}"
        if len(examples[key]) < examples_per_reason:
            examples[key].append({c: rej[c][i] for c in ("doc_id", "url", "language", "detail")})
    hists = [
        h for c in score_cols if (h := _histogram(c, kept[c], rej[c])) is not None
    ]
    mode = "all"
    if partial:
        mode = "sample/none (the rejects table holds only part of the drops)"
    return Report(
        commit=record.commit,
        batch_key=record.batch_key,
        pipeline=record.pipeline,
        created_at=record.created_at,
        docs_in=record.docs_in,
        docs_out=record.docs_out,
        flow=flow,
        by_language=_breakdown(kept["language"], rej["language"], top),
        by_domain=_breakdown([domain(u) for u in kept["url"]], [domain(u) for u in rej["url"]], top),
        histograms=hists,
        examples=dict(sorted(examples.items())),
        rejects_mode=mode,
        partial=partial,
        labels=dict(record.labels),
    )
