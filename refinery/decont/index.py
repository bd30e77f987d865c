"""The decontamination index: sorted 64-bit n-gram hashes -> the benchmark item they come from.

Every n-gram (n words; `char_n` characters for zh/ja) of every item is
hashed.  Items shorter than n tokens but at least `min_item_tokens` long are
indexed by their `min_item_tokens`-grams (documents are then also looked up
by grams of that length), shorter ones are skipped (a 4-word item like "not
true is false" would match ordinary pages) and counted in the manifest.  A
gram several items share keeps the first item.

Lookups first test a bitmap of 2**26 bits (8 MiB) addressed by the top bits
of each hash, which turns away ~98% of a page's grams with one memory access;
only the rest are searched for in the sorted array (a binary search costs
~0.4 us a gram, the bitmap ~15 ns).

On disk (a directory): manifest.json (parameters, sets with versions and
licences, counts, sha256 of every file, the command that built it),
grams.u64.zst (sorted hashes, delta-encoded), refs.u32.zst (item number per
gram), items.txt.zst (one `benchmark:split:id` a line).  Hashes and ids
only: the items' text cannot be recovered from it.  Files are written
byte-identically on a re-run.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import zstandard

from refinery.decont.ngrams import NORMALISATION_VERSION, char_tokens, fold, gram_hashes, word_tokens
from refinery.decont.sets import KNOWN_SETS, Item, read_items
from refinery.errors import ModelError
from refinery.scripts import script_language

FORMAT_VERSION = 2
FILES = {"grams": "grams.u64.zst", "refs": "refs.u32.zst", "items": "items.txt.zst"}
BITMAP_BITS = 26


@dataclass(frozen=True)
class IndexParams:
    n: int = 13
    char_n: int = 13
    min_item_tokens: int = 8
    char_languages: tuple[str, ...] = ("zh", "ja")

    def to_dict(self) -> dict:
        return {"n": self.n, "char_n": self.char_n, "min_item_tokens": self.min_item_tokens,
                "char_languages": list(self.char_languages), "normalisation": NORMALISATION_VERSION,
                "format": FORMAT_VERSION}  # fmt: skip


def doc_kind(folded: str, language: str | None, char_languages: Sequence[str]) -> str:
    """'char' for documents in a char language (by the `language` column, else by script), else 'word'."""
    if language is None:
        if folded[:2000].isascii():
            return "word"
        language = script_language(folded)
    return "char" if language in char_languages else "word"


def tokens_of(folded: Sequence[str], kinds: Sequence[str]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """{kind: (token hashes, document index)} for a batch."""
    out = {}
    words = [i for i, k in enumerate(kinds) if k == "word"]
    if words:
        tok, doc = word_tokens([folded[i] for i in words])
        out["word"] = (tok, np.asarray(words, np.int64)[doc])
    chars = [i for i, k in enumerate(kinds) if k == "char"]
    if chars:
        toks = [char_tokens(folded[i]) for i in chars]
        sizes = [len(t) for t in toks]
        out["char"] = (np.concatenate(toks) if toks else np.zeros(0, np.uint64),
                       np.repeat(np.asarray(chars, np.int64), sizes))  # fmt: skip
    return out


@dataclass
class DecontIndex:
    params: IndexParams
    keys: np.ndarray  # uint64 sorted unique
    refs: np.ndarray  # uint32 item number per key
    items: list[str]  # benchmark:split:id
    short_items: dict[str, int] = field(default_factory=dict)  # kind -> items indexed by min_item_tokens-grams
    manifest: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        top = (self.keys >> np.uint64(64 - BITMAP_BITS)).view(np.int64)
        self.bitmap = np.zeros(1 << (BITMAP_BITS - 3), dtype=np.uint8)
        np.bitwise_or.at(self.bitmap, top >> 3, np.left_shift(1, top & 7).astype(np.uint8))
        # n-grams each item owns in the index (the denominator of a document's coverage of it)
        self.item_grams = np.bincount(self.refs, minlength=len(self.items)).astype(np.uint32)

    @property
    def nbytes(self) -> int:
        return self.keys.nbytes + self.refs.nbytes + self.bitmap.nbytes + self.item_grams.nbytes + sum(len(s) + 50 for s in self.items)

    def lengths(self, kind: str) -> list[int]:
        full = self.params.n if kind == "word" else self.params.char_n
        return sorted({full, *([self.params.min_item_tokens] if self.short_items.get(kind) else [])})

    def lookup(self, h: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(positions in `h` that are indexed grams, their item numbers)."""
        top = (h >> np.uint64(64 - BITMAP_BITS)).view(np.int64)
        maybe = np.flatnonzero((self.bitmap[top >> 3] >> (top & 7).astype(np.uint8)) & 1)
        if not len(maybe):
            return maybe, np.zeros(0, np.uint32)
        cand = h[maybe]
        pos = np.searchsorted(self.keys, cand)
        pos[pos == len(self.keys)] = 0
        hit = self.keys[pos] == cand
        return maybe[hit], self.refs[pos[hit]]

    def query(self, folded: Sequence[str], kinds: Sequence[str]) -> list[dict[int, int]]:
        """Per document: {item number: matching grams} (empty when clean)."""
        out: list[dict[int, int]] = [{} for _ in folded]
        if not len(self.keys):
            return out
        for kind, (tok, doc) in tokens_of(folded, kinds).items():
            h, d = gram_hashes(tok, doc, self.lengths(kind))
            where, refs = self.lookup(h)
            for di, ref in zip(d[where].tolist(), refs.tolist()):
                counts = out[di]
                counts[ref] = counts.get(ref, 0) + 1
        return out


