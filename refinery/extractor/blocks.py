"""HTML -> text blocks with the features the main-content classifier reads.

One pass over a lexbor DOM (selectolax): it was the fastest structured walk measured here (WCXB
pages, one core: selectolax ~600 pages/s, lxml ~350, resiliparse's Python node API ~8).  A block
is the text between two block-level tag boundaries, so paragraphs, headings, list items, table
rows and code blocks each become one line of output; `<br>` becomes a newline inside its block.

Class/id tokens are hashed once per block-level element ("frame") and shared by every block
under it, so the classifier's sparse part costs one dot product per frame, not per block.
"""

from __future__ import annotations

import re
import zlib
from dataclasses import dataclass
from functools import lru_cache

from selectolax.lexbor import LexborHTMLParser

HASH_BITS = 13
HASH_SIZE = 1 << HASH_BITS

# Never text of the page.  (`head` holds the title only as metadata; the visible h1 is in the body.)
SKIP_TAGS = frozenset(
    "script style noscript template svg iframe object embed canvas select textarea button head math video audio map".split()
)
BLOCK_TAGS = frozenset(
    "p div section article main header footer nav aside ul ol dl dt dd li h1 h2 h3 h4 h5 h6 table thead tbody tfoot "
    "tr caption pre blockquote form fieldset figure figcaption address details summary hr center body html "
    "dialog menu legend noframes option label".split()
)
STRIP_TAGS = sorted(SKIP_TAGS - {"head"})
HEADINGS = {"h1": 1, "h2": 2, "h3": 2, "h4": 3, "h5": 3, "h6": 3}
LANDMARKS = ("nav", "header", "footer", "aside", "form", "article", "main", "li", "table", "blockquote", "pre", "a")
_LANDMARK_BIT = {t: 1 << i for i, t in enumerate(LANDMARKS)}
_PRE_BIT = _LANDMARK_BIT["pre"]
_TOKEN_SPLIT = re.compile(r"[^a-z]+")
_WS = re.compile(r"[ \t\r\f\v\u00a0\u200b]+")
_NL = re.compile(r" *\n[ \n]*")
SENT_END = ('.', '!', '?', '"', '”', '。', '！', '？', ')', ':')
ATTRS = ("class", "id", "role", "itemprop")


@lru_cache(maxsize=1 << 16)
def bucket(feature: str) -> int:
    return zlib.crc32(feature.encode()) & (HASH_SIZE - 1)


class Frame:
    """A block-level element: its tag, attributes and the frame above it.

    Hashed features are computed lazily (only frames that hold text, and their ancestors, pay) and
    memoised per distinct (tag, attributes) string, which repeat a lot within a page.
    """

    __slots__ = ("tag", "depth", "parent", "node", "_attrs", "landmarks", "index", "chars", "link_chars", "blocks",
                 "_near", "_anc", "score", "anc_score", "sums")

    def __init__(self, tag: str, node, parent: "Frame | None", index: int) -> None:
        self.tag = tag
        self.node = node  # the DOM node, read only when the features are needed
        self._attrs: str | None = None
        self.parent = parent
        self.index = index
        self.depth = parent.depth + 1 if parent is not None else 0
        self.landmarks = (parent.landmarks if parent is not None else 0) | _LANDMARK_BIT.get(tag, 0)
        self.chars = self.link_chars = self.blocks = 0
        self._near: tuple[int, ...] | None = None
        self._anc: tuple[int, ...] | None = None
        self.score: float | None = None  # the model's sparse score, memoised per frame
        self.anc_score: float | None = None  # the model's score of `anc`, memoised per frame
        self.sums: tuple[float, float, float] | None = None  # the model's weight sums of this element's features

    @property
    def attrs(self) -> str:
        if self._attrs is None:
            self._attrs = _attr_string(self.node.attributes) if self.node is not None else ""
            self.node = None
        return self._attrs

    @property
    def near(self) -> tuple[int, ...]:
        """This element's tag and tokens, its parent's (marked as the parent's), and the tag pair."""
        if self._near is None:
            own = own_features(self.tag, self.attrs)[0]
            if self.parent is None:
                self._near = own + (bucket("pt:root>" + self.tag),)
            else:
                self._near = own + own_features(self.parent.tag, self.parent.attrs)[1] + (
                    bucket(f"pt:{self.parent.tag}>{self.tag}"),)
        return self._near

    @property
    def anc(self) -> tuple[int, ...]:
        """Every ancestor's tokens and tags, unprefixed by level and counted (a multiset: the model's
        score of it is the parent's plus this element's, no set to build per frame)."""
        chain, f = [], self
        while f is not None and f._anc is None:
            chain.append(f)
            f = f.parent
        acc = f._anc if f is not None else ()
        for g in reversed(chain):
            acc = acc + own_features(g.tag, g.attrs)[2]
            g._anc = acc
        return acc


