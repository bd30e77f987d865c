"""Toxicity classifiers: fastText supervised models trained on labelled public data.

`refinery models build-toxicity` reads labelled rows (davidson, olid, cold or
jsonl formats), holds out a split (or uses `--eval` files, e.g. COLD dev),
trains a fastText classifier on the rest, quantises it and reports precision,
recall and ROC-AUC of the shipped (quantised) model on the held-out rows only.
"""

from __future__ import annotations

import csv
import hashlib
import html
import json
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

from refinery.errors import InputError
from refinery.models import file_sha256, load_fasttext, package_version
from refinery.models.metrics import classification_report
from refinery.models.registry import data_provenance, read_manifest, write_manifest

DATA_FORMATS = ("davidson", "olid", "cold", "jsonl", "clean-lines", "clean-wikitext")
# Formats whose every row is a non-toxic example (reference prose: counters the tweet-trained
# classifiers' false positives on long, formal web text).  Metrics are reported apart for them.
CLEAN_FORMATS = ("clean-lines", "clean-wikitext")
TOXIC, CLEAN = "__label__toxic", "__label__clean"
CJK_LANGS = {"zh", "ja", "ko"}
MAX_CHARS = 20_000  # a paragraph or document is classified on its first 20k characters

_URL = re.compile(r"https?://\S+|www\.\S+")
_MENTION = re.compile(r"@\w+")
_TOKEN = re.compile(r"\w+|[^\w\s]", re.UNICODE)
_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff]")


def preprocess(text: str, lang: str) -> str:
    """One line of tokens for fastText: lower case, URLs/mentions masked, punctuation split,
    CJK text cut into single characters (fastText splits on spaces only)."""
    text = html.unescape(text[:MAX_CHARS]).lower()
    text = _URL.sub(" _url_ ", text)
    text = _MENTION.sub(" _user_ ", text)
    tokens = _TOKEN.findall(text)
    if lang in CJK_LANGS:
        out: list[str] = []
        for tok in tokens:
            out.extend(list(tok) if _CJK.search(tok) else [tok])
        tokens = out
    return " ".join(tokens)


# ---------------------------------------------------------------- labelled data


def parse_data_spec(spec: str) -> tuple[str, Path]:
    fmt, sep, rest = spec.partition(":")
    if not sep or fmt not in DATA_FORMATS:
        raise InputError(f"--data/--eval {spec!r}: expected FORMAT:FILE with FORMAT one of {', '.join(DATA_FORMATS)}")
    path = Path(rest)
    if not path.is_file():
        raise InputError(f"labelled data file {path} not found")
    return fmt, path


def read_labelled(fmt: str, path: Path) -> list[tuple[str, int]]:
    """(text, 1 if toxic/offensive else 0) rows of one labelled file."""
    rows: list[tuple[str, int]] = []
    if fmt in CLEAN_FORMATS:
        from refinery.models.lm import read_corpus

        return [(p, 0) for p in read_corpus("wikitext" if fmt == "clean-wikitext" else "lines", path)]
    if fmt == "jsonl":
        with open(path, encoding="utf-8") as f:
            for line in f:
                if line.strip():
                    obj = json.loads(line)
                    rows.append((str(obj["text"]), int(bool(obj["label"]))))
        return rows
    delimiter = "\t" if fmt == "olid" else ","
    with open(path, encoding="utf-8-sig", newline="") as f:
        for rec in csv.DictReader(f, delimiter=delimiter):
            if fmt == "davidson":  # class 0 hate speech, 1 offensive, 2 neither
                rows.append((rec["tweet"], int(rec["class"] in ("0", "1"))))
            elif fmt == "olid":
                rows.append((rec["tweet"], int(rec["subtask_a"] == "OFF")))
            else:  # cold: label 1 offensive
                rows.append((rec["TEXT"], int(rec["label"] == "1")))
    if not rows:
        raise InputError(f"{path}: no rows read as {fmt}")
    return rows


def is_heldout(text: str, percent: int) -> bool:
    digest = hashlib.sha1(" ".join(text.lower().split()).encode("utf-8")).digest()
    return int.from_bytes(digest[:4], "big") % 100 < percent


def split_rows(rows: Iterable[tuple[str, int]], percent: int) -> tuple[list, list]:
    train, heldout = [], []
    for r in rows:
        (heldout if is_heldout(r[0], percent) else train).append(r)
    return train, heldout


# ---------------------------------------------------------------- scoring


class ToxicityModel:
    def __init__(self, directory: Path, lang: str) -> None:
        self.directory = directory
        self.lang = lang
        self.manifest = read_manifest(directory, "toxicity", lang)
        self.model = load_fasttext(directory / self.manifest["files"]["fasttext"]["path"])

    @property
    def info(self) -> dict[str, Any]:
        m = self.manifest
        return {"name": m["name"], "version": m["version"], "sha256": m["files"]["fasttext"]["sha256"]}

    def scores(self, texts: list[str]) -> list[float]:
        """Probability of toxic for each text (fastText: pass a list, never a single string)."""
        if not texts:
            return []
        return [min(1.0, max(0.0, p)) for p in _p_toxic(self.model, [preprocess(t, self.lang) for t in texts])]


# ---------------------------------------------------------------- building


@dataclass
class ToxBuildOptions:
    lang: str
    data: list[str]
    out: Path
    eval: list[str] | None = None
    heldout_percent: int = 10
    epoch: int = 10
    lr: float = 0.5
    word_ngrams: int = 2
    dim: int = 50
    minn: int = 0  # character n-grams (subwords) from minn to maxn; 0 = off
    maxn: int = 0
    bucket: int = 200_000  # hashed word-bigram rows (fastText's default 2M makes training slow and big)
    quantize: bool = True
    threshold: float = 0.5
    command: str = ""


