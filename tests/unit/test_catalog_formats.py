"""Reading every export format the catalog comes in, and field names in any spelling."""

from __future__ import annotations

import json

import pytest

from dyag_core.catalog import FieldRoles, load_catalog, load_catalog_file

RECORDS = [
    {"id": 1, "nom": "GEOVAL", "statut si": "En production"},
    {"id": 2, "nom": "HYDROSTAT", "statut si": "En projet"},
]


def keyed_json(records=RECORDS, key="applicationsia mini") -> bytes:
    return json.dumps({key: records}, ensure_ascii=False, indent=2).encode()


def json_list(records=RECORDS) -> bytes:
    return json.dumps(records, ensure_ascii=False).encode()


def jsonl(records=RECORDS) -> bytes:
    return "\n".join(json.dumps(r, ensure_ascii=False) for r in records).encode() + b"\n"


def csv_text(delimiter: str = ",") -> bytes:
    rows = [["id", "nom", "statut si"], ["1", "GEOVAL", "En production"], ["2", "HYDROSTAT", "En projet"]]
    return "\n".join(delimiter.join(row) for row in rows).encode() + b"\n"


def summary(catalog) -> list[tuple[str, str, str | None]]:
    return [(e.id, e.name, e.status) for e in catalog.entities]


EXPECTED = [("1", "GEOVAL", "En production"), ("2", "HYDROSTAT", "En projet")]


def test_sample_catalog_reads_as_keyed_json_with_its_collection_key(sample_catalog_path):
    catalog = load_catalog_file(sample_catalog_path)

    assert catalog.source_format == "keyed-json"
    assert catalog.collection_key == "applicationsia mini"
    assert len(catalog.entities) == 45
    assert catalog.warnings == ()


def test_keyed_json_reads_the_list_under_its_single_key():
    catalog = load_catalog(keyed_json(), filename="applicationsIA_mini_normalized.json")

    assert catalog.source_format == "keyed-json"
    assert catalog.collection_key == "applicationsia mini"
    assert summary(catalog) == EXPECTED


def test_keyed_json_prefers_the_applications_list_over_another_list():
    data = json.dumps({"meta": ["export", "2024"], "applicationsia mini": RECORDS}).encode()

    catalog = load_catalog(data)

    assert catalog.collection_key == "applicationsia mini"
    assert summary(catalog) == EXPECTED


def test_bare_json_list_reads_each_object_as_a_record():
    catalog = load_catalog(json_list(), filename="catalog.json")

    assert catalog.source_format == "json-list"
    assert catalog.collection_key is None
    assert summary(catalog) == EXPECTED


def test_jsonl_reads_one_record_per_line_and_skips_blank_lines():
    data = jsonl() + b"\n\n"

    catalog = load_catalog(data, filename="catalog.jsonl")

    assert catalog.source_format == "jsonl"
    assert summary(catalog) == EXPECTED


@pytest.mark.parametrize("delimiter", [",", ";"], ids=["comma", "semicolon"])
def test_csv_reads_with_either_delimiter(delimiter):
    catalog = load_catalog(csv_text(delimiter), filename="catalog.csv")

    assert catalog.source_format == "csv"
    assert summary(catalog) == EXPECTED


def test_semicolon_csv_keeps_commas_inside_values():
    data = (
        "nom;descriptif;statut si\n"
        "GEOVAL;Eau, milieux aquatiques, zonages;En production\n"
        "HYDRO;Qualité, des eaux;En projet\n"
    )

    catalog = load_catalog(data.encode())

    assert [e.description for e in catalog.entities] == ["Eau, milieux aquatiques, zonages", "Qualité, des eaux"]


def test_csv_quoted_values_may_hold_the_delimiter_and_line_breaks():
    data = 'id,nom,descriptif\n1,GEOVAL,"Catalogue, publication\n\n- zonages"\n2,HYDRO,Bancarisation\n'

    catalog = load_catalog(data.encode(), filename="catalog.csv")

    assert catalog.entities[0].description == "Catalogue, publication\n\n- zonages"
    assert catalog.entities[1].name == "HYDRO"


@pytest.mark.parametrize(
    ("data", "filename", "expected_format"),
    [
        (keyed_json(), "catalog.json", "keyed-json"),
        (keyed_json(), None, "keyed-json"),
        (json_list(), "catalog.json", "json-list"),
        (json_list(), None, "json-list"),
        (jsonl(), "catalog.jsonl", "jsonl"),
        (jsonl(), "catalog.ndjson", "jsonl"),
        (jsonl(), None, "jsonl"),
        (csv_text(","), "catalog.csv", "csv"),
        (csv_text(","), None, "csv"),
        (csv_text(";"), None, "csv"),
        (json_list(), "EXPORT.JSON", "json-list"),
        (json_list(), "export.txt", "json-list"),
        (csv_text(";"), "export.txt", "csv"),
    ],
)
def test_format_is_detected_with_or_without_a_filename(data, filename, expected_format):
    catalog = load_catalog(data, filename=filename)

    assert catalog.source_format == expected_format
    assert summary(catalog) == EXPECTED


def test_utf8_bom_is_ignored():
    catalog = load_catalog(b"\xef\xbb\xbf" + json_list(), filename="catalog.json")

    assert summary(catalog) == EXPECTED
    assert catalog.warnings == ()


