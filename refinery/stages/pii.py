"""PII: replace e-mail addresses, phone numbers, public IPs, card numbers and IBANs with placeholders.

Runs after extraction and before dedup (so two copies of a page that differ only
in a redacted address are still duplicates).  Every span found is replaced by
its kind's typed placeholder and nothing else in the text changes: the text
outside the spans stays byte-identical.  Per-kind counts go to `pii_<kind>`
columns, so a training job can filter or weight on them; with `max_density` a
document whose PII spans per 1,000 characters exceed it (a contact list, a
leaked table) is dropped as `pii_density`.  Detection rules: refinery/pii/detect.py.
"""

from __future__ import annotations

from collections import Counter
from typing import Literal

import pyarrow as pa
from pydantic import Field, field_validator, model_validator

from refinery.strict import StrictModel
from refinery.pii.detect import KINDS, find_pii, redact
from refinery.stages.base import Stage, StageResult, languages, set_column

Kind = Literal["email", "phone", "ip", "credit_card", "iban"]

DEFAULT_PLACEHOLDERS: dict[str, str] = {
    "email": "<EMAIL_ADDRESS>",
    "phone": "<PHONE_NUMBER>",
    "ip": "<IP_ADDRESS>",
    "credit_card": "<CREDIT_CARD_NUMBER>",
    "iban": "<IBAN>",
}
# Regions whose national (no +country code) numbers are recognised, by the document's language.
DEFAULT_PHONE_REGIONS: dict[str, list[str]] = {
    "default": ["US", "GB"],
    "en": ["US", "GB", "CA", "AU", "IE", "NZ", "IN"],
    "de": ["DE", "AT", "CH"],
    "fr": ["FR", "BE", "CH", "CA"],
    "es": ["ES", "MX", "AR", "CO"],
    "it": ["IT", "CH"],
    "nl": ["NL", "BE"],
    "pl": ["PL"],
    "pt": ["PT", "BR"],
    "ru": ["RU"],
    "ja": ["JP"],
    "zh": ["CN", "TW", "HK"],
    "ko": ["KR"],
}
# More of the languages lid.176 names, so their national numbers are found at all (a Thai or Czech
# page used to be read with the US/GB default only).  Each keeps the default's regions after its own:
# pages in English that lid.176 misnames (an Apple page read as Bulgarian) still get their North
# American numbers.
_WITH_DEFAULT_REGIONS: dict[str, list[str]] = {
    "ar": ["SA", "EG", "AE", "MA"],
    "bg": ["BG"],
    "bn": ["BD", "IN"],
    "ca": ["ES", "AD"],
    "cs": ["CZ"],
    "da": ["DK"],
    "el": ["GR", "CY"],
    "et": ["EE"],
    "fa": ["IR"],
    "fi": ["FI"],
    "he": ["IL"],
    "hi": ["IN"],
    "hr": ["HR"],
    "hu": ["HU"],
    "id": ["ID"],
    "is": ["IS"],
    "lt": ["LT"],
    "lv": ["LV"],
    "ms": ["MY"],
    "nb": ["NO"],
    "nn": ["NO"],
    "no": ["NO"],
    "ro": ["RO", "MD"],
    "sk": ["SK"],
    "sl": ["SI"],
    "sr": ["RS"],
    "sv": ["SE", "FI"],
    "th": ["TH"],
    "tr": ["TR"],
    "uk": ["UA"],
    "vi": ["VN"],
    # Added after the fresh-2 rows were read (bench/README.md): Belarusian, Armenian and southern
    # African numbers were missed there; the rest of each group came with them.
    "af": ["ZA"],
    "am": ["ET"],
    "az": ["AZ"],
    "be": ["BY"],
    "bs": ["BA"],
    "hy": ["AM"],
    "ka": ["GE"],
    "kk": ["KZ"],
    "mk": ["MK"],
    "mn": ["MN"],
    "ne": ["NP"],
    "si": ["LK"],
    "sn": ["ZW"],
    "sq": ["AL", "XK"],
    "st": ["ZA", "LS"],
    "sw": ["KE", "TZ"],
    "ta": ["IN", "LK"],
    "tl": ["PH"],
    "tn": ["ZA", "BW"],
    "ts": ["ZA"],
    "ur": ["PK"],
    "uz": ["UZ"],
    "xh": ["ZA"],
    "yo": ["NG"],
    "zu": ["ZA"],
}
DEFAULT_PHONE_REGIONS.update(
    {lang: own + DEFAULT_PHONE_REGIONS["default"] for lang, own in _WITH_DEFAULT_REGIONS.items()}
)

