"""Toxicity classifiers: fastText supervised models trained on labelled public data.

`refinery models build-toxicity` reads labelled rows (davidson, olid, cold or
jsonl formats), holds out a split (or uses `--eval` files, e.g. COLD dev),
trains a fastText classifier on the rest, quantises it and reports precision,
recall and ROC-AUC of the shipped (quantised) model on the held-out rows only.
With `--ensemble alt-profanity-check` the model's score is the mean log-odds of
the fastText classifier and alt-profanity-check's linear model (shipped beside
it as arrays: `profanity_linear`), which err on different sources.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import html
import json
import math
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

from refinery.errors import InputError
from refinery.files import parse_format_spec
from refinery.models import file_sha256, load_fasttext, package_version
from refinery.models.metrics import classification_report, logit
from refinery.models.registry import data_provenance, read_manifest, write_manifest
from refinery.scripts import CJK_LANGS, split_cjk

DATA_FORMATS = ("davidson", "olid", "cold", "jsonl", "clean-lines", "clean-wikitext", "clean-jsonl")
# Formats whose every row is a non-toxic example (reference prose: counters the tweet-trained
# classifiers' false positives on long, formal web text).  Metrics are reported apart for them.
CLEAN_FORMATS = ("clean-lines", "clean-wikitext", "clean-jsonl")
TOXIC, CLEAN = "__label__toxic", "__label__clean"
MAX_CHARS = 20_000  # a paragraph or document is classified on its first 20k characters

_URL = re.compile(r"https?://\S+|www\.\S+")
_MENTION = re.compile(r"@\w+")
_TOKEN = re.compile(r"\w+|[^\w\s]", re.UNICODE)


def preprocess(text: str, lang: str) -> str:
    """One line of tokens for fastText: lower case, URLs/mentions masked, punctuation split,
    CJK text cut into single characters (fastText splits on spaces only)."""
    text = html.unescape(text[:MAX_CHARS]).lower()
    text = _URL.sub(" _url_ ", text)
    text = _MENTION.sub(" _user_ ", text)
    tokens = _TOKEN.findall(text)
    if lang in CJK_LANGS:
        tokens = split_cjk(tokens)
    return " ".join(tokens)


# ---------------------------------------------------------------- labelled data


def parse_data_spec(spec: str) -> tuple[str, Path]:
    fmt, rest = parse_format_spec(spec, DATA_FORMATS, "--data/--eval")
    path = Path(rest)
    if not path.is_file():
        raise InputError(f"labelled data file {path} not found")
    return fmt, path


# String labels of the jsonl sets (Stormfront hate/noHate, ToxiGen hate/neutral, ...), lower-cased.
# "relation" (hateful only with context) and "idk/skip" (annotator skipped) are ambiguous: dropped.
TOXIC_LABELS = {"1", "true", "toxic", "hate", "offensive", "off", "abusive", "sexist"}
CLEAN_LABELS = {"0", "false", "clean", "nohate", "neutral", "normal", "not", "none", "non-toxic"}
AMBIGUOUS_LABELS = {"relation", "idk/skip"}


def _jsonl_label(value: Any, path: Path, n: int) -> int | None:
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, (int, float)) and value in (0, 1):
        return int(value)
    key = str(value).strip().lower()
    if key in TOXIC_LABELS:
        return 1
    if key in CLEAN_LABELS:
        return 0
    if key in AMBIGUOUS_LABELS:
        return None
    raise InputError(f"{path}: line {n}: label {value!r} is neither toxic ({', '.join(sorted(TOXIC_LABELS))}) nor clean ({', '.join(sorted(CLEAN_LABELS))})")


def _read_jsonl(path: Path) -> list[tuple[str, int]]:
    rows: list[tuple[str, int]] = []
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rt", encoding="utf-8") as f:
            for n, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    obj = json.loads(line)
                    text, value = obj["text"], obj["label"]
                except (json.JSONDecodeError, KeyError, TypeError):
                    raise InputError(f"{path}: line {n} is not a JSON object with 'text' and 'label' (format jsonl)") from None
                label = _jsonl_label(value, path, n)
                if label is not None and isinstance(text, str) and text.strip():
                    rows.append((text, label))
    except (UnicodeDecodeError, OSError, EOFError) as err:
        raise InputError(f"{path}: not readable as UTF-8 JSONL (format jsonl): {err}") from None
    return rows


_CSV_COLUMNS = {"davidson": ("tweet", "class"), "olid": ("tweet", "subtask_a"), "cold": ("TEXT", "label")}


def read_labelled(fmt: str, path: Path) -> list[tuple[str, int]]:
    """(text, 1 if toxic/offensive else 0) rows of one labelled file.  A file that is not in
    its format, or (for labelled formats) lacks toxic or clean rows, is an error naming it."""
    if fmt in CLEAN_FORMATS:
        from refinery.models.lm import read_corpus

        rows = [(p, 0) for p in read_corpus(fmt.removeprefix("clean-"), path)]
        if not rows:
            raise InputError(f"{path}: no rows read as {fmt}")
        return rows
    if fmt == "jsonl":
        rows = _read_jsonl(path)
    else:
        rows = []
        delimiter = "\t" if fmt == "olid" else ","
        text_col, label_col = _CSV_COLUMNS[fmt]
        try:
            with open(path, encoding="utf-8-sig", newline="") as f:
                reader = csv.DictReader(f, delimiter=delimiter)
                if not {text_col, label_col} <= set(reader.fieldnames or ()):
                    raise InputError(f"{path}: not a {fmt} file (needs columns {text_col!r} and {label_col!r}, found {reader.fieldnames})")
                for rec in reader:
                    text, value = rec[text_col], rec[label_col]
                    if text is None or value is None:
                        continue
                    if fmt == "davidson":  # class 0 hate speech, 1 offensive, 2 neither
                        rows.append((text, int(value in ("0", "1"))))
                    elif fmt == "olid":
                        rows.append((text, int(value == "OFF")))
                    else:  # cold: label 1 offensive
                        rows.append((text, int(value == "1")))
        except (UnicodeDecodeError, csv.Error) as err:
            raise InputError(f"{path}: not readable as a {fmt} file: {err}") from None
    if not rows:
        raise InputError(f"{path}: no rows read as {fmt}")
    toxic = sum(y for _, y in rows)
    if toxic == 0 or toxic == len(rows):
        which = "toxic" if toxic == 0 else "clean"
        raise InputError(f"{path}: no {which} rows read as {fmt} ({len(rows)} rows, all one class): check the format and the labels")
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


class Scorer:
    """P(toxic) from a fastText model, with the ensemble's linear member if any: the shipped
    model (ToxicityModel) and the models the build trains score through the same code."""

    def __init__(self, model, lang: str, linear=None) -> None:
        self.model, self.lang, self.linear = model, lang, linear

    def __call__(self, texts: list[str]) -> list[float]:
        scores = self.fasttext_only(texts)
        return mean_log_odds(scores, self.linear.scores(texts)) if self.linear is not None else scores

    def fasttext_only(self, texts: list[str]) -> list[float]:
        return _p_toxic(self.model, [preprocess(t, self.lang) for t in texts])


class ToxicityModel:
    def __init__(self, directory: Path, lang: str) -> None:
        self.directory = directory
        self.lang = lang
        self.manifest = read_manifest(directory, "toxicity", lang)
        files = self.manifest["files"]
        self.model = load_fasttext(directory / files["fasttext"]["path"])
        self.linear = None
        if "profanity_linear" in files:
            from refinery.models.profanity_linear import LinearProfanityModel

            self.linear = LinearProfanityModel(directory / files["profanity_linear"]["path"])
        self.scorer = Scorer(self.model, lang, self.linear)

    @property
    def info(self) -> dict[str, Any]:
        m = self.manifest
        return {"name": m["name"], "version": m["version"], "sha256": m["files"]["fasttext"]["sha256"]}

    def scores(self, texts: list[str]) -> list[float]:
        """Probability of toxic for each text (fastText: pass a list, never a single string)."""
        if not texts:
            return []
        return [min(1.0, max(0.0, p)) for p in self.scorer(texts)]

    def fasttext_scores(self, texts: list[str]) -> list[float]:
        """The fastText member alone (the whole model when there is no ensemble)."""
        return self.scorer.fasttext_only(texts) if texts else []


def mean_log_odds(a: list[float], b: list[float]) -> list[float]:
    """The ensemble's probability: the sigmoid of the two members' mean log-odds (0.5 stays 0.5)."""
    return [1.0 / (1.0 + math.exp(-(logit(x, 1e-6) + logit(y, 1e-6)) / 2)) for x, y in zip(a, b)]


# ---------------------------------------------------------------- building


# Licence terms of the shared labelled sets (../shared/data/README.md, each SOURCE.txt), by the
# folder holding the file.  Sets whose terms forbid a shipped derivative are evaluation only:
# build-toxicity refuses them as training data unless --allow-research-data is given.
LICENCE_NOTES = {
    "civil_comments_spans_en": "CC0 1.0 (toxic_spans, Pavlopoulos et al.; Civil Comments text CC0)",
    "paradetox_en": "CC0 (ParaDetox, Logacheva et al. 2022)",
    "convabuse_en": "CC BY 4.0: attribution: ConvAbuse, Cercas Curry, Abercrombie & Rieser, EMNLP 2021",
    "gab_hate_en": "MIT (c) 2020 BrendanKennedy (Gab Hate Corpus, Kennedy et al. 2020): keep the notice",
    "davidson_en": "MIT (c) 2017 Tom Davidson: keep the notice",
    "swsr_zh": "MIT (c) 2022 Aiqi Jiang (SWSR, Jiang et al. 2022): keep the notice",
    "stormfront_en": "CC BY-SA 3.0 ES: attribution: de Gibert et al. 2018, Hate Speech Dataset from a White Supremacy Forum; "
    "SHARE-ALIKE: a model trained on it is distributed under CC BY-SA 3.0 terms",
    "cold_zh": "Apache-2.0 (COLD, Deng et al. EMNLP 2022)",
    "olid_en": "none stated by the re-upload (OLID, Zampieri et al. 2019): used as research data, as before",
}
EVALUATION_ONLY = {
    "tweeteval_hate_en": "research use only",
    "toxigen_seeds_en": "research use only",
    "ethos_en": "GPL-3.0 on data (unclear terms)",
    "jigsaw_detox_en": "no licence in the repository",
}


def source_name(path: Path) -> str:
    """The data set a file belongs to: the nearest folder above it with a SOURCE.txt (else its stem)."""
    for parent in list(path.resolve().parents)[:4]:
        if (parent / "SOURCE.txt").is_file():
            return parent.name
    return path.name.split(".")[0]


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
    quantize_cutoff: int = 100_000  # rows (words + n-gram buckets) kept when quantising; 0 = all
    threshold: float = 0.5
    balance_rows: int = 0  # rows per class per labelled source: larger ones sampled down, ones under a quarter repeated up to it; 0 = off
    ensemble: str | None = None  # "alt-profanity-check": score = mean log-odds with its linear model
    leave_one_source_out: bool = False
    allow_research_data: bool = False
    command: str = ""


@dataclass
class Source:
    spec: str
    fmt: str
    path: Path
    name: str
    rows: list[tuple[str, int]]

    @property
    def clean_only(self) -> bool:
        return self.fmt in CLEAN_FORMATS


def _norm(text: str) -> str:
    return " ".join(text.lower().split())


def read_sources(specs: list[str]) -> list[Source]:
    out = []
    for spec in specs:
        fmt, path = parse_data_spec(spec)
        out.append(Source(spec, fmt, path, source_name(path), read_labelled(fmt, path)))
    return out


def _row_key(text: str, label: int, copy: int = 0) -> bytes:
    return hashlib.sha1(f"{copy}\x00{label}\x00{text}".encode("utf-8")).digest()


def balance(parts: list[tuple[str, list[tuple[str, int]]]], cap: int) -> list[tuple[str, int]]:
    """Rows with every source weighing alike: per source and class, the `cap` rows with the
    smallest hash when there are more, every row repeated up to `cap // 4` when there are fewer.
    Without it the largest sets decide what "toxic" means (Davidson: 25k offensive tweets), and
    the model learns profanity rather than the hate, abuse and insults of the smaller sets."""
    out: list[tuple[str, int]] = []
    floor = cap // 4
    for _, rows in parts:
        for label in (0, 1):
            cls = sorted((r for r in rows if r[1] == label), key=lambda r: _row_key(*r))
            if not cls:
                continue
            if len(cls) > cap:
                cls = cls[:cap]
            elif len(cls) < floor:
                cls = [cls[i % len(cls)] for i in range(floor)]
            out.extend(cls)
    return out


def _write_fasttext_file(path: Path, rows: list[tuple[str, int]], lang: str) -> None:
    """Rows in a hash order: fastText reads its file in order with a decaying learning rate, so
    rows left in source order would let the last sources weigh most (repeats get their own keys)."""
    seen: dict[tuple[str, int], int] = {}
    keyed = []
    for text, label in rows:
        copy = seen.get((text, label), 0)
        seen[(text, label)] = copy + 1
        keyed.append((_row_key(text, label, copy), text, label))
    keyed.sort()
    with open(path, "w", encoding="utf-8") as f:
        for _, text, label in keyed:
            f.write(f"{TOXIC if label else CLEAN} {preprocess(text, lang)}\n")


def fasttext_params(opts: ToxBuildOptions) -> dict[str, Any]:
    return dict(epoch=opts.epoch, lr=opts.lr, wordNgrams=opts.word_ngrams, dim=opts.dim, minn=opts.minn, maxn=opts.maxn,
                bucket=opts.bucket, minCount=2, thread=1, seed=0, verbose=0)  # fmt: skip


def train_fasttext(rows: list[tuple[str, int]], lang: str, params: dict[str, Any], quantize: bool = False, before_quantize=None,
                   cutoff: int = 100_000):  # fmt: skip
    """A fastText classifier trained on `rows` (single thread, fixed seed: reproducible);
    `before_quantize(model)` sees it before quantisation."""
    import fasttext

    if not hasattr(fasttext, "train_supervised"):
        raise InputError("the installed 'fasttext' module cannot train; run deploy/setup.sh (fasttext-numpy2)")
    fasttext.FastText.eprint = lambda *a, **k: None
    with tempfile.TemporaryDirectory(prefix="refinery-tox-") as tmp:
        train_file = Path(tmp) / "train.txt"
        _write_fasttext_file(train_file, rows, lang)
        model = fasttext.train_supervised(input=str(train_file), **params)
        if before_quantize is not None:
            before_quantize(model)
        if quantize:
            # cutoff 0 keeps every row (product quantisation only); a cutoff prunes rows and retrains
            model.quantize(input=str(train_file), qnorm=True, retrain=cutoff > 0, cutoff=cutoff, thread=1, verbose=0)
    return model


def training_rows(parts: list[tuple[str, list[tuple[str, int]]]], balance_rows: int) -> list[tuple[str, int]]:
    """The rows a model is trained on: every source's rows, or a balanced sample of them."""
    return balance(parts, balance_rows) if balance_rows else [r for _, rows in parts for r in rows]


