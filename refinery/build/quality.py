"""`refinery models build-quality`: train, evaluate and calibrate a quality classifier
(models/quality.py scores with it).

Trains `__label__hq` (reference prose: Wikipedia, books) against `__label__lq` (what Refinery's
own extract stage produces from real crawl pages), quantises the model, optionally fits a second
stage over its score and the document's structure (`--stack`, models/quality_stack.py), then
reports on held-out rows and calibrates on real pages (see models/quality.py).
"""

from __future__ import annotations

import hashlib
import json
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from refinery.build.quality_data import EXTRACT_SETTINGS, FORMATS, PAGE_FORMATS, Doc, boilerplate, is_heldout, parse_spec, read_docs, read_page
from refinery.errors import InputError
from refinery.models import file_sha256, load_fasttext, package_version
from refinery.models.metrics import classification_report, roc_auc
from refinery.models.quality import HQ, LQ, calibration_digest, p_hq, percentiles, preprocess, score_texts, threshold_for_fraction
from refinery.models.quality_stack import Stacker, fit_stacker, stack_row
from refinery.models.registry import data_provenance, write_manifest


@dataclass
class QualityBuildOptions:
    lang: str
    positive: list[str]
    negative: list[str]
    out: Path
    calibration: list[str] | None = None
    eval: list[str] | None = None  # wcxb:FILE: held-out-domain pages scored main content vs boilerplate
    heldout_percent: int = 10  # rows without a domain: sha1(text) % 100 below this are held out
    heldout_domains_percent: int = 50  # web rows: sha1(domain) % 100 below this are held out
    max_docs_per_input: int = 6000  # larger inputs contribute their first N rows by hash order
    epoch: int = 5
    lr: float = 0.1
    word_ngrams: int = 2
    dim: int = 32
    min_count: int = 3
    bucket: int = 500_000
    quantize: bool = True
    cutoff: int = 100_000
    keep_top_fraction: list[float] = field(default_factory=lambda: [0.1, 0.3, 0.5, 0.7, 0.9])
    stack: bool = False  # second stage: logistic regression over the fastText score and structure features
    stack_l2: float = 0.3  # chosen on validation domains (docs/models.md)
    command: str = ""


def _cap(docs: list[Doc], n: int) -> list[Doc]:
    """A deterministic sample: the n rows with the smallest text hash, in input order."""
    if n <= 0 or len(docs) <= n:
        return docs
    keyed = sorted(range(len(docs)), key=lambda i: hashlib.sha1(docs[i].text.encode("utf-8")).digest())
    keep = set(keyed[:n])
    return [d for i, d in enumerate(docs) if i in keep]


def _class_side(domain: str) -> int:
    """For a domain that gives rows to both classes: the one class it keeps (1 = positive)."""
    return hashlib.sha1(f"side:{domain}".encode("utf-8")).digest()[0] % 2


def load_classes(opts: QualityBuildOptions, log=print) -> tuple[dict, list[dict]]:
    """{(label, part): [Doc]} for label in (1, 0), part in (train, heldout), and the sources' provenance."""
    parts: dict[tuple[int, str], list[Doc]] = {(y, p): [] for y in (1, 0) for p in ("train", "heldout")}
    sources = []
    for label, specs, option in ((1, opts.positive, "--positive"), (0, opts.negative, "--negative")):
        class_rows = 0
        for spec in specs:
            fmt, path = parse_spec(spec, option)
            docs = read_docs(fmt, path, opts.lang)
            if not docs:
                raise InputError(f"{option} {spec}: no {opts.lang} rows read from {path} as {fmt}")
            if label == 0 and fmt == "wcxb":
                raise InputError(f"{option} {spec}: wcxb rows are gold main content, a positive; use wcxb-pages for the extracted pages")
            train = [d for d in docs if not is_heldout(d, opts.heldout_percent, opts.heldout_domains_percent)]
            held = [d for d in docs if is_heldout(d, opts.heldout_percent, opts.heldout_domains_percent)]
            n_train = len(train)
            train = _cap(train, opts.max_docs_per_input)
            parts[(label, "train")].extend(train)
            parts[(label, "heldout")].extend(held)
            class_rows += len(docs)
            prov = data_provenance(path if path.is_file() else next(p for p in sorted(path.rglob("*")) if p.is_file()))
            if path.is_dir():
                prov |= {"path": str(path), "sha256": _dir_digest(path)}
            sources.append(prov | {
                "class": "positive" if label else "negative", "format": fmt, "rows": len(docs),
                "train_rows": len(train), "train_rows_before_cap": n_train, "heldout_rows": len(held),
                **({"extract": EXTRACT_SETTINGS[fmt], "langid": opts.lang} if fmt in PAGE_FORMATS else {}),
            })  # fmt: skip
            log(f"build-quality {opts.lang}: {option} {fmt}:{path.name}: {len(docs)} rows ({len(train)} trained on, {len(held)} held out)")
        if not class_rows:
            raise InputError(f"{option}: no rows")
    # A domain never gives training rows to both classes (one page's gold text a positive while a
    # sibling page's extraction is a negative would teach the site, not the quality).
    pos_domains = {d.domain for d in parts[(1, "train")] if d.domain}
    neg_domains = {d.domain for d in parts[(0, "train")] if d.domain}
    both = pos_domains & neg_domains
    for y in (1, 0):
        parts[(y, "train")] = [d for d in parts[(y, "train")] if d.domain not in both or _class_side(d.domain) == y]
    for y in (1, 0):
        if not parts[(y, "train")]:
            raise InputError(f"{'--positive' if y else '--negative'}: no training rows left after the held-out split")
    return parts, sources


