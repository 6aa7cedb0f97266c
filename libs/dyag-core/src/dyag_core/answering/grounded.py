"""Grounded answers: the question understood, then answered from the catalog's records themselves.

1. Entities: the catalog's entity linker (names, long names, aliases, typos) finds the applications named; a
   question that names none but describes one ("l'outil des zones humides") is matched against the records'
   long names, descriptions and functions (DescriptionIndex), when one record stands out.
2. Criteria: the same linker, built over the catalog's statuses, domains, sub-domains, actors, scopes and
   families, finds what a catalog-wide question filters on ("en production", "DGALN/DEB").
3. Intents: the classifier (intent.py), learned from the registry, says which field(s) are asked, with a
   calibrated confidence; each clause of the question ("Qui gère X et où le trouver ?") is read too.
4. The answer is rendered by the registry from the record: the same sentences the dataset teaches, the key
   facts, and the (entity, field) pairs it cites. An empty field says "n'est pas renseigné"; a name the
   catalog does not hold says "je ne connais pas d'application nommée …". Nothing is ever made up.

`understood` is False when the question could not be read with confidence: the caller (rag-service's auto
mode) then asks a language model, giving it the records found here.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from dyag_core.answering.intent import CRITERION_MASK, ENTITY_MASK, IntentClassifier, Scored, fill_phrasing
from dyag_core.catalog.model import Catalog, Entity
from dyag_core.dataset import templates as t
from dyag_core.dataset.registry import INTENTS, Intent
from dyag_core.rag.linking import EntityLinker, EntityNames, LinkedEntity, vocabularies
from dyag_core.rag.tokens import STOPWORDS, stem, words
from dyag_core.text import fold, normalize_key

# The best intent's calibrated probability needed for the question to count as understood: below it, auto mode asks
# the model (which, given the record, states the asked fact for about 70 % of questions with the best CPU model).
MIN_CONFIDENCE = 0.3
VALUE_OVERRIDE = 0.6  # below this, a value of the record's own fields quoted in the question says which field is asked
CLAUSE_CONFIDENCE = 0.5  # a clause adds its intent ("… et où le trouver ?") only when this sure
MIN_ENTITY_SCORE = 0.5  # linker scores below this (a long name with a quarter of its words missing) name nothing
QUOTE_PREFIX = 6  # two words sharing this many first letters are one ("décommissionnée" quotes "Décommissionnement")
SURE_INTENT = 0.9  # a field quoted by its value adds to an intent this sure, else takes its place
_CLAUSE_SPLIT = re.compile(r"\s*(?:\bet\b|\band\b|\bainsi que\b|\bpuis\b|\baussi\b|[,;:+?!])\s*", re.IGNORECASE)
_YES_NO = re.compile(r"\b(est[- ](?:elle|il|ce)|c est)\b.*\ben production\b")


@dataclass(frozen=True, slots=True)
class Citation:
    entity_id: str
    entity_name: str
    field: str


@dataclass(frozen=True, slots=True)
class GroundedAnswer:
    question: str
    understood: bool  # False: not read with confidence; `text` is then empty (or a refusal in grounded mode)
    text: str
    kind: str  # entity | comparison | listing | counting | unknown_entity | empty_field | not_understood
    intents: tuple[str, ...]
    confidence: float
    citations: tuple[Citation, ...] = ()
    key_facts: tuple[str, ...] = ()
    entities: tuple[str, ...] = ()  # the ids of the applications the question names
    notes: tuple[str, ...] = field(default=())


@dataclass(frozen=True, slots=True)
class _Criterion:
    role: str
    value: str
    members: tuple[Entity, ...]


def registry_examples(intents: Iterable[Intent] = INTENTS.values()) -> list[tuple[str, str]]:
    """The classifier's training set: each intent's phrasings, and its labels in the short forms users type."""
    examples: list[tuple[str, str]] = []
    for intent in intents:
        mask = ENTITY_MASK if intent.scope != "catalog" else CRITERION_MASK
        examples += [(fill_phrasing(p), intent.name) for p in intent.phrasings]
        for label in intent.labels:
            examples += [
                (f"{label} {mask} ?", intent.name),
                (f"{mask} {label} ?", intent.name),
                (f"{label} de {mask}", intent.name),
            ]
    return examples


FIELD_INTENT = "field:"  # an export's own field that no registry intent reads ("field:utilisateurs")
_FIELD_PHRASINGS = ("{key} de {x} ?", "quel est le champ {key} de {x} ?", "{x} : {key} ?")


def catalog_examples(catalog: Catalog) -> list[tuple[str, str]]:
    """What the catalog itself teaches the classifier: the roles it gives its actors ("MOA", "Exploitant"), as short
    questions about the actors (users ask "qui est la MOA de X ?"; contacts' roles, "Responsable technique", would
    blur actors and contacts), and every field of the export that no registry intent reads ("utilisateurs"), as an
    intent of its own: any field a catalog has can be asked about."""
    roles = [(a.role, "actors") for e in catalog.entities for a in e.actors if a.role]
    examples = []
    for role, intent in dict.fromkeys((t.clean(r), i) for r, i in roles):
        examples += [(f"{role} de {ENTITY_MASK} ?", intent), (f"qui est {role} de {ENTITY_MASK}", intent)]
    for key in sorted({k for e in catalog.entities for k in e.extra}):
        examples += [(p.format(key=key, x=ENTITY_MASK), FIELD_INTENT + key) for p in _FIELD_PHRASINGS]
    return examples


class GroundedAnswerer:
    """Built once per catalog version; answer() then takes well under a millisecond per question."""

    def __init__(self, catalog: Catalog, extra_examples: Iterable[tuple[str, str]] = ()):
        self.catalog = catalog
        self.by_id = catalog.by_id()
        self.linker = EntityLinker.from_entities(catalog.entities)
        texts = [x for e in catalog.entities for x in (e.long_name, e.description, e.functions) if x]
        self.vocabulary = vocabularies(texts)[0]
        self.classifier = IntentClassifier([*registry_examples(), *catalog_examples(catalog), *extra_examples])
        self._criteria = _criteria_of(catalog.entities)
        # The words questions use (the classifier's) are never a value's distinctive part ("fonctions" of "Fonctions
        # support") nor a typo of a value ("héberge" is not "Hébergeur").
        self.criteria_linker = EntityLinker(
            (EntityNames(key, value) for key, (_, value, _) in self._criteria.items()), self.classifier.words
        )
        self._extra_fields = _extra_fields(catalog.entities)
        self.descriptions = DescriptionIndex(catalog.entities, self.classifier.words)
        # the words of comparisons ("comparer", "différence", "même"), which the field a comparison is about is
        # read without
        self._comparison_words = {w for p in INTENTS["comparative"].phrasings for w in words(fill_phrasing(p))} - {
            ENTITY_MASK
        } | {"meme", "memes"}

    # ------------------------------------------------------------------ understanding
    def _intents(
        self, question: str, entity_spans: Sequence[str], criterion_spans: Sequence[str] = ()
    ) -> tuple[list[Scored], list[str]]:
        """The whole question's ranking, and the intents asked: the best, plus each clause's when it is confident
        ("PREVICRUE : statut, domaine, hébergement" asks three)."""

        def masked(text: str) -> str:
            return _mask(_mask(text, entity_spans, ENTITY_MASK), criterion_spans, CRITERION_MASK)

        ranking = self.classifier.predict(masked(question))
        asked = [ranking[0].intent]
        for clause in _CLAUSE_SPLIT.split(question):
            clause = masked(clause)
            if not [w for w in words(clause) if w not in STOPWORDS and w not in (ENTITY_MASK, CRITERION_MASK)]:
                continue
            scored = self.classifier.predict(clause)
            if scored[0].probability >= CLAUSE_CONFIDENCE and scored[0].intent not in asked:
                asked.append(scored[0].intent)
        return ranking, asked

    def answer(self, question: str) -> GroundedAnswer:
        linked = [m for m in self.linker.link(question, self.vocabulary) if m.score >= MIN_ENTITY_SCORE]
        entities = _in_question_order(
            question, [(self.by_id[m.entity_id], m.matched) for m in linked if m.entity_id in self.by_id]
        )
        if not entities:  # "l'application 1301": an identifier names its record too
            entities = [self.by_id[w] for w in dict.fromkeys(re.findall(r"\b\d{2,}\b", question)) if w in self.by_id]
        entity_spans = [m.matched for m in linked]
        if not entities and not linked and not self._unknown_names(question):  # "l'outil des zones humides": described
            described = self.descriptions.best(question)
            if described and self.classifier.predict(question)[0].intent not in ("listing", "counting"):
                entities, entity_spans = [self.by_id[described[0]]], list(described[1])
        criteria = self._link_criteria(question, linked)
        # a criterion is masked only where it may be what the question filters on (no application named)
        ranking, asked = self._intents(question, entity_spans, [] if entities else [m.matched for _, m in criteria])
        best = ranking[0]
        confident = best.probability >= MIN_CONFIDENCE
        if (
            len(entities) == 1
        ):  # "le webmestre de X", "X a été décommissionnée quand ?": a role or an event's kind quoted
            quoted = _intent_by_quoted_label(entities[0], question, self.classifier.words)
            if quoted and quoted not in asked:
                if best.probability < SURE_INTENT:  # it takes the place of an unsure reading
                    asked, best = [quoted, *asked[1:]], Scored(quoted, max(best.probability, MIN_CONFIDENCE))
                else:  # a sure one keeps its place, the quoted field is added
                    asked = [*asked, quoted]
                confident = True
        if len(entities) == 1 and best.probability < VALUE_OVERRIDE:
            # "ESPECIA c'est un téléservice ?": the question quotes a value of one of the record's fields: it
            # asks that field
            field_intent = _field_by_value(entities[0], question, entity_spans, self.classifier.words)
            if field_intent:
                best, asked, confident = (
                    Scored(field_intent, max(best.probability, MIN_CONFIDENCE)),
                    [field_intent],
                    True,
                )
        ids = tuple(e.id for e in entities)
        extra = (
            best.intent.removeprefix(FIELD_INTENT)
            if best.intent.startswith(FIELD_INTENT)
            else self._extra_field(question)
        )

        catalog_wide = best.intent in ("listing", "counting")
        if catalog_wide and entities and criteria:  # the named "application" was a criterion's word after all
            ranking, asked = self._intents(question, entity_spans, [m.matched for _, m in criteria])
            best = ranking[0]
        if catalog_wide and criteria and (confident or not entities):
            return self._catalog_wide(question, best, [c for c, _ in criteria], ids)
        if catalog_wide and confident and not entities and not criteria and best.intent == "counting":
            total = len(self.catalog.entities)
            return GroundedAnswer(
                question,
                True,
                f"Le catalogue compte {total} applications en tout.",
                "counting",
                ("counting",),
                best.probability,
                key_facts=(str(total),),
            )
        if not entities:
            unknown = self._unknown_names(question)
            if unknown and (confident or best.intent not in INTENTS or INTENTS[best.intent].scope != "catalog"):
                answer = t.answer_unknown_entity(unknown[0], 0)
                return GroundedAnswer(question, True, answer.text, "unknown_entity", (best.intent,), best.probability)
            return GroundedAnswer(
                question,
                False,
                "",
                "not_understood",
                (best.intent,),
                best.probability,
                notes=("aucune application ni aucun critère du catalogue reconnu dans la question",),
            )
        top3 = {s.intent for s in ranking[:3]}
        if len(entities) >= 2 and (
            best.intent == "comparative"
            or "comparative" in asked
            or (best.probability < VALUE_OVERRIDE and "comparative" in top3)
        ):
            a, b = entities[:2]
            answer = t.answer_comparative(a, b)
            citations = tuple(Citation(e.id, e.name, f) for e in (a, b) for f in answer.fields)
            compared = self._compared_field(question, entity_spans, asked)
            if (
                compared
            ):  # "compare la techno de A et B", "A et B ont-ils la même MOA ?": that field of each, then the rest
                each = self._entity_answer(question, (a, b), [compared], best.probability, ids)
                return GroundedAnswer(
                    question,
                    True,
                    f"{each.text}\n{answer.text}",
                    "comparison",
                    ("comparative", compared.name),
                    best.probability,
                    (*each.citations, *citations),
                    (*each.key_facts, *answer.key_facts),
                    ids,
                )
            return GroundedAnswer(
                question,
                True,
                answer.text,
                "comparison",
                ("comparative",),
                best.probability,
                citations,
                answer.key_facts,
                ids,
            )
        if extra and (
            best.intent.startswith(FIELD_INTENT)
            or not confident
            or best.probability < 0.8
            or INTENTS[best.intent].scope != "entity"
        ):
            return self._extra_answer(question, entities, extra, ids, best.probability)
        if not confident:
            return GroundedAnswer(
                question,
                False,
                "",
                "not_understood",
                tuple(asked),
                best.probability,
                entities=ids,
                notes=(f"intention incertaine : {best.intent} ({best.probability:.2f})",),
            )
        if not [
            w for w in words(_mask(question, entity_spans, ENTITY_MASK)) if w not in STOPWORDS and w != ENTITY_MASK
        ]:
            asked = ["summary"]  # a bare name ("ECOMOBI ?"): what the catalog says of it
        chosen = [INTENTS[i] for i in asked if i in INTENTS and INTENTS[i].scope == "entity"]
        if not chosen:  # a catalog-wide intent with no criterion found, about a named application: summarise it
            chosen = [INTENTS["summary"]]
        return self._entity_answer(question, entities, chosen, best.probability, ids)

    # ------------------------------------------------------------------ answering
    def _entity_answer(
        self,
        question: str,
        entities: Sequence[Entity],
        chosen: Sequence[Intent],
        confidence: float,
        ids: tuple[str, ...],
    ) -> GroundedAnswer:
        texts: list[str] = []
        facts: list[str] = []
        citations: list[Citation] = []
        empty = 0
        yes_no = bool(_YES_NO.search(fold(question)))
        for entity in entities[:3]:
            for intent in chosen:
                if intent.name == "status" and yes_no and entity.status:
                    answer = t.answer_status(entity, yes_no=True)
                else:
                    answer = intent.answer(entity)
                if not intent.applies(entity):
                    empty += 1
                texts.append(answer.text)
                facts += answer.key_facts
                citations += [Citation(entity.id, entity.name, f) for f in answer.fields]
        kind = "empty_field" if empty == len(texts) else "entity"
        return GroundedAnswer(
            question,
            True,
            "\n".join(texts),
            kind,
            tuple(i.name for i in chosen),
            confidence,
            tuple(dict.fromkeys(citations)),
            tuple(dict.fromkeys(facts)),
            ids,
        )

    def _catalog_wide(
        self, question: str, best: Scored, criteria: Sequence[_Criterion], ids: tuple[str, ...]
    ) -> GroundedAnswer:
        members = set(criteria[0].members)
        for c in criteria[1:]:
            members &= set(c.members)
        ordered = tuple(e for e in self.catalog.entities if e in members)
        criterion = _combined(criteria, ordered)
        answer = t.answer_listing(criterion) if best.intent == "listing" else t.answer_counting(criterion)
        if not ordered:
            answer = t.Answer(f"Aucune application du catalogue n'est {criterion.adj_one}.", ("0",), answer.fields)
        citations = tuple(Citation(e.id, e.name, c.role) for e in ordered for c in criteria)
        return GroundedAnswer(
            question, True, answer.text, best.intent, (best.intent,), best.probability, citations, answer.key_facts, ids
        )

    def _extra_answer(
        self, question: str, entities: Sequence[Entity], key: str, ids: tuple[str, ...], confidence: float
    ) -> GroundedAnswer:
        texts, facts, citations = [], [], []
        for entity in entities[:3]:
            value = _extra_text(entity.extra.get(key))
            if value:
                texts.append(f"Pour {t.app(entity)}, le catalogue indique ({key}) : {value}.")
                facts.append(value)
            else:
                texts.append(f"L'information « {key} » de {t.app(entity)} n'est pas renseignée dans le catalogue.")
            citations.append(Citation(entity.id, entity.name, key))
        kind = "entity" if facts else "empty_field"
        return GroundedAnswer(
            question,
            True,
            "\n".join(texts),
            kind,
            (f"field:{key}",),
            max(confidence, 0.8),
            tuple(citations),
            tuple(facts),
            ids,
        )

    # ------------------------------------------------------------------ helpers
    def _link_criteria(self, question: str, linked: Sequence[LinkedEntity]) -> list[tuple[_Criterion, LinkedEntity]]:
        named = {w for m in linked for w in m.matched.split()}
        found = []
        for match in self.criteria_linker.link(question, self.classifier.words):  # "régionales" still reads "Régionale"
            if match.score < MIN_ENTITY_SCORE or set(match.matched.split()) <= named:
                continue
            role, value, members = self._criteria[match.entity_id]
            found.append((_Criterion(role, value, members), match))
        # one value per role: the best match
        best: dict[str, tuple[_Criterion, LinkedEntity]] = {}
        for criterion, match in found:
            best.setdefault(criterion.role, (criterion, match))
        return list(best.values())

    def _compared_field(self, question: str, entity_spans: Sequence[str], asked: Sequence[str]) -> Intent | None:
        """The field a comparison is about, when it names one: the first entity intent asked by a clause, else the
        best entity intent of the question read without its comparison words."""
        for name in asked:
            if name in INTENTS and INTENTS[name].scope == "entity" and name not in ("summary", "definition"):
                return INTENTS[name]
        text = _mask(question, entity_spans, ENTITY_MASK)
        for scored in self.classifier.predict(" ".join(w for w in text.split() if w not in self._comparison_words)):
            intent = INTENTS.get(scored.intent)
            if (
                intent is not None
                and intent.scope == "entity"
                and scored.probability >= CLAUSE_CONFIDENCE
                and intent.name not in ("summary", "definition")
            ):
                return intent
            if scored.probability < CLAUSE_CONFIDENCE:
                break
        return None

    def _unknown_names(self, question: str) -> list[str]:
        """What the question spells like an application's name, and the catalog does not hold ("BRUIT-MAP")."""
        known_words = self.vocabulary | self.classifier.words
        return [
            u
            for u in self.linker.unknown_mentions(question, [], self.vocabulary)
            if not all(w in known_words or w in STOPWORDS for w in words(u))
        ]

    def _extra_field(self, question: str) -> str | None:
        """A field of the export that no intent reads ("utilisateurs"), when the question names it."""
        stems = {stem(w) for w in words(question)}
        for key, needed in self._extra_fields.items():  # "utilisent" names "utilisateurs"
            if needed and all(_prefix_match(w, stems) for w in needed):
                return key
        return None


