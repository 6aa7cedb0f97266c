"""Grounded answers (dyag_core.answering): each question type understood and answered from the record, several
fields at once, unknown names and empty fields refused, the confidence that sends a question to the model, and the
registry driving both the dataset generator and the answerer."""

from __future__ import annotations

from pathlib import Path

import pytest

from dyag_core.answering.grounded import GroundedAnswerer
from dyag_core.answering.intent import IntentClassifier
from dyag_core.catalog.loader import load_catalog_file
from dyag_core.dataset.generate import ENTITY_TYPES, GenerationConfig, generate
from dyag_core.dataset.registry import INTENTS, intents_of_type
from dyag_core.evaluation.metrics import abstains

SAMPLE = Path(__file__).resolve().parents[2] / "examples/test-mygusi/applicationsIA_mini_normalized.json"


@pytest.fixture(scope="module")
def catalog():
    return load_catalog_file(SAMPLE)


@pytest.fixture(scope="module")
def answerer(catalog):
    return GroundedAnswerer(catalog)


def record(catalog, name):
    return next(e for e in catalog.entities if e.name == name)


FIELD_QUESTIONS = [
    ("Quel est le statut de 8-SINP ?", "status", ["en construction"]),
    ("Qui gère 6Tzen ?", "actors", ["DGITM/DST/PTF", "SNUM/MSP/DAM"]),
    ("Où trouver 6Tzen ?", "sites", ["https://6tzen.example.gouv.fr/"]),
    ("Qui contacter pour CARTO-SI ?", "contacts", ["david.fournier@developpement-durable.example"]),
    ("Dans quel domaine est 6Tzen ?", "domain", ["Transports"]),
    ("Quelle est la portée géographique de 6Tzen ?", "scope", ["nationale"]),
    ("Quelle est la technologie principale de 6Tzen ?", "technology", ["Java / Angular / PostgreSQL"]),
    ("Quel est l'identifiant de 6Tzen ?", "identifier", ["1004"]),
    ("Que signifie le sigle CARTO-SI ?", "long_name", ["Cartographie du système d'information ministériel"]),
    ("Dis-moi tout sur 6Tzen.", "summary", ["Transports", "en production"]),
    ("Combien d'utilisateurs a 6Tzen ?", "users", ["Entreprises de transport routier", "40 000", "350"]),
    ("Quelle est la description de 6Tzen ?", "definition", ["téléservice national"]),
    ("Quelles sont les dates clés de 6Tzen ?", "events", ["janvier 2019"]),
    ("Avec quelles applications 6Tzen échange-t-elle ?", "related_applications", ["REGTRANS", "CONTROLE-RT"]),
    ("Quelles données sont liées à 6Tzen ?", "related_data", ["Répertoire des établissements (SIRET)"]),
    ("À quelle famille appartient 6Tzen ?", "family", ["Téléservices"]),
    ("Quelles sont les fonctions de 6Tzen ?", "functions", ["instruction des dossiers"]),
    ("Où est hébergée 6Tzen ?", "hosting", ["Centre serveur ministériel - site Ouest"]),
    ("Quels sont les bénéficiaires de 6Tzen ?", "beneficiaries", ["Entreprises de transport routier de marchandises"]),
]


@pytest.mark.parametrize(("question", "intent", "facts"), FIELD_QUESTIONS)
def test_each_field_is_understood_and_answered_from_the_record(answerer, question, intent, facts) -> None:
    """Every entity intent of the registry, once each (test_every_entity_intent_is_tested keeps the list complete)."""
    a = answerer.answer(question)
    assert a.understood and a.intents[0] == intent, (a.intents, a.confidence)
    for fact in facts:
        assert fact.lower() in a.text.lower()
    assert a.citations and all(c.entity_id in answerer.by_id for c in a.citations)
    assert not abstains(a.text)


def test_every_entity_intent_is_tested() -> None:
    tested = {intent for _, intent, _ in FIELD_QUESTIONS}
    assert {name for name, i in INTENTS.items() if i.scope == "entity"} == tested


def test_typos_missing_accents_and_lower_case_names(answerer) -> None:
    a = answerer.answer("qui gere 6tzen ?")
    assert a.understood and a.intents[0] == "actors" and "DGITM/DST/PTF" in a.text


def test_several_fields_in_one_question(answerer) -> None:
    a = answerer.answer("Qui gère 6Tzen et où le trouver ?")
    assert set(a.intents) >= {"actors", "sites"}
    assert "DGITM/DST/PTF" in a.text and "https://6tzen.example.gouv.fr/" in a.text
    assert {c.field for c in a.citations} >= {"actors", "sites"}


def test_an_unknown_application_is_refused_by_name(answerer) -> None:
    a = answerer.answer("Quel est le statut de ZORGLUB ?")
    assert a.kind == "unknown_entity" and "ZORGLUB" in a.text and abstains(a.text) and not a.citations


