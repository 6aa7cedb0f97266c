"""Generation: every question type, grounded answers, negatives, provenance, size, balance, determinism."""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import replace
from difflib import SequenceMatcher

import pytest

from dyag_core.catalog import Catalog, diff_catalogs, load_catalog, load_catalog_file
from dyag_core.catalog.model import Domain, Entity
from dyag_core.dataset import (
    NEGATIVE_TYPES,
    QUESTION_TYPES,
    DatasetError,
    Example,
    GenerationConfig,
    fake_names,
    generate,
    plan_size,
    regenerate_changed,
    templates,
)
from dyag_core.dataset.phrasings import (
    EMPTY_FIELD_SOURCES,
    PHRASINGS,
    RELATED_APPLICATIONS,
    RELATED_DATA,
    UNKNOWN_ENTITY_PHRASINGS,
)
from dyag_core.dataset.templates import (
    ANSWER_MAX_WORDS,
    ANSWER_MIN_WORDS,
    CONTEXT_SUMMARY_WORDS,
    answer_scope,
    answer_status,
    join_fr,
    lower_first,
    render_items,
    status_words,
    summarise,
    unknown_name_in,
    with_context,
    word_count,
)
from dyag_core.text import fold

LONG_DESCRIPTION = (
    "8-SINP désigne l'ensemble des plateformes régionales du SINP habilitées à collecter et diffuser les données "
    "d'observation naturalistes. Le projet vise à doter chaque région d'une plateforme conforme.\n\n"
    "**Objectifs du projet :**\n\n"
    "- mutualiser un socle technique commun ;\n- garantir la validation scientifique des données ;\n"
    "- diffuser les données au public.\n\n**Périmètre :**\n\n"
    + "Chaque plateforme régionale est portée par la DREAL. "
    * 30
)
APPS = [
    {
        "id": 1503,
        "nom": "GEOVAL",
        "nom long": "Gestion des valorisations géographiques",
        "descriptif": "Outil de gestion des valorisations géographiques.\n\n"
        "- saisie des valorisations ;\n- consultation cartographique.",
        "statut si": "En production",
        "portee geographique": "Nationale",
        "domaines et sous domaines": [
            {"domaine metier": "Information géographique", "sous domaine metier": "Référentiels"}
        ],
        "sites": [
            {"nature de l url": "Site principal", "url": "https://geoval.example.gouv.fr/"},
            {"nature de l url": "Documentation", "url": "https://doc.geoval.example.gouv.fr/"},
        ],
        "acteurs": [
            {"role d acteur": "MOA", "acteur": "DGALN/DEB"},
            {"role d acteur": "MOE", "acteur": "SNUM/MSP/DAM"},
        ],
        "contacts": [
            {
                "role de contact": "Chef de projet",
                "contact": "MARTIN Claire (cheffe de projet) - DGALN/DEB",
                "courriel": "claire.martin@example.gouv.fr",
            }
        ],
        "evenements": [
            {"date": "01/04/2019", "type d evenement": "Mise en production", "version": "1.0"},
            {"date": "15/06/2022", "type d evenement": "Mise à jour majeure", "version": "2.0"},
        ],
        "applications liees": [{"application": "HYDROSTAT", "type de flux": "Sortant"}],
        "donnees liees": [{"donnee": "Référentiel des communes", "type de flux": "Entrant"}],
    },
    {
        "id": 1118,
        "nom": "HYDROSTAT",
        "nom long": "Observatoire de la qualité des cours d'eau",
        "descriptif": "Observatoire national de la qualité des cours d'eau.",
        "statut si": "En production",
        "portee geographique": "Nationale",
        "domaines et sous domaines": [
            {"domaine metier": "Eau et milieux aquatiques", "sous domaine metier": "Qualité des eaux"}
        ],
        "acteurs": [{"role d acteur": "MOA", "acteur": "DGALN/DEB"}],
        "sites": [{"nature de l url": "Site public", "url": "https://hydrostat.example.gouv.fr/"}],
    },
    {
        "id": 1131,
        "nom": "ASSAINIWEB",
        "nom long": "Suivi de la conformité des stations d'épuration",
        "descriptif": "Recueil des données d'autosurveillance des systèmes d'assainissement.",
        "statut si": "en production",
        "portee geographique": "Régionale",
        "domaines et sous domaines": [
            {"domaine metier": "Eau et milieux aquatiques", "sous domaine metier": "Assainissement"}
        ],
        "acteurs": [{"role d acteur": "MOA", "acteur": "DGALN/DEB"}],
    },
    {
        "id": 1017,
        "nom": "8-SINP",
        "nom long": "Plateformes régionales SINP habilitées",
        "descriptif": LONG_DESCRIPTION,
        "statut si": "En construction",
        "portee geographique": "Régionale",
        "domaines et sous domaines": [{"domaine metier": "Biodiversité", "sous domaine metier": "SINP"}],
        "acteurs": [{"role d acteur": "MOA", "acteur": "Office français de la biodiversité"}],
        "evenements": [{"date": "15/09/2022", "type d evenement": "Création"}],
    },
    {
        "id": 1248,
        "nom": "MARIPROT",
        "nom long": "Gestion des aires marines protégées",
        "statut si": "En construction",
        "descriptif": "Suivi des aires marines protégées.",
        "domaines et sous domaines": [{"domaine metier": "Biodiversité", "sous domaine metier": "Milieu marin"}],
        "acteurs": [{"role d acteur": "MOA", "acteur": "Office français de la biodiversité"}],
    },
    {
        "id": 1560,
        "nom": "ADS-PLUS",
        "nom long": "Instruction des autorisations du droit des sols",
        "statut si": "Abandonnée",
        "descriptif": "Ancien logiciel d'instruction des permis de construire.",
        "portee geographique": "Locale",
        "domaines et sous domaines": [
            {"domaine metier": "Aménagement, urbanisme et logement", "sous domaine metier": "Urbanisme"}
        ],
        "acteurs": [],
        "contacts": [],
    },
    {"id": 1523, "nom": "ARCHIPEL", "statut si": "En projet", "descriptif": "***TEMPORAIRE***"},
    {
        "id": 1089,
        "nom": "ECOMOBI",
        "nom long": "Plateforme de suivi des plans de mobilité",
        "statut si": "En fin de vie",
        "descriptif": "Suivi des plans de mobilité employeurs.",
        "portee geographique": "Départementale",
        "domaines et sous domaines": [{"domaine metier": "Transports", "sous domaine metier": "Mobilités durables"}],
    },
]


