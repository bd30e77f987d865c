"""Perplexity models as cc_net builds them: SentencePiece pieces scored by a KenLM n-gram model.

Building is `refinery models build-lm` (refinery/build/lm.py, with KenLM's `lmplz` and
`build_binary`); scoring needs only the `kenlm` and `sentencepiece` Python modules.  A
document's perplexity is cc_net's: every non-empty line is normalised, cut into pieces and
scored with sentence boundaries; the log10 probabilities and token counts (pieces + one
end-of-sentence per line) are summed over the document, and perplexity =
10 ** (-sum_logprob / tokens).

Buckets follow cc_net: perplexity at or below the calibrated 30th percentile is
`head`, at or below the 60th `middle`, above it `tail`.  The percentiles are
computed on a calibration sample at build time and stored in the manifest.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import random
import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

from refinery.errors import InputError
from refinery.files import parse_format_spec
from refinery.models.metrics import percentiles as interpolated_percentiles
from refinery.models.registry import read_manifest
from refinery.models.textnorm import detokenize_wikitext, normalize, paragraphs

BUCKETS = ("head", "middle", "tail")
CORPUS_FORMATS = ("lines", "wikitext", "udhr", "jsonl", "gutenberg")
# Languages written without spaces: "shuffled" controls shuffle characters, not words.
CHAR_LANGS = {"zh", "ja", "th", "ko", "my", "km", "lo"}
MAX_DOC_CHARS = 200_000  # longer documents are scored on their first 200k characters


# ---------------------------------------------------------------- reading corpora


def parse_corpus_spec(spec: str) -> tuple[str, Path]:
    """`FILE` (one paragraph per line), `wikitext:FILE` (WikiText tokenised text),
    `jsonl:FILE` (one article per line, `text` with one paragraph per line, e.g. the enwiki sample),
    `gutenberg:FILE` (book records with `language` and hard-wrapped `text`: English books only,
    paragraphs rebuilt from blank-line blocks) or `udhr:NAME:FILE` (the paragraphs of the declaration called NAME, e.g. `French`, in the
    udhr_paragraphs.tsv table: one language of a parallel table, selected by its exact name
    because several declarations share a language code, e.g. French and French (Welche))."""
    fmt, rest = parse_format_spec(spec, CORPUS_FORMATS, "corpus", default="lines")
    if fmt == "udhr":
        name, sep, rest = rest.partition(":")
        if not (name and sep and rest):
            raise InputError(f"corpus {spec!r}: expected udhr:NAME:FILE, e.g. udhr:French:udhr_paragraphs.tsv")
        fmt = f"udhr:{name}"
    path = Path(rest)
    if not path.is_file():
        raise InputError(f"corpus file {path} not found")
    return fmt, path


def read_corpus(fmt: str, path: Path) -> list[str]:
    """Paragraphs (raw text, not normalised) of one corpus file."""
    if fmt.startswith("udhr:"):
        return read_udhr(path, fmt.removeprefix("udhr:"))
    if fmt in ("jsonl", "gutenberg"):
        return read_jsonl_corpus(fmt, path)
    opener = gzip.open if path.suffix == ".gz" else open
    out = []
    with opener(path, "rt", encoding="utf-8", errors="replace") as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            if fmt == "wikitext":
                if line.startswith("=") and line.endswith("="):
                    continue  # " = Heading = "
                line = detokenize_wikitext(line)
                if len(line.split()) < 5:
                    continue
            out.append(line)
    return out


MIN_PARAGRAPH_WORDS = 5  # shorter lines are headings ("Etymology and terminology.") or list debris


def read_jsonl_corpus(fmt: str, path: Path) -> list[str]:
    """Paragraphs of a JSONL corpus: `jsonl` keeps each record's lines of `text`; `gutenberg` keeps
    English books only and joins each blank-line block of their ~70-column wrapped lines."""
    opener = gzip.open if path.suffix == ".gz" else open
    out: list[str] = []
    with opener(path, "rt", encoding="utf-8", errors="replace") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
                text = rec["text"]
            except (json.JSONDecodeError, KeyError, TypeError):
                raise InputError(f"{path}: line {n} is not a JSON object with a 'text' field (corpus format {fmt})") from None
            if fmt == "gutenberg":
                if rec.get("language") != "English":
                    continue
                blocks = (" ".join(b.split()) for b in str(text).replace("\r", "").split("\n\n"))
            else:
                blocks = (" ".join(b.split()) for b in str(text).split("\n"))
            out.extend(b for b in blocks if len(b.split()) >= MIN_PARAGRAPH_WORDS)
    if not out:
        raise InputError(f"{path}: no paragraphs read as {fmt}")
    return out


def read_udhr(path: Path, name: str) -> list[str]:
    """Paragraphs of one declaration in the UDHR table (columns iso6393, bcp47, name, ..., text)."""
    import csv

    with open(path, encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE))
    if rows and not {"name", "text"} <= set(rows[0]):
        raise InputError(f"{path}: not a UDHR paragraph table (needs 'name' and 'text' columns)")
    out = [r["text"].strip() for r in rows if r["name"] == name and (r["text"] or "").strip()]
    if not out:
        raise InputError(f"{path}: no declaration named {name!r}")
    return out


def is_heldout(paragraph: str, percent: int) -> bool:
    """Deterministic split on the normalised text: a duplicate paragraph never straddles the split."""
    digest = hashlib.sha1(normalize(paragraph).encode("utf-8")).digest()
    return int.from_bytes(digest[:4], "big") % 100 < percent


def split_corpus(paragraphs_: Iterable[str], heldout_percent: int) -> tuple[list[str], list[str]]:
    train, heldout = [], []
    for p in paragraphs_:
        (heldout if is_heldout(p, heldout_percent) else train).append(p)
    return train, heldout


def shuffled(text: str, lang: str, seed: int = 0) -> str:
    """The same paragraph with its words (or, for CJK/Thai, characters) in random order."""
    rng = random.Random(seed)
    if lang in CHAR_LANGS:
        chars = list(text.replace(" ", ""))
        rng.shuffle(chars)
        return "".join(chars)
    words = text.split()
    rng.shuffle(words)
    return " ".join(words)


# ---------------------------------------------------------------- scoring


@dataclass(frozen=True)
class Cutoffs:
    head: float  # perplexity at the head percentile
    tail: float  # perplexity at the tail percentile

    def bucket(self, ppl: float) -> str:
        if ppl <= self.head:
            return "head"
        if ppl <= self.tail:
            return "middle"
        return "tail"


class LanguageModel:
    """A loaded perplexity model: SentencePiece + KenLM + calibrated cutoffs."""

    def __init__(self, directory: Path, lang: str) -> None:
        import kenlm
        import sentencepiece as spm

        self.directory = directory
        self.manifest = read_manifest(directory, "lm", lang)
        files = self.manifest["files"]
        self.sp = spm.SentencePieceProcessor(model_file=str(directory / files["sentencepiece"]["path"]))
        self.lm = kenlm.Model(str(directory / files["kenlm"]["path"]))
        cal = self.manifest.get("calibration")
        self.cutoffs = Cutoffs(cal["head_cutoff"], cal["tail_cutoff"]) if cal else None

    @property
    def info(self) -> dict[str, Any]:
        m = self.manifest
        return {
            "name": m["name"],
            "version": m["version"],
            "sha256": {k: v["sha256"] for k, v in m["files"].items()},
            "cutoffs": [self.cutoffs.head, self.cutoffs.tail] if self.cutoffs else None,
        }

    def pieces(self, line: str) -> list[str]:
        return self.sp.encode(normalize(line), out_type=str)

    def score_lines(self, lines: Iterable[str]) -> tuple[float, int]:
        """(sum of log10 probabilities, number of tokens) over the lines."""
        logprob, tokens = 0.0, 0
        for line in lines:
            pieces = self.pieces(line)
            if not pieces:
                continue
            logprob += self.lm.score(" ".join(pieces), bos=True, eos=True)
            tokens += len(pieces) + 1
        return logprob, tokens

    def perplexity(self, text: str | None) -> float | None:
        """Document perplexity (cc_net: rounded to 0.1), None for a text with nothing to score."""
        if not text:
            return None
        logprob, tokens = self.score_lines(paragraphs(text[:MAX_DOC_CHARS]))
        if tokens == 0:
            return None
        return round(10.0 ** (-logprob / tokens), 1)

    def bucket(self, ppl: float | None) -> str | None:
        if ppl is None or self.cutoffs is None:
            return None
        return self.cutoffs.bucket(ppl)


def median_perplexity(model: LanguageModel, texts: Iterable[str]) -> float:
    values = [p for p in (model.perplexity(t) for t in texts) if p is not None]
    if not values:
        raise ValueError("no scorable text")
    return statistics.median(values)


def percentiles(values: list[float]) -> list[float]:
    """Percentiles 0..100, rounded to 1 digit(s)."""
    return interpolated_percentiles(values, 1)