def build_index(items: Iterable[Item], params: IndexParams) -> tuple[DecontIndex, dict]:
    """Index every item; returns the index and per-benchmark counts for the manifest."""
    names: list[str] = []
    seen: set[str] = set()
    stats: dict[str, dict] = {}
    folded, kinds, nums = [], [], []
    for item in items:
        st = stats.setdefault(item.benchmark, {"items": 0, "indexed": 0, "indexed_short": 0, "skipped_short": 0, "splits": set()})
        st["items"] += 1
        st["splits"].add(item.split)
        if item.ref in seen:  # the same item twice (two copies of a set): one entry
            continue
        seen.add(item.ref)
        nums.append(len(names))
        names.append(item.ref)
        f = fold(item.text)
        folded.append(f)
        kinds.append(doc_kind(f, None, params.char_languages))
    hashes, refs = [], []
    short_items: dict[str, int] = {}
    bench_of = [n.split(":", 1)[0] for n in names]
    for kind, (tok, doc) in tokens_of(folded, kinds).items():
        full = params.n if kind == "word" else params.char_n
        count = np.bincount(doc, minlength=len(folded))
        is_short = (count < full) & (count >= params.min_item_tokens)
        for i in np.flatnonzero(count < full).tolist():
            if kinds[i] == kind:
                stats[bench_of[i]]["indexed_short" if is_short[i] else "skipped_short"] += 1
        for i in np.flatnonzero(count >= full).tolist():
            stats[bench_of[i]]["indexed"] += 1
        h, d = gram_hashes(tok, doc, [full])
        hashes.append(h)
        refs.append(np.asarray(nums, np.uint32)[d])
        keep = is_short[doc]
        if keep.any():
            short_items[kind] = int(is_short.sum())
            h, d = gram_hashes(tok[keep], doc[keep], [params.min_item_tokens])
            hashes.append(h)
            refs.append(np.asarray(nums, np.uint32)[d])
    if hashes:
        allh, allr = np.concatenate(hashes), np.concatenate(refs)
        order = np.lexsort((allr, allh))
        allh, allr = allh[order], allr[order]
        keys, first = np.unique(allh, return_index=True)
        keep_refs = allr[first]
    else:
        keys, keep_refs = np.zeros(0, np.uint64), np.zeros(0, np.uint32)
    index = DecontIndex(params, keys, keep_refs.astype(np.uint32), names, short_items)
    for st in stats.values():
        st["splits"] = sorted(st["splits"])
    return index, stats