@lru_cache(maxsize=1 << 16)
def own_features(tag: str, attrs: str) -> tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]:
    toks = [t for t in _TOKEN_SPLIT.split(attrs.lower()) if 2 <= len(t) <= 24] if attrs else []
    own = (bucket("t:" + tag),) + tuple(bucket("c:" + t) for t in toks)
    as_parent = (bucket("pt:" + tag),) + tuple(bucket("pc:" + t) for t in toks)
    anc = tuple(dict.fromkeys([bucket("a:" + t) for t in toks] + [bucket("al:" + tag)]))
    return own, as_parent, anc


def _attr_string(attrs: dict) -> str:
    return " ".join(v for v in (attrs.get(k) for k in ATTRS) if v)


@dataclass
class Block:
    text: str
    frame: Frame
    chars: int
    link_chars: int
    heading: int  # 0, or 1 (h1), 2 (h2-h3), 3 (h4-h6)
    landmarks: int
    inline_tags: int = 0  # bit set: 1 link text, 2 inline code in the block


class TooComplex(Exception):
    """The DOM has more elements than the stage allows."""


def _clean(parts: list[str], pre: bool) -> str:
    text = "".join(parts)
    if pre:
        return text.strip("\n").rstrip()
    text = _WS.sub(" ", text)
    text = _NL.sub("\n", text)
    return text.strip()


@dataclass
class Segmented:
    """A page as the classifier sees it: its text blocks in document order and its `<title>` text."""

    blocks: list[Block]
    title: str


def segment(html: str, max_elements: int | None = None) -> Segmented:
    """Segment `html` into text blocks and read its title.  Raises TooComplex over `max_elements`.

    One flat pre-order traversal (lexbor's own iterator, no Python recursion, so no depth limit
    either): each node's context (its block frame, inside a link or code) is looked up by its
    parent's node id.  A block ends where a block-level element starts or the text moves to
    another frame.
    """
    tree = LexborHTMLParser(html)
    title_node = tree.css_first("title")
    title = title_node.text(deep=True, strip=True) if title_node is not None else ""
    tree.strip_tags(STRIP_TAGS)  # in C, before the Python walk
    root = tree.body or tree.root
    if root is None:
        return Segmented([], title)
    blocks: list[Block] = []
    top = Frame(root.tag or "body", root, None, 0)
    frames: list[Frame] = [top]
    ctx: dict[int, tuple[Frame, int]] = {root.mem_id: (top, 0)}  # node id -> (frame, inline bits: 1 link, 2 code)
    buf: list[str] = []
    cur = top
    has_text = False
    link_chars = inline = 0
    elements = 0
    limit = max_elements or 1 << 62

    def flush() -> None:
        text = _clean(buf, bool(cur.landmarks & _PRE_BIT))
        if not text:
            return
        heading = 0
        f: Frame | None = cur
        while f is not None and f.depth >= cur.depth - 2:
            if f.tag in HEADINGS:
                heading = HEADINGS[f.tag]
                break
            f = f.parent
        blocks.append(Block(text, cur, len(text), min(link_chars, len(text)), heading, cur.landmarks, inline))

    it = root.traverse(include_text=True)
    next(it)  # the root itself
    for node in it:
        tag = node.tag
        c = ctx.get(node.parent.mem_id)
        if c is None:  # under a comment or an element we do not read
            continue
        frame, bits = c
        if tag == "-text":
            text = node.text_content
            if not text:
                continue
            if frame is not cur:
                if has_text:
                    flush()
                buf.clear()
                cur, has_text, link_chars, inline = frame, False, 0, 0
            stripped = text.strip()
            if stripped:
                buf.append(text)
                has_text = True
                inline |= bits
                if bits & 1:
                    link_chars += len(stripped)
            elif buf:
                buf.append(text)
            continue
        if not tag or tag[0] in "-_!":  # comments, doctype; a processing instruction (<?php ...?>) has no tag
            continue
        elements += 1
        if elements > limit:
            raise TooComplex(f"over {limit} elements")
        if tag in BLOCK_TAGS:
            if has_text:
                flush()
            buf.clear()
            sub = Frame(tag, node, frame, len(frames))
            frames.append(sub)
            ctx[node.mem_id] = (sub, 0)
            cur, has_text, link_chars, inline = sub, False, 0, 0
        elif tag == "br":
            if frame is cur:
                buf.append("\n")
        elif tag in ("td", "th"):
            if frame is cur and has_text and not buf[-1].endswith(("\n", " | ")):
                buf.append(" | ")
            ctx[node.mem_id] = c
        elif tag == "a":
            ctx[node.mem_id] = (frame, bits | 1)
        elif tag in ("code", "kbd", "samp"):
            ctx[node.mem_id] = (frame, bits | 2)
        elif tag != "img":
            ctx[node.mem_id] = c
    if has_text:
        flush()
    # Text and link characters under every frame: the size and link density of each container.
    for b in blocks:
        f = b.frame
        f.chars += b.chars
        f.link_chars += b.link_chars
        f.blocks += 1
    for f in reversed(frames):  # children come after their parents
        p = f.parent
        if p is not None:
            p.chars += f.chars
            p.link_chars += f.link_chars
            p.blocks += f.blocks
    return Segmented(blocks, title)
