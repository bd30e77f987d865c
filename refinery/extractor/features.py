"""Block features for the main-content classifier: a dense part per block, a hashed sparse part per frame.

Two passes, as in stacking: pass 1 scores each block from its own features (text and link density,
position, heading, landmark ancestors, class/id tokens); pass 2 adds what pass 1 thinks of the
neighbours and of the containers the block sits in, because main content comes in runs and in one
container (a lone good-looking line in a footer is still footer).
"""

from __future__ import annotations

import math
import re
from collections import Counter
from functools import lru_cache

import numpy as np

from refinery.extractor.blocks import SENT_END, LANDMARKS, Block, bucket

SHORT_WORDS = 8
SHORT_CHARS = 80  # blocks up to this long are looked up whole (they repeat across pages: menus, buttons)
_WORD = re.compile(r"\w+")

_DIGIT = re.compile("[0-9]")  # one scan per block (findall beats ten str.count calls)
_PUNCT = re.compile("[.,;:!?。，、！？]")
_CAP_WORD = re.compile(r"(?:^|\s)[A-ZÀ-ÖØ-ÞА-ЯΑ-Ω]")
DENSE_NAMES = (
    ["bias", "log_chars", "log_words", "link_density", "punct_per_word", "sentence_end", "digit_ratio",
     "titlecase_ratio", "position", "char_position", "depth", "h1", "h2_3", "h4_6"]
    + [f"in_{t}" for t in LANDMARKS]
    + ["inline_link", "inline_code", "frame_share", "frame_link_density", "parent_share", "parent_link_density",
       "grandparent_share", "grandparent_link_density", "frame_blocks", "page_log_chars", "page_link_density",
       "prev_log_chars", "prev_link_density", "next_log_chars", "next_link_density", "newlines", "share_of_frame",
       "repeats"]
)
N_DENSE = len(DENSE_NAMES)
STACK_NAMES = ["p_logit", "p_prev", "p_next", "p_window", "p_frame", "p_parent", "p_grandparent", "p_page",
               "p_frame_max", "p_run"]
N_STACK = len(STACK_NAMES)
CONTEXT_NAMES = ["title_overlap", "frame_repeats", "parent_repeats", "grandparent_repeats", "has_title"]
N_CONTEXT = len(CONTEXT_NAMES)


def dense_features(blocks: list[Block]) -> np.ndarray:
    """(n, N_DENSE) features; per-block counts in Python (str.count, one regex), transforms in numpy."""
    n = len(blocks)
    X = np.zeros((n, N_DENSE), dtype=np.float64)
    if n == 0:
        return X
    raw = np.empty((n, 19), dtype=np.float64)
    count = str.count
    digits, punct = _DIGIT.findall, _PUNCT.findall
    for i, b in enumerate(blocks):
        text = b.text
        f = b.frame
        p = f.parent or f
        g = p.parent or p
        raw[i] = (
            b.chars, count(text, " ") + count(text, "\n") + 1, b.link_chars,
            len(punct(text)), text.endswith(SENT_END), len(digits(text)),
            len(_CAP_WORD.findall(text)), f.depth, b.heading, b.landmarks, b.inline_tags,
            f.chars, f.link_chars, p.chars, p.link_chars, g.chars, g.link_chars, f.blocks, count(text, "\n"),
        )
    chars, words = raw[:, 0], raw[:, 1]
    total = max(chars.sum(), 1.0)
    X[:, 0] = 1.0
    X[:, 1] = np.log1p(chars) / 8
    X[:, 2] = np.log1p(words) / 6
    X[:, 3] = raw[:, 2] / chars
    X[:, 4] = raw[:, 3] / words
    X[:, 5] = raw[:, 4]
    X[:, 6] = raw[:, 5] / chars
    X[:, 7] = raw[:, 6] / words
    X[:, 8] = np.arange(n) / n
    X[:, 9] = (np.cumsum(chars) - chars) / total
    X[:, 10] = np.minimum(raw[:, 7], 40) / 20
    for k in (1, 2, 3):
        X[:, 10 + k] = raw[:, 8] == k
    lm = raw[:, 9].astype(np.int64)
    col = 14
    for k in range(len(LANDMARKS)):
        X[:, col + k] = (lm >> k) & 1
    col += len(LANDMARKS)
    inl = raw[:, 10].astype(np.int64)
    X[:, col] = inl & 1
    X[:, col + 1] = (inl >> 1) & 1
    X[:, col + 2] = raw[:, 11] / total
    X[:, col + 3] = raw[:, 12] / np.maximum(raw[:, 11], 1)
    X[:, col + 4] = raw[:, 13] / total
    X[:, col + 5] = raw[:, 14] / np.maximum(raw[:, 13], 1)
    X[:, col + 6] = raw[:, 15] / total
    X[:, col + 7] = raw[:, 16] / np.maximum(raw[:, 15], 1)
    X[:, col + 8] = np.log1p(raw[:, 17]) / 5
    X[:, col + 9] = math.log1p(total) / 10
    X[:, col + 10] = raw[:, 2].sum() / total
    base = col + 11
    lc, ld = X[:, 1], X[:, 3]
    X[1:, base] = lc[:-1]
    X[1:, base + 1] = ld[:-1]
    X[:-1, base + 2] = lc[1:]
    X[:-1, base + 3] = ld[1:]
    X[:, base + 4] = np.minimum(raw[:, 18], 20) / 5
    X[:, base + 5] = chars / np.maximum(raw[:, 11], 1)
    seen = Counter(b.text for b in blocks)  # the same text twice on a page: menus, "Share", "Reply"
    X[:, base + 6] = [math.log1p(seen[b.text] - 1) for b in blocks]
    return X


