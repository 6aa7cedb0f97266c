"""Catalog versions (content hashes), diffs between versions, and model round-trips."""

from __future__ import annotations

import copy
import json

import pytest

from dyag_core.catalog import Catalog, Entity, diff_catalogs, load_catalog


@pytest.fixture(scope="module")
def sample_records(sample_catalog_bytes):
    return json.loads(sample_catalog_bytes)["applicationsia mini"]


@pytest.fixture(scope="module")
def sample(sample_catalog_bytes):
    return load_catalog(sample_catalog_bytes, filename="applicationsIA_mini_normalized.json")


def keyed(records, **dump_options) -> bytes:
    return json.dumps({"applicationsia mini": records}, ensure_ascii=False, **dump_options).encode()


# --- versions --------------------------------------------------------------------------------------


def test_version_is_a_short_stable_hash(sample, sample_catalog_bytes):
    assert len(sample.version) == 16
    assert int(sample.version, 16) >= 0
    assert load_catalog(sample_catalog_bytes).version == sample.version


def test_same_content_with_other_key_order_and_whitespace_has_the_same_version(sample, sample_records):
    reordered = [dict(reversed(list(record.items()))) for record in sample_records]

    compact = load_catalog(keyed(reordered, separators=(",", ":")))
    spaced = load_catalog(keyed(reordered, indent=8))

    assert compact.version == sample.version
    assert spaced.version == sample.version


def test_same_content_in_another_format_has_the_same_version(sample, sample_records):
    as_list = load_catalog(json.dumps(sample_records, ensure_ascii=False).encode())
    as_jsonl = load_catalog(
        "\n".join(json.dumps(r, ensure_ascii=False) for r in sample_records).encode(), filename="x.jsonl"
    )

    assert as_list.version == as_jsonl.version == sample.version


def test_surrounding_spaces_in_values_do_not_change_the_version(sample, sample_records):
    padded = copy.deepcopy(sample_records)
    padded[0]["statut si"] = f"  {padded[0]['statut si']} "

    assert load_catalog(keyed(padded)).version == sample.version


def test_changing_one_value_changes_the_version(sample, sample_records):
    changed = copy.deepcopy(sample_records)
    changed[3]["statut si"] = "Abandonnée"

    assert load_catalog(keyed(changed)).version != sample.version


def test_changing_an_unmapped_field_changes_the_version(sample, sample_records):
    changed = copy.deepcopy(sample_records)
    changed[0]["hashtags"] = "#autre"

    assert load_catalog(keyed(changed)).version != sample.version


# --- diffs ------------------------------------------------------------------------------------------


def test_diff_of_the_same_catalog_is_empty(sample, sample_catalog_bytes):
    diff = diff_catalogs(sample, load_catalog(sample_catalog_bytes))

    assert diff.is_empty
    assert (diff.added, diff.changed, diff.removed) == ((), (), ())


def test_diff_names_the_entity_whose_status_changed(sample, sample_records):
    changed = copy.deepcopy(sample_records)
    changed[3]["statut si"] = "Abandonnée"

    diff = diff_catalogs(sample, load_catalog(keyed(changed)))

    assert diff.changed == (str(sample_records[3]["id"]),)
    assert diff.added == diff.removed == ()
    assert not diff.is_empty


def test_diff_names_added_and_removed_entities(sample, sample_records):
    newer = copy.deepcopy(sample_records)
    removed = newer.pop(0)
    newer.append({"id": 9999, "nom": "NOUVELLE", "statut si": "En projet"})

    diff = diff_catalogs(sample, load_catalog(keyed(newer)))

    assert diff.added == ("9999",)
    assert diff.removed == (str(removed["id"]),)
    assert diff.changed == ()


def test_diff_against_no_previous_catalog_adds_every_entity(sample):
    diff = diff_catalogs(None, sample)

    assert diff.added == tuple(e.id for e in sample.entities)
    assert diff.changed == diff.removed == ()


def test_reordering_records_changes_nothing_in_the_diff(sample, sample_records):
    diff = diff_catalogs(sample, load_catalog(keyed(list(reversed(sample_records)))))

    assert diff.is_empty


# --- round-trips ------------------------------------------------------------------------------------


def test_every_entity_round_trips_through_to_dict(sample):
    for entity in sample.entities:
        copy_ = Entity.from_dict(entity.to_dict())

        assert copy_ == entity
        assert copy_.extra == entity.extra
        assert copy_.content_hash() == entity.content_hash()


def test_entity_round_trips_through_json(sample):
    entity = sample.by_id()["1004"]

    copy_ = Entity.from_dict(json.loads(json.dumps(entity.to_dict(), ensure_ascii=False)))

    assert copy_ == entity
    assert copy_.content_hash() == entity.content_hash()


def test_catalog_round_trips_through_to_dict(sample):
    copy_ = Catalog.from_dict(sample.to_dict())

    assert copy_ == sample
    assert copy_.to_dict() == sample.to_dict()
    assert copy_.version == sample.version


def test_catalog_round_trips_through_json(sample):
    copy_ = Catalog.from_dict(json.loads(json.dumps(sample.to_dict(), ensure_ascii=False)))

    assert copy_ == sample
    assert copy_.version == sample.version
    assert copy_.collection_key == "applicationsia mini"
    assert copy_.field_fill == sample.field_fill


def test_catalog_with_warnings_round_trips():
    catalog = load_catalog(json.dumps([{"nom": "A"}, {"nom": "B"}]).encode())
    assert catalog.warnings

    assert Catalog.from_dict(catalog.to_dict()) == catalog


def test_display_name_adds_the_long_name_when_it_differs(sample):
    assert (
        sample.by_id()["1004"].display_name
        == "6Tzen (Outil national de dématérialisation des démarches des transports routiers)"
    )
    assert Entity(id="1", name="A", long_name="A").display_name == "A"
    assert Entity(id="1", name="A").display_name == "A"
