"""Planted PII: synthetic items of every kind written into real held-out page text, for recall.

The real pages hold no card number and few IBANs and IP addresses, so recall of those kinds
cannot be measured on real spans alone.  Here each page gets one generated item per kind
(valid by construction: Luhn digit, mod-97 checksum, global address, a valid number from
libphonenumber's examples) in the formats people print, after a lead-in that is sometimes
telling (`IBAN:`) and sometimes not (`ref`), at a sentence boundary.  A planted item is
found when a span of its kind covers it.  These are synthetic spans in real context: the
figures say what the detector does on each format, not how often formats occur.
"""

from __future__ import annotations

import ipaddress
import random

FORMATS_NOTE = "cards: compact, 4-4-4-4 (space, dash), Amex 4-6-5; IBAN: compact, groups of 4; IPv4; IPv6 compressed; phone: E.164, international, national"

CARD_PREFIXES = [("4", 16), ("4", 13), ("51", 16), ("55", 16), ("2221", 16), ("34", 15), ("37", 15), ("6011", 16),
                 ("65", 16), ("3528", 16), ("36", 14), ("62", 16)]
IBAN_COUNTRIES = {"DE": 22, "GB": 22, "FR": 27, "ES": 24, "IT": 27, "NL": 18, "BE": 16, "CH": 21, "AT": 20,
                  "PL": 28, "SE": 24, "NO": 15, "DK": 18, "IE": 22, "PT": 25, "FI": 18}
PHONE_REGIONS = ["US", "GB", "DE", "FR", "IN", "AU", "CA", "ES", "IT", "NL", "BR", "JP"]
LEADS = {
    "email": ["Write to ", "Contact: ", "", "or email "],
    "phone": ["Call ", "Tel.: ", "Phone ", "", "WhatsApp "],
    "ip": ["The request came from ", "server ", "IP: ", "blocked host ", "address "],
    "credit_card": ["Card number: ", "Visa ", "charged to ", "", "CC# "],
    "iban": ["IBAN: ", "Bank account ", "pay to ", ""],
}


def _luhn_digit(body: str) -> str:
    total = 0
    for i, ch in enumerate(reversed(body)):
        d = int(ch) * (2 if i % 2 == 0 else 1)
        total += d - 9 if d > 9 else d
    return str((10 - total % 10) % 10)


def card(rng: random.Random) -> str:
    prefix, n = rng.choice(CARD_PREFIXES)
    body = prefix + "".join(rng.choice("0123456789") for _ in range(n - len(prefix) - 1))
    num = body + _luhn_digit(body)
    style = rng.choice(["compact", "space", "dash"])
    if n == 15 and style != "compact":
        sep = " " if style == "space" else "-"
        return f"{num[:4]}{sep}{num[4:10]}{sep}{num[10:]}"
    if n == 16 and style != "compact":
        sep = " " if style == "space" else "-"
        return sep.join(num[i : i + 4] for i in range(0, 16, 4))
    return num


def iban(rng: random.Random) -> str:
    cc, n = rng.choice(sorted(IBAN_COUNTRIES.items()))
    bban = "".join(rng.choice("0123456789") for _ in range(n - 4))
    rearranged = bban + cc + "00"
    check = 98 - int("".join(str(int(ch, 36)) for ch in rearranged)) % 97
    code = f"{cc}{check:02d}{bban}"
    return code if rng.random() < 0.5 else " ".join(code[i : i + 4] for i in range(0, len(code), 4))


def ip(rng: random.Random) -> str:
    while True:
        if rng.random() < 0.7:
            addr = ipaddress.IPv4Address(rng.getrandbits(32))
        else:
            addr = ipaddress.IPv6Address((0x2000 + rng.getrandbits(12)) << 112 | rng.getrandbits(64))
        if addr.is_global and not addr.is_multicast:
            return str(addr)  # IPv6 in its compressed form


def email(rng: random.Random) -> str:
    first = rng.choice(["anna", "j.smith", "m_mueller", "support", "li.wei", "o'brien", "info+news"])
    domain = rng.choice(["example.com", "mail.example.co.uk", "uni-example.de", "example.org", "shop.example.fr"])
    return f"{first}{rng.randint(1, 99)}@{domain}"


def phone(rng: random.Random) -> str:
    import phonenumbers
    from phonenumbers import PhoneNumberFormat, PhoneNumberType

    region = rng.choice(PHONE_REGIONS)
    ex = phonenumbers.example_number_for_type(region, rng.choice([PhoneNumberType.FIXED_LINE, PhoneNumberType.MOBILE]))
    ex = ex or phonenumbers.example_number(region)
    fmt = rng.choice([PhoneNumberFormat.E164, PhoneNumberFormat.INTERNATIONAL, PhoneNumberFormat.NATIONAL])
    return phonenumbers.format_number(ex, fmt), region, fmt == PhoneNumberFormat.NATIONAL


def plant(text: str, rng: random.Random, regions: tuple[str, ...]) -> tuple[str, list[tuple[int, int, str]]]:
    """Text with one item per kind inserted at sentence boundaries, and the items' spans."""
    items = []
    for kind in ("email", "phone", "ip", "credit_card", "iban"):
        if kind == "phone":
            value, region, national = phone(rng)
            if national and region not in regions:
                value = phonenumbers_international(value, region)
        else:
            value = {"email": email, "ip": ip, "credit_card": card, "iban": iban}[kind](rng)
        items.append((kind, rng.choice(LEADS[kind]), value))
    cuts = [i + 2 for i in range(len(text) - 2) if text[i] == "." and text[i + 1] == " "] or [len(text)]
    spans = []
    out = text
    for kind, lead, value in items:
        cut = rng.choice(cuts)
        insert = f"{lead}{value}. "
        out = out[:cut] + insert + out[cut:]
        start = cut + len(lead)
        spans = [(s + len(insert), e + len(insert), k) if s >= cut else (s, e, k) for s, e, k in spans]
        spans.append((start, start + len(value), kind))
        cuts = [c + len(insert) if c > cut else c for c in cuts]
    return out, spans


def phonenumbers_international(value: str, region: str) -> str:
    """National formats only parse in their own region: an English page writes foreign numbers with +cc."""
    import phonenumbers
    from phonenumbers import PhoneNumberFormat

    return phonenumbers.format_number(phonenumbers.parse(value, region), PhoneNumberFormat.INTERNATIONAL)
