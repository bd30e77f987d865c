"""A cheap upper estimate of how deeply an HTML page nests its elements.

resiliparse's main-content extraction takes time that grows much faster than
the nesting depth (10,000 nested `<div>`s: ~2.5 CPU-s; 20,000: ~20 CPU-s;
60,000: many minutes), inside C code that no CPU-time guard can interrupt.  A
page that deep is never prose, so callers skip resiliparse's main-content pass
for it.  The estimate counts opening tags (void elements aside) up and closing
tags down over the bytes, at C speed; unclosed `<p>`/`<li>` make it an
overestimate, never an underestimate of deliberate nesting.
"""

from __future__ import annotations

import re

import numpy as np

_VOID = rb"area|base|br|col|embed|hr|img|input|link|meta|param|source|track|wbr"
_OPEN = re.compile(rb"<(?!(?:" + _VOID + rb")\b)[a-zA-Z]", re.IGNORECASE)
_CLOSE = re.compile(rb"</[a-zA-Z]")


def depth_estimate(html: bytes, limit: int) -> int:
    """Nesting depth of `html`, estimated; exact enough to tell whether it passes `limit`.

    A page with no more than `limit` tags cannot nest deeper than `limit`: it is answered from
    one byte count, so ordinary pages cost almost nothing."""
    tags = html.count(b"<")
    if tags <= limit:
        return tags
    marked = _OPEN.sub(b"\x01", _CLOSE.sub(b"\x02", html.translate(None, b"\x01\x02")))
    codes = np.frombuffer(marked, dtype=np.uint8)
    steps = (codes == 1).astype(np.int32)
    steps -= codes == 2
    return int(np.cumsum(steps).max(initial=0))


def too_deep(html: bytes, limit: int) -> bool:
    return depth_estimate(html, limit) > limit
