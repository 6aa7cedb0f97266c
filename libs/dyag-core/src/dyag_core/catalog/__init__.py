"""Catalog ingestion: formats, field roles, normalisation, profiling and versions."""

from dyag_core.catalog.diff import CatalogDiff, diff_catalogs
from dyag_core.catalog.loader import FORMATS, load_catalog, load_catalog_file
from dyag_core.catalog.model import Actor, Catalog, Contact, Domain, Entity, Event, Hosting, Link, Site
from dyag_core.catalog.names import validate_catalog_name
from dyag_core.catalog.profile import CatalogProfile, FieldFill, profile_catalog
from dyag_core.catalog.roles import DEFAULT_ROLE_KEYS, ROLES, FieldRoles

__all__ = [
    "FORMATS",
    "ROLES",
    "DEFAULT_ROLE_KEYS",
    "Actor",
    "Catalog",
    "CatalogDiff",
    "CatalogProfile",
    "Contact",
    "Domain",
    "Entity",
    "Event",
    "FieldFill",
    "FieldRoles",
    "Hosting",
    "Link",
    "Site",
    "diff_catalogs",
    "validate_catalog_name",
    "load_catalog",
    "load_catalog_file",
    "profile_catalog",
]