def _zst(data: bytes) -> bytes:
    return zstandard.ZstdCompressor(level=19, write_checksum=True).compress(data)


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def save_index(index: DecontIndex, stats: dict, sources: list[dict], out: Path, command: str) -> dict:
    """Write the index directory atomically (a temporary sibling renamed into place)."""
    deltas = np.diff(index.keys, prepend=np.uint64(0)) if len(index.keys) else index.keys
    blobs = {
        "grams": _zst(deltas.astype("<u8").tobytes()),
        "refs": _zst(index.refs.astype("<u4").tobytes()),
        "items": _zst(("\n".join(index.items) + "\n").encode("utf-8")),
    }
    sets = {}
    for bench, st in sorted(stats.items()):
        known = KNOWN_SETS.get(bench, {})
        sets[bench] = {**st, "source": known.get("source", "unknown"), "version": known.get("version", "unknown"),
                       "licence": known.get("licence", "unknown (not in refinery/decont/sets.py KNOWN_SETS)")}  # fmt: skip
    manifest = {
        "name": "decont",
        "version": _sha(b"".join(blobs.values()) + json.dumps(index.params.to_dict(), sort_keys=True).encode())[:16],
        "params": index.params.to_dict(),
        "short_items": index.short_items,
        "grams": int(len(index.keys)),
        "items": len(index.items),
        "sets": sets,
        "sources": sources,
        "contains": "64-bit hashes of normalised n-grams and item ids only; never the items' text",
        "command": command,
        "files": {role: {"path": FILES[role], "bytes": len(b), "sha256": _sha(b)} for role, b in blobs.items()},
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    tmp.chmod(0o755)
    for role, b in blobs.items():
        (tmp / FILES[role]).write_bytes(b)
    (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    if out.exists():
        old = out.with_name(f".{out.name}.old.{os.getpid()}")
        out.rename(old)
        tmp.rename(out)
        for f in old.iterdir():
            f.unlink()
        old.rmdir()
    else:
        tmp.rename(out)
    return manifest


def read_manifest(directory: Path) -> dict:
    path = directory / "manifest.json"
    if not path.is_file():
        raise ModelError(f"no decontamination index in {directory} (manifest.json missing); build it with `refinery decont build`")
    try:
        m = json.loads(path.read_text(encoding="utf-8"))
        m["params"], m["files"]  # noqa: B018
    except (OSError, ValueError, KeyError) as err:
        raise ModelError(f"{path}: unreadable index manifest ({err}); rebuild with `refinery decont build`") from None
    return m


def load_index(directory: Path) -> DecontIndex:
    m = read_manifest(directory)
    raw = {}
    for role, entry in m["files"].items():
        p = directory / entry["path"]
        try:
            data = p.read_bytes()
        except OSError as err:
            raise ModelError(f"{p}: cannot read index file ({err.strerror or err}); rebuild with `refinery decont build`") from None
        if _sha(data) != entry["sha256"]:
            raise ModelError(f"{p}: sha256 differs from {directory / 'manifest.json'}; rebuild with `refinery decont build`")
        raw[role] = zstandard.ZstdDecompressor().decompress(data)
    keys = np.cumsum(np.frombuffer(raw["grams"], "<u8").astype(np.uint64), dtype=np.uint64)
    refs = np.frombuffer(raw["refs"], "<u4").astype(np.uint32)
    items = raw["items"].decode("utf-8").splitlines()
    p = m["params"]
    params = IndexParams(p["n"], p["char_n"], p["min_item_tokens"], tuple(p["char_languages"]))
    if p.get("normalisation") != NORMALISATION_VERSION or p.get("format") != FORMAT_VERSION:
        raise ModelError(f"{directory}: index built with another normalisation/format; rebuild with `refinery decont build`")
    return DecontIndex(params, keys, refs, items, m.get("short_items", {}), m)


def items_from_files(paths: Sequence[Path]) -> Iterable[Item]:
    for p in paths:
        yield from read_items(p)


def cache_root() -> Path:
    return Path(os.environ.get("REFINERY_CACHE_DIR") or Path.home() / ".cache" / "refinery") / "decont"


def cached_index(paths: Sequence[Path], digests: Sequence[str], params: IndexParams) -> DecontIndex:
    """The index of these set files, built once and cached by their content hash and the parameters."""
    key = _sha(json.dumps({"sets": sorted(digests), "params": params.to_dict()}, sort_keys=True).encode())[:24]
    out = cache_root() / key
    if not (out / "manifest.json").is_file():
        index, stats = build_index(items_from_files(paths), params)
        sources = [{"path": str(p), "sha256": d} for p, d in zip(paths, digests)]
        tmp = cache_root() / f".{key}.{os.getpid()}"
        save_index(index, stats, sources, tmp, "built at load by the decontaminate stage (sets:)")
        try:
            tmp.rename(out)  # another worker may have won the race: then use its copy
        except OSError:
            for f in tmp.iterdir():
                f.unlink()
            tmp.rmdir()
    return load_index(out)