def leave_one_source_out(sources: list[Source], exclude_texts: set[str], lang: str, params: dict[str, Any],
                         threshold: float, balance_rows: int = 0, linear=None, log=print) -> dict[str, Any]:  # fmt: skip
    """For every labelled source: a model trained on all the other sources (never on a row whose
    text appears in the left-out source, nor on `exclude_texts`) scores every row of it.  This is
    what predicts a new source; a random split of the training sources overstates it."""
    out: dict[str, Any] = {}
    alone: dict[str, float] = {}
    if sum(not s.clean_only for s in sources) < 2:
        return out  # one labelled source: nothing to train on without it (use --eval for a new source)
    for left in sources:
        if left.clean_only:
            continue
        left_texts = {_norm(t) for t, _ in left.rows}
        parts = [(s.name, [r for r in s.rows if _norm(r[0]) not in left_texts and _norm(r[0]) not in exclude_texts]) for s in sources if s is not left]
        train = training_rows(parts, balance_rows)
        scorer = Scorer(train_fasttext(train, lang, params), lang, linear)
        texts, labels = [t for t, _ in left.rows], [y for _, y in left.rows]
        out[left.name] = classification_report(labels, scorer(texts), threshold) | {"train_rows": len(train)}
        if linear is not None:
            alone[left.name] = classification_report(labels, scorer.fasttext_only(texts), threshold)["roc_auc"]
        log(f"build-toxicity {lang}: left out {left.name}: ROC-AUC {out[left.name]['roc_auc']}")
    if out:
        out["mean_roc_auc"] = round(sum(r["roc_auc"] for r in out.values()) / len(out), 4)
    if alone:  # what the ensemble's fastText member scores by itself
        out["fasttext_member_roc_auc"] = alone | {"mean_roc_auc": round(sum(alone.values()) / len(alone), 4)}
    return out