def _write_fasttext_file(path: Path, rows: list[tuple[str, int]], lang: str) -> None:
    with open(path, "w", encoding="utf-8") as f:
        for text, label in rows:
            f.write(f"{TOXIC if label else CLEAN} {preprocess(text, lang)}\n")


def build_toxicity(opts: ToxBuildOptions, log=print) -> dict[str, Any]:
    import fasttext

    if not hasattr(fasttext, "train_supervised"):
        raise InputError("the installed 'fasttext' module cannot train; run deploy/setup.sh (fasttext-numpy2)")
    rows, sources = [], []
    clean_texts: set[str] = set()
    for spec in opts.data:
        fmt, path = parse_data_spec(spec)
        part = read_labelled(fmt, path)
        rows.extend(part)
        if fmt in CLEAN_FORMATS:
            clean_texts.update(t for t, _ in part)
        sources.append(data_provenance(path) | {"format": fmt, "rows": len(part), "toxic": sum(r[1] for r in part)})
    eval_sources = []
    if opts.eval:
        train = rows
        heldout = []
        for spec in opts.eval:
            fmt, path = parse_data_spec(spec)
            part = read_labelled(fmt, path)
            heldout.extend(part)
            eval_sources.append(data_provenance(path) | {"format": fmt, "rows": len(part), "toxic": sum(r[1] for r in part)})
        split = {"heldout": "--eval files (never trained on)"}
    else:
        train, heldout = split_rows(rows, opts.heldout_percent)
        split = {"heldout": f"sha1(lowercased text) % 100 < {opts.heldout_percent}", "heldout_percent": opts.heldout_percent}
    held_texts = {" ".join(t.lower().split()) for t, _ in heldout}
    before = len(train)
    train = [r for r in train if " ".join(r[0].lower().split()) not in held_texts]  # no held-out text in training
    split |= {"train_rows": len(train), "heldout_rows": len(heldout), "train_rows_dropped_as_in_heldout": before - len(train)}
    log(f"build-toxicity {opts.lang}: {len(train)} training rows, {len(heldout)} held-out rows")

    out = opts.out
    out.mkdir(parents=True, exist_ok=True)
    model_path = out / f"{opts.lang}.ftz"
    fasttext.FastText.eprint = lambda *a, **k: None
    with tempfile.TemporaryDirectory(prefix="refinery-tox-") as tmp:
        train_file = Path(tmp) / "train.txt"
        _write_fasttext_file(train_file, train, opts.lang)
        params = dict(epoch=opts.epoch, lr=opts.lr, wordNgrams=opts.word_ngrams, dim=opts.dim, minn=opts.minn, maxn=opts.maxn, bucket=opts.bucket, minCount=2, thread=1, seed=0, verbose=0)
        model = fasttext.train_supervised(input=str(train_file), **params)
        labelled = [r for r in heldout if r[0] not in clean_texts]
        clean_held = [preprocess(t, opts.lang) for t, _ in heldout if t in clean_texts]
        texts = [preprocess(t, opts.lang) for t, _ in labelled]
        labels = [y for _, y in labelled]
        full_report = classification_report(labels, _p_toxic(model, texts), opts.threshold)
        if opts.quantize:
            model.quantize(input=str(train_file), qnorm=True, retrain=True, cutoff=100_000, thread=1, verbose=0)
        model.save_model(str(model_path))
    shipped = load_fasttext(model_path)
    report = classification_report(labels, _p_toxic(shipped, texts), opts.threshold)
    if clean_held:
        fp = sum(s >= opts.threshold for s in _p_toxic(shipped, clean_held))
        report["clean_prose_rows"] = len(clean_held)
        report["clean_prose_false_positive_rate"] = round(fp / len(clean_held), 4)
    files = {"fasttext": {"path": model_path.name, "sha256": file_sha256.__wrapped__(str(model_path)), "bytes": model_path.stat().st_size}}
    manifest = {
        "name": f"toxicity-{opts.lang}",
        "kind": "toxicity",
        "language": opts.lang,
        "version": files["fasttext"]["sha256"][:12],
        "command": opts.command,
        "model": "fastText supervised" + (", quantised (qnorm, cutoff 100000)" if opts.quantize else ""),
        "labels": {"toxic": TOXIC, "clean": CLEAN},
        "params": {k: v for k, v in params.items() if k != "verbose"},
        "files": files,
        "training_data": sources,
        "eval_data": eval_sources,
        "split": split,
        # heldout: held-out rows of the labelled sources only (clean-* prose rows are easy negatives
        # and would flatter ROC-AUC); their false-positive rate is reported on its own.
        "metrics": {"heldout": report, "heldout_before_quantisation": full_report},
        "built_with": {"fasttext": package_version("fasttext-numpy2")},
    }
    write_manifest(out, manifest)
    log(f"build-toxicity {opts.lang}: held-out {report} ({model_path.stat().st_size} bytes)")
    return manifest


def _p_toxic(model, texts: list[str]) -> list[float]:
    labels, probs = model.predict(texts, k=2)
    out = []
    for lab, prob in zip(labels, probs):
        p = dict(zip(lab, (float(x) for x in prob)))
        out.append(p[TOXIC] if TOXIC in p else 1.0 - p.get(CLEAN, 0.0))
    return out