def catalog_of(apps: list[dict]) -> Catalog:
    return load_catalog(json.dumps({"applicationsia mini": apps}, ensure_ascii=False).encode(), filename="mini.json")


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return catalog_of(APPS)


@pytest.fixture(scope="module")
def examples(catalog: Catalog) -> tuple[Example, ...]:
    return generate(catalog)


def of_type(examples, qtype: str, entity_id: str | None = None) -> list[Example]:
    return [e for e in examples if e.qtype == qtype and (entity_id is None or entity_id in e.provenance.entity_ids)]


# ---------------------------------------------------------------- question types and phrasings


def test_every_question_type_is_generated(examples):
    assert set(Counter(e.qtype for e in examples)) == set(QUESTION_TYPES)


def test_each_type_has_at_least_five_phrasings():
    for qtype, phrasings in PHRASINGS.items():
        assert len(phrasings) >= 5, qtype
    assert len(RELATED_APPLICATIONS) >= 5 and len(RELATED_DATA) >= 5
    for role, (_, indices) in EMPTY_FIELD_SOURCES.items():
        assert len(indices) >= 5, role
    assert len(UNKNOWN_ENTITY_PHRASINGS) >= 5


def test_questions_vary_their_phrasing_and_the_way_they_name_the_application(examples):
    status_questions = [e.question for e in of_type(examples, "status")]
    templates = {e.provenance.template for e in of_type(examples, "status")}
    assert len(templates) >= 5
    assert any("l'application" in q for q in status_questions)
    assert any("Plateformes régionales SINP habilitées" in e.question for e in examples)  # the long name, sometimes


def test_no_question_is_asked_twice(examples):
    folded = [fold(e.question) for e in examples]
    assert len(folded) == len(set(folded))


# ---------------------------------------------------------------- grounded answers


def test_positive_answers_state_every_key_fact(examples):
    for example in examples:
        if example.qtype in NEGATIVE_TYPES:
            continue
        assert example.provenance.key_facts, example.question
        for fact in example.provenance.key_facts:
            assert fact in example.answer, (fact, example.answer)