def lexical_ids(block: Block) -> tuple[int, ...]:
    """Hashed words of short blocks ("Share", "Sign up", "Related posts"): boilerplate has a vocabulary.
    Long blocks get their first word only."""
    if block.chars <= SHORT_CHARS:
        return short_ids(block.text)
    m = _WORD.search(block.text)
    return (bucket("fw:" + m.group().lower()),) if m else ()


@lru_cache(maxsize=1 << 16)
def short_ids(text: str) -> tuple[int, ...]:
    words = _WORD.findall(text.lower())
    if not words:
        return ()
    if len(words) > SHORT_WORDS:
        return (bucket("fw:" + words[0]),)
    return tuple(bucket("w:" + w) for w in words) + (bucket("fw:" + words[0]), bucket("line:" + " ".join(words)))


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


def context_features(blocks: list[Block], title: str, ids: np.ndarray) -> np.ndarray:
    """(n, N_CONTEXT): how much of the block the page title shares (headings and lead paragraphs echo it),
    and how many elements of the page look like the block's frame, parent and grandparent (same tag and
    class/id), log-scaled: posts, comments and listing items come as repeated containers, and whether
    such a run is content or a menu is for the trees to learn from it together with the link density.
    `ids` is `frame_ids(blocks)`."""
    n = len(blocks)
    out = np.zeros((n, N_CONTEXT))
    if n == 0:
        return out
    title_words = set(_WORD.findall(title.lower()))
    if title_words:
        findall = _WORD.findall
        for j, b in enumerate(blocks):
            words = findall(b.text[:300].lower())
            if words:
                out[j, 0] = sum(w in title_words for w in words) / len(words)
        out[:, 4] = 1.0
    frames: dict[int, object] = {}
    for b in blocks:
        f = b.frame
        for _ in range(3):
            frames[f.index] = f
            f = f.parent or f
    look_of: dict[tuple[str, str], int] = {}
    look = np.zeros(max(frames) + 1, dtype=np.int64)
    for index, f in frames.items():
        look[index] = look_of.setdefault((f.tag, f.attrs), len(look_of))
    for level in range(3):
        distinct = np.unique(ids[:, level])  # the distinct elements at this level above the page's blocks
        per_look = np.bincount(look[distinct], minlength=len(look_of))
        out[:, 1 + level] = np.log(per_look[look[ids[:, level]]])
    return out
