"""`refinery models build-lm`: train SentencePiece + KenLM on a reference corpus, calibrate the
perplexity buckets on real pages, write the model (models/lm.py scores with it).

Building needs KenLM's `lmplz` and `build_binary` (deploy/build-kenlm.sh).  The calibration
sample's HTML pages go through Refinery's own extract and langid stages (build/pages.py).
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from refinery.build.pages import extract_texts
from refinery.errors import InputError, ModelError
from refinery.models import file_sha256, lid_model_path, load_fasttext, package_version
from refinery.models.lm import (
    CHAR_LANGS, Cutoffs, LanguageModel, median_perplexity, parse_corpus_spec, percentiles, read_corpus, shuffled,
    split_corpus,
)  # fmt: skip
from refinery.models.lm_eval import unseen_metrics
from refinery.models.registry import data_provenance, kenlm_tool, write_manifest
from refinery.models.textnorm import normalize


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
        docs.extend(t for _, t in extract_texts([(uri, None, html) for uri, html in html_pages], lang, None, min_lang_score))
    return docs, sources


def read_eval_docs(specs: list[str], lang: str) -> tuple[list[str], list[dict]]:
    """Documents of `lang`: `.json` ground-truth files of the article-benchmark kind
    (`{key: {"articleBody": ...}}`, kept when fastText lid.176 says `lang`), else whatever
    `--calibration` accepts (HTML pages through extract + langid, .txt, .jsonl)."""
    docs: list[str] = []
    sources: list[dict] = []
    rest = []
    lid = None
    for spec in specs:
        path = Path(spec)
        if path.suffix != ".json":
            rest.append(spec)
            continue
        if not path.is_file():
            raise InputError(f"eval document file {path} not found")
        try:
            records = json.loads(path.read_text(encoding="utf-8"))
            bodies = [r["articleBody"] for _, r in sorted(records.items()) if (r.get("articleBody") or "").strip()]
        except (json.JSONDecodeError, AttributeError, KeyError, TypeError, UnicodeDecodeError):
            raise InputError(f"{path}: expected a JSON object of {{key: {{\"articleBody\": text}}}} (article benchmark ground truth)") from None
        lid = lid or load_fasttext(lid_model_path("lid.176.ftz"))
        labels = lid.predict([" ".join(b[:4000].split()) for b in bodies])[0] if bodies else []
        kept = [b for b, lab in zip(bodies, labels) if lab[0] == f"__label__{lang}"]
        docs.extend(kept)
        sources.append({"path": str(path), "sha256": file_sha256(str(path)), "documents": len(kept), "of": len(bodies)})
    if rest:
        more, more_sources = read_calibration(rest, lang, 1)
        docs.extend(more)
        sources.extend(more_sources)
    return docs, sources


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