def _value_words(text: str | None) -> set[str]:
    return {stem(w) for w in words(text or "") if len(w) >= 3 and w not in STOPWORDS and not w.isdigit()}


def _field_by_value(
    entity: Entity, question: str, entity_spans: Sequence[str], question_words: frozenset[str]
) -> str | None:
    """The one intent whose field values the question quotes ("c'est du .NET ?" quotes the technology), if only one.
    Words that questions use anyway ("site", "production"), the classifier's own, do not count as quotes."""
    named = (
        {stem(w) for span in entity_spans for w in span.split()}
        | _value_words(entity.name)
        | _value_words(entity.long_name)
    )
    asked = {stem(w) for w in words(question) if w not in question_words} - named
    values = {
        "status": _value_words(entity.status),
        "family": _value_words(entity.family),
        "scope": _value_words(entity.scope),
        "technology": _value_words(entity.technology),
        "domain": set().union(*(_value_words(d.domain) | _value_words(d.subdomain) for d in entity.domains)),
        "hosting": set().union(*(_value_words(h.datacenter) | _value_words(h.platform) for h in entity.hostings)),
    }
    quoted = [intent for intent, found in values.items() if found & asked]
    return quoted[0] if len(quoted) == 1 else None


def _prefix_match(word: str, candidates: Iterable[str]) -> bool:
    return any(
        word == c or (len(word) >= QUOTE_PREFIX and len(c) >= QUOTE_PREFIX and word[:QUOTE_PREFIX] == c[:QUOTE_PREFIX])
        for c in candidates
    )


