"""The guide's step 1.1 figures on the sample catalog, and what counts as filled."""

from __future__ import annotations

import json

import pytest

from dyag_core.catalog import load_catalog, load_catalog_file, profile_catalog


@pytest.fixture(scope="module")
def profile(sample_catalog_path):
    return profile_catalog(load_catalog_file(sample_catalog_path))


def fill_of(fills, name):
    return next(f for f in fills if f.field == name)


def test_sample_profile_counts_45_entities(profile):
    assert profile.entity_count == 45


def test_status_distribution_merges_spellings_under_the_most_common_one(profile):
    assert profile.status_distribution == {
        "En production": 28,
        "En construction": 5,
        "En fin de vie": 5,
        "En projet": 4,
        "Abandonnée": 3,
    }


def test_description_role_is_filled_on_42_entities(profile):
    description = fill_of(profile.roles, "description")

    assert description.filled == 42
    assert description.rate == pytest.approx(42 / 45)


@pytest.mark.parametrize(
    ("field", "filled"),
    [("nom", 45), ("contacts", 30), ("sites", 38), ("acteurs", 35), ("domaines et sous domaines", 40)],
)
def test_fill_rate_per_source_field(profile, field, filled):
    fill = fill_of(profile.fields, field)

    assert fill.filled == filled
    assert fill.rate == pytest.approx(filled / 45)


def test_source_fields_are_listed_most_filled_first(profile):
    counts = [f.filled for f in profile.fields]

    assert counts == sorted(counts, reverse=True)
    assert [f.field for f in profile.fields[:3]] == ["id", "nom", "statut si"]


def test_roles_count_what_was_parsed(profile):
    roles = {f.field: f.filled for f in profile.roles}

    assert roles["name"] == 45
    assert roles["domains"] == 40
    assert roles["actors"] == 35
    assert roles["long_name"] == 42  # one '***TEMPORAIRE***' and two missing


def test_domain_distribution_counts_each_entity_once_per_domain(profile):
    assert sum(profile.domain_distribution.values()) >= 40
    assert all(count <= 45 for count in profile.domain_distribution.values())


def test_profile_to_dict_is_plain_data(profile):
    data = profile.to_dict()

    assert data["entity_count"] == 45
    assert data["fields"][0] == {"field": "id", "filled": 45, "rate": 1.0}
    assert json.loads(json.dumps(data, ensure_ascii=False))["status_distribution"]["En production"] == 28


# --- placeholders are not filled -----------------------------------------------------------------


def small_profile(records):
    return profile_catalog(load_catalog(json.dumps(records, ensure_ascii=False).encode()))


def test_placeholders_are_not_counted_as_filled():
    profile = small_profile(
        [
            {"id": 1, "nom": "A", "nom long": "***TEMPORAIRE***", "fonctions": "N/A", "technologie principale": "-"},
            {"id": 2, "nom": "B", "nom long": "Bases", "fonctions": "Saisie", "technologie principale": "Java"},
        ]
    )

    fields = {f.field: f.filled for f in profile.fields}
    roles = {f.field: f.filled for f in profile.roles}
    assert fields == {"id": 2, "nom": 2, "nom long": 1, "fonctions": 1, "technologie principale": 1}
    assert (roles["long_name"], roles["functions"], roles["technology"]) == (1, 1, 1)


def test_empty_values_are_not_counted_as_filled():
    profile = small_profile([{"id": 1, "nom": "A", "descriptif": "", "sites": [], "acteurs": None, "contacts": "  "}])

    fields = {f.field: f.filled for f in profile.fields}
    assert fields == {"id": 1, "nom": 1, "descriptif": 0, "sites": 0, "acteurs": 0, "contacts": 0}
    assert {f.field for f in profile.roles} == {"id", "name"}


def test_nested_items_holding_only_placeholders_are_not_counted_as_filled():
    profile = small_profile(
        [
            {"id": 1, "nom": "A", "sites": [{"nature de l url": "", "url": "***TEMPORAIRE***"}]},
            {"id": 2, "nom": "B", "sites": [{"nature de l url": "Site principal", "url": "https://b.example/"}]},
        ]
    )

    assert fill_of(profile.fields, "sites").filled == 1
    assert fill_of(profile.roles, "sites").filled == 1


def test_missing_status_is_shown_as_not_filled_in_the_distribution():
    profile = small_profile(
        [{"id": 1, "nom": "A", "statut si": "En production"}, {"id": 2, "nom": "B", "statut si": "N/A"}]
    )

    assert profile.status_distribution == {"En production": 1, "(non renseigné)": 1}