def test_answers_are_sentences_never_bare_values(examples):
    for example in examples:
        assert len(example.answer.split()) >= 5, example.answer
        assert example.answer[0].isupper() or example.answer[0].isdigit(), example.answer
        assert "None" not in example.answer and "***" not in example.answer


def test_status_answer_reads_naturally(examples):
    answers = {e.answer for e in of_type(examples, "status", "1017") if e.provenance.template != "status.2"}
    assert answers == {
        "L'application 8-SINP (Plateformes régionales SINP habilitées) est actuellement en construction. Pour mémoire, "
        "cette application relève du domaine « Biodiversité » "
        "(sous-domaine « SINP ») et a une portée géographique régionale."
    }  # the direct answer first, then context from the same record
    assert of_type(examples, "status", "1017")[0].provenance.key_facts == ("en construction",)


def test_status_yes_no_question_gets_a_yes_no_answer(catalog):
    examples = generate(catalog, GenerationConfig(variations=7, add_negatives=False, question_types=["status"]))
    by_entity = {e.provenance.entity_ids[0]: e.answer for e in examples if e.provenance.template == "status.2"}
    assert by_entity["1503"].startswith("Oui, l'application GEOVAL")
    assert by_entity["1017"].startswith(
        "Non, l'application 8-SINP (Plateformes régionales SINP habilitées) "
        "n'est pas en production : elle est actuellement en construction. "
    )


def test_status_words_lower_case_the_status_inside_sentences():
    assert status_words("En production").verb == "est actuellement en production"
    assert status_words("Abandonnée").verb_plural == "sont abandonnées"
    assert status_words("Pilote").verb == "a pour statut « Pilote »"
    assert status_words("En MCO").fact == "en MCO"


def test_definition_summarises_a_long_description(examples):
    answer = of_type(examples, "definition", "1017")[0].answer
    assert answer.startswith(
        "L'application 8-SINP (Plateformes régionales SINP habilitées) relève du domaine « Biodiversité »"
    )
    assert "est actuellement en construction" in answer
    assert "**" not in answer and "\n-" not in answer and "Périmètre ." not in answer
    assert len(answer.split()) <= 160
    assert "mutualiser un socle technique commun, garantir la validation scientifique des données et diffuser" in answer


def test_summarise_cuts_at_sentences_and_inlines_bullets():
    assert summarise("Intro :\n\n- un ;\n- deux.\n\nSuite.") == "Intro : un et deux. Suite."
    assert summarise("Un. " * 200, max_words=10) == " ".join(["Un."] * 10)
    long_sentence = "mot " * 300
    assert summarise(long_sentence, max_words=5) == "mot mot mot mot mot…"


def test_lists_read_naturally():
    assert join_fr(["A"]) == "A"
    assert join_fr(["A", "B", "C"]) == "A, B et C"
    text, shown = render_items([f"item {i}" for i in range(20)], limit=8)
    assert text.startswith("\n- item 0") and text.endswith("\n- et 12 autres") and len(shown) == 8


def test_domain_actors_sites_contacts_scope_events_related_answers(examples):
    def answer(qtype, entity_id, part=""):
        return next(e for e in of_type(examples, qtype, entity_id) if not part or part in e.provenance.fields).answer

    assert "relève du domaine « Information géographique » (sous-domaine « Référentiels »)" in answer("domain", "1503")
    assert "DGALN/DEB (MOA) et SNUM/MSP/DAM (MOE)" in answer("actors", "1503")
    assert (
        "https://geoval.example.gouv.fr/ (site principal) et https://doc.geoval.example.gouv.fr/ (documentation)"
        in answer("sites", "1503")
    )
    assert "MARTIN Claire (cheffe de projet, DGALN/DEB), claire.martin@example.gouv.fr" in answer("contacts", "1503")
    assert answer("scope", "1503").startswith(
        "La portée géographique de l'application GEOVAL (Gestion des valorisations géographiques) est nationale. "
    )
    assert "mise en production le 1er avril 2019 (version 1.0) ; mise à jour majeure le 15 juin 2022" in answer(
        "events", "1503"
    )
    assert "HYDROSTAT (flux sortant)" in answer("related", "1503", "related_applications")
    assert "Référentiel des communes (flux entrant)" in answer("related", "1503", "related_data")