def _intent_by_quoted_label(entity: Entity, question: str, question_words: frozenset[str]) -> str | None:
    """contacts when the question names one of the record's contacts by role ("le webmestre", "la référente"),
    events when it names one of its events by kind ("décommissionnée"): every word of the label, in any form."""
    asked = [w for w in words(question) if w not in STOPWORDS]
    labels = {
        "contacts": [c.role for c in entity.contacts if c.role],
        "events": [e.kind for e in entity.events if e.kind],
    }
    for intent, values in labels.items():
        for value in values:
            needed = [w for w in words(value) if w not in STOPWORDS and len(w) > 2]
            if needed and all(_prefix_match(w, asked) for w in needed) and not all(w in question_words for w in needed):
                return intent
    return None


class DescriptionIndex:
    """Which record a question describes without naming it ("l'outil des zones humides", "the wind farm app"): the
    question's distinctive words (not the classifier's, not stop words) against each record's long name (counted
    twice), description and functions, weighted by rarity across the catalog (idf). One record must stand out:
    at least two distinctive words, or one found in no other record, and well ahead of the next."""

    MIN_WORDS, MARGIN = 2, 1.5

    def __init__(self, entities: Sequence[Entity], question_words: frozenset[str]):
        self.question_words = question_words
        self.docs: dict[str, dict[str, float]] = {}
        for e in entities:
            doc: dict[str, float] = {}
            for text, weight in ((e.long_name, 2.0), (e.description, 1.0), (e.functions, 1.0)):
                for w in words(text or ""):
                    key = self._key(w)
                    if key:
                        doc[key] = max(doc.get(key, 0.0), weight)
            self.docs[e.id] = doc
        df: dict[str, int] = {}
        for doc in self.docs.values():
            for key in doc:
                df[key] = df.get(key, 0) + 1
        n = max(len(self.docs), 1)
        self.df = df
        self.idf = {k: math.log(1 + n / d) for k, d in df.items()}

    @staticmethod
    def _key(word: str) -> str:
        if len(word) < 4 or word in STOPWORDS or word.isdigit():
            return ""
        return stem(word)[: QUOTE_PREFIX + 2]

    def best(self, question: str) -> tuple[str, tuple[str, ...]] | None:
        """(entity id, the question's words that describe it), or None when no record stands out."""
        asked = {}
        for w in words(question):
            key = self._key(w)
            if key and w not in self.question_words and key in self.df:
                asked[key] = w
        if not asked:
            return None
        scored = []
        for entity_id, doc in self.docs.items():
            hits = [k for k in asked if k in doc]
            if hits:
                scored.append((sum(self.idf[k] * doc[k] for k in hits), hits, entity_id))
        if not scored:
            return None
        scored.sort(key=lambda s: -s[0])
        score, hits, entity_id = scored[0]
        unique = any(self.df[k] == 1 for k in hits)
        runner_up = scored[1][0] if len(scored) > 1 else 0.0
        if (len(hits) >= self.MIN_WORDS or unique) and score >= self.MARGIN * runner_up:
            return entity_id, tuple(asked[k] for k in hits)
        return None


