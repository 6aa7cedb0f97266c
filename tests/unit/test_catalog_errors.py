"""Every problem with a catalog raises a CatalogError with a stable code and a message that names it."""

from __future__ import annotations

import json

import pytest

from dyag_core.catalog import FieldRoles, load_catalog, load_catalog_file
from dyag_core.errors import CatalogError


def as_json(records) -> bytes:
    return json.dumps(records, ensure_ascii=False).encode()


def load_error(data: bytes, **options) -> CatalogError:
    with pytest.raises(CatalogError) as caught:
        load_catalog(data, **options)
    return caught.value


def test_catalog_error_carries_code_message_and_details():
    error = CatalogError("too_large", "too big", {"size": 3})

    assert str(error) == "too big"
    assert error.to_dict() == {"code": "too_large", "message": "too big", "details": {"size": 3}}
    assert CatalogError("empty_file", "the file is empty").to_dict() == {
        "code": "empty_file",
        "message": "the file is empty",
    }


# --- the file itself ----------------------------------------------------------------------------


def test_invalid_json_names_line_and_column():
    data = b'[{"id": 1, "nom": "A"},\n {"id": 2 "nom": "B"}]'

    error = load_error(data, filename="catalog.json")

    assert error.code == "not_json"
    assert "line 2, column 11" in error.message


def test_invalid_pretty_printed_json_without_filename_names_the_real_line():
    data = b'{\n  "applicationsia mini": [\n    {"id": 1, "nom": "A"},\n    {"id": 2, "nom": "B",}\n  ]\n}\n'

    error = load_error(data)

    assert error.code == "not_json"
    assert "line 4" in error.message
    assert "column 26" in error.message


def test_invalid_jsonl_line_is_named():
    data = b'{"id": 1, "nom": "A"}\n{"id": 2, "nom": "B"}\n{"id": 3, "nom": }\n'

    error = load_error(data, filename="catalog.jsonl")

    assert error.code == "not_json"
    assert "line 3" in error.message
    assert error.details == {"line": 3}


def test_invalid_jsonl_line_is_named_without_a_filename():
    data = b'{"id": 1, "nom": "A"}\n{"id": 2, "nom": "B"}\n{"id": 3, "nom": }\n'

    error = load_error(data)

    assert error.code == "not_json"
    assert "line 3" in error.message


def test_plain_text_is_neither_json_nor_csv():
    error = load_error(b"just some notes about applications\n")

    assert error.code == "not_json"
    assert "neither JSON, JSONL nor CSV" in error.message


@pytest.mark.parametrize("data", [b"", b"   \n\t\n"], ids=["empty", "whitespace"])
def test_empty_file_is_refused(data):
    error = load_error(data, filename="catalog.json")

    assert error.code == "empty_file"
    assert "empty" in error.message


def test_missing_file_is_unreadable_naming_the_path(tmp_path):
    path = tmp_path / "absent.json"

    with pytest.raises(CatalogError) as caught:
        load_catalog_file(path)

    assert caught.value.code == "unreadable"
    assert "absent.json" in caught.value.message


def test_file_over_max_bytes_is_too_large_naming_size_and_limit():
    data = as_json([{"nom": "A" * 2000}])

    error = load_error(data, max_bytes=1000)

    assert error.code == "too_large"
    assert f"{len(data):,} bytes" in error.message
    assert "1,000 bytes" in error.message
    assert error.details == {"size": len(data), "limit": 1000}


def test_file_at_max_bytes_is_accepted():
    data = as_json([{"nom": "A"}])

    assert len(load_catalog(data, max_bytes=len(data)).entities) == 1


# --- the shape of the content ------------------------------------------------------------------


@pytest.mark.parametrize(
    "data",
    [b"[]", b'{"applicationsia mini": []}', b"[]\n", b"id,nom\n"],
    ids=["list", "keyed", "list-newline", "csv-header-only"],
)
def test_catalog_without_records_is_empty_catalog(data):
    error = load_error(data)

    assert error.code == "empty_catalog"
    assert "no records" in error.message


def test_records_that_are_not_objects_are_named_by_position():
    error = load_error(as_json([{"nom": "A"}, "B", 3, {"nom": "D"}]))

    assert error.code == "invalid_record"
    assert "record(s) 2, 3 are not objects" in error.message
    assert error.details == {"records": [2, 3]}


def test_object_with_two_lists_is_ambiguous_naming_both_keys():
    data = as_json({"produits": [{"nom": "A"}], "services": [{"nom": "B"}]})

    error = load_error(data)

    assert error.code == "ambiguous_collection"
    assert "'produits'" in error.message and "'services'" in error.message


def test_object_without_a_list_is_not_a_catalog():
    error = load_error(as_json({"nom": "A", "statut": "En production"}))

    assert error.code == "not_a_catalog"
    assert "no list of records" in error.message


def test_json_scalar_is_not_a_catalog():
    error = load_error(b'"applications"', filename="catalog.json")

    assert error.code == "not_a_catalog"
    assert "str" in error.message


