"""Language codes a pipeline may name: lid.176's labels (what the langid stage can ever output).

A code lid.176 never outputs (`german`, `en-US`, `eng`) would silently match nothing: a
`languages: [german]` langid stage drops every document.  So pipeline options are checked against
this list when the pipeline is loaded.  The list is the model's own (`test_langcodes` compares it
with the shipped lid.176.ftz), kept as data so that validating a config loads no model.
"""

from __future__ import annotations

import difflib
from typing import Annotated

from pydantic import AfterValidator

LID176_LABELS = frozenset(
    """af als am an ar arz as ast av az azb ba bar bcl be bg bh bn bo bpy br bs bxr ca cbk ce ceb ckb co cs
    cv cy da de diq dsb dty dv el eml en eo es et eu fa fi fr frr fy ga gd gl gn gom gu gv he hi hif hr hsb ht
    hu hy ia id ie ilo io is it ja jbo jv ka kk km kn ko krc ku kv kw ky la lb lez li lmo lo lrc lt lv mai mg
    mhr min mk ml mn mr mrj ms mt mwl my myv mzn nah nap nds ne new nl nn no oc or os pa pam pfl pl pms pnb ps
    pt qu rm ro ru rue sa sah sc scn sco sd sh si sk sl so sq sr su sv sw ta te tg th tk tl tr tt tyv ug uk ur
    uz vec vep vi vls vo wa war wuu xal xmf yi yo yue zh""".split()
)

# English names and ISO 639-2/3 codes people type instead, for the "did you mean" hint.
_NAMES = {
    "english": "en", "eng": "en", "german": "de", "deutsch": "de", "deu": "de", "ger": "de", "french": "fr",
    "fra": "fr", "fre": "fr", "spanish": "es", "spa": "es", "italian": "it", "ita": "it", "portuguese": "pt",
    "por": "pt", "dutch": "nl", "nld": "nl", "russian": "ru", "rus": "ru", "polish": "pl", "pol": "pl",
    "chinese": "zh", "zho": "zh", "chi": "zh", "cmn": "zh", "japanese": "ja", "jpn": "ja", "korean": "ko",
    "kor": "ko", "arabic": "ar", "ara": "ar", "turkish": "tr", "tur": "tr", "swedish": "sv", "swe": "sv",
    "czech": "cs", "ces": "cs", "greek": "el", "ell": "el", "hindi": "hi", "hin": "hi", "thai": "th",
    "tha": "th", "vietnamese": "vi", "vie": "vi", "ukrainian": "uk", "ukr": "uk", "finnish": "fi",
    "danish": "da", "norwegian": "no", "hungarian": "hu", "romanian": "ro", "indonesian": "id",
    "hebrew": "he", "persian": "fa", "catalan": "ca", "iw": "he", "in": "id", "ji": "yi",
}  # fmt: skip


def suggest(code: str) -> str | None:
    """The lid.176 code meant by `code`, if one is likely (`german` -> `de`, `en-US` -> `en`)."""
    low = code.strip().lower().replace("_", "-")
    if low in LID176_LABELS:
        return low
    if low in _NAMES:
        return _NAMES[low]
    head = low.split("-")[0]
    if head in LID176_LABELS:
        return head
    close = difflib.get_close_matches(low, sorted(LID176_LABELS), n=1, cutoff=0.8)
    return close[0] if close else None


def check_code(code: str) -> str:
    if code in LID176_LABELS:
        return code
    hint = suggest(code)
    more = f" (did you mean {hint!r}?)" if hint else ""
    raise ValueError(f"{code!r} is not a language code lid.176 outputs{more}; see refinery/langcodes.py")


# A pipeline option holding a language code.
LangCode = Annotated[str, AfterValidator(check_code)]