def _split_parts(sources: list[Source], evals: list[Source], percent: int) -> tuple[list, list, dict]:
    """(training rows per source, held-out rows, split description): the --eval files when given,
    else a hash split of every source; no held-out text is ever trained on."""
    if evals:
        heldout = [r for s in evals for r in s.rows]
        parts = [(s.name, list(s.rows)) for s in sources]
        split: dict[str, Any] = {"heldout": "--eval files (never trained on)"}
    else:
        heldout, parts = [], []
        for s in sources:
            train, held = split_rows(s.rows, percent)
            parts.append((s.name, train))
            heldout.extend(held)
        split = {"heldout": f"sha1(lowercased text) % 100 < {percent}", "heldout_percent": percent}
    held_texts = {_norm(t) for t, _ in heldout}
    dropped = 0
    for i, (name, rows) in enumerate(parts):
        kept = [r for r in rows if _norm(r[0]) not in held_texts]
        dropped += len(rows) - len(kept)
        parts[i] = (name, kept)
    split |= {"heldout_rows": len(heldout), "train_rows_dropped_as_in_heldout": dropped}
    return parts, heldout, split


def build_toxicity(opts: ToxBuildOptions, log=print) -> dict[str, Any]:
    sources = read_sources(opts.data)
    research = [f"{s.path} ({s.name}: {EVALUATION_ONLY[s.name]})" for s in sources if s.name in EVALUATION_ONLY]
    if research and not opts.allow_research_data:
        raise InputError("evaluation-only data may not be trained on (a shipped model must not contain it): "
                         + "; ".join(research) + ". Pass it with --eval, or --allow-research-data for a model that is never shipped")  # fmt: skip
    if opts.ensemble not in (None, "alt-profanity-check"):
        raise InputError(f"--ensemble {opts.ensemble!r}: the only ensemble member is alt-profanity-check")
    if opts.ensemble and opts.lang != "en":
        raise InputError(f"--ensemble alt-profanity-check is an English model; not for --lang {opts.lang}")
    clean_texts = {t for s in sources if s.clean_only for t, _ in s.rows}
    provenance = lambda s: data_provenance(s.path) | {"format": s.fmt, "set": s.name, "rows": len(s.rows), "toxic": sum(r[1] for r in s.rows),
                                                       "licence_note": LICENCE_NOTES.get(s.name, EVALUATION_ONLY.get(s.name, "see source"))}  # fmt: skip
    evals = read_sources(opts.eval) if opts.eval else []
    eval_sources = [provenance(s) for s in evals]
    parts, heldout, split = _split_parts(sources, evals, opts.heldout_percent)
    held_texts = {_norm(t) for t, _ in heldout}
    train = training_rows(parts, opts.balance_rows)
    split["train_rows"] = len(train)
    if opts.balance_rows:
        split["balance"] = (f"per labelled source and class: the {opts.balance_rows} rows with the smallest sha1 when more, "
                            f"every row repeated up to {opts.balance_rows // 4} when fewer")  # fmt: skip
    log(f"build-toxicity {opts.lang}: {len(train)} training rows, {len(heldout)} held-out rows")

    out = opts.out
    out.mkdir(parents=True, exist_ok=True)
    model_path = out / f"{opts.lang}.ftz"
    files: dict[str, Any] = {}
    linear, ensemble = None, None
    if opts.ensemble:
        from refinery.models.profanity_linear import LICENCE_NOTE, LinearProfanityModel, export

        linear_path = out / "profanity_linear.npz"
        ensemble = export(linear_path) | {"licence_note": LICENCE_NOTE, "combination": "sigmoid of the mean log-odds of the two members"}
        linear = LinearProfanityModel(linear_path)
    params = fasttext_params(opts)
    labelled = [r for r in heldout if r[0] not in clean_texts]
    clean_held = [t for t, _ in heldout if t in clean_texts]
    texts = [t for t, _ in labelled]
    labels = [y for _, y in labelled]
    full: dict[str, Any] = {}
    model = train_fasttext(train, opts.lang, params, opts.quantize,
                           lambda m: full.update(classification_report(labels, Scorer(m, opts.lang, linear)(texts), opts.threshold)), opts.quantize_cutoff)  # fmt: skip
    full_report = full
    model.save_model(str(model_path))
    shipped = Scorer(load_fasttext(model_path), opts.lang, linear)
    report = classification_report(labels, shipped(texts), opts.threshold)
    if clean_held:
        fp = sum(s >= opts.threshold for s in shipped(clean_held))
        report["clean_prose_rows"] = len(clean_held)
        report["clean_prose_false_positive_rate"] = round(fp / len(clean_held), 4)
    metrics: dict[str, Any] = {"heldout": report, "heldout_before_quantisation": full_report}
    if len(evals) > 1:  # per --eval file: each is a source the model never saw
        metrics["heldout_by_source"] = {
            s.name: classification_report([y for _, y in s.rows], shipped([t for t, _ in s.rows]), opts.threshold)
            for s in evals if not s.clean_only
        }  # fmt: skip
    if opts.leave_one_source_out:
        what = "same params, unquantised, trained without the source (and without any --eval text)"
        if linear is not None:
            what += ("; scored as the shipped ensemble (with the same alt-profanity-check member, which its authors trained "
                     "on Davidson et al.: its davidson_en figure is not a left-out one)")  # fmt: skip
        metrics["leave_one_source_out"] = {"model": what} | leave_one_source_out(
            sources, held_texts, opts.lang, params, opts.threshold, opts.balance_rows, linear, log)  # fmt: skip
    files["fasttext"] = {"path": model_path.name, "sha256": file_sha256.__wrapped__(str(model_path)), "bytes": model_path.stat().st_size}
    if opts.ensemble:
        files["profanity_linear"] = {"path": linear_path.name, "sha256": file_sha256.__wrapped__(str(linear_path)), "bytes": linear_path.stat().st_size}
    model_desc = "fastText supervised" + (f", quantised (qnorm, cutoff {opts.quantize_cutoff or 'none'})" if opts.quantize else "")
    if ensemble:
        model_desc += " + alt-profanity-check's linear model (mean log-odds)"
    manifest = {
        "name": f"toxicity-{opts.lang}",
        "kind": "toxicity",
        "language": opts.lang,
        "version": hashlib.sha256("".join(f["sha256"] for f in files.values()).encode()).hexdigest()[:12] if ensemble else files["fasttext"]["sha256"][:12],
        "command": opts.command,
        "model": model_desc,
        "labels": {"toxic": TOXIC, "clean": CLEAN},
        "params": {k: v for k, v in params.items() if k != "verbose"} | ({"balance_rows": opts.balance_rows} if opts.balance_rows else {}),
        "files": files,
        "training_data": [provenance(s) for s in sources],
        "eval_data": eval_sources,
        "split": split,
        # heldout: held-out rows of the labelled sources only (clean-* prose rows are easy negatives
        # and would flatter ROC-AUC); their false-positive rate is reported on its own.
        "metrics": metrics,
        "built_with": {"fasttext": package_version("fasttext-numpy2")},
    }
    if ensemble:
        manifest["ensemble"] = ensemble
    if any(s.name == "stormfront_en" for s in sources):
        manifest["licence"] = "CC BY-SA 3.0 (share-alike: trained on the Stormfront set); see training_data[].licence_note for attribution"
    write_manifest(out, manifest)
    log(f"build-toxicity {opts.lang}: held-out {report} ({model_path.stat().st_size} bytes)")
    return manifest