def test_comparisons_pair_applications_of_the_same_domain(examples):
    pairs = {frozenset(e.provenance.entity_ids) for e in of_type(examples, "comparative")}
    assert frozenset({"1118", "1131"}) in pairs  # Eau et milieux aquatiques
    assert frozenset({"1017", "1248"}) in pairs  # Biodiversité
    answer = of_type(examples, "comparative", "1118")[0].answer
    assert (
        "Elles relèvent toutes deux du domaine « Eau et milieux aquatiques », HYDROSTAT pour le sous-domaine « "
        in answer
    )
    assert " et ASSAINIWEB pour le sous-domaine « Assainissement »." in answer  # what still tells them apart
    assert (
        "La portée de HYDROSTAT est nationale, celle d'ASSAINIWEB est régionale." in answer
    )  # elision before a vowel only


def test_listing_and_counting_by_status_domain_and_actor(examples):
    counting = {e.provenance.key_facts: e for e in of_type(examples, "counting")}
    in_production = counting[("en production", "3")]
    assert in_production.answer == (  # short: the applications are named with their long names
        "Le catalogue compte 3 applications en production : ASSAINIWEB (Suivi de la "
        "conformité des stations d'épuration), GEOVAL (Gestion des valorisations "
        "géographiques) et HYDROSTAT (Observatoire de la qualité des cours d'eau)."
    )
    assert set(in_production.provenance.entity_ids) == {"1503", "1118", "1131"}
    assert ("Eau et milieux aquatiques", "2") in counting and ("DGALN/DEB", "3") in counting
    listing = {e.provenance.key_facts[0]: e for e in of_type(examples, "listing")}
    assert listing["Biodiversité"].answer == (
        "Les 2 applications du domaine « Biodiversité » sont 8-SINP (Plateformes "
        "régionales SINP habilitées) et MARIPROT (Gestion des aires marines protégées)."
    )
    assert listing["en construction"].answer.endswith(" Elles relèvent toutes deux du domaine « Biodiversité ».")
    assert listing["abandonnée"].answer.startswith(
        "Une seule application est abandonnée : ADS-PLUS (Instruction des autorisations du droit des sols). "
    )
    assert (
        "« Urbanisme »" in listing["abandonnée"].answer and "locale" in listing["abandonnée"].answer
    )  # from ADS-PLUS's record
    assert "Combien d'applications sont en production ?" in {
        e.question for e in generate(catalog_of(APPS), GenerationConfig(variations=6))
    }


# ---------------------------------------------------------------- answer length: grounded context after a short answer

QUOTED = re.compile(r"« (.+?) »")
ENTITY_TYPES = ("definition", "status", "domain", "actors", "sites", "contacts", "scope", "events", "related")


def bare_examples(catalog: Catalog, config: GenerationConfig, monkeypatch: pytest.MonkeyPatch) -> dict[str, Example]:
    """The same examples with no context added (every answer counts as long enough), by id."""
    with monkeypatch.context() as patched:
        patched.setattr(templates, "ANSWER_MIN_WORDS", 0)
        return {e.id: e for e in generate(catalog, config)}


def grounded_values(entity: Entity) -> set[str]:
    """What a context sentence may quote from a record."""
    values = {d.domain for d in entity.domains} | {d.subdomain for d in entity.domains if d.subdomain}
    values |= {v for v in (entity.family, entity.technology) if v}
    if entity.description:
        values.add(summarise(entity.description, CONTEXT_SUMMARY_WORDS))
    return values


def assert_grounded(added: str, entity: Entity, statuses: set[str]) -> None:
    """Every value the added text states comes from the entity's record."""
    for quoted in QUOTED.findall(added):
        assert quoted in grounded_values(entity), (quoted, entity.name)
    if "portée géographique" in added:
        assert entity.scope and f"portée géographique {lower_first(entity.scope)}" in added, (added, entity.scope)
    for status in statuses:
        if status_words(status).verb in added:
            assert entity.status and fold(entity.status) == fold(status), (added, entity.status)
    if "fait intervenir" in added:
        assert any(a.name in added for a in entity.actors), added


