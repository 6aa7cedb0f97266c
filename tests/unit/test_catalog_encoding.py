"""Encodings: mojibake (UTF-8 read as cp1252) is repaired or refused; a cp1252 file is read."""

from __future__ import annotations

import json

import pytest

from dyag_core.catalog import load_catalog
from dyag_core.errors import CatalogError

RECORDS = [
    {
        "ID": 1,
        "Nom": "GÉOVAL",
        "Statut SI": "En préparation – déjà validée",
        "Portée géographique": "Régionale",
        "Descriptif": "L’outil gère les données d’œuvre à Orléans.",
        "Domaines et sous domaines": [
            {"Domaine métier": "Eau, milieux aquatiques", "Sous domaine métier": "Qualité des eaux"}
        ],
    },
    {"ID": 2, "Nom": "HYDRO", "Statut SI": "En production", "Portée géographique": "Nationale"},
]
TEXT = json.dumps(RECORDS, ensure_ascii=False)


def garbled(text: str) -> str:
    """What a tool that read UTF-8 as Windows-1252 and saved it again as UTF-8 produces."""
    return text.encode("utf-8").decode("cp1252")


def test_the_garbled_fixture_really_holds_mojibake():
    assert "GÃ‰OVAL" in garbled(TEXT)
    assert "PortÃ©e gÃ©ographique" in garbled(TEXT)


def test_mojibake_values_are_repaired():
    catalog = load_catalog(garbled(TEXT).encode("utf-8"))

    first = catalog.entities[0]
    assert first.name == "GÉOVAL"
    assert first.status == "En préparation – déjà validée"
    assert first.description == "L’outil gère les données d’œuvre à Orléans."
    assert first.domains[0].domain == "Eau, milieux aquatiques"
    assert first.domains[0].subdomain == "Qualité des eaux"


def test_mojibake_keys_are_repaired_so_roles_still_resolve():
    catalog = load_catalog(garbled(TEXT).encode("utf-8"))

    assert "Portée géographique" in catalog.source_fields
    assert [e.scope for e in catalog.entities] == ["Régionale", "Nationale"]


def test_repaired_catalog_equals_the_clean_one():
    clean = load_catalog(TEXT.encode("utf-8"))
    repaired = load_catalog(garbled(TEXT).encode("utf-8"))

    assert repaired.version == clean.version
    assert repaired.source_fields == clean.source_fields


def test_mojibake_repair_is_reported_as_a_warning():
    catalog = load_catalog(garbled(TEXT).encode("utf-8"))

    assert any("mojibake" in w for w in catalog.warnings)


def test_clean_utf8_catalog_has_no_mojibake_warning():
    assert load_catalog(TEXT.encode("utf-8")).warnings == ()


def test_mojibake_is_refused_when_repair_is_off_naming_a_sample():
    with pytest.raises(CatalogError) as caught:
        load_catalog(garbled(TEXT).encode("utf-8"), repair_mojibake_text=False)

    error = caught.value
    assert error.code == "mojibake"
    assert "GÃ‰OVAL" in error.message
    assert "cp1252" in error.message
    assert error.details["count"] >= 5
    assert error.details["samples"]


def test_clean_catalog_loads_when_repair_is_off():
    catalog = load_catalog(TEXT.encode("utf-8"), repair_mojibake_text=False)

    assert catalog.entities[0].name == "GÉOVAL"


def test_cp1252_encoded_file_is_read_with_a_warning():
    catalog = load_catalog(TEXT.encode("cp1252"), filename="export.json")

    assert catalog.entities[0].name == "GÉOVAL"
    assert catalog.entities[0].description == "L’outil gère les données d’œuvre à Orléans."
    assert [e.scope for e in catalog.entities] == ["Régionale", "Nationale"]
    assert any("not UTF-8" in w and "Windows-1252" in w for w in catalog.warnings)


def test_cp1252_encoded_semicolon_csv_is_read_with_a_warning():
    data = "nom;statut si;portée géographique\nGÉOVAL;Abandonnée;Régionale\n".encode("cp1252")

    catalog = load_catalog(data, filename="export.csv")

    assert (catalog.entities[0].name, catalog.entities[0].status, catalog.entities[0].scope) == (
        "GÉOVAL",
        "Abandonnée",
        "Régionale",
    )
    assert any("Windows-1252" in w for w in catalog.warnings)


def test_file_neither_utf8_nor_cp1252_is_refused_naming_the_offset():
    data = b'[{"nom": "A\x81"}]'  # 0x81 is undefined in Windows-1252

    with pytest.raises(CatalogError) as caught:
        load_catalog(data)

    assert caught.value.code == "not_utf8"
    assert "offset 11" in caught.value.message
