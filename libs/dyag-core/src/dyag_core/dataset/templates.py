"""The French answer renderers (the phrasings are data in phrasings.py, the grammar in french.py).

Renderers read only the record(s) they are given. Each returns the answer text, the key facts
it states (every one a literal substring of the text, so an evaluator can look for it) and the
roles its direct answer reads.

A direct answer shorter than the guide's lower bound (Annex B: 20 to 200 words) is followed by one
or two short sentences of other context from the same record (domain, status, scope, actors, a
line of the description), phrased in a variant the caller draws from its seed. That context is
never a key fact and never listed in the roles: the example still teaches what the question asks.

Question placeholders: {x} an entity mention ("6Tzen", "l'application 6Tzen"), {X} the same
capitalised, {de_x} / {que_x} with French elision ("d'ARPEGE", "qu'ARPEGE"), {name} the short
name; {a} {A} {b} {de_b} the two applications of a comparison; {adj} {verb} a listing criterion
("en production" / "sont en production").
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache

from dyag_core.catalog.model import Contact, Domain, Entity, Event, Link, Site
from dyag_core.dataset.french import (  # noqa: F401 (also re-exported: the renderers' grammar)
    INLINE_ITEMS,
    SHOWN_ITEMS,
    app,
    bullets,
    clean,
    de,
    french_date,
    join_fr,
    lower_first,
    que,
    render_items,
    status_words,
    upper_first,
)
from dyag_core.text import fold

LISTING_ITEMS = 20  # a listing answer names at most this many applications
COUNT_EXAMPLES = 8  # a count answer names the applications when there are at most this many
SUMMARY_WORDS = 120  # a definition answer quotes at most this many words of the description
# The guide's Annex B answer bounds (validation.checklist.ANSWER_WORDS): shorter answers get context.
ANSWER_MIN_WORDS = 20
ANSWER_MAX_WORDS = 200
CONTEXT_SENTENCES = 2  # at most this many context sentences after a direct answer
CONTEXT_SUMMARY_WORDS = 30  # a context sentence quotes at most this many words of the description
CONTEXT_ITEMS = 3  # a context sentence names at most this many actors or domains

_ROLE_LABELS = {  # each with the preposition that leads to the application
    "description": "la description de",
    "status": "le statut de",
    "domains": "le domaine métier de",
    "actors": "les acteurs de",
    "sites": "les adresses web de",
    "contacts": "les contacts de",
    "scope": "la portée géographique de",
    "events": "les dates clés de",
    "related_applications": "les applications liées à",
    "related_data": "les données liées à",
    "long_name": "le nom long de",
    "family": "la famille d'applications de",
    "functions": "les fonctions de",
    "technology": "la technologie principale de",
    "hostings": "l'hébergement de",
    "beneficiaries": "les bénéficiaires de",
    "users": "les utilisateurs de",
}
_UNKNOWN_ANSWERS = (
    "Je ne connais pas d'application nommée {name} dans le catalogue. Vérifiez l'orthographe du nom "
    "ou précisez l'application que vous recherchez : je ne peux pas répondre sans inventer.",
    "L'application {name} ne figure pas dans le catalogue des applications : je ne dispose donc d'aucune "
    "information à son sujet et préfère ne pas en inventer. Vérifiez le nom exact : je peux aussi vous "
    "donner la liste des applications d'un domaine pour vous aider à la retrouver.",
    "Aucune application nommée {name} n'est référencée dans le catalogue. Je ne peux donc pas répondre "
    "à cette question ; vérifiez le nom de l'application, par exemple en me demandant la liste des "
    "applications d'un domaine ou d'un statut.",
)
_UNKNOWN_NAME = tuple(
    re.compile("^" + re.escape(text.split("{name}")[0]) + r"(.+?)" + re.escape(text.split("{name}")[1][:12]))
    for text in _UNKNOWN_ANSWERS
)
_EMPTY_ANSWERS = (
    "L'information sur {label} {app} n'est pas renseignée dans le catalogue. Je ne peux donc pas "
    "répondre à cette question sans risquer d'inventer.",
    "Le catalogue ne renseigne pas {label} {app} : je ne peux donc pas vous donner cette information "
    "sans risquer de l'inventer.",
)


@dataclass(frozen=True, slots=True)
class Answer:
    text: str
    key_facts: tuple[str, ...]
    fields: tuple[str, ...]


# ---------------------------------------------------------------- descriptions

_BULLET = re.compile(r"^\s*(?:[-*•·▪◦–]|\d{1,2}[.)])\s+")
_MARKDOWN = (
    (re.compile(r"\*\*|__|`"), ""),
    (re.compile(r"\[([^\]]+)\]\([^)]*\)"), r"\1"),
    (re.compile(r"^\s*#+\s*"), ""),
)
_SENTENCE_END = re.compile(r"(?<=[.!?…])\s+(?=[A-ZÀ-ÖØ-Ý0-9«\"])")


def _plain(line: str) -> str:
    for pattern, replacement in _MARKDOWN:
        line = pattern.sub(replacement, line)
    return clean(line)


def _segments(text: str) -> list[str]:
    """Paragraphs of a description, each markdown bullet list folded into one inline list."""
    segments: list[str] = []
    items: list[str] = []

    def close_list() -> None:
        if not items:
            return
        kept = [item.rstrip(" ;,.") for item in items]
        listed = (" ; ".join(kept) if any("," in item for item in kept) else join_fr(kept)) + "."
        if segments and segments[-1].endswith(":"):
            segments[-1] += " " + listed
        else:
            segments.append(upper_first(listed))
        items.clear()

    for raw in text.splitlines():
        if _BULLET.match(raw):
            items.append(_plain(_BULLET.sub("", raw)))
            continue
        line = _plain(raw)
        if not line:
            continue
        close_list()
        if segments and segments[-1].endswith(":"):  # "Périmètre :" then its paragraph
            segments[-1] += " " + line
        else:
            segments.append(line)
    close_list()
    if segments and segments[-1].endswith(":"):  # a heading with nothing after it
        segments.pop()
    return [s if s.endswith((".", "!", "?", "…")) else s + "." for s in segments]


def summarise(description: str, max_words: int = SUMMARY_WORDS) -> str:
    """The first sentences of a description, at most max_words words, bullets made inline."""
    sentences = [s for segment in _segments(description) for s in _SENTENCE_END.split(segment)]
    kept: list[str] = []
    words = 0
    for sentence in sentences:
        count = len(sentence.split())
        if words + count > max_words:
            if not kept:  # one very long sentence: cut at a word boundary
                kept.append(" ".join(sentence.split()[:max_words]).rstrip(" ,;:") + "…")
            break
        kept.append(sentence)
        words += count
    return " ".join(kept)


# ---------------------------------------------------------------- context after a short answer

# Sentences that situate an application: {what} is one or two predicates ("relève du domaine « X »").
_SITUATION_LEADS = (
    "{Name} {what}.",
    "Par ailleurs, {name} {what}.",
    "Le catalogue précise {que_name} {what}.",
    "Pour mémoire, cette application {what}.",
    "À noter : {name} {what}.",
)
_SUMMARY_LEADS = (
    "Le catalogue décrit {name} ainsi : « {summary} »",
    "Son descriptif présente {name} ainsi : « {summary} »",
    "Pour situer {name}, le catalogue indique : « {summary} »",
    "Descriptif {de_name} dans le catalogue : « {summary} »",
)
# After an empty-field refusal: what the record does say.
_KNOWN_LEADS = (
    "Le catalogue indique en revanche {que_name} {what}.",
    "En revanche, je peux vous dire {que_name} {what}.",
    "Ce que le catalogue indique, c'est {que_name} {what}.",
)
# What each kind of answer may add, in order: a tuple of roles is one sentence of at most two
# predicates, "summary" one line of the description. The question's own role is never repeated.
# Family and technology come last, for records that hold little else.
_LAST_RESORT = ("family", "technology")
_CONTEXT_PLAN: dict[str, tuple[tuple[str, ...] | str, ...]] = {
    "definition": (("scope", "actors"), _LAST_RESORT),
    "status": (("domains", "scope"), "summary", ("actors",), _LAST_RESORT),
    "domain": (("status", "scope"), "summary", _LAST_RESORT),
    "actors": ("summary", ("status", "domains"), _LAST_RESORT),
    "sites": ("summary", ("domains", "status"), _LAST_RESORT),
    "contacts": (("status", "domains"), "summary", _LAST_RESORT),
    "scope": (("status", "domains"), "summary", ("actors",), _LAST_RESORT),
    "events": (("status", "domains"), "summary", _LAST_RESORT),
    "related": ("summary", ("domains", "status"), _LAST_RESORT),
    # the one application a listing or count names, by the criterion's role
    "member:status": (("domains", "scope"), "summary", _LAST_RESORT),
    "member:domains": (("status", "scope"), "summary", _LAST_RESORT),
    "member:actors": (("status", "domains"), "summary", _LAST_RESORT),
}
_KNOWN_ROLES = ("status", "domains", "scope")


def word_count(text: str) -> int:
    """Words as the guide's checklist counts them (whitespace-separated)."""
    return len(text.split())