def test_short_answers_get_context_from_their_own_record(catalog, monkeypatch):
    config = GenerationConfig(variations=6)
    bare = bare_examples(catalog, config, monkeypatch)
    by_id = catalog.by_id()
    statuses = {e.status for e in catalog.entities if e.status}
    enriched = 0
    for example in generate(catalog, config):
        if example.qtype not in ENTITY_TYPES:
            continue
        direct = bare[example.id]
        assert example.answer.startswith(direct.answer), (
            direct.answer,
            example.answer,
        )  # the direct answer stays first
        assert example.provenance == direct.provenance  # same key facts, roles, template
        added = example.answer[len(direct.answer) :]
        if word_count(direct.answer) >= ANSWER_MIN_WORDS:
            assert not added, example.answer  # a long enough answer is left alone
            continue
        entity = by_id[example.provenance.entity_ids[0]]
        assert_grounded(added, entity, statuses)
        assert added.count(".") <= 2 + added.count("« ")  # one or two sentences (a quoted description may hold a few)
        enriched += bool(added)
    assert enriched > 20


def test_context_uses_the_records_other_fields_and_never_repeats_the_question_field():
    entity = Entity(
        "7",
        "ALPHA",
        long_name="Suivi des alpages",
        status="En production",
        scope="Régionale",
        domains=(Domain("Agriculture", "Pastoralisme"),),
        description="Outil de suivi des estives. Deuxième phrase.",
    )
    status = answer_status(entity, variant=0)
    assert status.text == (
        "L'application ALPHA (Suivi des alpages) est actuellement en production. "
        "ALPHA relève du domaine « Agriculture » (sous-domaine « "
        "Pastoralisme ») et a une portée géographique régionale."
    )
    assert status.key_facts == ("en production",) and status.fields == ("status",)
    scope = answer_scope(entity, variant=1)
    assert scope.text.startswith(
        "La portée géographique de l'application ALPHA (Suivi des alpages) est régionale. Par ailleurs, ALPHA "
    )
    assert "est actuellement en production" in scope.text and "« Agriculture »" in scope.text
    assert scope.text.count("régionale") == 1 and scope.key_facts == ("régionale",)
    # the phrasing varies with the variant, the facts do not
    texts = {answer_status(entity, variant=v).text for v in range(5)}
    assert len(texts) == 5 and all("« Agriculture »" in t and "régionale" in t for t in texts)


def test_a_nearly_empty_record_is_not_padded():
    bare = Entity("8", "OMEGA", status="En projet")
    assert answer_status(bare).text == "L'application OMEGA est actuellement en projet."
    assert (
        answer_status(bare, yes_no=True, variant=3).text
        == "Non, l'application OMEGA n'est pas en production : elle est actuellement en projet."
    )


def test_context_never_goes_beyond_the_upper_bound():
    huge = Entity("9", "HUGE", status="En production", domains=(Domain("mot " * 190),), description="phrase " * 400)
    text = "mot " * 18
    assert word_count(with_context(text, huge, "scope", 0)) <= ANSWER_MAX_WORDS
    assert word_count(with_context("mot " * 199, huge, "scope", 0)) == 199
    assert word_count(with_context(text, huge, "scope", 0)) > 18  # the description line still fits


def test_listings_and_counts_name_their_applications_when_short(catalog, monkeypatch):
    config = GenerationConfig()
    bare = bare_examples(catalog, config, monkeypatch)
    by_id = catalog.by_id()
    for example in generate(catalog, config):
        if example.qtype not in ("listing", "counting"):
            continue
        assert example.provenance == bare[example.id].provenance
        unlabelled = example.answer
        for entity_id in example.provenance.entity_ids:
            entity = by_id[entity_id]
            if entity.long_name:
                unlabelled = unlabelled.replace(f"{entity.name} ({entity.long_name})", entity.name)
        assert unlabelled.startswith(bare[example.id].answer), (bare[example.id].answer, example.answer)


