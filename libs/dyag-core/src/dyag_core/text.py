"""Text normalisation shared by the whole domain: keys, comparison forms, mojibake, placeholders."""

from __future__ import annotations

import re
import unicodedata

import ftfy

_NON_ALNUM = re.compile(r"[^0-9a-z]+")
# Sequences that UTF-8 text read as cp1252/latin-1 produces ("Ã©" for "é", "â€™" for "’").
_MOJIBAKE_HINT = re.compile(
    "[ÃÂâÅ][\u0080-\u00ff\u0152\u0153\u0160\u0161\u0178\u017d\u017e\u0192\u02c6\u02dc\u2013-\u203a\u20ac\u2122]"
)
# Values that real exports use for "not filled in yet".
_PLACEHOLDER = re.compile(
    r"^\s*(\*{2,}[^*]*\*{2,}|n/?a|n\.?c\.?|tbd|todo|à compléter|a completer|non renseigné|non renseigne|[-–?.]+)\s*$",
    re.IGNORECASE,
)


def strip_accents(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def normalize_key(key: str) -> str:
    """'Statut SI', 'statut_si' and 'statut si' all become 'statut si'."""
    return _NON_ALNUM.sub(" ", strip_accents(key).lower()).strip()


def fold(text: str) -> str:
    """A comparison form: no accents, lower case, single spaces, punctuation kept out."""
    return " ".join(_NON_ALNUM.sub(" ", strip_accents(text).lower()).split())


def has_mojibake(text: str) -> bool:
    return bool(_MOJIBAKE_HINT.search(text))


def repair_mojibake(text: str) -> str:
    """Undo UTF-8 text that was decoded as cp1252 ('Ã©' -> 'é'); other text is returned as is."""
    if text.isascii() or not has_mojibake(text):
        return text
    return ftfy.fix_encoding(text)


def is_placeholder(text: str) -> bool:
    """True for '***TEMPORAIRE***', 'N/A', '-', 'à compléter' and the like."""
    return bool(_PLACEHOLDER.match(text))


def clean_scalar(value: object) -> str | None:
    """A record value as display text, or None when it is empty or a placeholder."""
    if value is None or isinstance(value, (list, dict)):
        return None
    text = str(value).strip()
    if not text or is_placeholder(text):
        return None
    return text


_SPACED_URL = re.compile(r"^(https?)\s+(\S.*)$", re.IGNORECASE)


def repair_url(url: str) -> str:
    """'https  www geoval example gouv fr ' (an export that replaced '://' and dots by spaces) -> 'https://www.geoval.example.gouv.fr'."""
    url = url.strip()
    if "://" in url:
        return url
    match = _SPACED_URL.match(url)
    if not match:
        return url
    scheme, rest = match.groups()
    return f"{scheme.lower()}://" + ".".join(rest.split())


def slugify(text: str) -> str:
    return _NON_ALNUM.sub("-", strip_accents(text).lower()).strip("-")