def _predicate(entity: Entity, role: str) -> tuple[str, bool] | None:
    """What the record says about one role, as a predicate after the application's name, and
    whether that predicate is itself a list ("… « A » et « B »")."""
    if role == "status" and entity.status:
        return status_words(entity.status).verb, False
    if role == "domains" and entity.domains:
        grouped = _group_domains(entity.domains)
        if len(grouped) == 1:
            ((domain, (subdomains, _)),) = grouped.items()
            sub = f" (sous-domaine « {subdomains[0]} »)" if len(subdomains) == 1 else ""
            return f"relève du domaine « {domain} »{sub}", False
        names = [f"« {d} »" for d in grouped]
        many = "notamment " if len(names) > CONTEXT_ITEMS else ""
        return f"relève {many}des domaines {join_fr(names[:CONTEXT_ITEMS])}", True
    if role == "scope" and entity.scope:
        return f"a une portée géographique {lower_first(clean(entity.scope))}", False
    if role == "actors" and entity.actors:
        names = list(dict.fromkeys(clean(a.name) for a in entity.actors))
        many = "notamment " if len(names) > CONTEXT_ITEMS else ""
        return f"fait intervenir {many}{join_fr(names[:CONTEXT_ITEMS])}", len(names) > 1
    if role == "family" and entity.family:
        return f"appartient à la famille « {clean(entity.family)} »", False
    if role == "technology" and entity.technology:
        return f"repose techniquement sur « {clean(entity.technology)} »", False
    return None