def _in_question_order(question: str, found: Sequence[tuple[Entity, str]]) -> list[Entity]:
    """The named applications in the order the question names them ("Différence entre A et B": A first)."""
    folded = " ".join(words(question))
    return [e for e, matched in sorted(found, key=lambda f: folded.find(f[1]) if f[1] in folded else len(folded))]


def _mask(question: str, spans: Iterable[str], mask: str) -> str:
    """The question with each matched span (folded words) replaced by the mask."""
    folded = " ".join(words(question))
    for span in sorted(spans, key=len, reverse=True):
        if span:
            folded = re.sub(rf"\b{re.escape(span)}\b", mask, folded)
    return folded


def _criteria_of(entities: Sequence[Entity]) -> dict[str, tuple[str, str, tuple[Entity, ...]]]:
    """Every value a catalog-wide question can filter on: key -> (role, value as written, members)."""
    groups: dict[tuple[str, str], tuple[str, list[Entity]]] = {}

    def add(role: str, value: str | None, entity: Entity) -> None:
        if not value:
            return
        key = (role, fold(value))
        spelled, members = groups.setdefault(key, (t.clean(value), []))
        if entity not in members:
            members.append(entity)

    for e in entities:
        add("status", e.status, e)
        add("scope", e.scope, e)
        add("family", e.family, e)
        for d in e.domains:
            add("domains", d.domain, e)
            add("subdomains", d.subdomain, e)
        for a in e.actors:
            add("actors", a.name, e)
        for part in re.split(r"\s*[/,;+]\s*", e.technology or ""):
            add("technology", part, e)
        for h in e.hostings:
            add("hosting", h.datacenter, e)
            add("hosting", h.platform, e)
        for ev in e.events:
            add("events", ev.kind, e)
    return {
        f"{role}\x1f{folded}": (role, spelled, tuple(members)) for (role, folded), (spelled, members) in groups.items()
    }


