"""Writing systems: the language a text's script implies, and the languages read by character.

Dedup shingles by characters and decontamination tokenises by characters
where words are not space-delimited; without a langid stage they fall back on
the script of the text.  The fastText classifiers (toxicity, quality) cut CJK
tokens into single characters, because fastText splits on spaces only.
"""

from __future__ import annotations

import re

CJK_LANGS = frozenset({"zh", "ja", "ko"})  # read by character, not by word
CJK_CHAR = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff]")
_HAN = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")
_KANA = re.compile(r"[\u3040-\u30ff]")
_THAI = re.compile(r"[\u0e00-\u0e7f]")


def script_language(normalised: str) -> str | None:
    """zh / ja / th when those scripts dominate a text without a `language` (no langid stage).

    Looks at the first 2,000 characters: enough to tell scripts apart, cheap.
    """
    head = normalised[:2000].replace(" ", "")
    if not head:
        return None
    han, kana, thai = (len(r.findall(head)) for r in (_HAN, _KANA, _THAI))
    if thai > 0.3 * len(head):
        return "th"
    if han + kana > 0.3 * len(head):
        return "ja" if kana > 0.1 * (han + kana) else "zh"
    return None


def split_cjk(tokens: list[str]) -> list[str]:
    """`tokens` with every token holding a CJK character cut into its characters."""
    return [c for tok in tokens for c in (list(tok) if CJK_CHAR.search(tok) else [tok])]