def test_empty_field_negatives_point_to_what_the_record_says(examples, catalog):
    by_id = catalog.by_id()
    statuses = {e.status for e in catalog.entities if e.status}
    for example in of_type(examples, "negative_empty_field"):
        entity = by_id[example.provenance.entity_ids[0]]
        (role,) = example.provenance.fields
        refusal, _, known = example.answer.partition("inventer.")
        assert "renseign" in refusal  # still an honest refusal first
        assert_grounded(known, entity, statuses)
        if role == "domains":
            assert "domaine" not in known
        if role == "status":
            assert not any(status_words(s).verb in known for s in statuses)
    archipel = generate(catalog, GenerationConfig(negative_ratio=0.9))
    described = {
        e.answer for e in archipel if e.provenance.entity_ids == ("1523",) and e.provenance.fields == ("description",)
    }
    assert described and all(a.endswith("ARCHIPEL est actuellement en projet.") for a in described)


def test_an_entitys_answers_do_not_depend_on_the_rest_of_the_catalog(catalog, examples):
    bigger = generate(
        catalog_of(
            APPS + [{"id": 4242, "nom": "ZETA", "statut si": "En production", "portee geographique": "Nationale"}]
        )
    )
    before = {e.id: e.answer for e in examples if e.qtype in ENTITY_TYPES}
    after = {e.id: e.answer for e in bigger if e.qtype in ENTITY_TYPES}
    assert all(after[i] == a for i, a in before.items() if i in after)


def test_sample_catalog_answers_stay_within_the_guide_bounds(sample_catalog_path):
    sample = load_catalog_file(sample_catalog_path)
    examples = generate(sample, GenerationConfig(num_questions=1000))
    counts = [word_count(e.answer) for e in examples]
    assert max(counts) <= ANSWER_MAX_WORDS
    assert sum(ANSWER_MIN_WORDS <= n for n in counts) / len(counts) >= 0.95  # the guide asks for 90%
    by_id = sample.by_id()
    for example in examples:
        if word_count(example.answer) < ANSWER_MIN_WORDS:  # only records that hold nothing else to say
            entity = by_id[example.provenance.entity_ids[0]]
            assert not (entity.long_name or entity.description or entity.domains or entity.scope or entity.actors), (
                example.answer
            )
    assert generate(sample, GenerationConfig(num_questions=1000)) == examples


# ---------------------------------------------------------------- negatives


def test_unknown_entity_negatives_refuse_without_inventing(examples, catalog):
    negatives = of_type(examples, "negative_unknown_entity")
    assert negatives
    real = {fold(e.name) for e in catalog.entities}
    for example in negatives:
        assert (
            example.provenance.negative and example.provenance.key_facts == () and example.provenance.entity_ids == ()
        )
        name = unknown_name_in(example.answer)
        assert name and name in example.question
        assert fold(name) not in real
        assert not any(e.name in example.answer for e in catalog.entities)
        assert "https://" not in example.answer


def test_made_up_names_are_not_close_to_real_names(catalog):
    names = [n for n, _ in zip(fake_names(catalog), range(60), strict=False)]
    assert len(set(names)) == 60
    for name in names:
        for entity in catalog.entities:
            assert SequenceMatcher(None, fold(name), fold(entity.name)).ratio() < 0.6, (name, entity.name)


def test_made_up_names_avoid_a_catalog_that_uses_the_same_vocabulary(catalog):
    first = next(fake_names(catalog))
    crowded = catalog_of(APPS + [{"id": 9999, "nom": first, "statut si": "En production"}])
    assert first not in [n for n, _ in zip(fake_names(crowded), range(200), strict=False)]


def test_empty_field_negatives_ask_about_a_field_the_record_leaves_empty(examples, catalog):
    by_id = catalog.by_id()
    negatives = of_type(examples, "negative_empty_field")
    assert negatives
    actor_names = {a.name for e in catalog.entities for a in e.actors}
    for example in negatives:
        (role,) = example.provenance.fields
        entity = by_id[example.provenance.entity_ids[0]]
        assert example.provenance.negative and example.provenance.key_facts == ()
        assert not (entity.description or entity.long_name) if role == "description" else not getattr(entity, role)
        assert "n'est pas renseigné" in example.answer or "ne renseigne pas" in example.answer
        assert not any(name in example.answer for name in actor_names)
    archipel = {
        e.provenance.fields[0]
        for e in generate(catalog, GenerationConfig(negative_ratio=0.9))
        if e.provenance.entity_ids == ("1523",) and e.provenance.negative
    }
    assert archipel == {
        "description",
        "domains",
        "actors",
        "sites",
        "contacts",
        "scope",
        "events",
        "related_applications",
        "related_data",
    }