def metrics_summary(manifest: dict[str, Any]) -> str:
    """`refinery models ls` text: held-out ROC-AUC, per never-trained source, leave-one-source-out."""
    metrics = manifest.get("metrics", {})
    parts = [f"heldout ROC-AUC {metrics.get('heldout', {}).get('roc_auc')}"]
    if "ensemble" in manifest:
        parts.insert(0, f"ensemble with {manifest['ensemble']['package']} {manifest['ensemble']['version']}")
    by_source = metrics.get("heldout_by_source", {})
    if by_source:
        parts.append("eval-only " + " ".join(f"{k} {v['roc_auc']}" for k, v in by_source.items()))
    loso = metrics.get("leave_one_source_out", {})
    if loso:
        per = " ".join(f"{k} {v['roc_auc']}" for k, v in loso.items() if isinstance(v, dict) and "roc_auc" in v)
        parts.append(f"left out: {per} (mean {loso.get('mean_roc_auc')})")
    return "; ".join(parts)


def _p_toxic(model, texts: list[str]) -> list[float]:
    labels, probs = model.predict(texts, k=2)
    out = []
    for lab, prob in zip(labels, probs):
        p = dict(zip(lab, (float(x) for x in prob)))
        out.append(p[TOXIC] if TOXIC in p else 1.0 - p.get(CLEAN, 0.0))
    return out
