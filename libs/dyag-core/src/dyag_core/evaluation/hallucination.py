"""Hallucination: the answer asserts a value that contradicts the record.

The rules read the catalog (a CatalogIndex). Each finds a value in the answer, decides which record the
value is about, and compares. Values are compared in the evaluation's normal form (normalize.py).

Which record a value is about: the nearest catalog application named before it in the same sentence;
otherwise the question's own applications (its entity_ids).

1. wrong_status / invented_status — the answer asserts one of the catalog's statuses (its status
   vocabulary: every status some record holds) that is not the record's ("invented_status" when the
   record has none). Asserted means: preceded within 3 words by a cue ("est", "sont", "statut", "état",
   "actuellement", "toujours", "reste"…), at the start of a sentence, or right after another asserted
   status ("en projet ou en construction"); not negated ("n'est pas en production", "n'est plus…");
   not right after an event word ("mise en production", "passage en production", "avant", "depuis"…).
2. wrong_domain — the same for the catalog's domains and subdomains, cued by "domaine", "sous-domaine",
   "secteur" within 6 words.
3. wrong_scope — the same for geographic scopes ("nationale", "régionale"…), cued by "portée", "échelle",
   "niveau", "territoire", "périmètre", "couverture" within 8 words.
   For rules 1-3 a cue does not reach across a coordination ("du domaine « Biodiversité » et est en
   construction" asserts no domain "Construction"), and a value inside an application's name ("Registre
   électronique national…") is no assertion. They apply to questions about one or two applications (not
   listings or counts, whose answers name the criterion's value for many records).
4. invented_url — a URL (with a scheme, www., or a bare domain under a common TLD) that no record holds,
   and that is neither in the question nor in the expected answer.
5. other_entity_url — a catalog URL that belongs to none of the question's applications, in an answer
   about one or two applications.
6. other_entity — for a question about one application (definition, status, domain, actors, sites,
   contacts, scope, events, or an empty-field negative): the answer never names it, and its first
   sentence names another catalog application instead (another application presented as the answer).
7. unrelated_entity — for a "related" question: the answer names a catalog application that is not among
   the record's related applications/data (nor named in the question, the expected answer or the record's
   description).
8. wrong_member — for a listing or count: the answer names an application that does not meet the
   criterion (a status, a domain, an actor, resolved from the first key fact).
9. wrong_count — for a count: the answer states "N application(s)" and never the record's count.
10. wrong_date — for an events question: a full date that is none of the record's event dates (nor in
   the expected answer or the record's description).
11. invented_answer — for a negative question (unknown application, empty field): the answer does not
   abstain. This rule needs no catalog; without a catalog it is the only one that runs.

Limits, by design (the rules favour precision: a flagged answer is wrong; an unflagged one may still be):
- free-text inventions outside the catalog's vocabularies are not caught (a status no record uses, an
  invented actor, contact or description); missing facts are caught by fact recall instead;
- assertion cues and negation are lexical: "n'a jamais été en production" is read as negated, but an
  unusual phrasing may be missed or, rarely, misread;
- attribution is by proximity: "X, contrairement à Y, est en production" attributes the status to Y;
- an application whose name is a common word is matched wherever the word appears;
- a deeper path of a catalog URL ("…/aide/faq") counts as invented; paths are compared in lower case;
- bare domains are recognised only under BARE_TLDS; e-mail addresses are never URLs;
- invented_answer trusts the abstention phrases (metrics.ABSTENTION_PATTERNS): a negative question answered
  by a clarifying question with no refusal words ("Pouvez-vous préciser ?") counts as an invention.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache

from dyag_core.catalog.model import Catalog, Entity
from dyag_core.dataset.generate import ENTITY_TYPES
from dyag_core.dataset.templates import LISTING_ITEMS, status_words
from dyag_core.evaluation.metrics import negated
from dyag_core.evaluation.model import EvalCase, Hallucination
from dyag_core.evaluation.normalize import TextView, dates_in, normalize_url, stems, urls_in
from dyag_core.text import fold

ALL_RULES = (
    "wrong_status",
    "invented_status",
    "wrong_domain",
    "wrong_scope",
    "invented_url",
    "other_entity_url",
    "other_entity",
    "unrelated_entity",
    "wrong_member",
    "wrong_count",
    "wrong_date",
    "invented_answer",
)
CATALOG_FREE_RULES = ("invented_answer",)
MIN_NAME_CHARS = 3  # shorter short names are not looked for
MIN_LONG_NAME_WORDS = 3  # long names are looked for when at least this long


@dataclass(frozen=True, slots=True)
class _Role:
    role: str
    cues: frozenset[str]
    window: int
    sentence_start: bool  # a value at the start of a sentence is asserted


_ROLES = (
    _Role(
        "status",
        frozenset(
            "est sont statut status etat actuellement desormais toujours "
            "reste restent demeure encore situation phase stade".split()
        ),
        3,
        True,
    ),
    _Role("domain", frozenset("domaine domaines sous secteur secteurs".split()), 6, False),
    _Role("scope", frozenset("portee echelle niveau territoire perimetre couverture".split()), 8, False),
)
_WRONG = {"status": "wrong_status", "domain": "wrong_domain", "scope": "wrong_scope"}
_ROLE_WORDS = {"status": "le statut", "domain": "le domaine", "scope": "la portée géographique"}
_CHAIN_GAP = frozenset({"et", "ou", "puis"})
# A cue does not reach across these: "du domaine « Biodiversité » et est en construction" asserts no domain
# "construction".
_CLAUSE_BREAKS = frozenset({"et", "mais", "alors", "tandis", "puis", "ou"})
# A value right after one of these words is an event or a comparison, not an assertion ("mise en production").
_BLOCKERS = frozenset(
    "mis mise mises remis remise passage passe passee passees retour avant apres depuis lors pour vers".split()
)
_MANY = ("listing", "counting")  # questions about many records: their answers name the criterion for all
_SINGLE_ENTITY_TYPES = tuple(t for t in ENTITY_TYPES if t != "related") + ("negative_empty_field",)


Span = tuple[int, int, str]  # start, end (token positions), key (entity id or vocabulary value)


class _Phrases:
    """A set of token phrases, found longest first without overlap."""

    def __init__(self) -> None:
        self._by_first: dict[str, list[tuple[tuple[str, ...], str]]] = {}

    def add(self, phrase: tuple[str, ...], key: str) -> None:
        if phrase:
            entries = self._by_first.setdefault(phrase[0], [])
            if (phrase, key) not in entries:
                entries.append((phrase, key))
                entries.sort(key=lambda e: -len(e[0]))

    def find(self, tokens: tuple[str, ...]) -> list[Span]:
        found: list[Span] = []
        i = 0
        while i < len(tokens):
            for phrase, key in self._by_first.get(tokens[i], ()):
                if tokens[i : i + len(phrase)] == phrase:
                    found.append((i, i + len(phrase), key))
                    i += len(phrase)
                    break
            else:
                i += 1
        return found


def _role_values(entity: Entity, role: str) -> list[str]:
    if role == "status":
        return [entity.status] if entity.status else []
    if role == "domain":
        return [v for d in entity.domains for v in (d.domain, d.subdomain) if v]
    return [entity.scope] if entity.scope else []


@lru_cache(maxsize=8192)
def _cached_stems(text: str) -> tuple[str, ...]:
    return stems(text)


def _value_key(value: str) -> str:
    return " ".join(stems(value))


class CatalogIndex:
    """What the rules need from a catalog, computed once: vocabularies, URLs, names, listing criteria."""

    def __init__(self, catalog: Catalog) -> None:
        self.size = len(catalog.entities)
        self.version = catalog.version
        self.entities: dict[str, Entity] = catalog.by_id()
        self.labels: dict[str, str] = {}
        self.values: dict[str, dict[str, frozenset[str]]] = {}  # role -> entity id -> value keys
        self.vocabularies: dict[str, _Phrases] = {}
        for spec in _ROLES:
            phrases, per_entity = _Phrases(), {}
            for entity in catalog.entities:
                keys = set()
                for value in _role_values(entity, spec.role):
                    key = _value_key(value)
                    keys.add(key)
                    self.labels.setdefault(key, value)
                    phrases.add(tuple(key.split()), key)
                    if spec.role == "status":  # "en production" / "abandonnée" as the answers write it
                        phrases.add(stems(status_words(value).fact), key)
                per_entity[entity.id] = frozenset(keys)
            self.vocabularies[spec.role], self.values[spec.role] = phrases, per_entity
        self.url_owners: dict[str, frozenset[str]] = {}
        owners: dict[str, set[str]] = {}
        for entity in catalog.entities:
            for site in entity.sites:
                owners.setdefault(normalize_url(site.url), set()).add(entity.id)
        self.url_owners = {u: frozenset(ids) for u, ids in owners.items()}
        self.names = _Phrases()
        for entity in catalog.entities:
            if len(fold(entity.name).replace(" ", "")) >= MIN_NAME_CHARS:
                self.names.add(stems(entity.name), entity.id)
            if entity.long_name and len(stems(entity.long_name)) >= MIN_LONG_NAME_WORDS:
                self.names.add(stems(entity.long_name), entity.id)
        self.criteria: dict[str, set[str]] = {}  # fold(criterion value) -> member ids
        for entity in catalog.entities:
            values = [entity.status, status_words(entity.status).fact] if entity.status else []
            values += [d.domain for d in entity.domains] + [a.name for a in entity.actors]
            for value in values:
                self.criteria.setdefault(fold(value), set()).add(entity.id)

    @classmethod
    def of(cls, catalog: Catalog | CatalogIndex | None) -> CatalogIndex | None:
        return catalog if isinstance(catalog, CatalogIndex) or catalog is None else cls(catalog)

    def mentions(self, text: TextView) -> list[Span]:
        return self.names.find(text.stems)

    def mentioned_ids(self, text: str | TextView) -> set[str]:
        tokens = text.stems if isinstance(text, TextView) else _cached_stems(text)
        return {key for _, _, key in self.names.find(tokens)}

    def name(self, entity_id: str) -> str:
        entity = self.entities.get(entity_id)
        return entity.name if entity else entity_id


# ---------------------------------------------------------------- the rules


def detect(case: EvalCase, answer: TextView, index: CatalogIndex | None, abstained: bool) -> tuple[Hallucination, ...]:
    """Every contradiction the rules find in one answer (empty when none; see the module's docstring)."""
    found: list[Hallucination] = []
    if case.negative and not abstained and answer.words:
        found.append(
            Hallucination(
                "invented_answer",
                _short(answer.text),
                "la question n'a pas de réponse dans le catalogue : il fallait s'abstenir",
            )
        )
    if index is not None:
        mentions = index.mentions(answer)
        found += _vocabulary(case, answer, index, mentions)
        found += _urls(case, answer, index)
        found += _entities(case, answer, index, mentions)
        found += _count(case, answer)
        found += _dates(case, answer, index)
    return tuple(dict.fromkeys(found))


def _short(text: str, limit: int = 80) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _owner(position: int, answer: TextView, mentions: Sequence[Span], default: Sequence[str]) -> list[str]:
    """The application a value at `position` is about: the last one named before it in its sentence."""
    before = [m for m in mentions if m[1] <= position and answer.sentence[m[0]] == answer.sentence[position]]
    return [before[-1][2]] if before else list(default)


def _asserted(spec: _Role, answer: TextView, spans: list[Span]) -> list[Span]:
    kept: list[Span] = []
    for start, end, key in spans:
        sentence = answer.sentence[start]
        window: list[int] = []
        for i in range(start - 1, max(-1, start - 1 - spec.window), -1):
            if answer.sentence[i] != sentence or answer.words[i] in _CLAUSE_BREAKS:
                break
            window.insert(0, i)
        if negated(answer, start) or (start and answer.words[start - 1] in _BLOCKERS):
            continue
        cue = any(answer.words[i] in spec.cues for i in window)
        opening = spec.sentence_start and (start == 0 or answer.sentence[start - 1] != sentence)
        chained = (
            bool(kept)
            and 0 <= start - kept[-1][1] <= 2
            and all(answer.words[i] in _CHAIN_GAP for i in range(kept[-1][1], start))
        )
        if cue or opening or chained:
            kept.append((start, end, key))
    return kept


def _overlaps(span: Span, taken: Sequence[Span]) -> bool:
    return any(span[0] < t[1] and t[0] < span[1] for t in taken)


def _vocabulary(case: EvalCase, answer: TextView, index: CatalogIndex, mentions: list[Span]) -> list[Hallucination]:
    known = [e for e in case.entity_ids if e in index.entities]
    if not known or len(known) > 2 or case.qtype in _MANY:
        return []
    found = []
    taken: list[Span] = list(mentions)  # a value inside an application's name ("Registre … national") is no assertion
    for spec in _ROLES:
        spans = [span for span in index.vocabularies[spec.role].find(answer.stems) if not _overlaps(span, taken)]
        taken += spans
        for start, end, key in _asserted(spec, answer, spans):
            owners = _owner(start, answer, mentions, known)
            allowed = set().union(*(index.values[spec.role].get(o, frozenset()) for o in owners))
            if key in allowed:
                continue
            said = " ".join(answer.words[start:end])
            names = " / ".join(index.name(o) for o in owners)
            if spec.role == "status" and not allowed:
                found.append(
                    Hallucination(
                        "invented_status", said, f"le statut de {names} n'est pas renseigné dans le catalogue"
                    )
                )
            else:
                record = " ; ".join(sorted(index.labels[k] for k in allowed)) or "non renseigné"
                found.append(
                    Hallucination(_WRONG[spec.role], said, f"{_ROLE_WORDS[spec.role]} de {names} est « {record} »")
                )
    return found


def _urls(case: EvalCase, answer: TextView, index: CatalogIndex) -> list[Hallucination]:
    given = {u for u, _ in urls_in(case.question)} | {u for u, _ in urls_in(case.expected_answer)}
    scoped = 1 <= len(case.entity_ids) <= 2 and case.qtype not in _MANY
    found = []
    for url, surface in answer.urls:
        owners = index.url_owners.get(url)
        if owners is None:
            if url not in given:
                found.append(
                    Hallucination("invented_url", surface, "aucune application du catalogue n'a cette adresse")
                )
        elif scoped and not owners & set(case.entity_ids):
            names = ", ".join(sorted(index.name(o) for o in owners))
            found.append(
                Hallucination(
                    "other_entity_url",
                    surface,
                    f"cette adresse est celle de {names}, pas de {' / '.join(index.name(e) for e in case.entity_ids)}",
                )
            )
    return found


def _entities(case: EvalCase, answer: TextView, index: CatalogIndex, mentions: list[Span]) -> list[Hallucination]:
    named = list(dict.fromkeys(key for _, _, key in mentions))
    if not named:
        return []
    context = index.mentioned_ids(case.question) | index.mentioned_ids(case.expected_answer)
    if case.qtype in _SINGLE_ENTITY_TYPES and len(case.entity_ids) == 1 and case.entity_ids[0] in index.entities:
        asked = case.entity_ids[0]
        if asked in named:
            return []
        first = [key for start, _, key in mentions if answer.sentence[start] == answer.sentence[0]]
        others = [o for o in dict.fromkeys(first) if o not in context]
        return [
            Hallucination("other_entity", index.name(o), f"la question porte sur {index.name(asked)}")
            for o in others[:1]
        ]
    if case.qtype == "related" and len(case.entity_ids) == 1 and case.entity_ids[0] in index.entities:
        entity = index.entities[case.entity_ids[0]]
        links = [link.target for link in (*entity.related_applications, *entity.related_data)]
        allowed = context | {entity.id} | set().union(*(index.mentioned_ids(t) for t in links))
        if entity.description:
            allowed |= index.mentioned_ids(entity.description)
        return [
            Hallucination("unrelated_entity", index.name(o), f"le catalogue ne lie pas {index.name(o)} à {entity.name}")
            for o in named
            if o not in allowed
        ]
    if case.qtype in _MANY:
        members = _members(case, index)
        if members is None:
            return []
        criterion = case.key_facts[0] if case.key_facts else "le critère"
        return [
            Hallucination(
                "wrong_member", index.name(o), f"{index.name(o)} ne correspond pas au critère « {criterion} »"
            )
            for o in named
            if o not in members | context
        ]
    return []


def _members(case: EvalCase, index: CatalogIndex) -> set[str] | None:
    """Every application meeting a listing's criterion (its first key fact), or None when it cannot be told."""
    resolved = index.criteria.get(fold(case.key_facts[0])) if case.key_facts else None
    if resolved is None and len(case.entity_ids) >= LISTING_ITEMS:
        return None  # the listing names only the first LISTING_ITEMS: the others cannot be told apart
    return set(case.entity_ids) | (resolved or set())


def _count(case: EvalCase, answer: TextView) -> list[Hallucination]:
    if case.qtype != "counting" or not case.key_facts or not case.key_facts[-1].strip().isdigit():
        return []
    gold = int(case.key_facts[-1])
    stated = [
        value
        for value, _, end in answer.numbers
        if any(w.startswith("application") for w in answer.words[end : end + 2])
    ]
    if stated and gold not in stated:
        return [Hallucination("wrong_count", str(stated[0]), f"le catalogue en compte {gold}")]
    return []


def _dates(case: EvalCase, answer: TextView, index: CatalogIndex) -> list[Hallucination]:
    if case.qtype != "events" or len(case.entity_ids) != 1 or case.entity_ids[0] not in index.entities:
        return []
    entity = index.entities[case.entity_ids[0]]
    allowed = {d for e in entity.events if e.date for d in dates_in(e.date)} | set(dates_in(case.expected_answer))
    if entity.description:
        allowed |= set(dates_in(entity.description))
    return [
        Hallucination("wrong_date", f"{d[2]:02d}/{d[1]:02d}/{d[0]}", f"aucun événement de {entity.name} à cette date")
        for d in sorted(answer.dates)
        if d not in allowed
    ]


def active_rules(index: CatalogIndex | None) -> tuple[str, ...]:
    return ALL_RULES if index is not None else CATALOG_FREE_RULES


def entity_names(index: CatalogIndex | None, ids: Iterable[str]) -> dict[str, str]:
    return {i: index.name(i) if index else i for i in ids}
