"""The report as one self-contained HTML page: tables plus SVG histograms (no script, no network).

SVG is written here rather than drawn by a plotting library: the page is deterministic (same
commit, same bytes), small, and opens anywhere, including offline and in a headless browser.
"""

from __future__ import annotations

import html
import math

from refinery.report.build import Histogram, Report

CSS = """
body{font:14px/1.4 system-ui,sans-serif;margin:16px;max-width:1100px;color:#222}
h1{font-size:20px} h2{font-size:16px;margin-top:24px}
table{border-collapse:collapse;margin:6px 0;width:100%;table-layout:auto}
td,th{border-bottom:1px solid #ddd;padding:3px 6px;text-align:right;vertical-align:top}
td.l,th.l{text-align:left;overflow-wrap:anywhere}
#flow td:first-child{white-space:nowrap}
.bar{display:inline-block;height:10px;background:#4a7}
.hist{display:flex;flex-wrap:wrap;gap:16px}
.hist figure{margin:0} svg{max-width:100%;height:auto}
.note{color:#a50}
code{font-size:12px;overflow-wrap:anywhere}
"""


def _e(x) -> str:
    return html.escape("" if x is None else str(x))


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f}%"


def svg_histogram(h: Histogram, width: int = 420, height: int = 180) -> str:
    """Stacked bars per bin (kept green, rejected grey), axis labels at both ends."""
    pad_l, pad_b, pad_t = 36, 28, 18
    n = len(h.kept)
    peak = max([k + r for k, r in zip(h.kept, h.rejected)] + [1])
    plot_w, plot_h = width - pad_l - 8, height - pad_b - pad_t
    bw = plot_w / n
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
        f'role="img" aria-label="histogram of {_e(h.column)}" data-column="{_e(h.column)}">',
        f'<text x="{pad_l}" y="12" font-size="12">{_e(h.column)}{" (log scale)" if h.log else ""}</text>',
    ]
    for i, (k, r) in enumerate(zip(h.kept, h.rejected)):
        x = pad_l + i * bw
        hk, hr = plot_h * k / peak, plot_h * r / peak
        base = pad_t + plot_h
        if k:
            parts.append(f'<rect class="kept" x="{x:.1f}" y="{base - hk:.1f}" width="{bw - 1:.1f}" height="{hk:.1f}" fill="#4a7" data-n="{k}"/>')
        if r:
            parts.append(f'<rect class="rejected" x="{x:.1f}" y="{base - hk - hr:.1f}" width="{bw - 1:.1f}" height="{hr:.1f}" fill="#bbb" data-n="{r}"/>')
    y0 = pad_t + plot_h
    parts.append(f'<line x1="{pad_l}" y1="{y0}" x2="{pad_l + plot_w}" y2="{y0}" stroke="#333"/>')
    parts.append(f'<line x1="{pad_l}" y1="{pad_t}" x2="{pad_l}" y2="{y0}" stroke="#333"/>')
    parts.append(f'<text x="{pad_l - 4}" y="{pad_t + 4}" font-size="10" text-anchor="end">{peak}</text>')
    parts.append(f'<text x="{pad_l - 4}" y="{y0}" font-size="10" text-anchor="end">0</text>')
    lo, hi = h.edges[0], h.edges[-1]
    fmt = (lambda v: f"{v:.0f}") if h.log else (lambda v: f"{v:g}")
    parts.append(f'<text x="{pad_l}" y="{height - 8}" font-size="10">{fmt(lo)}</text>')
    parts.append(f'<text x="{pad_l + plot_w}" y="{height - 8}" font-size="10" text-anchor="end">{fmt(hi)}</text>')
    if h.log and lo > 0 and hi > lo:
        mid = math.sqrt(lo * hi)
        parts.append(f'<text x="{pad_l + plot_w / 2}" y="{height - 8}" font-size="10" text-anchor="middle">{fmt(mid)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _breakdown(title: str, rows, label: str) -> str:
    body = "".join(
        f'<tr><td class="l">{_e(b.key)}</td><td>{b.docs_in}</td><td>{b.kept}</td><td>{_pct(b.kept_fraction)}</td>'
        f'<td class="l"><span class="bar" style="width:{100 * b.kept_fraction:.0f}px"></span></td></tr>'
        for b in rows
    )
    return (f'<h2>{_e(title)}</h2><table class="breakdown"><tr><th class="l">{label}</th><th>in</th><th>kept</th>'
            f'<th>kept %</th><th class="l"></th></tr>{body}</table>')  # fmt: skip


def render_html(r: Report) -> str:
    flow = "".join(
        f'<tr data-stage="{_e(row.stage)}"><td class="l">{_e(row.stage)}</td><td class="in">{row.docs_in}</td>'
        f'<td class="dropped">{sum(row.dropped.values())}</td><td class="out">{row.docs_out}</td>'
        f'<td>{_pct(row.kept_fraction)}</td><td class="l">'
        + ", ".join(f"{_e(k)}={v}" for k, v in sorted(row.dropped.items(), key=lambda kv: (-kv[1], kv[0])))
        + "</td></tr>"
        for row in r.flow
    )
    hists = "".join(f"<figure>{svg_histogram(h)}</figure>" for h in r.histograms)
    examples = "".join(
        f'<h3 style="font-size:14px">{_e(key)}</h3><table class="examples">'
        + "".join(
            f'<tr><td class="l"><code>{_e(e["url"] or e["doc_id"])}</code></td><td class="l">{_e(e["detail"])}</td></tr>'
            for e in rows
        )
        + "</table>"
        for key, rows in r.examples.items()
    )
    note = (f'<p class="note">rejects.mode is not <code>all</code>: the breakdowns count only the rejects kept '
            f"({_e(r.rejects_mode)}); the stage table is exact.</p>") if r.partial else ""  # fmt: skip
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Refinery report: commit {r.commit}</title><style>{CSS}</style></head>
<body>
<h1>Commit {r.commit} &middot; pipeline {_e(r.pipeline)}</h1>
<p id="summary" data-docs-in="{r.docs_in}" data-docs-out="{r.docs_out}">{r.docs_in} documents in, {r.docs_out} kept
({_pct(r.kept_fraction)}) &middot; {_e(r.created_at)} &middot; batch key <code>{_e(r.batch_key)}</code></p>
<h2>Stages (pipeline order)</h2>
<table id="flow"><tr><th class="l">stage</th><th>in</th><th>dropped</th><th>out</th><th>kept %</th><th class="l">drop reasons</th></tr>
{flow}</table>
{note}
<h2>Score distributions (green: kept, grey: rejected)</h2><div class="hist">{hists or "<p>no scored documents</p>"}</div>
{_breakdown("Kept fraction by language", r.by_language, "language")}
{_breakdown("Kept fraction by domain (top)", r.by_domain, "domain")}
<h2>Example rejects per reason</h2>{examples or "<p>no rejects</p>"}
</body></html>
"""
