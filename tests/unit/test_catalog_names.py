"""Catalog names become file names, URL segments and collection names: only plain ones pass."""

from __future__ import annotations

import pytest

from dyag_core.catalog import validate_catalog_name
from dyag_core.errors import CatalogError


@pytest.mark.parametrize("name", ["applications_ia", "v1.2-x", "products", "0catalog", "a", "x" * 63])
def test_plain_names_are_accepted_as_they_are(name):
    assert validate_catalog_name(name) == name


@pytest.mark.parametrize(
    "name",
    ["../x", "a/b", "a\\b", "a..b", "", "UPPER", "Applications", "x" * 64, "x" * 70, "-x", ".hidden", "_x", "a b", "é"],
)
def test_unsafe_or_malformed_names_are_refused_as_invalid_name(name):
    with pytest.raises(CatalogError) as caught:
        validate_catalog_name(name)

    assert caught.value.code == "invalid_name"


@pytest.mark.parametrize("name", ["../x", "UPPER", "x" * 70])
def test_refusal_message_quotes_the_name_and_the_rule(name):
    with pytest.raises(CatalogError) as caught:
        validate_catalog_name(name)

    assert repr(name) in caught.value.message
    assert "lower-case" in caught.value.message


def test_missing_name_asks_for_one():
    with pytest.raises(CatalogError) as caught:
        validate_catalog_name("")

    assert "needs a name" in caught.value.message