def _predicates(entity: Entity, roles: Iterable[str], limit: int = 2) -> str | None:
    """Up to `limit` predicates joined with "et"; one that is itself a list goes last."""
    found = [p for p in (_predicate(entity, r) for r in roles) if p][:limit]
    if not found:
        return None
    found.sort(key=lambda p: p[1])  # stable
    return " et ".join(text for text, _ in found)


@lru_cache(maxsize=8192)
def _context_summary(description: str) -> str:
    return summarise(description, CONTEXT_SUMMARY_WORDS)


def _names(entity: Entity) -> dict[str, str]:
    name = clean(entity.name)
    return {"name": name, "Name": upper_first(name), "de_name": de(name), "que_name": que(name)}


def _situation(entity: Entity, roles: Sequence[str], variant: int) -> str | None:
    what = _predicates(entity, roles)
    return _SITUATION_LEADS[variant % len(_SITUATION_LEADS)].format(what=what, **_names(entity)) if what else None


def _summary_sentence(entity: Entity, variant: int) -> str | None:
    summary = _context_summary(entity.description) if entity.description else ""
    return _SUMMARY_LEADS[variant % len(_SUMMARY_LEADS)].format(summary=summary, **_names(entity)) if summary else None


def _append(text: str, sentence: str) -> str:
    """A sentence after the answer; after a bulleted list, on its own line."""
    return f"{text}\n{sentence}" if text.rpartition("\n")[2].startswith("- ") else f"{text} {sentence}"


def with_context(text: str, entity: Entity, kind: str, variant: int) -> str:
    """The answer, followed by up to CONTEXT_SENTENCES sentences of other facts of the record while it
    is shorter than ANSWER_MIN_WORDS, never beyond ANSWER_MAX_WORDS. Every added value comes from entity."""
    words = word_count(text)
    added = 0
    for item in _CONTEXT_PLAN[kind]:
        if words >= ANSWER_MIN_WORDS or added >= CONTEXT_SENTENCES:
            break
        lead = variant + added
        sentence = _summary_sentence(entity, lead) if item == "summary" else _situation(entity, item, lead)
        if not sentence or words + word_count(sentence) > ANSWER_MAX_WORDS:
            continue
        text = _append(text, sentence)
        words += word_count(sentence)
        added += 1
    return text


def _known_sentence(entity: Entity, empty_role: str, variant: int) -> str | None:
    """After an empty-field refusal: up to two facts the record does give (status, domain, scope)."""
    what = _predicates(entity, [r for r in _KNOWN_ROLES if r != empty_role])
    return _KNOWN_LEADS[variant % len(_KNOWN_LEADS)].format(what=what, **_names(entity)) if what else None


def _member_label(entity: Entity) -> str:
    """An application in a listing or count: its name, and its long name when it has one."""
    name = clean(entity.name)
    return f"{name} ({clean(entity.long_name)})" if entity.long_name and entity.long_name != entity.name else name


# ---------------------------------------------------------------- per-entity answers