def test_negatives_follow_the_ratio(catalog):
    examples = generate(catalog, GenerationConfig(num_questions=100))
    assert sum(e.provenance.negative for e in examples) == 10
    assert not any(e.provenance.negative for e in generate(catalog, GenerationConfig(add_negatives=False)))


# ---------------------------------------------------------------- provenance


def test_provenance_names_entities_roles_and_template(examples, catalog):
    ids = {e.id for e in catalog.entities}
    for example in examples:
        p = example.provenance
        qtype, index = p.template.rsplit(".", 1)
        assert qtype == example.qtype and index.isdigit()
        assert set(p.entity_ids) <= ids
        assert p.negative == (example.qtype in NEGATIVE_TYPES)
        if example.qtype != "negative_unknown_entity":
            assert p.fields and p.entity_ids
    assert of_type(examples, "status")[0].provenance.fields == ("status",)
    assert len({e.id for e in examples}) == len(examples)


# ---------------------------------------------------------------- size, balance and determinism


def test_plan_size_follows_the_guide_arithmetic(catalog, examples):
    plan = plan_size(catalog)
    assert plan.guide_estimate == len(catalog.entities) * len(QUESTION_TYPES) * 3
    assert plan.total == len(examples)
    assert plan.planned == dict(Counter(e.qtype for e in examples))
    assert plan.possible["contacts"] == 3  # one record fills contacts: 1 × 3 variations
    assert plan.formula == "8 apps x 14 types x 3 variations = 336" and plan.formula in plan.describe()
    assert plan.to_dict()["per_type"] == plan.planned and sum(plan.per_type.values()) == plan.total


def test_num_questions_is_balanced_across_types_and_entities(catalog):
    examples = generate(catalog, GenerationConfig(num_questions=40, add_negatives=False))
    counts = Counter(e.qtype for e in examples)
    assert len(examples) == 40 and len(counts) == 12
    assert max(counts.values()) - min(counts.values()) <= 3  # contacts and comparative have fewer facts
    covered = {i for e in examples for i in e.provenance.entity_ids}
    assert covered == {e.id for e in catalog.entities}


def test_generation_is_deterministic(catalog):
    config = GenerationConfig(num_questions=80, seed=7)
    assert generate(catalog, config) == generate(catalog, config)
    assert generate(catalog, config) != generate(catalog, replace(config, seed=8))


def test_question_types_and_variations_select_what_is_generated(catalog):
    examples = generate(catalog, GenerationConfig(question_types="status, listing", add_negatives=False, variations=1))
    assert {e.qtype for e in examples} == {"status", "listing"}
    assert len(of_type(examples, "status")) == len(catalog.entities)


def test_too_many_questions_states_the_maximum(catalog):
    maximum = plan_size(catalog).total
    with pytest.raises(DatasetError) as caught:
        generate(catalog, GenerationConfig(num_questions=maximum + 1))
    assert caught.value.code == "too_many_questions"
    assert str(maximum) in caught.value.message and "--variations" in caught.value.message
    assert len(generate(catalog, GenerationConfig(num_questions=maximum))) == maximum


def test_plan_size_can_check_the_requested_size(catalog):
    config = GenerationConfig(num_questions=10_000)
    assert plan_size(catalog, config).total < 10_000  # no check: the plan is returned
    with pytest.raises(DatasetError) as caught:
        plan_size(catalog, config, check=True)
    assert caught.value.code == "too_many_questions"


def test_generate_reports_progress(catalog):
    seen: list[float] = []
    generate(catalog, GenerationConfig(num_questions=50), on_progress=seen.append)
    assert seen and seen == sorted(seen) and seen[-1] == 1.0 and all(0 <= f <= 1 for f in seen)


def test_a_catalog_of_names_only_has_no_usable_field():
    names_only = catalog_of([{"id": 1, "nom": "ALPHA"}, {"id": 2, "nom": "BETA", "statut si": "***TEMPORAIRE***"}])
    with pytest.raises(DatasetError) as caught:
        generate(names_only)
    assert caught.value.code == "no_usable_field"
    assert "status" in caught.value.message and "description" in caught.value.message


