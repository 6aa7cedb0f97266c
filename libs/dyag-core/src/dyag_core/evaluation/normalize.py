"""Comparison forms of the values an answer states: words, numbers, dates, URLs and e-mail addresses.

Everything goes through dyag_core.text.fold (no accents, lower case, punctuation as spaces). On top of it:

- stems: a light French stem (trailing "s", then trailing "e"s, on alphabetic words of 4+ letters) so that
  "abandonnée" / "abandonné" / "abandonnées" and "nationale" / "national" compare equal;
- numbers: digits, and French number words for small counts ("quatre", "vingt-deux", "une") up to 99;
- dates: ISO (2019-04-03), dd/mm/yyyy (also with - or .), and French ("3 avril 2019", "1er avril 2019");
- URLs: scheme, "www." and the trailing slash dropped, host and path in lower case, default ports dropped;
  bare domains ("x.example.gouv.fr") count when their last label is a common top-level domain;
- e-mail addresses: lower case.

A TextView holds all of these for one text, computed once.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from dyag_core.text import fold

# ---------------------------------------------------------------- words


@lru_cache(maxsize=65536)
def stem(token: str) -> str:
    """'abandonnees' -> 'abandonn', 'nationale' -> 'national'; short or non-alphabetic tokens as they are."""
    if len(token) < 4 or not token.isalpha():
        return token
    if token.endswith("s"):
        token = token[:-1]
    while len(token) > 3 and token.endswith("e"):
        token = token[:-1]
    return token


def words(text: str) -> tuple[str, ...]:
    return tuple(fold(text).split())


def stems(text: str) -> tuple[str, ...]:
    return tuple(stem(t) for t in fold(text).split())


def find_all(haystack: tuple[str, ...], needle: tuple[str, ...]) -> list[int]:
    """Start positions of the contiguous token sequence `needle` in `haystack`."""
    if not needle or len(needle) > len(haystack):
        return []
    first, size = needle[0], len(needle)
    return [i for i in range(len(haystack) - size + 1) if haystack[i] == first and haystack[i : i + size] == needle]


# ---------------------------------------------------------------- numbers

_UNITS = {
    "zero": 0,
    "un": 1,
    "une": 1,
    "deux": 2,
    "trois": 3,
    "quatre": 4,
    "cinq": 5,
    "six": 6,
    "sept": 7,
    "huit": 8,
    "neuf": 9,
    "dix": 10,
    "onze": 11,
    "douze": 12,
    "treize": 13,
    "quatorze": 14,
    "quinze": 15,
    "seize": 16,
}
_TENS = {"vingt": 20, "vingts": 20, "trente": 30, "quarante": 40, "cinquante": 50, "soixante": 60}
NUMBER_WORDS = frozenset(_UNITS) | frozenset(_TENS) | {"cent"}


def _parse_number(tokens: tuple[str, ...], i: int) -> tuple[int, int] | None:
    """The French number spelled from tokens[i] (value, tokens used), up to 99 (and "cent")."""
    t = tokens[i]
    nxt = tokens[i + 1] if i + 1 < len(tokens) else ""
    if t == "cent":
        return 100, 1
    if t in _TENS:
        value, used = _TENS[t], 1
        if t == "soixante" and nxt in ("dix", "onze", "douze", "treize", "quatorze", "quinze", "seize"):
            return 60 + _UNITS[nxt], 2
        if t == "soixante" and nxt == "et" and i + 2 < len(tokens) and tokens[i + 2] == "onze":
            return 71, 3
        if nxt == "et" and i + 2 < len(tokens) and tokens[i + 2] in ("un", "une"):
            return value + 1, 3
        if nxt in _UNITS and 1 < _UNITS[nxt] < 10:
            return value + _UNITS[nxt], 2
        return value, used
    if t == "quatre" and nxt in ("vingt", "vingts"):  # quatre-vingt(s), quatre-vingt-dix, quatre-vingt-deux
        after = tokens[i + 2] if i + 2 < len(tokens) else ""
        if after in _UNITS and _UNITS[after] >= 1:
            return 80 + _UNITS[after], 3
        return 80, 2
    if t == "dix" and nxt in ("sept", "huit", "neuf"):
        return 10 + _UNITS[nxt], 2
    if t in _UNITS:
        return _UNITS[t], 1
    return None


def numbers_in(tokens: tuple[str, ...]) -> list[tuple[int, int, int]]:
    """(value, start, end) of every number stated in folded tokens: digits, and French words (longest first)."""
    found: list[tuple[int, int, int]] = []
    i = 0
    while i < len(tokens):
        t = tokens[i]
        if t.isdigit() and len(t) <= 9:
            found.append((int(t), i, i + 1))
            i += 1
            continue
        parsed = _parse_number(tokens, i) if t in NUMBER_WORDS else None
        if parsed:
            found.append((parsed[0], i, i + parsed[1]))
            i += parsed[1]
            continue
        i += 1
    return found


def as_int(fact: str) -> int | None:
    folded = fold(fact)
    return int(folded) if folded.isdigit() and len(folded) <= 9 else None


# ---------------------------------------------------------------- dates

MONTHS = {
    "janvier": 1,
    "janv": 1,
    "fevrier": 2,
    "février": 2,
    "fevr": 2,
    "févr": 2,
    "fev": 2,
    "fév": 2,
    "mars": 3,
    "avril": 4,
    "avr": 4,
    "mai": 5,
    "juin": 6,
    "juillet": 7,
    "juil": 7,
    "aout": 8,
    "août": 8,
    "septembre": 9,
    "sept": 9,
    "octobre": 10,
    "oct": 10,
    "novembre": 11,
    "nov": 11,
    "decembre": 12,
    "décembre": 12,
    "dec": 12,
    "déc": 12,
}  # lower case, with and without accents: dates are read from the text as it is, lowered
_MONTH_ALT = "|".join(sorted(MONTHS, key=len, reverse=True))
_DATE_PATTERNS = (
    (re.compile(r"(?<!\d)(\d{4})-(\d{1,2})-(\d{1,2})(?!\d)"), "ymd"),
    (re.compile(r"(?<!\d)(\d{1,2})[/.-](\d{1,2})[/.-](\d{4})(?!\d)"), "dmy"),
    (re.compile(rf"(?<![\w])(\d{{1,2}}|premier)(?:er)?\s+({_MONTH_ALT})\.?\s+(\d{{4}})(?!\d)"), "dMy"),
)
Date = tuple[int, int, int]


def _valid(year: int, month: int, day: int) -> Date | None:
    return (year, month, day) if 1 <= month <= 12 and 1 <= day <= 31 and 1000 <= year <= 2999 else None


def dates_in(text: str) -> list[Date]:
    """Every full date (year, month, day) stated in the text, in any of the supported forms."""
    plain = text.lower()
    found: list[Date] = []
    for pattern, order in _DATE_PATTERNS:
        for m in pattern.finditer(plain):
            a, b, c = m.groups()
            if order == "ymd":
                date = _valid(int(a), int(b), int(c))
            elif order == "dmy":
                date = _valid(int(c), int(b), int(a))
            else:
                date = _valid(int(c), MONTHS[b], 1 if a == "premier" else int(a))
            if date and date not in found:
                found.append(date)
    return found


def as_date(fact: str) -> Date | None:
    """The date a key fact states when the fact is nothing but a date."""
    plain = " ".join(fact.lower().split())
    for pattern, _ in _DATE_PATTERNS:
        if pattern.fullmatch(plain):
            dates = dates_in(plain)
            return dates[0] if dates else None
    return None


# ---------------------------------------------------------------- URLs and e-mail addresses

_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+", re.UNICODE)
_URL = re.compile(
    r"(?<![\w@.-])((?:[a-z][a-z0-9+.-]*://)?(?:www\.)?[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)+"
    r"(?::\d{1,5})?(?:/[^\s<>\"'«»()\[\]{}]*)?)",
    re.IGNORECASE,
)
# A bare domain (no scheme, no www.) is a URL only with one of these last labels.
BARE_TLDS = frozenset(
    "fr com org net eu io gov gouv info be ch de uk es it nl lu "
    "ca us int edu app dev re gp mq gf yt nc pf pm wf".split()
)
_TRAILING = ".,;:!?)»]}'\"…"


def normalize_url(url: str) -> str:
    """'HTTPS://www.Example.gouv.fr:443/Aide/' -> 'example.gouv.fr/aide'."""
    u = url.strip().rstrip(_TRAILING).lower()
    u = re.sub(r"^[a-z][a-z0-9+.-]*://", "", u)
    u = u.removeprefix("www.")
    host, _, rest = u.partition("/")
    host = re.sub(r":(80|443)$", "", host)
    path = rest.split("#", 1)[0].rstrip("/")
    return host + ("/" + path if path else "")


def is_url(text: str) -> bool:
    """A key fact that is a URL (with a scheme or www.)."""
    t = text.strip().lower()
    return bool(re.match(r"^([a-z][a-z0-9+.-]*://|www\.)\S+$", t))


def is_email(text: str) -> bool:
    return bool(_EMAIL.fullmatch(text.strip()))


def emails_in(text: str) -> list[str]:
    return list(dict.fromkeys(m.group(0).lower().rstrip(".") for m in _EMAIL.finditer(text)))


def urls_in(text: str) -> list[tuple[str, str]]:
    """(normalised, as written) of every URL in the text; e-mail addresses are not URLs."""
    plain = _EMAIL.sub(" ", text)
    found: dict[str, str] = {}
    for m in _URL.finditer(plain):
        surface = m.group(1).rstrip(_TRAILING)
        lowered = surface.lower()
        explicit = "://" in lowered or lowered.startswith("www.")
        host = normalize_url(surface).split("/", 1)[0].split(":", 1)[0]
        last = host.rsplit(".", 1)[-1]
        if not last.isalpha() or len(last) < 2:
            continue
        if not explicit and last not in BARE_TLDS:
            continue
        found.setdefault(normalize_url(surface), surface)
    return list(found.items())


# ---------------------------------------------------------------- one text, every view

_SENTENCE_END = re.compile(r"(?<=[.!?;])\s+|\n+")


@dataclass(frozen=True, slots=True)
class TextView:
    """One text in every comparison form. Token positions are shared by words, stems and sentence."""

    text: str
    words: tuple[str, ...]  # fold()ed tokens
    stems: tuple[str, ...]
    sentence: tuple[int, ...]  # the sentence index of each token
    urls: tuple[tuple[str, str], ...]  # (normalised, as written)
    emails: frozenset[str]
    dates: frozenset[Date]
    numbers: tuple[tuple[int, int, int], ...]  # (value, start, end)

    @property
    def url_set(self) -> frozenset[str]:
        return frozenset(u for u, _ in self.urls)

    @property
    def number_values(self) -> frozenset[int]:
        return frozenset(v for v, _, _ in self.numbers)


def view(text: str) -> TextView:
    tokens: list[str] = []
    sentence: list[int] = []
    for index, part in enumerate(_SENTENCE_END.split(text)):
        part_tokens = fold(part).split()
        tokens.extend(part_tokens)
        sentence.extend([index] * len(part_tokens))
    words_ = tuple(tokens)
    return TextView(
        text=text,
        words=words_,
        stems=tuple(stem(t) for t in words_),
        sentence=tuple(sentence),
        urls=tuple(urls_in(text)),
        emails=frozenset(emails_in(text)),
        dates=frozenset(dates_in(text)),
        numbers=tuple(numbers_in(words_)),
    )