def answer_definition(entity: Entity, variant: int = 0) -> Answer:
    subject = upper_first(app(entity))
    facts: list[str] = []
    fields: list[str] = []
    if entity.long_name and entity.long_name != entity.name:
        facts.append(clean(entity.long_name))
        fields.append("long_name")
    predicates: list[str] = []
    if entity.domains:
        domain = clean(entity.domains[0].domain)
        predicates.append(f"relève du domaine « {domain} »")
        facts.append(domain)
        fields.append("domains")
    if entity.status:
        words = status_words(entity.status)
        predicates.append(words.verb)
        facts.append(words.fact)
        fields.append("status")
    summary = summarise(entity.description) if entity.description else ""
    if summary:
        fields.append("description")
        opening = (
            f"{subject} {join_fr(predicates)}." if predicates else f"{subject} est décrite ainsi dans le catalogue :"
        )
        text = f"{opening} {summary}"
    elif predicates:
        text = f"{subject} {join_fr(predicates)}."
    else:
        text = f"{entity.name} est le nom court de l'application « {clean(entity.long_name or entity.name)} »."
    return Answer(with_context(text, entity, "definition", variant), tuple(facts), tuple(fields))


def answer_status(entity: Entity, yes_no: bool = False, variant: int = 0) -> Answer:
    words = status_words(entity.status or "")
    subject = app(entity)
    if not yes_no:
        text = f"{upper_first(subject)} {words.verb}."
    elif words.in_production:
        text = f"Oui, {subject} {words.verb}."
    else:
        text = f"Non, {subject} n'est pas en production : elle {words.verb}."
    return Answer(with_context(text, entity, "status", variant), (words.fact,), ("status",))


def _domain_phrase(domain: str, subdomains: Sequence[str], obsolete: bool) -> str:
    details = []
    if subdomains:
        label = "sous-domaines" if len(subdomains) > 1 else "sous-domaine"
        details.append(f"{label} {join_fr([f'« {s} »' for s in subdomains])}")
    if obsolete:
        details.append("signalé comme obsolète")
    return f"« {domain} »" + (f" ({', '.join(details)})" if details else "")


def _group_domains(domains: Iterable[Domain]) -> dict[str, tuple[list[str], bool]]:
    grouped: dict[str, tuple[list[str], bool]] = {}
    for d in domains:
        subdomains, obsolete = grouped.setdefault(clean(d.domain), ([], True))
        if d.subdomain and clean(d.subdomain) not in subdomains:
            subdomains.append(clean(d.subdomain))
        grouped[clean(d.domain)] = (subdomains, obsolete and d.obsolete)
    return grouped


def answer_domain(entity: Entity, variant: int = 0) -> Answer:
    grouped = _group_domains(entity.domains)
    phrases = [_domain_phrase(d, subs, obs) for d, (subs, obs) in grouped.items()]
    subject = upper_first(app(entity))
    if len(phrases) == 1:
        text = f"{subject} relève du domaine {phrases[0]}."
    else:
        text = f"{subject} relève de {len(phrases)} domaines : {join_fr(phrases)}."
    facts = [f for d, (subs, _) in grouped.items() for f in (d, *subs)]
    return Answer(with_context(text, entity, "domain", variant), tuple(facts), ("domains",))


def answer_actors(entity: Entity, variant: int = 0) -> Answer:
    roles: dict[str, list[str]] = {}
    for actor in entity.actors:
        names = roles.setdefault(clean(actor.name), [])
        if actor.role and clean(actor.role) not in names:
            names.append(clean(actor.role))
    labelled = [f"{name} ({', '.join(rs)})" if rs else name for name, rs in roles.items()]
    listed, shown = render_items(labelled)
    facts = tuple(roles)[: len(shown)]
    if len(roles) == 1:
        text = f"Un seul acteur est référencé pour {app(entity)} :{listed}."
    else:
        text = f"Les acteurs référencés pour {app(entity)} sont :{listed}{_end(listed)}"
    return Answer(with_context(text, entity, "actors", variant), facts, ("actors",))


def _end(listed: str) -> str:
    """The full stop after an inline list; a bulleted list ends without one."""
    return "" if "\n" in listed else "."


def _site_text(site: Site) -> str:
    return f"{site.url} ({lower_first(clean(site.kind))})" if site.kind else site.url


def answer_sites(entity: Entity, variant: int = 0) -> Answer:
    listed, shown = render_items([_site_text(s) for s in entity.sites])
    urls = tuple(s.url for s in entity.sites[: len(shown)])
    if len(entity.sites) == 1:
        text = f"{upper_first(app(entity))} est accessible à l'adresse{listed}."
    else:
        text = f"{upper_first(app(entity))} est accessible aux adresses suivantes :{listed}{_end(listed)}"
    return Answer(with_context(text, entity, "sites", variant), urls, ("sites",))