def test_single_column_text_is_not_read_as_csv():
    error = load_error(b"nom\nGEOVAL\nHYDRO\n", filename="catalog.csv")

    assert error.code == "not_json"
    assert "neither JSON, JSONL nor CSV" in error.message


def test_csv_whose_header_has_a_single_column_is_not_a_catalog():
    error = load_error(b"nom\nGEOVAL,HYDRO\nFLORAMAP,8-SINP\n", filename="catalog.csv")

    assert error.code == "not_a_catalog"
    assert "two columns" in error.message


def test_csv_row_with_more_cells_than_the_header_is_named():
    data = b"id,nom,descriptif\n1,GEOVAL,Catalogue\n2,HYDRO,Eau, milieux aquatiques\n"

    error = load_error(data, filename="catalog.csv")

    assert error.code == "invalid_record"
    assert "line 3" in error.message
    assert "more" in error.message


# --- names and ids --------------------------------------------------------------------------------


def test_duplicate_ids_are_named_with_their_records():
    data = as_json([{"id": 7, "nom": "GEOVAL"}, {"id": 8, "nom": "HYDRO"}, {"id": "7", "nom": "FLORAMAP"}])

    error = load_error(data)

    assert error.code == "duplicate_ids"
    assert "7 (GEOVAL, FLORAMAP)" in error.message
    assert error.details == {"ids": ["7"]}


def test_duplicate_names_without_ids_are_named():
    error = load_error(as_json([{"nom": "Géo Val"}, {"nom": "GEO-VAL"}]))

    assert error.code == "duplicate_ids"
    assert "names (used as ids)" in error.message
    assert "geo-val" in error.message


def test_catalog_without_a_name_field_lists_its_fields():
    error = load_error(as_json([{"sku": "A-1", "libellé produit": "Compta", "prix": 10}]))

    assert error.code == "no_name_field"
    assert "'sku', 'libellé produit', 'prix'" in error.message
    assert "'nom'" in error.message  # what it looked for
    assert "roles" in error.message  # and how to map it


@pytest.mark.parametrize("empty_name", ["", "   ", None, "***TEMPORAIRE***", "-"])
def test_record_with_an_empty_name_is_named_by_position(empty_name):
    data = as_json([{"id": 1, "nom": "GEOVAL"}, {"id": 2, "nom": "HYDRO"}, {"id": 3, "nom": empty_name}])

    error = load_error(data)

    assert error.code == "missing_name"
    assert "record(s) 3 have no name" in error.message
    assert "'nom'" in error.message
    assert error.details == {"records": [3]}


def test_record_without_a_name_key_is_missing_name():
    error = load_error(as_json([{"id": 1, "nom": "GEOVAL"}, {"id": 2, "statut si": "En projet"}]))

    assert error.code == "missing_name"
    assert "record(s) 2" in error.message


def test_many_records_without_name_are_listed_then_counted():
    records = [{"id": i, "nom": ""} for i in range(1, 14)]

    error = load_error(as_json(records))

    assert "record(s) 1, 2, 3, 4, 5, 6, 7, 8, 9, 10 and 3 more" in error.message
    assert error.details == {"records": list(range(1, 11))}


@pytest.mark.parametrize(
    "record",
    [{"nom": "HYDRO"}, {"id": None, "nom": "HYDRO"}, {"id": "", "nom": "HYDRO"}],
    ids=["absent", "null", "empty"],
)
def test_record_without_an_id_when_others_have_one_is_missing_id(record):
    error = load_error(as_json([{"id": 1, "nom": "GEOVAL"}, record]))

    assert error.code == "missing_id"
    assert "record(s) 2 have no id" in error.message
    assert "'id'" in error.message


# --- roles files ----------------------------------------------------------------------------------


def roles_error(text: str) -> CatalogError:
    with pytest.raises(CatalogError) as caught:
        FieldRoles.from_yaml(text)
    return caught.value


def test_unknown_role_is_refused_listing_the_known_roles():
    error = roles_error("roles:\n  nom: title\n  statut: lifecycle\n")

    assert error.code == "bad_roles"
    assert "unknown role(s) nom, statut" in error.message
    assert "name" in error.message and "status" in error.message


def test_invalid_yaml_roles_are_refused():
    error = roles_error("roles: {name: title\n")

    assert error.code == "bad_roles"
    assert "not valid YAML" in error.message


@pytest.mark.parametrize(
    "text", ["- name\n- title\n", "just text\n", "roles: [name, title]\n"], ids=["list", "scalar", "roles-list"]
)
def test_roles_that_are_not_a_mapping_are_refused(text):
    assert roles_error(text).code == "bad_roles"


@pytest.mark.parametrize("value", ["42", "yes", "[title, 3]", "{a: b}"])
def test_role_mapped_to_something_other_than_field_names_is_refused(value):
    error = roles_error(f"roles:\n  name: {value}\n")

    assert error.code == "bad_roles"
    assert "'name'" in error.message


def test_missing_roles_file_is_bad_roles_naming_the_path(tmp_path):
    with pytest.raises(CatalogError) as caught:
        FieldRoles.from_file(tmp_path / "roles.yaml")

    assert caught.value.code == "bad_roles"
    assert "roles.yaml" in caught.value.message