def _combined(criteria: Sequence[_Criterion], members: tuple[Entity, ...]) -> t.Criterion:
    """One listing criterion from several ("en production" and "du domaine « Eau »")."""
    parts = []
    for c in criteria:
        if c.role == "status":
            parts.append(t.Criterion.of_status(c.value, members))
        elif c.role in ("domains", "subdomains"):
            parts.append(t.Criterion.of_domain(c.value, members))
        elif c.role == "actors":
            parts.append(t.Criterion.of_actor(c.value, members))
        else:
            quoted = f"« {c.value} »"
            label = {
                "scope": "de portée",
                "family": "de la famille",
                "technology": "qui utilisent",
                "hosting": "hébergées sur",
                "events": "avec l'événement",
            }[c.role]
            one = {"technology": "qui utilise", "hosting": "hébergée sur"}.get(c.role, label)
            verb = {"technology": "utilisent", "hosting": "sont hébergées sur", "events": "ont l'événement"}.get(
                c.role, f"sont {label}"
            )
            verb_one = {"technology": "utilise", "hosting": "est hébergée sur", "events": "a l'événement"}.get(
                c.role, f"est {label}"
            )
            parts.append(
                t.Criterion(
                    c.role,
                    c.value,
                    f"{label} {quoted}",
                    f"{one} {quoted}",
                    f"{verb} {quoted}",
                    f"{verb_one} {quoted}",
                    members,
                )
            )
    if len(parts) == 1:
        return parts[0]
    first = parts[0]
    rest = " et ".join(p.adj for p in parts[1:])
    rest_one = " et ".join(p.adj_one for p in parts[1:])
    return t.Criterion(
        first.role,
        first.fact,
        f"{first.adj} {rest}",
        f"{first.adj_one} {rest_one}",
        f"{first.verb} {rest}",
        f"{first.verb_one} {rest_one}",
        members,
    )


def _extra_fields(entities: Sequence[Entity]) -> dict[str, frozenset[str]]:
    """The export's fields that no intent reads, with the (stemmed) words a question must use to name them."""
    keys = {key for e in entities for key in e.extra}
    return {
        key: frozenset(stem(w) for w in words(normalize_key(key)) if w not in STOPWORDS and len(w) > 2)
        for key in sorted(keys)
    }


def _extra_text(value: object) -> str:
    """An export value as one line: lists and objects flattened ("Urbanistes (nombre : 500)")."""
    if value is None:
        return ""
    if isinstance(value, dict):
        parts = [str(v) for v in value.values() if v not in (None, "")]
        return " — ".join(parts)
    if isinstance(value, list):
        return " ; ".join(x for x in (_extra_text(v) for v in value) if x)
    return t.clean(str(value))