def _contact_text(contact: Contact) -> str:
    details = [clean(d) for d in (contact.function or contact.role, contact.service) if d]
    text = clean(contact.name) + (f" ({', '.join(details)})" if details else "")
    return text + (f", {contact.email}" if contact.email and contact.email != contact.name else "")


def _contact_facts(contacts: Sequence[Contact]) -> tuple[str, ...]:
    facts: list[str] = []
    for contact in contacts:
        facts.append(clean(contact.name))
        if contact.email and contact.email != contact.name:
            facts.append(contact.email)
    return tuple(facts)


def answer_contacts(entity: Entity, variant: int = 0) -> Answer:
    contacts = entity.contacts[:SHOWN_ITEMS]
    if len(entity.contacts) == 1:
        text = f"Pour {app(entity)}, vous pouvez contacter {_contact_text(contacts[0])}."
    else:
        text = f"Les contacts de {app(entity)} sont :{bullets([_contact_text(c) for c in contacts])}"
    return Answer(with_context(text, entity, "contacts", variant), _contact_facts(contacts), ("contacts",))


def answer_scope(entity: Entity, variant: int = 0) -> Answer:
    scope = lower_first(clean(entity.scope or ""))
    text = f"La portée géographique de {app(entity)} est {scope}."
    return Answer(with_context(text, entity, "scope", variant), (scope,), ("scope",))


def _event_text(event: Event) -> tuple[str, str]:
    """(text, key fact): "mise en production le 3 avril 2019 (version 1.0)"."""
    kind = lower_first(clean(event.kind))
    version = f" (version {clean(event.version)})" if event.version else ""
    if not event.date:
        return f"{kind}{version}, à une date non renseignée", kind
    date = french_date(event.date)
    return f"{kind} le {date}{version}", date


def answer_events(entity: Entity, variant: int = 0) -> Answer:
    events = sorted(entity.events, key=lambda e: e.date or "9999")[:SHOWN_ITEMS]
    texts, facts = zip(*(_event_text(e) for e in events), strict=True)
    if len(texts) == 1:
        text = f"Une date clé est enregistrée pour {app(entity)} : {texts[0]}."
    else:
        listed = bullets(texts) if len(texts) > INLINE_ITEMS else " " + " ; ".join(texts) + "."
        text = f"Les dates clés de {app(entity)} sont :{listed}"
    return Answer(with_context(text, entity, "events", variant), facts, ("events",))


def _link_text(link: Link) -> str:
    if not link.flow:
        return clean(link.target)
    flow = lower_first(clean(link.flow))
    return f"{clean(link.target)} ({flow if fold(flow).startswith('flux') else 'flux ' + flow})"


def answer_related(entity: Entity, role: str, variant: int = 0) -> Answer:
    links = entity.related_applications if role == "related_applications" else entity.related_data
    listed, shown = render_items([_link_text(link) for link in links])
    targets = tuple(clean(link.target) for link in links[: len(shown)])
    what = "applications liées" if role == "related_applications" else "données liées"
    if len(links) == 1:
        one = "une application" if role == "related_applications" else "une donnée"
        text = f"{upper_first(app(entity))} est liée à {one} :{listed}."
    else:
        text = f"Les {what} à {app(entity)} sont :{listed}{_end(listed)}"
    return Answer(with_context(text, entity, "related", variant), targets, (role,))


# ---------------------------------------------------------------- comparisons


def _compare_status(a: Entity, b: Entity, facts: list[str]) -> str | None:
    if not (a.status or b.status):
        return None
    if a.status and b.status:
        wa, wb = status_words(a.status), status_words(b.status)
        facts.extend(dict.fromkeys((wa.fact, wb.fact)))
        if fold(a.status) == fold(b.status):
            return f"Toutes deux {wa.verb_plural}."
        return f"{a.name} {wa.verb}, alors {que(b.name)} {wb.verb}."
    known, other = (a, b) if a.status else (b, a)
    words = status_words(known.status or "")
    facts.append(words.fact)
    return f"{known.name} {words.verb} ; le statut {de(other.name)} n'est pas renseigné."


def _compare_domains(a: Entity, b: Entity, facts: list[str]) -> str | None:
    da = [clean(d.domain) for d in a.domains]
    db = [clean(d.domain) for d in b.domains]
    shared = [d for d in dict.fromkeys(da) if fold(d) in {fold(x) for x in db}]
    if shared:
        facts.append(shared[0])
        sa = next((clean(d.subdomain) for d in a.domains if d.subdomain and fold(d.domain) == fold(shared[0])), None)
        sb = next((clean(d.subdomain) for d in b.domains if d.subdomain and fold(d.domain) == fold(shared[0])), None)
        if sa and sb and fold(sa) != fold(sb):  # what still tells them apart: their sub-domains
            facts.extend((sa, sb))
            return (
                f"Elles relèvent toutes deux du domaine « {shared[0]} », {a.name} pour le sous-domaine « {sa} » et "
                f"{b.name} pour le sous-domaine « {sb} »."
            )
        return f"Elles relèvent toutes deux du domaine « {shared[0]} »."
    if da and db:
        facts.extend((da[0], db[0]))
        return f"{a.name} relève du domaine « {da[0]} », tandis {que(b.name)} relève du domaine « {db[0]} »."
    return None


