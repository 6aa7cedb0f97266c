"""Text normalisation used by the catalog: keys, comparison forms, placeholders, URLs, mojibake."""

from __future__ import annotations

import json

import pytest

from dyag_core.catalog import load_catalog
from dyag_core.text import clean_scalar, fold, is_placeholder, normalize_key, repair_mojibake, repair_url


@pytest.mark.parametrize(
    ("key", "normalised"),
    [
        ("statut si", "statut si"),
        ("Statut SI", "statut si"),
        ("statut_si", "statut si"),
        ("Statut-SI", "statut si"),
        (" Statut  SI ", "statut si"),
        ("Portée géographique", "portee geographique"),
        ("Famille d'applications", "famille d applications"),
        ("Rôle d’acteur", "role d acteur"),
    ],
)
def test_normalize_key_ignores_case_accents_and_separators(key, normalised):
    assert normalize_key(key) == normalised


@pytest.mark.parametrize(
    ("text", "folded"),
    [
        ("En production", "en production"),
        ("en  production ", "en production"),
        ("Abandonnée", "abandonnee"),
        ("Eau, milieux", "eau milieux"),
    ],
)
def test_fold_gives_one_comparison_form_per_spelling(text, folded):
    assert fold(text) == folded


@pytest.mark.parametrize(
    "text",
    [
        "***TEMPORAIRE***",
        "** à définir **",
        "N/A",
        "n/a",
        "NA",
        "NC",
        "N.C.",
        "TBD",
        "todo",
        "-",
        "--",
        "–",
        "?",
        "...",
        "à compléter",
        "A completer",
        "Non renseigné",
        "non renseigne",
        "  -  ",
    ],
)
def test_placeholders_are_recognised(text):
    assert is_placeholder(text)


@pytest.mark.parametrize("text", ["GEOVAL", "8-SINP", "Nationale", "N2000-SUIVI", "1.0", "-10", "Nantes"])
def test_real_values_are_not_placeholders(text):
    assert not is_placeholder(text)


@pytest.mark.parametrize(
    ("value", "cleaned"),
    [
        (None, None),
        ("", None),
        ("   ", None),
        ("***TEMPORAIRE***", None),
        ("N/A", None),
        ("-", None),
        ("  GEOVAL  ", "GEOVAL"),
        (1004, "1004"),
        (0, "0"),
        ([{"a": 1}], None),
        ({"a": 1}, None),
    ],
)
def test_clean_scalar_gives_display_text_or_none(value, cleaned):
    assert clean_scalar(value) == cleaned


@pytest.mark.parametrize(
    ("url", "repaired"),
    [
        ("https  www geoval example gouv fr ", "https://www.geoval.example.gouv.fr"),
        ("https  urba-consult example gouv fr ", "https://urba-consult.example.gouv.fr"),
        ("HTTP  intranet example fr", "http://intranet.example.fr"),
        ("https://geoval.example.gouv.fr/aide/", "https://geoval.example.gouv.fr/aide/"),
        ("  https://geoval.example.gouv.fr/  ", "https://geoval.example.gouv.fr/"),
        ("geoval.example.gouv.fr", "geoval.example.gouv.fr"),
    ],
)
def test_repair_url_rebuilds_spaced_out_urls_and_keeps_good_ones(url, repaired):
    assert repair_url(url) == repaired


@pytest.mark.parametrize(
    "text",
    ["Régionale", "Qualité des eaux", "L’outil gère les données d’œuvre", "ÉTAT – déjà validée", "À propos, ça va"],
)
def test_repair_mojibake_undoes_utf8_read_as_cp1252(text):
    garbled = text.encode("utf-8").decode("cp1252")
    assert garbled != text

    assert repair_mojibake(garbled) == text


@pytest.mark.parametrize("text", ["GEOVAL", "Régionale", "Île-de-France", "Âge du bâti", "Ça"])
def test_repair_mojibake_leaves_clean_text_alone(text):
    assert repair_mojibake(text) == text


# --- placeholders in a loaded catalog ------------------------------------------------------------


def test_placeholder_values_become_none_on_the_entity():
    record = {
        "id": 1,
        "nom": "DECISIO",
        "nom long": "***TEMPORAIRE***",
        "fonctions": "N/A",
        "technologie principale": "-",
        "statut si": "En construction",
    }

    entity = load_catalog(json.dumps([record]).encode()).entities[0]

    assert (entity.long_name, entity.functions, entity.technology) == (None, None, None)
    assert entity.status == "En construction"
    assert entity.extra == {}


def test_placeholder_items_in_nested_fields_are_dropped():
    record = {
        "id": 1,
        "nom": "DECISIO",
        "sites": [{"nature de l url": "Site principal", "url": "***TEMPORAIRE***"}],
        "acteurs": [{"role d acteur": "MOA", "acteur": "N/A"}, {"role d acteur": "-", "acteur": "DGALN"}],
    }

    entity = load_catalog(json.dumps([record]).encode()).entities[0]

    assert entity.sites == ()
    assert [(a.name, a.role) for a in entity.actors] == [("DGALN", None)]
