"""French grammar for answers and questions: elision, lists, mentions of an application, dates, statuses in
sentences."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

from dyag_core.catalog.model import Entity
from dyag_core.text import fold, strip_accents

INLINE_ITEMS = 6  # longer lists become a short bulleted list
SHOWN_ITEMS = 15  # at most this many items in one answer ("… et 4 autres")
LONG_NAME_MENTION_CHARS = 70  # longer long names are not used to ask questions


def clean(text: str) -> str:
    """One line, single spaces."""
    return " ".join(text.split())


def lower_first(text: str) -> str:
    """'En production' -> 'en production'; acronyms ('MCO', 'DREAL Bretagne') are left alone."""
    if not text or (len(text) > 1 and text[1].isupper()):
        return text
    return text[0].lower() + text[1:]


def upper_first(text: str) -> str:
    return text[:1].upper() + text[1:]


_VOWELS = frozenset("aeiouAEIOUàâäéèêëîïôöùûüÀÂÄÉÈÊËÎÏÔÖÙÛÜ")


def _elides(text: str) -> bool:
    return text[:1] in _VOWELS


def de(mention: str) -> str:
    return f"d'{mention}" if _elides(mention) else f"de {mention}"


def que(mention: str) -> str:
    return f"qu'{mention}" if _elides(mention) else f"que {mention}"


def join_fr(items: Sequence[str]) -> str:
    """'A', 'A et B', 'A, B et C'."""
    if len(items) <= 1:
        return "".join(items)
    return f"{', '.join(items[:-1])} et {items[-1]}"


def bullets(items: Sequence[str]) -> str:
    return "".join(f"\n- {item}" for item in items)


def render_items(items: Sequence[str], limit: int = SHOWN_ITEMS) -> tuple[str, tuple[str, ...]]:
    """Items as text after a colon: inline when short, bulleted when long; (text, items shown)."""
    shown = tuple(items[:limit])
    rest = len(items) - len(shown)
    if len(shown) <= INLINE_ITEMS and not rest:
        return " " + join_fr(shown), shown
    tail = f"\n- et {rest} autre{'s' if rest > 1 else ''}" if rest else ""
    return bullets(shown) + tail, shown


@lru_cache(maxsize=16384)
def mention_fields(mention: str, prefix: str = "x") -> dict[str, str]:
    """The placeholders of one mention: {x}, {X}, {de_x}, {que_x} (cached: do not modify the result)."""
    return {
        prefix: mention,
        prefix.upper(): upper_first(mention),
        f"de_{prefix}": de(mention),
        f"que_{prefix}": que(mention),
    }


def entity_mentions(entity: Entity) -> tuple[str, ...]:
    """The ways a question names an entity: short name, 'l'application X', its long name."""
    return _mentions(entity.name, entity.long_name)


@lru_cache(maxsize=4096)
def _mentions(name: str, long_name: str | None) -> tuple[str, ...]:
    forms = [name, f"l'application {name}"]
    if long_name and fold(long_name) != fold(name) and len(long_name) <= LONG_NAME_MENTION_CHARS:
        forms.append(f"l'application {clean(long_name)}")
    return tuple(forms)


def app(entity: Entity) -> str:
    """How an answer names an entity: "l'application 8-SINP (Plateformes régionales SINP habilitées)"."""
    return f"l'application {clean(entity.display_name)}"


_MONTHS = (
    "janvier",
    "février",
    "mars",
    "avril",
    "mai",
    "juin",
    "juillet",
    "août",
    "septembre",
    "octobre",
    "novembre",
    "décembre",
)
_ISO_DATE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})$")


def french_date(value: str) -> str:
    """'2019-04-01' -> '1er avril 2019'; anything else is returned as it is."""
    match = _ISO_DATE.match(value)
    if not match or not 1 <= int(match.group(2)) <= 12:
        return value
    year, month, day = (int(g) for g in match.groups())
    return f"{'1er' if day == 1 else day} {_MONTHS[month - 1]} {year}"


# ---------------------------------------------------------------- statuses


@dataclass(frozen=True, slots=True)
class StatusWords:
    """A status as it reads inside sentences."""

    fact: str  # what the answer states: "en production"
    verb: str  # singular: "est actuellement en production"
    verb_plural: str  # "sont en production"
    adj: str  # singular, after "application": "en production"
    adj_plural: str  # "en production", "abandonnées"
    in_production: bool


_PARTICIPLE_ENDINGS = ("ée", "é", "ue", "ive", "ète", "ie", "és", "ées")
_STATUS_PREPOSITIONS = ("en ", "à ", "au ", "hors ")


@lru_cache(maxsize=4096)
def status_words(status: str) -> StatusWords:
    """How a status reads in sentences (cached: catalogs use few distinct statuses, answers ask often)."""
    value = clean(status)
    lowered = lower_first(value)
    in_production = fold(value).startswith("en production")
    if fold(lowered).startswith(tuple(strip_accents(p) for p in _STATUS_PREPOSITIONS)):
        now = "actuellement " if lowered.startswith("en ") else ""
        return StatusWords(lowered, f"est {now}{lowered}", f"sont {lowered}", lowered, lowered, in_production)
    if " " not in lowered and lowered.lower().endswith(_PARTICIPLE_ENDINGS):
        plural = lowered if lowered.endswith("s") else lowered + "s"
        return StatusWords(lowered, f"est {lowered}", f"sont {plural}", lowered, plural, in_production)
    quoted = f"« {value} »"
    return StatusWords(
        value,
        f"a pour statut {quoted}",
        f"ont pour statut {quoted}",
        f"au statut {quoted}",
        f"au statut {quoted}",
        in_production,
    )