def _compare_scope(a: Entity, b: Entity, facts: list[str]) -> str | None:
    if not (a.scope and b.scope):
        return None
    sa, sb = lower_first(clean(a.scope)), lower_first(clean(b.scope))
    if fold(sa) == fold(sb):
        facts.append(sa)
        return f"Leur portée géographique est {sa}."
    facts.extend((sa, sb))
    return f"La portée {de(a.name)} est {sa}, celle {de(b.name)} est {sb}."


def comparable(entity: Entity) -> bool:
    return bool(entity.status or entity.domains or (entity.long_name and entity.long_name != entity.name))


def answer_comparative(a: Entity, b: Entity) -> Answer:
    facts: list[str] = []
    sentences: list[str] = []
    named = [e for e in (a, b) if e.long_name and e.long_name != e.name]
    if named:
        sentences.append(" ".join(f"{e.name} désigne « {clean(e.long_name or '')} »." for e in named))
        facts.extend(clean(e.long_name or "") for e in named)
    for compare in (_compare_domains, _compare_status, _compare_scope):
        sentence = compare(a, b, facts)
        if sentence:
            sentences.append(sentence)
    fields = [
        r
        for r, filled in (
            ("long_name", named),
            ("domains", a.domains and b.domains),
            ("status", a.status or b.status),
            ("scope", a.scope and b.scope),
        )
        if filled
    ]
    return Answer(" ".join(sentences), tuple(facts), tuple(fields))


# ---------------------------------------------------------------- listings and counts


@dataclass(frozen=True, slots=True)
class Criterion:
    """A listing criterion ("en production", "du domaine « Transports »") and the applications it selects."""

    role: str  # status | domains | actors
    fact: str  # the criterion as the answer states it
    adj: str  # "en production" (after "applications")
    adj_one: str  # singular
    verb: str  # "sont en production"
    verb_one: str  # "est en production"
    members: tuple[Entity, ...]

    @classmethod
    def of_status(cls, status: str, members: tuple[Entity, ...]) -> Criterion:
        w = status_words(status)
        verb_one = w.verb.replace("est actuellement ", "est ")
        return cls("status", w.fact, w.adj_plural, w.adj, w.verb_plural, verb_one, members)

    @classmethod
    def of_domain(cls, domain: str, members: tuple[Entity, ...]) -> Criterion:
        quoted = f"« {clean(domain)} »"
        return cls(
            "domains",
            clean(domain),
            f"du domaine {quoted}",
            f"du domaine {quoted}",
            f"relèvent du domaine {quoted}",
            f"relève du domaine {quoted}",
            members,
        )

    @classmethod
    def of_actor(cls, actor: str, members: tuple[Entity, ...]) -> Criterion:
        name = clean(actor)
        return cls(
            "actors",
            name,
            f"où intervient {name}",
            f"où intervient {name}",
            f"impliquent {name}",
            f"implique {name}",
            members,
        )


def _alphabetical(entities: Iterable[Entity]) -> list[Entity]:
    return sorted(entities, key=lambda e: (fold(e.name), e.name))


def listed_members(criterion: Criterion) -> tuple[Entity, ...]:
    """The applications a listing answer names: all, or the first LISTING_ITEMS alphabetically."""
    return tuple(_alphabetical(criterion.members)[:LISTING_ITEMS])


def _with_labels(plain: str, render: Callable[[list[str]], str], members: Sequence[Entity]) -> str:
    """A short listing or count names its applications with their long names, if that stays in bounds."""
    if word_count(plain) >= ANSWER_MIN_WORDS:
        return plain
    labelled = render([_member_label(e) for e in members])
    return labelled if word_count(labelled) <= ANSWER_MAX_WORDS else plain


def _shared_predicate(members: Sequence[Entity], role: str) -> str | None:
    """What all the members' records say alike about one role, as a plural predicate."""
    if role == "status" and all(e.status for e in members):
        values = {fold(e.status or "") for e in members}
        return status_words(members[0].status or "").verb_plural if len(values) == 1 else None
    if role == "domains" and all(e.domains for e in members):
        values = {fold(e.domains[0].domain) for e in members}
        return f"relèvent du domaine « {clean(members[0].domains[0].domain)} »" if len(values) == 1 else None
    if role == "scope" and all(e.scope for e in members):
        values = {fold(e.scope or "") for e in members}
        return f"ont une portée géographique {lower_first(clean(members[0].scope or ''))}" if len(values) == 1 else None
    return None


