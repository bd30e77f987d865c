"""Block features for the main-content classifier: a dense part per block, a hashed sparse part per frame.

Two passes, as in stacking: pass 1 scores each block from its own features (text and link density,
position, heading, landmark ancestors, class/id tokens); pass 2 adds what pass 1 thinks of the
neighbours and of the containers the block sits in, because main content comes in runs and in one
container (a lone good-looking line in a footer is still footer).
"""

from __future__ import annotations

import math
import re

import numpy as np

from refinery.extractor.blocks import LANDMARKS, Block, is_sentence_end, punct_count

_DIGIT = re.compile(r"\d")
DENSE_NAMES = (
    ["bias", "log_chars", "log_words", "link_density", "punct_per_word", "sentence_end", "digit_ratio",
     "titlecase_ratio", "position", "char_position", "depth", "h1", "h2_3", "h4_6"]
    + [f"in_{t}" for t in LANDMARKS]
    + ["inline_link", "inline_code", "frame_share", "frame_link_density", "parent_share", "parent_link_density",
       "grandparent_share", "grandparent_link_density", "frame_blocks", "page_log_chars", "page_link_density",
       "prev_log_chars", "prev_link_density", "next_log_chars", "next_link_density", "newlines", "share_of_frame"]
)
N_DENSE = len(DENSE_NAMES)
STACK_NAMES = ["p_logit", "p_prev", "p_next", "p_window", "p_frame", "p_parent", "p_grandparent", "p_page",
               "p_frame_max", "p_run"]
N_STACK = len(STACK_NAMES)


def dense_features(blocks: list[Block]) -> np.ndarray:
    n = len(blocks)
    X = np.zeros((n, N_DENSE), dtype=np.float64)
    if n == 0:
        return X
    total = sum(b.chars for b in blocks) or 1
    total_links = sum(b.link_chars for b in blocks)
    cum = 0
    rows = []
    for i, b in enumerate(blocks):
        text = b.text
        words = text.split()
        nw = len(words) or 1
        f = b.frame
        p = f.parent
        g = p.parent if p is not None else None
        row = [
            1.0,
            math.log1p(b.chars) / 8,
            math.log1p(len(words)) / 6,
            b.link_chars / b.chars,
            punct_count(text) / nw,
            1.0 if is_sentence_end(text) else 0.0,
            len(_DIGIT.findall(text)) / b.chars,
            sum(1 for w in words if w[:1].isupper()) / nw,
            i / n,
            cum / total,
            min(f.depth, 40) / 20,
            1.0 if b.heading == 1 else 0.0,
            1.0 if b.heading == 2 else 0.0,
            1.0 if b.heading == 3 else 0.0,
        ]
        lm = b.landmarks
        row.extend(1.0 if lm & (1 << k) else 0.0 for k in range(len(LANDMARKS)))
        row.extend([
            1.0 if b.inline_tags & 1 else 0.0,
            1.0 if b.inline_tags & 2 else 0.0,
            f.chars / total,
            f.link_chars / (f.chars or 1),
            p.chars / total if p is not None else 1.0,
            p.link_chars / (p.chars or 1) if p is not None else 0.0,
            g.chars / total if g is not None else 1.0,
            g.link_chars / (g.chars or 1) if g is not None else 0.0,
            math.log1p(f.blocks) / 5,
            math.log1p(total) / 10,
            total_links / total,
        ])
        rows.append(row)
        cum += b.chars
    X[:, : len(rows[0])] = np.asarray(rows)
    lc, ld = X[:, 1], X[:, 3]
    base = len(rows[0])
    X[1:, base] = lc[:-1]
    X[1:, base + 1] = ld[:-1]
    X[:-1, base + 2] = lc[1:]
    X[:-1, base + 3] = ld[1:]
    X[:, base + 4] = [min(b.text.count("\n"), 20) / 5 for b in blocks]
    X[:, base + 5] = [b.chars / (b.frame.chars or 1) for b in blocks]
    return X


def frame_ids(blocks: list[Block]) -> np.ndarray:
    """(n, 3): frame, parent and grandparent index of each block (the frame itself where none)."""
    out = np.empty((len(blocks), 3), dtype=np.int64)
    for i, b in enumerate(blocks):
        f = b.frame
        p = f.parent or f
        g = p.parent or p
        out[i] = (f.index, p.index, g.index)
    return out


def stack_features(p: np.ndarray, blocks: list[Block], ids: np.ndarray) -> np.ndarray:
    """Pass-2 features from pass-1 probabilities `p`: neighbours, containers, page."""
    n = len(p)
    S = np.zeros((n, N_STACK))
    if n == 0:
        return S
    w = np.array([math.log1p(b.chars) for b in blocks])
    pc = np.clip(p, 1e-6, 1 - 1e-6)
    S[:, 0] = np.log(pc / (1 - pc)) / 5
    S[1:, 1] = p[:-1]
    S[0, 1] = 0.5
    S[:-1, 2] = p[1:]
    S[-1, 2] = 0.5
    wp = w * p
    k = 3
    cw = np.concatenate([[0.0], np.cumsum(w)])
    cwp = np.concatenate([[0.0], np.cumsum(wp)])
    lo = np.clip(np.arange(n) - k, 0, n)
    hi = np.clip(np.arange(n) + k + 1, 0, n)
    S[:, 3] = (cwp[hi] - cwp[lo]) / np.maximum(cw[hi] - cw[lo], 1e-9)
    size = int(ids.max()) + 1
    for col, level in ((4, 0), (5, 1), (6, 2)):
        idx = ids[:, level]
        num = np.bincount(idx, weights=wp, minlength=size)
        den = np.bincount(idx, weights=w, minlength=size)
        S[:, col] = num[idx] / np.maximum(den[idx], 1e-9)
    S[:, 7] = wp.sum() / max(w.sum(), 1e-9)
    mx = np.zeros(size)
    np.maximum.at(mx, ids[:, 1], p)
    S[:, 8] = mx[ids[:, 1]]
    # length of the run of blocks with p >= 0.5 this block belongs to (or borders), log-scaled
    good = p >= 0.5
    run = np.zeros(n)
    i = 0
    while i < n:
        j = i
        while j < n and good[j] == good[i]:
            j += 1
        run[i:j] = math.log1p(j - i) / 4 * (1 if good[i] else -1)
        i = j
    S[:, 9] = run
    return S