def _dir_digest(path: Path) -> str:
    h = hashlib.sha256()
    for f in sorted(p for p in path.rglob("*") if p.is_file()):
        h.update(file_sha256.__wrapped__(str(f)).encode())
    return h.hexdigest()


def main_vs_boilerplate(score, docs: list[Doc]) -> dict[str, Any]:
    """ROC-AUC of each held-out page's gold main content over the same page's boilerplate."""
    pairs = [(d, boilerplate(read_page(d.page), d.text)) for d in docs if d.page is not None]
    pairs = [(d, b) for d, b in pairs if len(b) >= 20]
    if not pairs:
        return {}
    main_s = score([d.text for d, _ in pairs])
    boil_s = score([b for _, b in pairs])
    types = sorted({d.page_type or "unknown" for d, _ in pairs})
    per_type = {}
    for t in types:
        idx = [i for i, (d, _) in enumerate(pairs) if (d.page_type or "unknown") == t]
        if len(idx) >= 5:
            per_type[t] = {"pages": len(idx), "roc_auc": round(roc_auc([1] * len(idx) + [0] * len(idx), [main_s[i] for i in idx] + [boil_s[i] for i in idx]), 4)}
    n = len(pairs)
    return {
        "pages": n,
        "roc_auc": round(roc_auc([1] * n + [0] * n, main_s + boil_s), 4),
        "by_page_type": per_type,
        "boilerplate": "full-page text (resiliparse, main_content=False) minus every line found in the gold main content",
    }