def _with_members_context(text: str, criterion: Criterion, members: Sequence[Entity], variant: int) -> str:
    """A short listing or count: for one application, a sentence from its record; for a few, what all
    their records say alike (their main domain, status or scope), when still short."""
    if len(criterion.members) == 1:
        return with_context(text, criterion.members[0], f"member:{criterion.role}", variant)
    if word_count(text) >= ANSWER_MIN_WORDS or len(members) != len(criterion.members):
        return text
    for role in (r for r in ("domains", "status", "scope") if r != criterion.role):
        what = _shared_predicate(members, role)
        if what:
            verb, rest = what.split(" ", 1)  # "relèvent du domaine « X »" -> "Elles relèvent toutes du domaine « X »."
            sentence = f"Elles {verb} {'toutes deux' if len(members) == 2 else 'toutes'} {rest}."
            return text if word_count(text) + word_count(sentence) > ANSWER_MAX_WORDS else _append(text, sentence)
    return text


def answer_listing(criterion: Criterion, variant: int = 0) -> Answer:
    members = listed_members(criterion)
    shown = [clean(e.name) for e in members]
    total = len(criterion.members)
    facts = (criterion.fact, *shown)

    def render(names: list[str]) -> str:
        if total == 1:
            return f"Une seule application {criterion.verb_one} : {names[0]}."
        if total > len(names):
            return (
                f"Le catalogue compte {total} applications {criterion.adj}. En "
                f"voici {len(names)}, par ordre alphabétique :{bullets(names)}"
            )
        listed = f" {join_fr(names)}." if total <= INLINE_ITEMS else f" :{bullets(names)}"
        return f"Les {total} applications {criterion.adj} sont{listed}"

    text = _with_members_context(_with_labels(render(shown), render, members), criterion, members, variant)
    if total > len(shown):
        return Answer(text, (*facts, str(total)), (criterion.role,))
    return Answer(text, facts, (criterion.role,))


def answer_counting(criterion: Criterion, variant: int = 0) -> Answer:
    total = len(criterion.members)
    members = _alphabetical(criterion.members)[: total if total <= COUNT_EXAMPLES else 3]
    facts = (criterion.fact, str(total))

    def render(names: list[str]) -> str:
        if total == 1:
            return f"Le catalogue compte 1 application {criterion.adj_one} : {names[0]}."
        if total <= COUNT_EXAMPLES:
            return f"Le catalogue compte {total} applications {criterion.adj} : {join_fr(names)}."
        return f"Le catalogue compte {total} applications {criterion.adj}, parmi lesquelles {join_fr(names)}."

    text = _with_labels(render([clean(e.name) for e in members]), render, members)
    return Answer(_with_members_context(text, criterion, members, variant), facts, (criterion.role,))


# ---------------------------------------------------------------- negatives


def answer_empty_field(entity: Entity, role: str, variant: int, context: int = 0) -> Answer:
    """The refusal (variant picks its wording), then what the record does say (context picks that wording)."""
    text = upper_first(_EMPTY_ANSWERS[variant % len(_EMPTY_ANSWERS)].format(label=_ROLE_LABELS[role], app=app(entity)))
    known = _known_sentence(entity, role, context)
    return Answer(f"{text} {known}" if known else text, (), (role,))


def answer_unknown_entity(name: str, variant: int) -> Answer:
    return Answer(_UNKNOWN_ANSWERS[variant % len(_UNKNOWN_ANSWERS)].format(name=name), (), ())


def unknown_name_in(answer: str) -> str | None:
    """The made-up name an unknown-entity answer refuses (None for any other answer)."""
    for pattern in _UNKNOWN_NAME:
        match = pattern.match(answer)
        if match:
            return match.group(1)
    return None


# ---------------------------------------------------------------- the other fields of a record


def answer_identifier(entity: Entity, variant: int = 0) -> Answer:
    text = f"L'identifiant de {app(entity)} dans le catalogue est {entity.id}."
    return Answer(text, (entity.id,), ("id",))


def answer_long_name(entity: Entity, variant: int = 0) -> Answer:
    long_name = clean(entity.long_name or "")
    text = f"{clean(entity.name)} est le nom court de l'application « {long_name} »."
    return Answer(text, (long_name,), ("long_name",))


def answer_family(entity: Entity, variant: int = 0) -> Answer:
    family = clean(entity.family or "")
    text = f"{upper_first(app(entity))} appartient à la famille d'applications « {family} »."
    return Answer(with_context(text, entity, "status", variant), (family,), ("family",))


