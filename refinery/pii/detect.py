"""Finding PII spans in text: e-mail addresses, phone numbers, IP addresses, card numbers, IBANs.

Every kind is a cheap regex for candidates followed by a validity check that a
random string of digits rarely passes, because precision matters as much as
recall (a corpus full of redacted version numbers, dates and ISBNs is damaged):

- e-mail: RFC 5322 "dot-atom" addresses with an alphabetic TLD that is not a
  file extension (`logo@2x.png` is an image, not an address);
- phone: Google's libphonenumber (`phonenumbers.PhoneNumberMatcher`, leniency
  VALID): international numbers (`+44 ...`) in any country, national ones for
  the regions configured for the document's language;
- IP: IPv4 and IPv6 literals that Python's `ipaddress` accepts and calls
  global (public), as datatrove does; a dotted quad right after a version word
  (`version 1.9.7.1`, `v2.0.0.16`) is a version number;
- credit card: 13-19 digits, compact or in the printed groups, with a known
  issuer prefix (IIN) and a valid Luhn check digit (ISBNs start 978/979, no IIN);
- IBAN: a country code with its registered length and a valid ISO 7064 mod-97
  checksum, compact or in groups of four.
"""

from __future__ import annotations

import bisect
import ipaddress
import re
from dataclasses import dataclass
from typing import Iterable, Sequence

KINDS = ("email", "phone", "ip", "credit_card", "iban")
# When two spans overlap the more specific kind wins (a card number also parses as a phone).
PRIORITY = {"email": 0, "iban": 1, "credit_card": 2, "ip": 3, "phone": 4}


@dataclass(frozen=True, order=True)
class Span:
    start: int
    end: int
    kind: str


# Python's `re` tries a pattern at every position, which for these patterns (lookbehinds, optional
# prefixes) runs at ~5 MB/s.  Cheap scans find the few places worth looking at first: runs of
# digits and separators (phones, cards, IPv4), colon pairs (IPv6), `@` (e-mail).
_NUMERIC_RUN = re.compile(r"\d[\d .,()/\t\u00a0\u2060\u2011:–+-]{5,}\d")


def _numeric_runs(text: str, min_digits: int) -> Iterable[tuple[int, int]]:
    for m in _NUMERIC_RUN.finditer(text):
        if sum(ch.isdigit() for ch in m.group()) >= min_digits:
            yield m.start(), m.end()


# --- e-mail ---------------------------------------------------------------------------------------
_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_EMAIL = re.compile(
    rf"(?<![A-Za-z0-9!#$%&'*+/=?^_`{{|}}~.-]){_ATOM}(?:\.{_ATOM})*"
    r"@((?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+([A-Za-z]{2,24}))(?![A-Za-z0-9-]|\.[A-Za-z0-9])"
)
_ATOM_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789!#$%&'*+/=?^_`{|}~.-")
_FILE_TLDS = frozenset(
    "png jpg jpeg gif svg webp avif bmp ico tif tiff css js mjs json xml html htm php pdf mp3 mp4 webm woff woff2 ttf".split()
)


def find_emails(text: str) -> Iterable[Span]:
    if "@" not in text:
        return
    seen_end = -1
    at = text.find("@")
    while at >= 0:
        # The local part is the run of atom characters before the @ (at most 64): one match from its start.
        start = at
        while start > 0 and at - start < 64 and text[start - 1] in _ATOM_CHARS:
            start -= 1
        while start < at and text[start] == ".":
            start += 1
        if start < at and at > seen_end:
            m = _EMAIL.match(text, start, min(len(text), at + 256))
            if m and m.end() > at and (m.end() == len(text) or m.end() < at + 256) and m.group(2).lower() not in _FILE_TLDS:
                seen_end = m.end()
                yield Span(m.start(), m.end(), "email")
        at = text.find("@", at + 1)