def _train_in_fresh_process(train_file: Path, params: dict, cutoff: int | None, model_path: Path) -> None:
    """Train (and quantise) in a fresh child process, so the build is the same wherever it is
    called from: in a process that has run much else first (extraction, a test session),
    fastText can diverge (`Encountered NaN`) on rows that train cleanly in a fresh one, with the
    same seed and one thread (docs/models.md)."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn")) as pool:
        pool.submit(_train, str(train_file), params, cutoff, str(model_path)).result()


def _train(train_file: str, params: dict, cutoff: int | None, model_path: str) -> None:
    import fasttext

    fasttext.FastText.eprint = lambda *a, **k: None
    model = fasttext.train_supervised(input=train_file, **params)
    if cutoff is not None:
        model.quantize(input=train_file, qnorm=True, retrain=True, cutoff=cutoff, thread=1, verbose=0)
    model.save_model(model_path)


def build_quality(opts: QualityBuildOptions, log=print) -> dict[str, Any]:
    import fasttext

    if not hasattr(fasttext, "train_supervised"):
        raise InputError("the installed 'fasttext' module cannot train; run deploy/setup.sh (fasttext-numpy2)")
    parts, sources = load_classes(opts, log)
    train = [(d, 1) for d in parts[(1, "train")]] + [(d, 0) for d in parts[(0, "train")]]
    # interleave deterministically so SGD never sees one class in a long run
    train.sort(key=lambda r: hashlib.sha1(r[0].text.encode("utf-8")).digest())
    log(f"build-quality {opts.lang}: {len(parts[(1, 'train')])} positive and {len(parts[(0, 'train')])} negative training rows")

    out = opts.out
    out.mkdir(parents=True, exist_ok=True)
    model_path = out / f"{opts.lang}.ftz"
    fasttext.FastText.eprint = lambda *a, **k: None
    params = dict(epoch=opts.epoch, lr=opts.lr, wordNgrams=opts.word_ngrams, dim=opts.dim, minCount=opts.min_count,
                  bucket=opts.bucket, minn=0, maxn=0, loss="softmax", thread=1, seed=0, verbose=0)  # fmt: skip
    cutoff = opts.cutoff if opts.quantize else None
    with tempfile.TemporaryDirectory(prefix="refinery-quality-") as tmp:
        _fit_fasttext(train, opts, params, cutoff, Path(tmp) / "train.txt", model_path)
        stacker = None
        stack_path = out / f"{opts.lang}.stack.json"
        stack_path.unlink(missing_ok=True)  # a previous stacked build's file is not this model's
        if opts.stack:
            stack_path.write_text(_fit_stack(train, opts, params, cutoff, Path(tmp), log).to_json(), encoding="utf-8")
            stacker = Stacker.load(stack_path)  # the rounded weights, as every later load sees them
    shipped = load_fasttext(model_path)

    def score(texts: list[str]) -> list[float]:
        return score_texts(shipped, stacker, texts, opts.lang)

    held_pos, held_neg = parts[(1, "heldout")], parts[(0, "heldout")]
    metrics: dict[str, Any] = {}
    if held_pos and held_neg:
        metrics["heldout"] = classification_report([1] * len(held_pos) + [0] * len(held_neg), score([d.text for d in held_pos]) + score([d.text for d in held_neg]), 0.5)
    eval_pages = [d for d in held_pos if d.page is not None]
    eval_sources = []
    for spec in opts.eval or []:
        fmt, path = parse_spec(spec, "--eval")
        if fmt != "wcxb":
            raise InputError(f"--eval {spec}: expected wcxb:GROUND_TRUTH (pages with gold main content)")
        rows = [d for d in read_docs(fmt, path, opts.lang) if is_heldout(d, opts.heldout_percent, opts.heldout_domains_percent)]
        eval_pages.extend(rows)
        eval_sources.append(data_provenance(path) | {"format": fmt, "heldout_pages": len(rows), "use": "evaluation only (held-out domains)"})
    mvb = main_vs_boilerplate(score, eval_pages)
    if mvb:
        metrics["heldout_main_vs_boilerplate"] = mvb

    if opts.calibration:
        cal_docs, cal_sources = read_calibration(opts.calibration, opts.lang, opts.heldout_percent, opts.heldout_domains_percent)
        cal_kind = "calibration pages (extract + langid)"
    else:
        cal_docs, cal_sources = held_neg + held_pos, []
        cal_kind = "held-out training-source rows (no --calibration given)"
    if len(cal_docs) < 20:
        raise InputError(f"calibration sample too small: {len(cal_docs)} {opts.lang} documents (need 20)")
    pcts = percentiles(score([d.text for d in cal_docs]))
    files = {"fasttext": _file_entry(model_path)}
    if stacker:
        files["stack"] = _file_entry(out / f"{opts.lang}.stack.json")
    digests = "".join(f["sha256"] for f in files.values())
    version = hashlib.sha256((digests + calibration_digest(pcts)).encode()).hexdigest()[:12]
    manifest = {
        "name": f"quality-{opts.lang}",
        "kind": "quality",
        "language": opts.lang,
        "version": version,
        "command": opts.command,
        "model": "fastText supervised, word bigrams (DCLM recipe)" + (f", quantised (qnorm, cutoff {opts.cutoff})" if opts.quantize else "")
                 + (", then logistic regression over its logit and document-structure features (out-of-fold)" if stacker else ""),
        "labels": {"positive": HQ, "negative": LQ},
        "score": "P(__label__hq) on the document's first 20,000 characters (lower-cased, digits -> 0, line breaks as _nl_)",
        "params": {k: v for k, v in params.items() if k != "verbose"} | ({"stack_l2": opts.stack_l2} if stacker else {}),
        "files": files,
        "training_data": sources,
        "eval_data": eval_sources,
        "split": {
            "rule": "web rows (with a domain): sha1(domain) % 100 < heldout_domains_percent are held out, whole sites; "
                    "other rows: sha1(lower-cased text) % 100 < heldout_percent; a domain with training rows in both "
                    "classes keeps only one class (sha1('side:'+domain)); inputs above max_docs_per_input rows keep "
                    "the rows with the smallest sha1(text)",
            "heldout_percent": opts.heldout_percent,
            "heldout_domains_percent": opts.heldout_domains_percent,
            "max_docs_per_input": opts.max_docs_per_input,
            "train_positive": len(parts[(1, "train")]), "train_negative": len(parts[(0, "train")]),
            "heldout_positive": len(held_pos), "heldout_negative": len(held_neg),
        },  # fmt: skip
        "calibration": {
            "sample": cal_kind,
            "documents": len(cal_docs),
            "sources": cal_sources,
            "percentiles": pcts,
            "bucket_edges": pcts[5:100:5],
            "keep_top_fraction_thresholds": {str(f): round(threshold_for_fraction(f, pcts), 6) for f in opts.keep_top_fraction},
        },
        "metrics": metrics,
        "built_with": {"fasttext": package_version("fasttext-numpy2")},
    }
    write_manifest(out, manifest)
    log(f"build-quality {opts.lang}: metrics {json.dumps(metrics)}; {model_path.stat().st_size} bytes")
    return manifest


def _file_entry(path: Path) -> dict[str, Any]:
    return {"path": path.name, "sha256": file_sha256.__wrapped__(str(path)), "bytes": path.stat().st_size}


def _write_train_file(rows: list[tuple[Doc, int]], path: Path, lang: str) -> None:
    with open(path, "w", encoding="utf-8") as f:
        for d, y in rows:
            f.write(f"{HQ if y else LQ} {preprocess(d.text, lang)}\n")


def _fit_fasttext(rows: list[tuple[Doc, int]], opts: QualityBuildOptions, params: dict, cutoff: int | None, train_file: Path, model_path: Path) -> None:
    _write_train_file(rows, train_file, opts.lang)
    try:
        _train_in_fresh_process(train_file, params, cutoff, model_path)
    except RuntimeError as err:  # fastText's "Encountered NaN": the learning rate diverged
        raise InputError(f"fastText training failed ({err}) at --lr {opts.lr}; retry with a lower --lr") from None


def _fold(doc: Doc) -> int:
    """0 or 1: web rows by domain (a fold model never saw the site it scores), others by text."""
    key = doc.domain or " ".join(doc.text.lower().split())
    return hashlib.sha1(f"fold:{key}".encode("utf-8")).digest()[0] % 2


def _fit_stack(rows: list[tuple[Doc, int]], opts: QualityBuildOptions, params: dict, cutoff: int | None, tmp: Path, log) -> Stacker:
    """The second stage, on fastText scores of each training row from a model trained on the other fold."""
    p_oof: list[float] = [0.0] * len(rows)
    for k in (0, 1):
        inside = [i for i, (d, _) in enumerate(rows) if _fold(d) == k]
        others = [r for r in rows if _fold(r[0]) != k]
        if not inside or {y for _, y in others} != {0, 1}:
            raise InputError("--stack: too few training rows to split into two folds with both classes")
        _fit_fasttext(others, opts, params, cutoff, tmp / f"fold{k}.txt", tmp / f"fold{k}.ftz")
        model = load_fasttext(tmp / f"fold{k}.ftz")
        for i, p in zip(inside, p_hq(model, [preprocess(rows[i][0].text, opts.lang) for i in inside])):
            p_oof[i] = p
    matrix = [stack_row(p, d.text, opts.lang) for p, (d, _) in zip(p_oof, rows)]
    stacker = fit_stacker(matrix, [y for _, y in rows], opts.stack_l2)
    log(f"build-quality {opts.lang}: stack weights {dict(zip(('bias', *stacker.names), (round(float(w), 3) for w in stacker.weights)))}")
    return stacker


def read_calibration(specs: list[str], lang: str, heldout_percent: int = 10, heldout_domains_percent: int = 50) -> tuple[list[Doc], list[dict]]:
    """Calibration documents: pages (HTML/WARC) through extract + langid, or FORMAT:FILE rows.
    WCXB pages (`wcxb-pages:FILE`) of held-out domains are left out: they are where `--eval` and
    bench/quality_bench.py measure, and their buckets must not be fitted to them."""
    docs: list[Doc] = []
    sources = []
    for spec in specs:
        fmt, _, rest = spec.partition(":")
        fmt, path = parse_spec(spec, "--calibration") if fmt in FORMATS else parse_spec(f"pages:{spec}", "--calibration")
        part = read_docs(fmt, path, lang)
        dropped = 0
        if fmt.startswith("wcxb"):
            kept = [d for d in part if not is_heldout(d, heldout_percent, heldout_domains_percent)]
            part, dropped = kept, len(part) - len(kept)
        docs.extend(part)
        first = path if path.is_file() else next(p for p in sorted(path.rglob("*")) if p.is_file())
        prov = data_provenance(first)
        if path.is_dir():
            prov |= {"path": str(path), "sha256": _dir_digest(path)}
        sources.append(prov | {"format": fmt, "documents": len(part)} | ({"heldout_dropped": dropped} if fmt.startswith("wcxb") else {}))
    return docs, sources
