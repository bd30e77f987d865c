"""Each language's commonest function words: Gopher's stop-word rule (the quality stage), the
survival gate before extraction, and the quality classifier's document features all count them."""

from __future__ import annotations

DEFAULT_STOP_WORDS: dict[str, list[str]] = {
    # Gopher's English list; the others are the commonest function words of each language.
    "en": ["the", "be", "to", "of", "and", "that", "have", "with"],
    "de": ["der", "die", "und", "in", "den", "von", "zu", "das", "mit", "sich", "des", "auf", "ist"],
    "fr": ["de", "la", "le", "et", "les", "des", "en", "un", "du", "une", "que", "est", "pour"],
    "es": ["de", "la", "que", "el", "en", "y", "los", "del", "se", "las", "por", "un", "para"],
    "ru": ["и", "в", "не", "на", "что", "с", "по", "это", "как", "из", "к", "для"],
    "it": ["di", "e", "il", "la", "che", "in", "per", "un", "del", "della", "non", "con"],
    "pt": ["de", "a", "o", "que", "e", "do", "da", "em", "um", "para", "com", "não"],
    "nl": ["de", "het", "een", "en", "van", "in", "is", "dat", "op", "te", "voor", "met"],
    "pl": ["w", "i", "na", "z", "się", "nie", "do", "to", "że", "jest", "o", "jak"],
    "zh": ["的", "了", "是", "在", "和", "有", "我", "不", "这", "也"],
    "ja": ["の", "に", "は", "を", "た", "が", "で", "て", "と", "し"],
}