# --- IP addresses ---------------------------------------------------------------------------------
_IPV4 = re.compile(r"(?<![\w.])(?:\d{1,3}\.){3}\d{1,3}(?!\w|\.\d)")
_IPV6 = re.compile(
    r"(?<![\w:.])(?:[0-9A-Fa-f]{0,4}:){2,7}(?:[0-9A-Fa-f]{1,4}|(?:\d{1,3}\.){3}\d{1,3})?(?![\w:])"
)
_COLON_PAIR = re.compile(r":[0-9A-Fa-f]{0,4}:")  # every IPv6 literal has two colons this close
# A dotted quad after one of these words, after `product/` or `name-`, or opening a line (a table of
# contents: `4.1.1.1 /var`) is a version or a section number, not an address.
_VERSION_BEFORE = re.compile(
    r"(?:\b(?:v|ver|vers|version|versions|release|build|firmware|update|patch|rev|revision|sdk|api|kernel|driver|"
    r"ios|android|macos|windows|python|java|node|chrome|firefox|edition|fw|sw|hw|section|chapter|clause|step|rule|§)\.?\s*[:=]?\s*"
    r"|\bv|[/-])$",
    re.IGNORECASE,
)


_IP_WORDS = re.compile(
    r"\b(?:ip|ips|ipv4|address|addresses|adresse|dns|server|servers|host|hosts|ping|resolver|gateway|nameserver|"
    r"proxy|connect|connected|connecting|router|subnet|firewall|whois|traceroute|nslookup)\b",
    re.IGNORECASE,
)
_LINE_START = re.compile(r"(?:^|\n)[ \t•*·-]*$")
_HEADING_AFTER = re.compile(r"[ \t]+(?:[A-Z]|/\w)")


def _global(addr: str) -> bool:
    try:
        ip = ipaddress.ip_address(addr)
        return ip.is_global and not ip.is_multicast  # multicast groups name no host
    except ValueError:  # leading zeros, octets over 255, malformed IPv6
        return False


def _ipv4_is_address(text: str, m: re.Match) -> bool:
    if not _global(m.group()) or _VERSION_BEFORE.search(text[max(0, m.start() - 24) : m.start()]):
        return False
    if _LINE_START.search(text[max(0, m.start() - 8) : m.start()]) and _HEADING_AFTER.match(text, m.end()):
        return False  # `4.1.1.1 Installing packages`: a numbered heading
    if text.startswith("/", m.end()):
        return False  # `203.0.113.0/24`: a network, not one host's address
    if all(int(o) < 100 for o in m.group().split(".")):
        # `Lucee 5.3.6.61`: small octets are what versions are made of, while a random address has all
        # four under 100 2% of the time: such a quad is an address only with an address word nearby.
        return bool(_IP_WORDS.search(text[max(0, m.start() - 60) : m.end() + 60]))
    return True


def find_ips(text: str) -> Iterable[Span]:
    if "." in text:
        for lo, hi in _numeric_runs(text, 4):
            for m in _IPV4.finditer(text, lo, hi + 2):  # +2: the lookahead sees past the run
                if _ipv4_is_address(text, m):
                    yield Span(m.start(), m.end(), "ip")
    if ":" in text:
        last = -1
        for c in _COLON_PAIR.finditer(text):
            if c.start() < last:
                continue
            lo, hi = max(0, c.start() - 40), c.end() + 48
            for m in _IPV6.finditer(text, lo, hi):
                s = m.group()
                if m.start() >= last and m.end() < hi and sum(1 for g in s.split(":") if g) >= 3 and _global(s):  # `a::b` is code
                    last = m.end()
                    yield Span(m.start(), m.end(), "ip")


# --- credit-card numbers --------------------------------------------------------------------------
_CARD = re.compile(
    r"(?<![\w.,/+-])(?:\d{13,19}|\d{4}([ -])\d{4}\1\d{4}\1\d{1,7}|\d{4}([ -])\d{6}\2\d{4,5})(?![\w/-]|[.,]\d)"
)


