"""The report as fixed-width terminal tables."""

from __future__ import annotations

from refinery.report.build import Breakdown, Report


def _table(header: tuple[str, ...], rows: list[tuple[str, ...]], left: set[int]) -> list[str]:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    fmt = lambda r: "  ".join(c.ljust(w) if i in left else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths)))  # noqa: E731
    lines = [fmt(header)]
    lines.append("-" * len(lines[0]))
    lines.extend(fmt(r) for r in rows)
    return lines


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f}%"


def _breakdown(title: str, rows: list[Breakdown]) -> list[str]:
    body = [(b.key, str(b.docs_in), str(b.kept), _pct(b.kept_fraction)) for b in rows]
    return [f"\n{title}", *_table((title.split()[-1].rstrip(")"), "in", "kept", "kept %"), body, {0})]


def render_text(r: Report) -> str:
    lines = [
        f"commit {r.commit}  pipeline={r.pipeline}  {r.created_at}",
        f"batch_key={r.batch_key}",
        f"{r.docs_in} documents in, {r.docs_out} kept ({_pct(r.kept_fraction)})",
        "",
    ]
    flow = []
    for row in r.flow:
        top = ", ".join(f"{k}={v}" for k, v in sorted(row.dropped.items(), key=lambda kv: (-kv[1], kv[0]))[:4])
        flow.append((row.stage, str(row.docs_in), str(sum(row.dropped.values())), str(row.docs_out), _pct(row.kept_fraction), top))
    lines += _table(("stage", "in", "dropped", "out", "kept %", "drop reasons"), flow, {0, 5})
    if r.partial:
        lines.append(f"\nnote: rejects.mode is not `all`: the breakdowns below count only the rejects kept ({r.rejects_mode})")
    lines += _breakdown("kept fraction by language", r.by_language)
    lines += _breakdown("kept fraction by domain", r.by_domain)
    for h in r.histograms:
        lines.append(f"\n{h.column}: {sum(h.kept)} kept, {sum(h.rejected)} rejected scored (see --html for the histogram)")
    if r.examples:
        lines.append("\nexample rejects")
        for key, rows in r.examples.items():
            lines.append(f"  {key}")
            for e in rows:
                lines.append(f"    {e['url'] or e['doc_id']}  {e['detail'] or ''}")
    return "\n".join(lines)
