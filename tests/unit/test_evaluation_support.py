"""A four-application catalog and question builders for the evaluation tests (hand-checked cases)."""

from __future__ import annotations

from dyag_core.catalog.model import Actor, Catalog, Domain, Entity, Event, Site
from dyag_core.evaluation import EvalCase

GEOVAL = Entity(
    id="1",
    name="GEOVAL",
    long_name="Gestion des valorisations géographiques",
    status="En production",
    scope="Nationale",
    domains=(Domain("Information géographique", "Cartographie"),),
    sites=(Site("https://geoval.example.gouv.fr/", "Site principal"),),
    actors=(Actor("DGALN/DHUP", "MOA"), Actor("CEREMA", "MOE"), Actor("IGN", "Exploitant")),
    events=(Event("Mise en production", "2019-04-03", "1.0"),),
)
SINP = Entity(
    id="2",
    name="8-SINP",
    long_name="Plateformes régionales SINP habilitées",
    status="Abandonnée",
    scope="Régionale",
    domains=(Domain("Biodiversité"),),
    sites=(Site("https://sinp.example.gouv.fr"),),
)
ARCHIPEL = Entity(id="3", name="ARCHIPEL", status="En projet", domains=(Domain("Information géographique"),))  # no site
HYDROSCOPE = Entity(
    id="4",
    name="HYDROSCOPE",
    long_name="Observatoire national des débits des cours d'eau",
    status="En production",
    scope="Nationale",
    domains=(Domain("Eau et milieux aquatiques"),),
    sites=(Site("https://hydroscope.example.gouv.fr"),),
)
CATALOG = Catalog(
    entities=(GEOVAL, SINP, ARCHIPEL, HYDROSCOPE), source_format="json-list", source_fields=(), field_fill={}
)


def case(
    qtype: str,
    question: str,
    expected: str,
    facts: tuple[str, ...] = (),
    entities: tuple[str, ...] = (),
    negative: bool = False,
    id: str | None = None,
) -> EvalCase:
    return EvalCase(id or f"{qtype}:{question}", question, expected, facts, qtype, entities, negative)


STATUS_GEOVAL = case(
    "status",
    "Quel est le statut de GEOVAL ?",
    "L'application GEOVAL (Gestion des valorisations géographiques) est actuellement en production.",
    ("en production",),
    ("1",),
)
ACTORS_GEOVAL = case(
    "actors",
    "Quels sont les acteurs de GEOVAL ?",
    "Les acteurs référencés pour l'application GEOVAL sont : DGALN/DHUP (MOA), CEREMA (MOE) et IGN (Exploitant).",
    ("DGALN/DHUP", "CEREMA", "IGN"),
    ("1",),
)
EVENTS_GEOVAL = case(
    "events",
    "Quelles sont les dates clés de GEOVAL ?",
    "Une date clé est enregistrée pour l'application GEOVAL : mise en production le 3 avril 2019 (version 1.0).",
    ("3 avril 2019",),
    ("1",),
)
SITES_GEOVAL = case(
    "sites",
    "Quelle est l'URL de GEOVAL ?",
    "L'application GEOVAL est accessible à l'adresse https://geoval.example.gouv.fr/ (site principal).",
    ("https://geoval.example.gouv.fr/",),
    ("1",),
)
COUNT_PRODUCTION = case(
    "counting",
    "Combien d'applications sont en production ?",
    "Le catalogue compte 2 applications en production : GEOVAL et HYDROSCOPE.",
    ("en production", "2"),
    ("1", "4"),
)
LISTING_PRODUCTION = case(
    "listing",
    "Quelles applications sont en production ?",
    "Les 2 applications en production sont GEOVAL et HYDROSCOPE.",
    ("en production", "GEOVAL", "HYDROSCOPE"),
    ("1", "4"),
)
EMPTY_SITES_ARCHIPEL = case(
    "negative_empty_field",
    "Quelle est l'URL d'ARCHIPEL ?",
    "L'information sur les adresses web de l'application ARCHIPEL n'est pas renseignée dans le catalogue. "
    "Je ne peux donc pas répondre à cette question sans risquer d'inventer.",
    (),
    ("3",),
    negative=True,
)
UNKNOWN_ZORGLUB = case(
    "negative_unknown_entity",
    "Quel est le statut de ZORGLUB ?",
    "Je ne connais pas d'application nommée ZORGLUB dans le catalogue. Vérifiez l'orthographe du nom.",
    (),
    (),
    negative=True,
)