def _luhn(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def _card_issuer(d: str) -> bool:
    """True when the number's prefix and length belong to a card network (ISO/IEC 7812 IINs)."""
    n = len(d)
    p2, p3, p4, p6 = int(d[:2]), int(d[:3]), int(d[:4]), int(d[:6])
    if d[0] == "4":  # Visa
        return n in (13, 16, 19)
    if 51 <= p2 <= 55 or 2221 <= p4 <= 2720:  # Mastercard
        return n == 16
    if p2 in (34, 37):  # American Express
        return n == 15
    if p4 == 6011 or p2 == 65 or 644 <= p3 <= 649 or 622126 <= p6 <= 622925:  # Discover
        return 16 <= n <= 19
    if 3528 <= p4 <= 3589:  # JCB
        return 16 <= n <= 19
    if 300 <= p3 <= 305 or p2 in (36, 38, 39) or p4 == 3095:  # Diners Club
        return 14 <= n <= 19
    if p2 == 62 or p2 == 81:  # UnionPay
        return 16 <= n <= 19
    if p4 in (5018, 5020, 5038, 5893, 6304, 6759, 6761, 6762, 6763):  # Maestro
        return 12 <= n <= 19
    if 2200 <= p4 <= 2204:  # Mir
        return 16 <= n <= 19
    return False


def find_cards(text: str) -> Iterable[Span]:
    for lo, hi in _numeric_runs(text, 13):
        for m in _CARD.finditer(text, lo, hi + 2):
            digits = re.sub(r"[ -]", "", m.group())
            if 13 <= len(digits) <= 19 and _card_issuer(digits) and _luhn(digits):
                yield Span(m.start(), m.end(), "credit_card")


# --- IBAN -----------------------------------------------------------------------------------------
# Lengths from the SWIFT IBAN registry (release 99) and the experimental national IBANs in use.
IBAN_LENGTHS = {
    "AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22, "BH": 22, "BI": 27,
    "BR": 29, "BY": 28, "CH": 21, "CR": 22, "CY": 28, "CZ": 24, "DE": 22, "DJ": 27, "DK": 18, "DO": 28,
    "EE": 20, "EG": 29, "ES": 24, "FI": 18, "FK": 18, "FO": 18, "FR": 27, "GB": 22, "GE": 22, "GI": 23,
    "GL": 18, "GR": 27, "GT": 28, "HN": 28, "HR": 21, "HU": 28, "IE": 22, "IL": 23, "IQ": 23, "IS": 26,
    "IT": 27, "JO": 30, "KW": 30, "KZ": 20, "LB": 28, "LC": 32, "LI": 21, "LT": 20, "LU": 20, "LV": 21,
    "LY": 25, "MC": 27, "MD": 24, "ME": 22, "MK": 19, "MN": 20, "MR": 27, "MT": 31, "MU": 30, "NI": 28,
    "NL": 18, "NO": 15, "OM": 23, "PK": 24, "PL": 28, "PS": 29, "PT": 25, "QA": 29, "RO": 24, "RS": 22,
    "RU": 33, "SA": 24, "SC": 31, "SD": 18, "SE": 24, "SI": 19, "SK": 24, "SM": 27, "SO": 23, "ST": 25,
    "SV": 28, "TL": 23, "TN": 24, "TR": 26, "UA": 29, "VA": 22, "VG": 24, "XK": 20, "YE": 30,
}
_IBAN_START = re.compile(r"(?<![A-Za-z0-9])([A-Z]{2})(\d{2})")


def _iban_valid(compact: str) -> bool:
    rearranged = compact[4:] + compact[:4]
    return int("".join(str(int(ch, 36)) for ch in rearranged)) % 97 == 1


def find_ibans(text: str) -> Iterable[Span]:
    for m in _IBAN_START.finditer(text):
        length = IBAN_LENGTHS.get(m.group(1))
        if length is None:
            continue
        # Collect `length` characters, compact or in groups of four separated by one space.
        i, chars, grouped = m.start(), [], None
        while i < len(text) and len(chars) < length:
            ch = text[i]
            if ch.isascii() and (ch.isdigit() or ch.isupper()):
                chars.append(ch)
                i += 1
            elif ch == " " and len(chars) % 4 == 0 and grouped is not False and i + 1 < len(text) and text[i + 1].isalnum():
                grouped = True
                i += 1
            else:
                break
            if grouped is None and len(chars) > 4:
                grouped = False
        if len(chars) != length or (i < len(text) and text[i].isdigit()):
            continue
        if i < len(text) and text[i].isalnum() and not re.match(r"[A-Za-z]{1,3}\b", text[i:]):
            continue  # glued to a longer code; a glued currency (`...1341EUR`) is fine
        if _iban_valid("".join(chars)):
            yield Span(m.start(), i, "iban")


# --- phone numbers --------------------------------------------------------------------------------
_PHONE_HINT = re.compile(r"\d(?:[\d \t().\-/]{5,})\d")  # at least 7 characters of phone-ish digits
# libphonenumber's VALID leniency still accepts many a German date (03.11.2019 is a valid DE number) or
# range: national-format matches (no +country code) must also pass these checks.
_DATE = re.compile(
    r"\(?\d{1,4}\.?\s?[./-]\s?\d{1,2}\.?\s?[./-]\s?\d{2,4}(?!\d|\s?[./-]\s?\d)|\(?\d{1,2}\.\d{1,2}\.(?!\d)|\d{1,2}\s?/\s?(?:19|20)\d{2}(?!\d)"
)
_SHORT_PAIR = re.compile(r"\d{1,4}\s?/\s?\d{1,4}")  # pages 164/165, issue 35/2023
_DAY_YEAR = re.compile(r"\d{1,2}\s(?:19|20)\d{2}")  # Oct 13 2025
_DOTTED_QUAD = re.compile(r"(?<![\d.])\d{1,3}(?:\.\d{1,3}){3}(?![\d.])")  # an IP or CIDR range
_THOUSANDS = re.compile(r"\d{1,3}(?:[.,]\d{3})+")
_RANGE = re.compile(r"\d{1,5}\s*[–—-]\s*\d{1,5}")
_DECIMAL = re.compile(r"\d+[.,]\d+")
_SINGLE_DIGITS = re.compile(r"\d(?:[ .-]\d){3,}")
_ID_BEFORE = re.compile(
    r"(?:isbn|issn|doi|pmid|arxiv|p\.?\s?iva|vat|ust-?id|steuer-?nr|mwst\.?-?nr|codice fiscale|siret|siren|kvk|sku|art\.?-?nr|"
    r"nit|nif|cif|rut|cuit|tax|"
    r"order|invoice|id|no|nr|#)(?:\W{1,3}[A-Z]{2})?\W{0,3}$",
    re.IGNORECASE,
)
# Dates, times and years are digit groups too, and libphonenumber accepts many of them as national
# numbers (`2020 06 16 02` is a valid 10-digit number in several regions).  These shapes are
# recognised wherever they sit in a national-format match, in every region:
_YEAR = r"(?:1[3-9]\d\d|20\d\d|25\d\d)"  # Gregorian, Persian (13xx-14xx) and Thai Buddhist-era (25xx) years
_MONTH = r"(?:0?[1-9]|1[0-2])"
_DAY = r"(?:0?[1-9]|[12]\d|3[01])"
_DATE_ANYWHERE = re.compile(
    rf"(?<![\d./-])(?:{_YEAR}(?P<s1>\s?[./-]\s?|\s)(?:{_MONTH}(?P=s1){_DAY}|{_DAY}(?P=s1){_MONTH})"  # 2025-03-01, 2025 03 01
    rf"|(?:{_DAY}(?P<s2>\s?[./-]\s?|\s){_MONTH}|{_MONTH}(?P<s3>\s?[./-]\s?|\s){_DAY})(?:(?P=s2)|(?P=s3)){_YEAR}"  # 01.03.2025
    rf"|(?:{_DAY}(?P<s4>[./]){_MONTH}|{_MONTH}(?P<s5>[./]){_DAY})(?:(?P=s4)|(?P=s5))\d\d"  # 01.03.25, 3/1/25
    rf"|{_DAY},\s?{_YEAR})(?!\d|[./-]\d)"  # Mar 1, 2025; not a stretch of a longer dotted chain (01.45.12.03.25)
)
# A clock-time range (`09.00 - 12.00`, `15.30-16.30`: Thai, German and Scandinavian notices write times with dots).
_TIME_RANGE = re.compile(r"(?<!\d)(?:[01]?\d|2[0-3])[.:h][0-5]\d\s?[-–—]\s?(?:[01]?\d|2[0-3])[.:h][0-5]\d(?!\d)")
# Every group a year: `1998-2005 2006`, `2011 2012 2013 2014`, `2019–2020`.
_YEARS_ONLY = re.compile(rf"{_YEAR}(?:\s?[-–—/,]?\s?{_YEAR})+")
# A libphonenumber extension (`x123`, `ext. 12`, `доб. 5`): the only letters a number may hold.
_EXTENSION = re.compile(r"[\s,;]*(?:e?xt(?:e?n(?:si[oó]n)?)?\.?|x|#|anexo|ramal|доб\.?|内線)\s?\d{1,7}$", re.IGNORECASE)
_VERSION_WORD = re.compile(r"\b(?:v|ver|vers|version|versi[oó]n|release|build|rev|revision|firmware|update|patch)\.?\s?[:#]?\s?$", re.IGNORECASE)
_TIMES = "*×xX"  # 20*2000*8000, 1920x1080: dimensions and quantities


def _has_letter(span: str) -> bool:
    """True when the match holds a letter outside an extension: the matcher reads a copy of the text
    with glued letters blanked, so `2020年06月16日 02`, `1800s–1930` and `0x1035a2840` reach here."""
    m = _EXTENSION.search(span)
    core = span[: m.start()] if m else span
    return any(ch.isalpha() for ch in core)


# Added after the fresh-2 rows were read (bench/README.md): ranges of years, pages and sections,
# decimals, quantities and ISBNs that libphonenumber also took for numbers.
_YEAR_PAIR = re.compile(r"(?<!\d)(1\d{3}|20\d\d)\s?[-–—/]\s?(1\d{3}|20\d\d)(?!\d)")  # 1128 – 1202, 2011-2012
_DASH_RANGE = re.compile(r"(?<!\d)(\d{1,6})\s?[–—]\s?(\d{1,6})(?!\d)")  # 658–667: the en/em dash of a typeset range
_YEAR_IN_PARENS = re.compile(r"^[(（]\s?(?:1[5-9]|20)\d\d\s?[)）]")  # (2010) 658–667: a citation's year
_ONE_DIGIT_FRACTION = re.compile(r"(?<![\d.])\d{1,3}\.\d(?![\d.])")  # 97.6-96.7: decimals (phone groups have 2+ digits)
_SECTION_RANGE = re.compile(r"\d+(?:\.\d+){2,}\s?[-–—]\s?\d+(?:\.\d+)+")  # 2.40.60-2.42.63
_VERSION_GROUP = re.compile(r"\d\.\d\.")  # 144.0.7559.133: a one-digit inner group of a dotted chain is a version
_ROUND_QUANTITY = re.compile(r"\d{1,3}(?:[ \u00a0\u202f.]\d{3})*[ \u00a0\u202f.]000")  # 734 000 000, 1.900.000


def _isbn(span: str) -> bool:
    """An ISBN-10 or ISBN-13 printed in its hyphenated groups (3-937975-00-4, 978-4-02-213028-0) with a valid
    check digit (not space-separated: 1 in 11 phone numbers in four groups, 044 826 76 75, would pass)."""
    groups = span.split("-")
    digits = "".join(groups)
    if len(groups) == 4 and len(digits) == 10 and digits[:9].isdigit() and (digits[9].isdigit() or digits[9] in "Xx"):
        total = sum((10 - i) * int(d) for i, d in enumerate(digits[:9])) + (10 if digits[9] in "Xx" else int(digits[9]))
        return total % 11 == 0
    if len(groups) == 5 and len(digits) == 13 and digits.isdigit() and digits[:3] in ("978", "979"):
        return sum(int(d) * (3 if i % 2 else 1) for i, d in enumerate(digits)) % 10 == 0
    return False


def _range(span: str) -> bool:
    for pattern in (_YEAR_PAIR, _DASH_RANGE):
        for m in pattern.finditer(span):
            a, b = int(m.group(1)), int(m.group(2))
            if pattern is _YEAR_PAIR and a <= b <= a + 150:
                return True
            if pattern is _DASH_RANGE and a <= b and len(m.group(2)) <= len(m.group(1)):
                return True
    return False


def _date_or_time(span: str) -> bool:
    inner = span.strip("()（） ")  # `(2011-2012`: the shapes are judged without the brackets round them
    return bool(
        _DATE_ANYWHERE.search(span) or _TIME_RANGE.search(span) or _YEARS_ONLY.fullmatch(inner)
        or _range(span) or _YEAR_IN_PARENS.match(span) or _ONE_DIGIT_FRACTION.search(span)
        or _SECTION_RANGE.search(span) or _VERSION_GROUP.search(span) or _ROUND_QUANTITY.fullmatch(inner) or _isbn(inner)
    )


_PHONE_WORD = re.compile(
    r"(?:\b(?:tel|telephone|phone|fax|call|mobile|mob|cell|telefon|telefono|teléfono|téléphone|tél|handy|hotline|"
    r"whatsapp|telefax|fon|fone|tlf|puhelin|telefone|telefoon|telefonu?|тел|телефон|факс|"
    r"puh|tfn|tālr|tālrunis|telf|telp|telepon|điện thoại|sđt|đt|τηλ|τηλέφωνο|тэл|тэлефон|тэлефоны|телефони|"
    r"հեռ|հեռախոս|ტელ|טל|טלפון|هاتف|تلفون|جوال|تلفن|फोन|फ़ोन|दूरभाष)|\b[tfm]\s?[:.]|☎|📞|"
    r"โทร|电话|電話|手机|手機|传真|傳真|联系电话|携帯|전화|팩스)\W{0,4}$",
    re.IGNORECASE,
)


def _plausible_phone(text: str, start: int, end: int) -> bool:
    span = text[start:end]
    if "\t" in span or "\n" in span or span.startswith("["):  # table cells, a regex class
        return False
    intl = span.startswith("+")
    prev, prev2 = text[start - 1 : start], text[start - 2 : start - 1]
    if prev.isalpha() and not (intl or span.startswith("(")):
        return False  # inside an identifier; flattened pages glue `Free Trial+1 408 ...`, `About(628) ...`
    if prev and (prev.isdigit() or prev in "/_=#&@.," or (prev == ":" and prev2.isdigit()) or (prev == "-" and prev2.isalnum())):
        return False  # inside a URL, a number, an identifier (doi:...-2016-011092), after a time of day
    nxt, nxt2 = text[end : end + 1], text[end + 1 : end + 2]
    if nxt and (nxt.isdigit() or nxt in "/_=#&@"):
        return False
    if _has_letter(span) or (nxt == ":" and nxt2.isdigit()):
        return False  # a date written with 年月日, a hex number, `02` of the time `02:31`
    if intl:
        return True
    if (prev in _TIMES and prev2.isdigit()) or (nxt in _TIMES and nxt2.isdigit()) or (nxt in ".," and nxt2.isdigit()):
        return False  # a factor of `20*2000*80000`, a decimal or thousands group continuing past the match
    before = text[max(0, start - 30) : start]
    if _ID_BEFORE.search(before) or _VERSION_WORD.search(before) or _VERSION_BEFORE.search(before) or _DOTTED_QUAD.search(span) or span.count("/") > 1:
        return False
    if _date_or_time(span):
        return False  # a date, date-time, time range or run of years anywhere in the match
    if sum(ch.isdigit() for ch in span) < 7:  # (134)134 reviews, a user id ( 135075 )
        return False
    if _DATE.match(span) or any(
        p.fullmatch(span) for p in (_DECIMAL, _RANGE, _SINGLE_DIGITS, _SHORT_PAIR, _THOUSANDS, _DAY_YEAR)
    ):
        return False
    if span.isdigit() and not _PHONE_WORD.search(before):
        return False  # a bare run of digits is an identifier unless the text says it is a number to call
    return True


_GLUED = re.compile(r"(?<=\d)[^\W\d_]|[^\W\d_](?=[+(]\d)")


_DIGIT_GROUP = re.compile(r"(?<!\d)\d{2,17}(?!\d)")
_MAX_WINDOW = 64  # no written phone number is longer than ~30 characters


_TABLE_RUN = 200


def _phone_windows(text: str) -> Iterable[tuple[int, int, bool]]:
    """(start, end, in_table) of the digit runs worth parsing.  A long run (a table of numbers) comes
    in overlapping 64-character windows, so a page of numbers costs time in proportion to its length,
    and is only searched for +international numbers: every window of a table of bare numbers would
    otherwise be parsed once per region (a 100 KB table: over a minute)."""
    for start, end in _numeric_runs(text, 7):
        if end - start <= _MAX_WINDOW:
            yield start, end, False
            continue
        table = end - start > _TABLE_RUN
        for lo in range(start, end, _MAX_WINDOW // 2):
            yield lo, min(end, lo + _MAX_WINDOW), table
            if lo + _MAX_WINDOW >= end:
                break


def find_phones(text: str, regions: Sequence[str]) -> Iterable[Span]:
    """International numbers anywhere; national ones as numbers of `regions` (region codes: US, DE)."""
    if not _PHONE_HINT.search(text):
        return
    from phonenumbers import Leniency, PhoneNumberMatcher

    # Flattened pages glue numbers to words (`+1 (855) 572-8264Sales:`, `Contact Us(888) ...`), which
    # libphonenumber refuses; the matcher reads a same-length copy with those letters blanked, and
    # `_plausible_phone` judges the match on the real text.
    # Only windows around runs of at least 7 digits go to libphonenumber (one pass per region over
    # the whole text would parse every year and price as a candidate: ~5x slower).
    soft = _GLUED.sub(" ", text)
    seen: set[tuple[int, int]] = set()
    for start, end, table in _phone_windows(soft):
        lo, hi = max(0, start - 3), min(len(soft), end + 2)  # `+ (`, `(` before; `)` after
        window = soft[lo:hi]
        if not _DIGIT_GROUP.search(window) or (table and "+" not in window):
            continue  # every written number has a group of 2-17 digits (not `1 1 1 1`, not a 40-digit id)
        for region in ("ZZ",) if table else (regions or ("ZZ",)):  # ZZ: unknown region, only +international numbers
            for m in PhoneNumberMatcher(window, region, leniency=Leniency.VALID):
                s, e = lo + m.start, lo + m.end
                if (s, e) not in seen and _plausible_phone(text, s, e):
                    seen.add((s, e))
                    yield Span(s, e, "phone")


# --- all kinds ------------------------------------------------------------------------------------
def find_pii(text: str, kinds: Iterable[str] = KINDS, phone_regions: Sequence[str] = ("US",)) -> list[Span]:
    """Non-overlapping PII spans of `kinds` in text order (overlaps go to the more specific kind)."""
    kinds = set(kinds)
    found: list[Span] = []
    if "email" in kinds:
        found.extend(find_emails(text))
    if "iban" in kinds:
        found.extend(find_ibans(text))
    if "credit_card" in kinds:
        found.extend(find_cards(text))
    if "ip" in kinds:
        found.extend(find_ips(text))
    if "phone" in kinds:
        found.extend(find_phones(text, phone_regions))
    found.sort(key=lambda s: (PRIORITY[s.kind], s.start, -s.end))
    kept: list[Span] = []  # sorted by start, never overlapping: a new span can only hit its neighbours
    for span in found:
        i = bisect.bisect_left(kept, (span.start,), key=lambda k: (k.start,))
        if (i == 0 or kept[i - 1].end <= span.start) and (i == len(kept) or span.end <= kept[i].start):
            kept.insert(i, span)
    return kept


def redact(text: str, spans: Sequence[Span], placeholders: dict[str, str]) -> str:
    """`text` with every span replaced by its kind's placeholder; everything else byte-identical."""
    if not spans:
        return text
    out, pos = [], 0
    for s in spans:
        out.append(text[pos : s.start])
        out.append(placeholders[s.kind])
        pos = s.end
    out.append(text[pos:])
    return "".join(out)