def test_source_fields_keep_the_source_spelling_in_first_seen_order():
    records = [{"ID": 1, "Nom": "A"}, {"ID": 2, "Nom": "B", "Statut SI": "En production"}]

    catalog = load_catalog(json_list(records))

    assert catalog.source_fields == ("ID", "Nom", "Statut SI")


def test_ids_are_derived_from_names_when_the_catalog_has_no_id_field():
    records = [{"nom": "Géo Val"}, {"nom": "HYDRO stat"}]

    catalog = load_catalog(json_list(records))

    assert [e.id for e in catalog.entities] == ["geo-val", "hydro-stat"]
    assert any("no id field" in w for w in catalog.warnings)


def test_unmapped_fields_are_kept_in_extra_by_normalised_key():
    records = [{"id": 1, "nom": "A", "Hashtags": "#eau", "moa habilitee ssi": ["DREAL", "DDT"], "vide": ""}]

    entity = load_catalog(json_list(records)).entities[0]

    assert entity.extra == {"hashtags": "#eau", "moa habilitee ssi": ["DREAL", "DDT"]}


def test_the_users_field_is_read_as_groups_with_their_counts():
    records = [
        {
            "id": 1,
            "nom": "A",
            "utilisateurs": [
                {"utilisateur": "DREAL", "nombre": "70"},
                {"utilisateur": "DDT", "nombre": 12},
                {"utilisateur": "", "nombre": "3"},
            ],
        }
    ]

    a = load_catalog(json_list(records)).entities[0]
    b = load_catalog(json_list([{"id": 2, "nom": "B", "Users": "Grand public"}])).entities[0]

    assert [(u.name, u.count) for u in a.users] == [("DREAL", "70"), ("DDT", "12")] and "utilisateurs" not in a.extra
    assert [(u.name, u.count) for u in b.users] == [("Grand public", None)]


# --- field names in any spelling ------------------------------------------------------------


@pytest.mark.parametrize(
    "status_key", ["statut si", "Statut SI", "statut_si", "Statut-SI", "STATUT  SI", "  statut si "]
)
def test_status_field_resolves_whatever_its_case_and_separators(status_key):
    records = [{"id": 1, "nom": "GEOVAL", status_key: "En production"}]

    entity = load_catalog(json_list(records)).entities[0]

    assert entity.status == "En production"


@pytest.mark.parametrize(
    "scope_key", ["portee geographique", "Portée géographique", "PORTÉE_GÉOGRAPHIQUE", "portée-géographique"]
)
def test_scope_field_resolves_whatever_its_accents_and_separators(scope_key):
    records = [{"id": 1, "nom": "GEOVAL", scope_key: "Régionale"}]

    entity = load_catalog(json_list(records)).entities[0]

    assert entity.scope == "Régionale"


def test_capitalised_accented_export_maps_every_scalar_role():
    record = {
        "Id": 7,
        "Nom": "GEOVAL",
        "Nom long": "Gestion des valorisations géographiques",
        "Descriptif": "Catalogue des données.",
        "Statut SI": "En production",
        "Portée géographique": "Nationale",
        "Famille d'applications": "Applications métier",
        "Fonctions": "Catalogage",
        "Technologie principale": "Java",
        "Bénéficiaires": "Services",
    }

    entity = load_catalog(json_list([record])).entities[0]

    assert (entity.id, entity.name, entity.long_name, entity.description) == (
        "7",
        "GEOVAL",
        "Gestion des valorisations géographiques",
        "Catalogue des données.",
    )
    assert (entity.status, entity.scope, entity.family, entity.functions, entity.technology, entity.beneficiaries) == (
        "En production",
        "Nationale",
        "Applications métier",
        "Catalogage",
        "Java",
        "Services",
    )


# --- another catalog mapped by a roles file ----------------------------------------------------


@pytest.fixture(scope="module")
def products(products_dir):
    roles = FieldRoles.from_file(products_dir / "roles.yaml")
    return load_catalog_file(products_dir / "products.csv", roles=roles)


def test_products_csv_with_its_roles_file_reads_every_product(products):
    assert products.source_format == "csv"
    assert len(products.entities) == 12
    assert [e.id for e in products.entities][:3] == ["ARB-101", "ARB-102", "ARB-103"]


def test_products_roles_map_id_name_description_status_domains_actors_sites(products):
    product = products.by_id()["ARB-101"]

    assert product.name == "Arbalète Compta"
    assert product.description == (
        "Logiciel de comptabilité générale et analytique pour les PME, avec rapprochement bancaire automatique."
    )
    assert product.status == "Commercialisé"
    assert [d.domain for d in product.domains] == ["Gestion financière"]
    assert [a.name for a in product.actors] == ["Équipe Finance"]
    assert [s.url for s in product.sites] == ["https://www.arbalete.example/produits/compta"]
    assert product.extra == {}


def test_products_without_homepage_have_no_site(products):
    assert products.by_id()["ARB-112"].sites == ()


def test_products_csv_without_its_roles_file_misses_the_sku_and_owner_columns(products_dir):
    catalog = load_catalog_file(products_dir / "products.csv")

    product = catalog.entities[0]
    assert product.id == "arbalete-compta"  # derived from the name: 'sku' is no default id key
    assert product.actors == ()  # 'owner_team' is no default actor key
    assert product.extra["sku"] == "ARB-101"
