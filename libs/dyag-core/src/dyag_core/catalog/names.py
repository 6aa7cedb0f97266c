"""Catalog names: they become file names, URL segments and collection names, so they are kept plain."""

from __future__ import annotations

import re
from pathlib import PurePath

from dyag_core.errors import CatalogError

_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,62}$")


def validate_catalog_name(name: str) -> str:
    if not name:
        raise CatalogError("invalid_name", "the catalog needs a name, e.g. 'applications_ia'")
    if "/" in name or "\\" in name or ".." in name or not _NAME.match(name):
        raise CatalogError(
            "invalid_name",
            f"invalid catalog name {name!r}: use 1-63 lower-case letters, digits, '_', '-' or '.', "
            "starting with a letter or digit, with no '/' or '..'",
        )
    return name


def default_name(filename: str) -> str:
    """The name a catalog gets from its file's name when none is given ("Export SI 2024.json" -> "export_si_2024")."""
    stem = PurePath(filename).name.rsplit(".", 1)[0].lower()
    return re.sub(r"[^a-z0-9_.-]+", "_", stem).strip("_.-") or "catalog"
