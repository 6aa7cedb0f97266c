"""Field roles: which source field plays which part (id, name, status…).

The defaults fit the ministry's application catalog in every spelling it comes in
("statut si", "Statut SI", "statut_si"). Any other catalog is mapped by a small file:

    roles:
      id: sku
      name: title
      description: summary
      status: lifecycle
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from dyag_core.errors import CatalogError
from dyag_core.text import normalize_key

# role -> accepted source keys, in their normalised form, most specific first.
DEFAULT_ROLE_KEYS: dict[str, tuple[str, ...]] = {
    "id": ("id", "identifiant", "id application", "code"),
    "name": ("nom", "name", "nom court", "acronyme", "title", "titre"),
    "long_name": ("nom long", "long name", "libelle", "nom complet", "full name"),
    "description": ("descriptif", "description", "resume", "summary"),
    "status": ("statut si", "statut", "status", "etat", "lifecycle"),
    "scope": ("portee geographique", "portee", "scope"),
    "family": ("famille d applications", "famille", "family"),
    "functions": ("fonctions", "functions", "fonctionnalites"),
    "technology": ("technologie principale", "technologie", "technology"),
    "beneficiaries": ("beneficiaires", "beneficiaries"),
    "domains": ("domaines et sous domaines", "domaines", "domaine", "domains", "category", "categorie"),
    "sites": ("sites", "site", "urls", "url", "homepage"),
    "actors": ("acteurs", "actors", "owner", "owners"),
    "contacts": ("contacts", "contact"),
    "events": ("evenements", "events"),
    "related_applications": ("applications liees", "related applications"),
    "related_data": ("donnees liees", "related data"),
    "hostings": ("hebergements", "hebergement", "hosting"),
    "users": ("utilisateurs", "users", "user groups"),
}

# Keys of the objects inside nested lists, per role: part -> accepted keys.
NESTED_KEYS: dict[str, dict[str, tuple[str, ...]]] = {
    "domains": {
        "domain": ("domaine metier", "domaine", "domain"),
        "subdomain": ("sous domaine metier", "sous domaine", "subdomain"),
    },
    "sites": {"url": ("url", "lien", "link"), "kind": ("nature de l url", "nature", "type", "kind")},
    "actors": {"name": ("acteur", "actor", "nom", "name"), "role": ("role d acteur", "role")},
    "contacts": {
        "name": ("contact", "nom", "name"),
        "role": ("role de contact", "role"),
        "email": ("courriel", "email", "mail", "e mail"),
    },
    "events": {"kind": ("type d evenement", "type", "evenement", "kind"), "date": ("date",), "version": ("version",)},
    "related_applications": {"target": ("application", "nom", "name"), "flow": ("type de flux", "flux", "flow")},
    "related_data": {"target": ("donnee", "donnees", "nom", "name", "data"), "flow": ("type de flux", "flux", "flow")},
    "hostings": {
        "datacenter": ("data center", "datacenter", "centre de donnees"),
        "platform": ("plateforme", "platform"),
    },
    "users": {
        "name": ("utilisateur", "utilisateurs", "user", "users", "nom", "name"),
        "count": ("nombre", "count", "number"),
    },
}

ROLES = tuple(DEFAULT_ROLE_KEYS)
REQUIRED_ROLES = ("name",)


@dataclass(frozen=True)
class FieldRoles:
    """role -> accepted source keys (normalised). A config file overrides roles one by one."""

    keys: dict[str, tuple[str, ...]] = field(default_factory=lambda: dict(DEFAULT_ROLE_KEYS))

    @classmethod
    def from_mapping(cls, mapping: dict[str, Any]) -> FieldRoles:
        roles = mapping.get("roles", mapping)
        if not isinstance(roles, dict):
            raise CatalogError("bad_roles", "the roles file must map each role to a field name, e.g. 'name: title'")
        unknown = sorted(set(roles) - set(ROLES))
        if unknown:
            raise CatalogError("bad_roles", f"unknown role(s) {', '.join(unknown)}; known roles: {', '.join(ROLES)}")
        keys = dict(DEFAULT_ROLE_KEYS)
        for role, names in roles.items():
            names = [names] if isinstance(names, str) else [] if names is None else names
            if not isinstance(names, (list, tuple)) or not all(isinstance(n, str) for n in names):
                raise CatalogError(
                    "bad_roles", f"role {role!r} must be a field name or a list of field names, not {names!r}"
                )
            keys[role] = tuple(normalize_key(n) for n in names)
        return cls(keys)

    @classmethod
    def from_yaml(cls, text: str, source: str = "the roles file") -> FieldRoles:
        try:
            data = yaml.safe_load(text) or {}
        except yaml.YAMLError as exc:
            raise CatalogError("bad_roles", f"{source} is not valid YAML: {exc}") from exc
        except RecursionError:  # PyYAML builds nested collections recursively
            raise CatalogError("bad_roles", f"{source} nests lists or mappings too deeply to read") from None
        if not isinstance(data, dict):
            raise CatalogError("bad_roles", f"{source} must hold a mapping, e.g. 'roles: {{name: title}}'")
        return cls.from_mapping(data)

    @classmethod
    def from_file(cls, path: str | Path) -> FieldRoles:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise CatalogError("bad_roles", f"cannot read roles file {path}: {exc.strerror or exc}") from exc
        return cls.from_yaml(text, f"roles file {path}")

    def resolve(self, source_keys: set[str]) -> dict[str, str]:
        """role -> the normalised source key that fills it, for the keys present in a catalog."""
        resolved: dict[str, str] = {}
        taken: set[str] = set()
        for role, candidates in self.keys.items():
            for key in candidates:
                if key in source_keys and key not in taken:
                    resolved[role] = key
                    taken.add(key)
                    break
        return resolved