def test_an_empty_field_says_so_and_invents_nothing(answerer, catalog) -> None:
    empty = next(e for e in catalog.entities if not e.beneficiaries)
    a = answerer.answer(f"Quels sont les bénéficiaires de {empty.name} ?")
    assert a.kind == "empty_field" and "n'est pas renseignée" in a.text and abstains(a.text)
    assert a.citations[0].field == "beneficiaries" and not a.key_facts


def test_listing_counting_and_comparison_over_the_catalog(answerer, catalog) -> None:
    in_production = [e for e in catalog.entities if (e.status or "").lower() == "en production"]
    count = answerer.answer("Combien d'applications sont en production ?")
    assert count.kind == "counting" and str(len(in_production)) in count.text
    listing = answerer.answer("Quelles applications sont en fin de vie ?")
    ending = sorted(e.name for e in catalog.entities if e.status == "En fin de vie")
    assert listing.kind == "listing" and all(name in listing.text for name in ending)
    both = answerer.answer("Quelles applications du domaine Transports sont en production ?")
    assert {c.entity_id for c in both.citations} == {
        e.id for e in in_production if any(d.domain == "Transports" for d in e.domains)
    }
    compared = answerer.answer("Différence entre 6Tzen et CARTO-SI ?")
    assert compared.kind == "comparison" and compared.entities[:2] == (
        record(catalog, "6Tzen").id,
        record(catalog, "CARTO-SI").id,
    )


def test_an_application_described_not_named_is_found_by_its_record(answerer, catalog) -> None:
    a = answerer.answer("Quel est le statut de l'outil de prévision des crues ?")
    assert a.understood and a.entities == (record(catalog, "PREVICRUE").id,) and a.intents[0] == "status"
    # a name the catalog does not hold, even beside words of a real description, is still refused by name
    unknown = answerer.answer("Je cherche des infos sur BRUIT-MAP, l'outil de prévision des crues")
    assert unknown.kind == "unknown_entity" and "BRUIT-MAP" in unknown.text


def test_a_contact_named_by_role_or_an_event_by_kind_asks_that_field(answerer, catalog) -> None:
    webmaster = answerer.answer("le webmestre de PPR-WEB ?")
    contact = next(c for c in record(catalog, "PPR-WEB").contacts if c.role == "Webmestre")
    assert "contacts" in webmaster.intents and contact.email in webmaster.text
    ended = answerer.answer("Quand PRELEV a-t-elle été décommissionnée ?")
    assert "events" in ended.intents and "31 décembre 2019" in ended.text


def test_a_comparison_of_one_field_gives_that_field_for_both(answerer, catalog) -> None:
    a = answerer.answer("compare la techno de EOLIA et ESPECIA")
    assert a.kind == "comparison" and "technology" in a.intents
    for name in ("EOLIA", "ESPECIA"):
        assert record(catalog, name).technology in a.text


def test_a_question_not_understood_falls_back_with_a_low_confidence(answerer) -> None:
    a = answerer.answer("Quelle est la météo demain à Brest ?")
    assert not a.understood and a.text == "" and a.kind == "not_understood"


def test_the_confidence_is_calibrated_on_held_out_phrasings() -> None:
    classifier = IntentClassifier(
        [
            ("quel est le statut de qqx", "status"),
            ("statut de qqx", "status"),
            ("etat de qqx", "status"),
            ("qui gere qqx", "actors"),
            ("acteurs de qqx", "actors"),
            ("qui porte qqx", "actors"),
        ]
    )
    best = classifier.predict("quel statut pour qqx")[0]
    assert best.intent == "status" and 0.5 < best.probability < 1.0
    assert abs(sum(s.probability for s in classifier.predict("bonjour")) - 1.0) < 1e-9


def test_one_registry_drives_the_dataset_and_the_answers(catalog, answerer) -> None:
    # every per-application type the dataset generates is taught by registry intents, answered by the same renderer
    assert set(ENTITY_TYPES) == {i.dataset_type for i in INTENTS.values() if i.scope == "entity" and i.dataset_type}
    examples = generate(catalog, GenerationConfig(num_questions=300, seed=1, question_types="status,actors,sites"))
    right = asked = 0
    for example in examples[:60]:
        if example.provenance.negative:
            continue
        entity = answerer.by_id[example.provenance.entity_ids[0]]
        intent = intents_of_type(example.qtype)[0]
        rendered = intent.answer(entity, 0)
        assert set(rendered.key_facts) == set(example.provenance.key_facts)  # the dataset's facts are the renderer's
        a = answerer.answer(example.question)
        asked += 1
        right += a.understood and all(f.lower() in a.text.lower() for f in example.provenance.key_facts)
    assert asked >= 40 and right / asked >= 0.9, (right, asked)