def _quoted_field(entity: Entity, role: str, lead: str) -> Answer:
    """A free-text field quoted whole after its lead ("Les fonctions de … sont, selon le catalogue :"), as one
    sentence."""
    value = clean(getattr(entity, role) or "")
    text = f"{lead} {value}"
    return Answer(text if text.endswith((".", "!", "?")) else text + ".", (value,), (role,))


def answer_functions(entity: Entity, variant: int = 0) -> Answer:
    return _quoted_field(entity, "functions", f"Les fonctions de {app(entity)} sont, selon le catalogue :")


def answer_technology(entity: Entity, variant: int = 0) -> Answer:
    technology = clean(entity.technology or "")
    text = f"La technologie principale de {app(entity)} est « {technology} »."
    return Answer(with_context(text, entity, "status", variant), (technology,), ("technology",))


def _hosting_text(hosting) -> str:
    where = clean(hosting.datacenter or "centre non renseigné")
    return f"{where} (plateforme {lower_first(clean(hosting.platform))})" if hosting.platform else where


def answer_hosting(entity: Entity, variant: int = 0) -> Answer:
    listed, shown = render_items(list(dict.fromkeys(_hosting_text(h) for h in entity.hostings)))
    facts = tuple(dict.fromkeys(clean(h.datacenter) for h in entity.hostings if h.datacenter))
    text = f"{upper_first(app(entity))} est hébergée :{listed}{_end(listed)}"
    return Answer(text, facts, ("hostings",))


def answer_beneficiaries(entity: Entity, variant: int = 0) -> Answer:
    return _quoted_field(entity, "beneficiaries", f"Les bénéficiaires de {app(entity)} sont :")


def _user_text(group) -> str:
    return f"{clean(group.name)} (nombre : {clean(group.count)})" if group.count else clean(group.name)


def answer_users(entity: Entity, variant: int = 0) -> Answer:
    listed, _ = render_items([_user_text(g) for g in entity.users])
    facts = tuple(dict.fromkeys(x for g in entity.users for x in (clean(g.name), clean(g.count or "")) if x))
    text = f"Les utilisateurs de {app(entity)} sont :{listed}{_end(listed)}"
    return Answer(text, facts, ("users",))


def answer_summary(entity: Entity, variant: int = 0) -> Answer:
    """Everything about an application, one line per filled field (the record summarised)."""
    lines: list[str] = []
    facts: list[str] = []
    fields: list[str] = []

    def add(role: str, label: str, value: str, fact_values: Sequence[str] = ()) -> None:
        lines.append(f"- {label} : {value}")
        facts.extend(fact_values)
        fields.append(role)

    if entity.long_name and entity.long_name != entity.name:
        add("long_name", "Nom long", clean(entity.long_name), (clean(entity.long_name),))
    if entity.description:
        add("description", "Description", summarise(entity.description, CONTEXT_SUMMARY_WORDS * 2))
    if entity.status:
        add("status", "Statut", clean(entity.status), (status_words(entity.status).fact,))
    if entity.domains:
        grouped = _group_domains(entity.domains)
        add(
            "domains",
            "Domaine",
            join_fr([_domain_phrase(d, subs, obs) for d, (subs, obs) in grouped.items()]),
            tuple(grouped)[:1],
        )
    if entity.scope:
        add("scope", "Portée géographique", clean(entity.scope))
    if entity.family:
        add("family", "Famille", clean(entity.family))
    if entity.actors:
        add(
            "actors",
            "Acteurs",
            ", ".join(
                dict.fromkeys(f"{clean(a.name)} ({clean(a.role)})" if a.role else clean(a.name) for a in entity.actors)
            ),
        )
    if entity.sites:
        add("sites", "Adresses", ", ".join(s.url for s in entity.sites[:INLINE_ITEMS]))
    if entity.contacts:
        add("contacts", "Contacts", " ; ".join(_contact_text(c) for c in entity.contacts[:INLINE_ITEMS]))
    if entity.technology:
        add("technology", "Technologie principale", clean(entity.technology))
    if entity.users:
        add("users", "Utilisateurs", " ; ".join(_user_text(g) for g in entity.users[:INLINE_ITEMS]))
    if entity.events:
        first = sorted(entity.events, key=lambda e: e.date or "9999")[0]
        add("events", "Première date clé", _event_text(first)[0])
    text = f"Voici ce que le catalogue indique sur {app(entity)} (identifiant {entity.id}) :" + "".join(
        f"\n{line}" for line in lines
    )
    return Answer(text, tuple(facts), tuple(fields))