def test_unknown_question_type_lists_the_valid_ones(catalog):
    with pytest.raises(DatasetError) as caught:
        generate(catalog, GenerationConfig(question_types=["status", "weather"]))
    assert caught.value.code == "unknown_question_type"
    assert "weather" in caught.value.message and "definition" in caught.value.message


def test_bad_config_is_refused(catalog):
    with pytest.raises(DatasetError) as caught:
        generate(catalog, GenerationConfig(variations=0))
    assert caught.value.code == "bad_config"


# ---------------------------------------------------------------- retraining


def changed_catalog() -> Catalog:
    apps = [dict(a) for a in APPS if a["nom"] != "ECOMOBI"]  # removed
    ads = next(a for a in apps if a["nom"] == "ADS-PLUS")
    ads["statut si"] = "En production"  # changed
    apps.append(
        {
            "id": 1700,
            "nom": "NAVIGO-FLEUVE",
            "nom long": "Suivi des voies navigables",
            "statut si": "En projet",
            "domaines et sous domaines": [{"domaine metier": "Transports"}],
        }
    )  # added
    return catalog_of(apps)


def test_regenerate_changed_keeps_unchanged_entities_and_redoes_the_rest(catalog, examples):
    new = changed_catalog()
    diff = diff_catalogs(catalog, new)
    assert (diff.added, diff.changed, diff.removed) == (("1700",), ("1560",), ("1089",))
    result = regenerate_changed(examples, new, diff, GenerationConfig())
    kept_geoval = [e for e in examples if e.provenance.entity_ids == ("1503",)]
    assert all(e in result for e in kept_geoval)
    assert not any("1089" in e.provenance.entity_ids for e in result)
    assert of_type(result, "status", "1700") and of_type(result, "definition", "1700")
    ads_status = {e.answer for e in of_type(result, "status", "1560")}
    assert ads_status and all("abandonnée" not in a for a in ads_status)
    counts = {e.provenance.key_facts for e in of_type(result, "counting")}
    assert ("en production", "3") not in counts and not any(f[0] == "abandonnée" for f in counts)
    assert len({fold(e.question) for e in result}) == len(result)
    assert regenerate_changed(examples, new, diff, GenerationConfig()) == result


def test_regenerate_redoes_a_listing_whose_applications_changed_their_long_name(catalog, examples):
    apps = [dict(a) for a in APPS]
    next(a for a in apps if a["nom"] == "HYDROSTAT")["nom long"] = "Observatoire des rivières"
    new = catalog_of(apps)
    result = regenerate_changed(examples, new, diff_catalogs(catalog, new))
    counting = [e for e in of_type(result, "counting") if e.provenance.key_facts == ("en production", "3")]
    assert counting and all("HYDROSTAT (Observatoire des rivières)" in e.answer for e in counting)
    assert not any(
        "Observatoire de la qualité des cours d'eau" in e.answer
        for e in of_type(result, "listing") + of_type(result, "counting")
    )


def test_regenerate_with_no_change_keeps_everything(catalog, examples):
    assert regenerate_changed(examples, catalog, diff_catalogs(catalog, catalog)) == examples


def test_a_size_is_fitted_to_a_small_catalog_more_variations_first():
    from pathlib import Path

    from dyag_core.dataset import fit_to_catalog

    sample = load_catalog_file(
        Path(__file__).resolve().parents[2] / "examples/test-mygusi/applicationsIA_mini_normalized.json"
    )
    small = Catalog(tuple(sample.entities[:10]), "json-list", (), {})
    catalog = sample
    fitted, why = fit_to_catalog(small, GenerationConfig(num_questions=1000, seed=3))
    at3 = plan_size(small, GenerationConfig(seed=3)).total
    assert at3 < 1000 and fitted.variations > 3  # more phrasings first…
    assert fitted.num_questions == plan_size(small, fitted).total < 1000  # …then what the catalog allows
    assert why.startswith(f"10 applications: {at3} questions possible at 3 variations, ") and why.endswith(
        f"using {fitted.num_questions}"
    )
    assert len(generate(small, fitted)) == fitted.num_questions
    roomy, why = fit_to_catalog(catalog, GenerationConfig(num_questions=200, seed=3))  # enough already: unchanged
    assert roomy.variations == 3 and roomy.num_questions == 200 and why.endswith("using 200")
