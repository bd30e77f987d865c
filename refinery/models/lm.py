"""Perplexity models as cc_net builds them: SentencePiece pieces scored by a KenLM n-gram model.

Building (`refinery models build-lm`) needs KenLM's `lmplz` and `build_binary`
(deploy/build-kenlm.sh); scoring needs only the `kenlm` and `sentencepiece`
Python modules.  A document's perplexity is cc_net's: every non-empty line is
normalised, cut into pieces and scored with sentence boundaries; the log10
probabilities and token counts (pieces + one end-of-sentence per line) are
summed over the document, and perplexity = 10 ** (-sum_logprob / tokens).

Buckets follow cc_net: perplexity at or below the calibrated 30th percentile is
`head`, at or below the 60th `middle`, above it `tail`.  The percentiles are
computed on a calibration sample at build time and stored in the manifest.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import random
import statistics
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

from refinery.errors import InputError, ModelError
from refinery.models.metrics import percentiles as interpolated_percentiles
from refinery.models import file_sha256, package_version
from refinery.models.registry import data_provenance, kenlm_tool, read_manifest, write_manifest
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
    fmt, sep, rest = spec.partition(":")
    if sep and fmt == "udhr":
        name, sep, rest = rest.partition(":")
        if not (name and sep and rest):
            raise InputError(f"corpus {spec!r}: expected udhr:NAME:FILE, e.g. udhr:French:udhr_paragraphs.tsv")
        fmt, path = f"udhr:{name}", Path(rest)
    elif sep and fmt in CORPUS_FORMATS:
        path = Path(rest)
    else:
        fmt, path = "lines", Path(spec)
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


# ---------------------------------------------------------------- calibration samples


def read_calibration(specs: list[str], lang: str, lines_per_doc: int, min_lang_score: float = 0.65) -> tuple[list[str], list[dict]]:
    """Documents of `lang` for calibrating the bucket cutoffs.

    `.html`/`.html.gz` pages go through Refinery's own extract and langid stages
    (pipeline defaults) and are kept when identified as `lang`; `.txt` files are
    taken as text in `lang`, `lines_per_doc` consecutive lines to a document;
    `.jsonl` files give one document per line from the `text` field.
    """
    docs: list[str] = []
    html_pages: list[tuple[str, bytes]] = []
    sources: list[dict] = []
    for spec in specs:
        path = Path(spec)
        files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
        if not files or not all(f.is_file() for f in files):
            raise InputError(f"calibration input {spec} not found")
        digest = hashlib.sha256()
        for f in files:
            name = f.name.lower()
            data = f.read_bytes()
            digest.update(hashlib.sha256(data).digest())
            if name.endswith(".gz"):
                data = gzip.decompress(data)
                name = name[:-3]
            if name.endswith((".html", ".htm")):
                html_pages.append((str(f), data))
            elif name.endswith(".txt"):
                lines = [ln.strip() for ln in data.decode("utf-8", "replace").splitlines() if ln.strip()]
                for i in range(0, len(lines), lines_per_doc):
                    docs.append("\n".join(lines[i : i + lines_per_doc]))
            elif name.endswith(".jsonl"):
                for ln in data.decode("utf-8", "replace").splitlines():
                    if ln.strip():
                        text = json.loads(ln).get("text")
                        if text:
                            docs.append(text)
            else:
                raise InputError(f"calibration file {f}: expected .html(.gz), .txt or .jsonl")
        info = data_provenance(files[0]) if len(files) == 1 else data_provenance(files[0]) | {"path": spec, "files": len(files)}
        info["sha256"] = file_sha256(str(files[0])) if len(files) == 1 else digest.hexdigest()
        sources.append(info)
    if html_pages:
        docs.extend(_extract_pages(html_pages, lang, min_lang_score))
    return docs, sources


def _extract_pages(pages: list[tuple[str, bytes]], lang: str, min_score: float) -> list[str]:
    import pyarrow as pa

    from refinery.schema import INPUT_SCHEMA
    from refinery.stages.extract import ExtractOptions, ExtractStage
    from refinery.stages.langid import LangIdOptions, LangIdStage

    n = len(pages)
    batch = pa.RecordBatch.from_pydict(
        {
            "doc_id": [str(i) for i in range(n)],
            "url": [None] * n,
            "source_uri": [p for p, _ in pages],
            "record_id": [str(i) for i in range(n)],
            "fetch_time": [None] * n,
            "html": [h for _, h in pages],
            "http_charset": [None] * n,
            "text": [None] * n,
            "read_error": [None] * n,
        },
        schema=INPUT_SCHEMA,
    )
    extract = ExtractStage(ExtractOptions())
    extract.setup()
    result = extract.process(batch)
    langid = LangIdStage(LangIdOptions(languages=[lang], min_score=min_score))
    langid.setup()
    out = langid.process(result.batch)
    texts = out.batch.column("text").to_pylist()
    return [t for t, r1, r2 in zip(texts, result.reasons, out.reasons) if r1 is None and r2 is None and t]


# ---------------------------------------------------------------- building


@dataclass
class LmBuildOptions:
    lang: str
    corpus: list[str]
    out: Path
    order: int = 5
    prune: str = "0 0 1"
    vocab_size: int = 8000
    heldout_percent: int = 10
    calibration: list[str] | None = None
    calibration_lines_per_doc: int = 1
    eval_docs: list[str] | None = None  # documents never trained/calibrated on: metrics.unseen
    head_percentile: int = 30
    tail_percentile: int = 60
    quantize_bits: int = 8
    command: str = ""


def _run(cmd: list[str], stdin=None, stdout=None) -> None:
    proc = subprocess.run(cmd, stdin=stdin, stdout=stdout, stderr=subprocess.PIPE, text=False)
    if proc.returncode != 0:
        tail = proc.stderr.decode("utf-8", "replace")[-2000:]
        raise ModelError(f"{Path(cmd[0]).name} failed (exit {proc.returncode}):\n{tail}")


def build_lm(opts: LmBuildOptions, log=print) -> dict[str, Any]:
    """Train SentencePiece + KenLM on the corpus, calibrate buckets, write the model and manifest."""
    import kenlm  # noqa: F401  (fail before the long work if scoring cannot work)
    import sentencepiece as spm

    if not 0 < opts.head_percentile < opts.tail_percentile < 100:
        raise InputError("need 0 < --head-percentile < --tail-percentile < 100")
    lmplz, build_binary = kenlm_tool("lmplz"), kenlm_tool("build_binary")
    start = time.time()
    if opts.eval_docs:  # read (and so checked) before the long work
        from refinery.models.lm_eval import read_eval_docs

        docs, eval_sources = read_eval_docs(opts.eval_docs, opts.lang)
    data_sources, all_paras = [], []
    for spec in opts.corpus:
        fmt, path = parse_corpus_spec(spec)
        paras = read_corpus(fmt, path)
        all_paras.extend(paras)
        data_sources.append(data_provenance(path) | {"format": fmt, "paragraphs": len(paras)})
    train, heldout = split_corpus(all_paras, opts.heldout_percent)
    if len(train) < 50 or len(heldout) < 5:
        raise InputError(f"corpus too small: {len(train)} training / {len(heldout)} held-out paragraphs")
    log(f"build-lm {opts.lang}: {len(train)} training and {len(heldout)} held-out paragraphs")

    out = opts.out
    out.mkdir(parents=True, exist_ok=True)
    sp_prefix = out / f"{opts.lang}.sp"
    klm_path = out / f"{opts.lang}.klm"
    with tempfile.TemporaryDirectory(prefix="refinery-lm-") as tmp:
        norm_path = Path(tmp) / "train.norm.txt"
        norm_path.write_text("\n".join(n for n in (normalize(p) for p in train) if n) + "\n", encoding="utf-8")
        sp_bytes = io.BytesIO()
        spm.SentencePieceTrainer.train(
            # an iterator, not a file: the model then records no (temporary) input path,
            # so rebuilding from the same data gives byte-identical files
            sentence_iterator=iter(norm_path.read_text(encoding="utf-8").splitlines()),
            model_writer=sp_bytes,
            vocab_size=opts.vocab_size,
            hard_vocab_limit=False,  # small corpora: fewer pieces rather than an error
            model_type="unigram",
            character_coverage=0.9995 if opts.lang in CHAR_LANGS else 1.0,
            max_sentence_length=1 << 17,
            num_threads=1,  # deterministic
            shuffle_input_sentence=False,
            minloglevel=2,
        )
        Path(str(sp_prefix) + ".model").write_bytes(sp_bytes.getvalue())
        sp = spm.SentencePieceProcessor(model_file=str(sp_prefix) + ".model")
        pieces_path = Path(tmp) / "train.pieces.txt"
        n_tokens = 0
        with open(norm_path, encoding="utf-8") as src, open(pieces_path, "w", encoding="utf-8") as dst:
            for line in src:
                pieces = sp.encode(line.strip(), out_type=str)
                n_tokens += len(pieces)
                dst.write(" ".join(pieces) + "\n")
        arpa = Path(tmp) / "model.arpa"
        prune = opts.prune.split()
        with open(pieces_path, "rb") as src, open(arpa, "wb") as dst:
            _run([lmplz, "-o", str(opts.order), "-S", "20%", "-T", tmp, "--discount_fallback", "--prune", *prune], src, dst)
        _run([build_binary, "-q", str(opts.quantize_bits), "-b", str(opts.quantize_bits), "-a", "22", "trie", str(arpa), str(klm_path)])
    log(f"build-lm {opts.lang}: {n_tokens} training tokens, kenlm binary {klm_path.stat().st_size} bytes")

    files = {
        "sentencepiece": {"path": sp_prefix.name + ".model"},
        "kenlm": {"path": klm_path.name},
    }
    for f in files.values():
        f["sha256"] = file_sha256.__wrapped__(str(out / f["path"]))
        f["bytes"] = (out / f["path"]).stat().st_size
    version = hashlib.sha256("".join(f["sha256"] for f in files.values()).encode()).hexdigest()[:12]
    manifest: dict[str, Any] = {
        "name": f"lm-{opts.lang}",
        "kind": "lm",
        "language": opts.lang,
        "version": version,
        "command": opts.command,
        "tokenizer": f"sentencepiece unigram, vocab {sp.get_piece_size()}, cc_net normalisation",
        "kenlm": {"order": opts.order, "prune": opts.prune, "quantize_bits": opts.quantize_bits, "structure": "trie"},
        "files": files,
        "training_data": data_sources,
        "split": {"heldout_percent": opts.heldout_percent, "train_paragraphs": len(train), "heldout_paragraphs": len(heldout), "rule": "sha1(normalised paragraph) % 100 < heldout_percent"},
        "built_with": {"kenlm": package_version("kenlm"), "sentencepiece": package_version("sentencepiece")},
    }
    write_manifest(out, manifest)  # provisional: LanguageModel reads it back
    model = LanguageModel(out, opts.lang)

    real = median_perplexity(model, heldout)
    shuf = median_perplexity(model, [shuffled(p, opts.lang, i) for i, p in enumerate(heldout)])
    manifest["metrics"] = {
        "heldout_paragraphs": len(heldout),
        "heldout_median_perplexity": round(real, 1),
        "heldout_shuffled_median_perplexity": round(shuf, 1),
        "shuffled_over_real": round(shuf / real, 2),
        "shuffle_unit": "characters" if opts.lang in CHAR_LANGS else "words",
    }

    if opts.calibration:
        cal_docs, cal_sources = read_calibration(opts.calibration, opts.lang, opts.calibration_lines_per_doc)
        cal_kind = "calibration files"
    else:
        cal_docs, cal_sources = heldout, []
        cal_kind = "held-out reference paragraphs (no --calibration given)"
    values = [p for p in (model.perplexity(d) for d in cal_docs) if p is not None]
    if len(values) < 30:
        raise InputError(f"calibration sample too small: {len(values)} scorable {opts.lang} documents (need 30)")
    pct = percentiles(values)
    manifest["calibration"] = {
        "sample": cal_kind,
        "documents": len(values),
        "lines_per_doc": opts.calibration_lines_per_doc if opts.calibration else None,
        "sources": cal_sources,
        "head_percentile": opts.head_percentile,
        "tail_percentile": opts.tail_percentile,
        "head_cutoff": pct[opts.head_percentile],
        "tail_cutoff": pct[opts.tail_percentile],
        "percentiles": pct,
    }
    if opts.eval_docs:
        from refinery.models.lm_eval import unseen_metrics

        model.cutoffs = Cutoffs(pct[opts.head_percentile], pct[opts.tail_percentile])
        manifest["metrics"]["unseen"] = unseen_metrics(model, docs, opts.lang) | {"sources": eval_sources}
        log(f"build-lm {opts.lang}: unseen documents {manifest['metrics']['unseen']}")
    write_manifest(out, manifest)
    log(
        f"build-lm {opts.lang}: done in {time.time() - start:.0f}s; "
        f"build-lm {opts.lang}: held-out median ppl {real:.1f}, shuffled {shuf:.1f} (x{shuf / real:.1f}); "
        f"cutoffs head<={pct[opts.head_percentile]} tail>{pct[opts.tail_percentile]} from {len(values)} docs"
    )
    return manifest
