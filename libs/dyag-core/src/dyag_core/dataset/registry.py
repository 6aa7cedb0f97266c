"""The question types, one registry: what each asks, how it is phrased, answered and refused.

Each entry (an *intent*) declares the fields of a record it reads, its phrasings, its answer renderer
(which returns the answer's text and key facts) and its negative form (the field left empty). The dataset
generator draws its per-application examples from the entries it generates (`dataset_type`); the grounded
answerer (dyag_core.answering) understands a question as one or more of these intents and answers with the
same renderers, so a new question type is one entry that both get.

Catalog-wide intents (comparisons, listings, counts) read several records; they are declared here with their
phrasings so the intent classifier learns them, and answered by dyag_core.answering over the whole catalog.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from dyag_core.catalog.model import Entity
from dyag_core.dataset import templates as t
from dyag_core.dataset.phrasings import PHRASINGS, RELATED_APPLICATIONS, RELATED_DATA
from dyag_core.dataset.templates import Answer

Render = Callable[[Entity, int], Answer]  # (record, variant) -> answer


@dataclass(frozen=True, slots=True)
class Intent:
    """One thing a question can ask about one application (or, with scope "catalog", about the catalog)."""

    name: str  # "status", "related_data", "listing"…
    fields: tuple[str, ...]  # the record's roles it reads (catalog.roles' names)
    phrasings: tuple[str, ...]  # question patterns, with {x} {de_x} {name}… (templates' placeholders)
    render: Render | None = None  # entity intents only
    dataset_type: str | None = None  # the dataset's question type that teaches it (None: not generated yet)
    scope: str = "entity"  # entity | pair | catalog
    empty_role: str | None = None  # the role named in "… n'est pas renseigné" (templates._ROLE_LABELS)
    labels: tuple[str, ...] = ()  # what users call the field ("statut", "état"): the classifier learns them too

    def applies(self, entity: Entity) -> bool:
        """The record holds something to answer with (else the answer is the negative form)."""
        if self.name == "definition":
            return bool(entity.description or (entity.long_name and entity.long_name != entity.name))
        if self.name == "long_name":
            return bool(entity.long_name and entity.long_name != entity.name)
        return any(role in ("id", "name") or bool(getattr(entity, role, None)) for role in self.fields)

    def answer(self, entity: Entity, variant: int = 0) -> Answer:
        """The answer from the record, or the refusal that says the field is empty."""
        if self.render is None:
            raise ValueError(f"{self.name} is answered over the catalog, not from one record")
        if self.applies(entity):
            return self.render(entity, variant)
        return t.answer_empty_field(entity, self.empty_role or self.fields[0], 0)


def _entity(
    name: str,
    fields: tuple[str, ...],
    render: Render,
    phrasings: tuple[str, ...] | None = None,
    *,
    dataset_type: str | None = None,
    empty_role: str | None = None,
) -> Intent:
    return Intent(
        name,
        fields,
        phrasings if phrasings is not None else PHRASINGS[name],
        render,
        dataset_type,
        "entity",
        empty_role or fields[0],
        LABELS.get(name, ()),
    )


# The words users give each field, besides the phrasings: nouns and the short verbs of chat questions, in French,
# then in English (a catalog's users ask in both).
LABELS: dict[str, tuple[str, ...]] = {
    "definition": (
        "c'est quoi",
        "qu'est-ce que c'est",
        "description",
        "descriptif",
        "présentation",
        "à quoi ça sert",
        "objet",
        "but",
        "what is",
        "kesako",
    ),
    "status": (
        "statut",
        "état",
        "cycle de vie",
        "en service",
        "encore utilisée",
        "active",
        "abandonnée",
        "fin de vie",
        "status",
        "state",
        "still in use",
    ),
    "domain": (
        "domaine",
        "sous-domaine",
        "domaine métier",
        "thématique",
        "secteur",
        "périmètre métier",
        "domain",
        "business area",
    ),
    "actors": (
        "acteurs",
        "qui gère",
        "qui s'occupe",
        "responsable",
        "MOA",
        "MOE",
        "maîtrise d'ouvrage",
        "maîtrise d'oeuvre",
        "pilote",
        "propriétaire",
        "who manages",
        "owner",
        "managed by",
        "who runs",
    ),
    "sites": (
        "site",
        "URL",
        "lien",
        "adresse web",
        "page web",
        "accès en ligne",
        "documentation en ligne",
        "website",
        "link",
        "where to find",
    ),
    "contacts": (
        "contact",
        "mail",
        "courriel",
        "e-mail",
        "référent",
        "interlocuteur",
        "chef de projet",
        "joindre",
        "écrire à",
        "contact person",
        "email",
        "who to contact",
    ),
    "scope": (
        "portée",
        "portée géographique",
        "national ou régional",
        "territoire",
        "échelle",
        "niveau géographique",
        "geographic scope",
        "national or regional",
    ),
    "events": (
        "dates",
        "historique",
        "chronologie",
        "mise en production",
        "quand",
        "depuis quand",
        "version",
        "jalons",
        "création",
        "date de création",
        "key dates",
        "when",
        "history",
        "release date",
        "go live",
        "created",
        "decommissioned",
    ),
    "related_applications": (
        "applications liées",
        "flux",
        "interfaces",
        "dépendances",
        "échanges avec",
        "related applications",
        "connected apps",
        "feeds",
        "feed into",
        "interfaces with",
        "depends on",
        "data flows",
    ),
    "related_data": (
        "données liées",
        "données",
        "jeux de données",
        "référentiels utilisés",
        "related data",
        "datasets",
    ),
    "identifier": ("identifiant", "id", "numéro", "code", "référence", "identifier"),
    "long_name": (
        "nom long",
        "nom complet",
        "signification",
        "sigle",
        "acronyme",
        "que signifie",
        "veut dire",
        "stand for",
        "full name",
        "meaning",
    ),
    "family": ("famille", "famille d'applications", "catégorie", "type d'application", "family", "category"),
    "functions": (
        "fonctions",
        "fonctionnalités",
        "que permet",
        "services rendus",
        "features",
        "functions",
        "what can you do with",
        "capabilities",
        "what does it let you do",
    ),
    "technology": (
        "technologie",
        "techno",
        "langage",
        "stack",
        "framework",
        "base de données",
        "built with",
        "tech stack",
        "technology",
        "database",
        "programming language",
        "written in",
    ),
    "hosting": (
        "hébergement",
        "hébergée",
        "data center",
        "centre serveur",
        "serveur",
        "plateforme d'hébergement",
        "hosted",
        "hosting",
        "data centre",
        "environment",
        "environments",
        "server",
    ),
    "beneficiaries": ("bénéficiaires", "usagers", "public visé", "pour qui", "beneficiaries", "who benefits"),
    "users": (
        "utilisateurs",
        "nombre d'utilisateurs",
        "combien d'utilisateurs",
        "qui utilise",
        "fréquentation",
        "users",
        "how many users",
        "user base",
    ),
    "summary": (
        "tout sur",
        "fiche",
        "résumé",
        "synthèse",
        "toutes les infos",
        "informations",
        "all about",
        "tell me about",
        "everything about",
    ),
    "comparative": ("différence", "comparer", "comparaison", "versus", "vs", "compare", "difference between"),
    "listing": (
        "liste",
        "lister",
        "lesquelles",
        "quelles applications",
        "toutes les applications",
        "which apps",
        "list of apps",
    ),
    "counting": ("combien", "nombre", "total", "compter", "how many"),
}


_related = PHRASINGS["related"]
INTENTS: dict[str, Intent] = {
    i.name: i
    for i in (
        _entity(
            "definition",
            ("description", "long_name"),
            t.answer_definition,
            dataset_type="definition",
            empty_role="description",
        ),
        _entity("status", ("status",), lambda e, v: t.answer_status(e, variant=v), dataset_type="status"),
        _entity("domain", ("domains",), t.answer_domain, dataset_type="domain"),
        _entity("actors", ("actors",), t.answer_actors, dataset_type="actors"),
        _entity("sites", ("sites",), t.answer_sites, dataset_type="sites"),
        _entity("contacts", ("contacts",), t.answer_contacts, dataset_type="contacts"),
        _entity("scope", ("scope",), t.answer_scope, dataset_type="scope"),
        _entity("events", ("events",), t.answer_events, dataset_type="events"),
        _entity(
            "related_applications",
            ("related_applications",),
            lambda e, v: t.answer_related(e, "related_applications", v),
            tuple(_related[i] for i in RELATED_APPLICATIONS),
            dataset_type="related",
        ),
        _entity(
            "related_data",
            ("related_data",),
            lambda e, v: t.answer_related(e, "related_data", v),
            tuple(_related[i] for i in RELATED_DATA),
            dataset_type="related",
        ),
        _entity("identifier", ("id",), t.answer_identifier),
        _entity("long_name", ("long_name",), t.answer_long_name),
        _entity("family", ("family",), t.answer_family),
        _entity("functions", ("functions",), t.answer_functions),
        _entity("technology", ("technology",), t.answer_technology),
        _entity("hosting", ("hostings",), t.answer_hosting),
        _entity("beneficiaries", ("beneficiaries",), t.answer_beneficiaries),
        _entity("users", ("users",), t.answer_users),
        _entity("summary", ("name",), t.answer_summary),
        Intent(
            "comparative",
            ("status", "domains", "long_name"),
            PHRASINGS["comparative"],
            dataset_type="comparative",
            scope="pair",
            labels=LABELS["comparative"],
        ),
        Intent(
            "listing",
            ("status", "domains", "actors"),
            PHRASINGS["listing"],
            dataset_type="listing",
            scope="catalog",
            labels=LABELS["listing"],
        ),
        Intent(
            "counting",
            ("status", "domains", "actors"),
            PHRASINGS["counting"],
            dataset_type="counting",
            scope="catalog",
            labels=LABELS["counting"],
        ),
    )
}
ENTITY_INTENTS = tuple(name for name, i in INTENTS.items() if i.scope == "entity")
# The record's roles some intent reads; a role a catalog fills that no intent reads is a gap (catalog profile).
COVERED_ROLES = frozenset(role for i in INTENTS.values() for role in i.fields) | {"name"}


def intents_of_type(dataset_type: str) -> tuple[Intent, ...]:
    """The intents a dataset question type teaches ("related" teaches two)."""
    return tuple(i for i in INTENTS.values() if i.dataset_type == dataset_type)


def dataset_roles(dataset_type: str) -> tuple[str, ...]:
    """The roles a dataset question type reads: it applies to an entity when one of them is filled."""
    return tuple(dict.fromkeys(role for i in intents_of_type(dataset_type) for role in i.fields))