TEXT_FIELD = pa.field("text", pa.string())
COUNT_FIELDS = {kind: pa.field(f"pii_{kind}", pa.int32()) for kind in KINDS}


class PiiOptions(StrictModel):
    kinds: list[Kind] = Field(default_factory=lambda: list(KINDS), description="kinds to find and replace")
    placeholders: dict[Kind, str] = Field(
        default_factory=dict, description="replacement per kind; unnamed kinds keep the default <EMAIL_ADDRESS>, ..."
    )
    phone_regions: dict[str, list[str]] = Field(
        default_factory=lambda: {k: list(v) for k, v in DEFAULT_PHONE_REGIONS.items()},
        description="language -> regions whose national numbers count; 'default' for other languages",
    )
    max_density: float | None = Field(
        None, gt=0.0, description="drop documents with more PII spans per 1,000 characters; null: never drop"
    )

    @field_validator("kinds")
    @classmethod
    def _unique(cls, v: list[str]) -> list[str]:
        if not v or len(set(v)) != len(v):
            raise ValueError("kinds: a non-empty list without repeats")
        return v

    @field_validator("phone_regions")
    @classmethod
    def _regions_known(cls, v: dict[str, list[str]]) -> dict[str, list[str]]:
        from phonenumbers import SUPPORTED_REGIONS

        for lang, regions in v.items():
            bad = [r for r in regions if r not in SUPPORTED_REGIONS]
            if bad:
                raise ValueError(f"phone_regions.{lang}: unknown region code(s) {bad} (ISO 3166 alpha-2, upper case)")
        return v

    @model_validator(mode="after")
    def _placeholders_not_empty(self) -> "PiiOptions":
        for kind, text in self.placeholders.items():
            if not text:
                raise ValueError(f"placeholders.{kind}: must not be empty (a removed span would join its neighbours)")
        return self


class PiiStage(Stage):
    name = "pii"
    order = 35  # after quality, before dedup
    Options = PiiOptions
    fields = [TEXT_FIELD, *COUNT_FIELDS.values()]

    def setup(self) -> None:
        o: PiiOptions = self.options
        self.placeholders = {**DEFAULT_PLACEHOLDERS, **o.placeholders}
        self.default_regions = tuple(o.phone_regions.get("default", []))

    def model_info(self) -> dict:
        from refinery.models import file_sha256, package_version
        from refinery.pii import detect

        # The rules are code and libphonenumber's metadata decides which numbers are valid: both change
        # output, so both go into the commit's provenance (and the batch key, which covers models).
        return {"pii": {"rules_sha256": file_sha256(detect.__file__), "phonenumbers": package_version("phonenumbers")}}

    def regions(self, language: str | None) -> tuple[str, ...]:
        regions = self.options.phone_regions.get(language or "")
        return tuple(regions) if regions is not None else self.default_regions

    def process(self, records: pa.RecordBatch) -> StageResult:
        o: PiiOptions = self.options
        texts = records.column("text").to_pylist()
        langs = languages(records)
        out = list(texts)
        counts = {kind: [0] * len(texts) for kind in KINDS}
        reasons: list[str | None] = [None] * len(texts)
        details: list[str | None] = [None] * len(texts)
        totals: Counter = Counter()
        for i, (text, lang) in enumerate(zip(texts, langs)):
            if not text:
                continue
            spans = find_pii(text, o.kinds, self.regions(lang))
            if not spans:
                continue
            per_kind = Counter(s.kind for s in spans)
            for kind, n in per_kind.items():
                counts[kind][i] = n
            totals.update(per_kind)
            out[i] = redact(text, spans, self.placeholders)
            density = 1000.0 * len(spans) / len(text)
            if o.max_density is not None and density > o.max_density:
                reasons[i] = "pii_density"
                kinds = ", ".join(f"{k}={n}" for k, n in sorted(per_kind.items()))
                details[i] = f"{len(spans)} PII spans per {len(text)} chars ({density:.2f}/1000 > {o.max_density}): {kinds}"
        records = set_column(records, TEXT_FIELD, pa.array(out, type=pa.string()))
        for kind in KINDS:
            values = counts[kind] if kind in o.kinds else [None] * len(texts)
            records = set_column(records, COUNT_FIELDS[kind], pa.array(values, type=pa.int32()))
        return StageResult(records, reasons, details, counts={f"{k}": n for k, n in sorted(totals.items())})
