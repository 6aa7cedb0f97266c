"""Read a catalog export (keyed JSON, JSON list, JSONL or CSV) into the typed model.

Every problem raises a CatalogError whose code is stable and whose message names the problem.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import Any

from dyag_core.catalog.model import Actor, Catalog, Contact, Domain, Entity, Event, Hosting, Link, Site, UserGroup
from dyag_core.catalog.roles import NESTED_KEYS, FieldRoles
from dyag_core.errors import CatalogError
from dyag_core.nesting import MAX_DEPTH, NotJson, TooDeep
from dyag_core.nesting import loads as json_loads
from dyag_core.text import clean_scalar, has_mojibake, normalize_key, repair_mojibake, repair_url, slugify

FORMATS = ("keyed-json", "json-list", "jsonl", "csv")
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_OBSOLETE = re.compile(r"^\s*obsol[eè]te\s*[-–:]\s*", re.IGNORECASE)
_LIST_SPLIT = re.compile(r"\s*[;|\n]\s*")
_MAX_LISTED = 10
# A CSV cell can be one byte (a comma): a few megabytes of commas would be millions of cells in memory.
MAX_CSV_COLUMNS = 2_000
MAX_CSV_CELLS = 5_000_000


def load_catalog_file(path: str | Path, **options: Any) -> Catalog:
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise CatalogError("unreadable", f"cannot read {path}: {exc.strerror or exc}") from exc
    return load_catalog(data, filename=path.name, **options)


def load_catalog(
    data: bytes,
    *,
    filename: str | None = None,
    roles: FieldRoles | None = None,
    repair_mojibake_text: bool = True,
    max_bytes: int | None = None,
) -> Catalog:
    if max_bytes is not None and len(data) > max_bytes:
        raise CatalogError(
            "too_large",
            f"the catalog is {len(data):,} bytes, over the limit of {max_bytes:,} bytes",
            {"size": len(data), "limit": max_bytes},
        )
    warnings: list[str] = []
    text = _decode(data, warnings)
    records, fmt, collection_key = _parse(text, filename)
    records, repaired = _repair_records(records, repair_mojibake_text)
    if repaired:
        warnings.append(f"repaired mojibake (UTF-8 read as cp1252) in {repaired} value(s)")
    return _build_catalog(records, fmt, collection_key, roles or FieldRoles(), warnings)


def _decode(data: bytes, warnings: list[str]) -> str:
    if not data.strip():
        raise CatalogError("empty_file", "the file is empty")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        try:
            text = data.decode("cp1252")
        except UnicodeDecodeError:
            raise CatalogError(
                "not_utf8", f"the file is neither UTF-8 nor Windows-1252 (bad byte at offset {exc.start})"
            ) from exc
        warnings.append(f"the file is not UTF-8 (bad byte at offset {exc.start}); it was read as Windows-1252")
        return text


def _parse(text: str, filename: str | None) -> tuple[list[Any], str, str | None]:
    suffix = Path(filename).suffix.lower() if filename else ""
    head = text.lstrip()[:1]
    if suffix == ".csv" or (suffix not in (".json", ".jsonl", ".ndjson") and head not in ("{", "[")):
        return _parse_csv(text), "csv", None
    if suffix in (".jsonl", ".ndjson"):
        return _parse_jsonl(text), "jsonl", None
    try:
        value = json_loads(text)
    except TooDeep:
        raise CatalogError(
            "too_deep",
            f"the JSON nests lists and objects more than {MAX_DEPTH} levels deep; a catalog is a list of records "
            "whose fields nest a few levels at most",
            {"max_depth": MAX_DEPTH},
        ) from None
    except NotJson as exc:
        raise CatalogError("not_json", f"the file is not valid JSON: {exc}") from None
    except json.JSONDecodeError as exc:
        # JSONL: the first line is a whole object and more follow ("Extra data"); any other error is the JSON's own.
        if head == "{" and suffix != ".json" and "\n" in text.strip() and exc.msg == "Extra data":
            return _parse_jsonl(text), "jsonl", None
        raise CatalogError(
            "not_json", f"the file is not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}"
        ) from exc
    if isinstance(value, list):
        return value, "json-list", None
    if isinstance(value, dict):
        key, records = _collection_of(value)
        return records, "keyed-json", key
    raise CatalogError(
        "not_a_catalog", f"the JSON holds a {type(value).__name__}; expected a list of records or an object holding one"
    )


def _collection_of(obj: dict[str, Any]) -> tuple[str, list[Any]]:
    lists = [(k, v) for k, v in obj.items() if isinstance(v, list)]
    if len(lists) == 1:
        return lists[0]
    if not lists:
        raise CatalogError(
            "not_a_catalog",
            'the JSON object holds no list of records; expected e.g. {"applicationsia mini": [{...}, ...]}',
        )
    preferred = [(k, v) for k, v in lists if "application" in normalize_key(k)]
    if len(preferred) == 1:
        return preferred[0]
    names = ", ".join(repr(k) for k, _ in lists)
    raise CatalogError("ambiguous_collection", f"several keys hold lists ({names}); keep one list of records per file")


def _parse_jsonl(text: str) -> list[Any]:
    records: list[Any] = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            records.append(json_loads(line))
        except TooDeep:
            raise CatalogError(
                "too_deep",
                f"line {number} nests lists and objects more than {MAX_DEPTH} levels deep",
                {"line": number, "max_depth": MAX_DEPTH},
            ) from None
        except NotJson as exc:
            raise CatalogError("not_json", f"line {number} is not valid JSON: {exc}", {"line": number}) from None
        except json.JSONDecodeError as exc:
            raise CatalogError(
                "not_json", f"line {number} is not valid JSON: {exc.msg} (column {exc.colno})", {"line": number}
            ) from exc
    return records


def _parse_csv(text: str) -> list[Any]:
    sample = text[:8192]
    try:
        dialect = csv.Sniffer().sniff(sample, delimiters=",;\t|")
    except csv.Error:
        if "," not in sample and ";" not in sample and "\t" not in sample:
            raise CatalogError("not_json", "the file is neither JSON, JSONL nor CSV") from None
        dialect = csv.excel
    reader = csv.DictReader(io.StringIO(text), dialect=dialect)
    try:
        if not reader.fieldnames or len(reader.fieldnames) < 2:
            raise CatalogError("not_a_catalog", "the CSV has no header row with at least two columns")
        columns = len(reader.fieldnames)
        if columns > MAX_CSV_COLUMNS:
            raise CatalogError(
                "too_many_columns",
                f"the CSV header has {columns:,} columns; a catalog has at most {MAX_CSV_COLUMNS:,}",
                {"columns": columns, "limit": MAX_CSV_COLUMNS},
            )
        rows = []
        for row in reader:
            if None in row:  # DictReader files the cells beyond the header under None
                raise CatalogError(
                    "invalid_record",
                    f"CSV line {reader.line_num} has {len(row[None])} more cell(s) than the header's "
                    f"{columns} columns; quote values that hold the delimiter",
                    {"line": reader.line_num},
                )
            rows.append(row)
            if len(rows) * columns > MAX_CSV_CELLS:
                raise CatalogError(
                    "too_many_cells",
                    f"the CSV holds more than {MAX_CSV_CELLS:,} cells ({len(rows):,} rows of {columns:,} columns by "
                    f"line {reader.line_num}); split the catalog or drop unused columns",
                    {"line": reader.line_num, "limit": MAX_CSV_CELLS},
                )
    except csv.Error as exc:  # a cell over the csv module's field limit (131,072 characters)…
        line = reader.line_num + 1  # the line being read when it failed is not counted yet
        raise CatalogError("invalid_csv", f"CSV line {line} cannot be read: {exc}", {"line": line}) from None
    return rows


def _repair_records(records: list[Any], repair: bool) -> tuple[list[Any], int]:
    count = 0
    samples: list[str] = []

    def fix(value: Any) -> Any:
        nonlocal count
        if isinstance(value, str):
            if has_mojibake(value):
                count += 1
                if len(samples) < 3:
                    samples.append(value[:40])
                return repair_mojibake(value) if repair else value
            return value
        if isinstance(value, list):
            return [fix(v) for v in value]
        if isinstance(value, dict):
            return {fix(k): fix(v) for k, v in value.items()}
        return value

    fixed = [fix(r) for r in records]
    if count and not repair:
        raise CatalogError(
            "mojibake",
            f"{count} value(s) look like UTF-8 read as cp1252 (e.g. "
            f"{samples[0]!r}); re-export as UTF-8, or allow repair",
            {"count": count, "samples": samples},
        )
    return fixed, count


def _build_catalog(
    records: list[Any], fmt: str, collection_key: str | None, roles: FieldRoles, warnings: list[str]
) -> Catalog:
    if not records:
        raise CatalogError("empty_catalog", "the catalog holds no records")
    bad = [i for i, r in enumerate(records, 1) if not isinstance(r, dict)]
    if bad:
        raise CatalogError(
            "invalid_record", f"record(s) {_listing(bad)} are not objects", {"records": bad[:_MAX_LISTED]}
        )

    source_fields: dict[str, None] = {}
    key_of: dict[str, str] = {}
    for record in records:
        for key in record:
            if key not in key_of:
                source_fields[key] = None
                key_of[key] = normalize_key(key)
    resolved = roles.resolve(set(key_of.values()))
    if "name" not in resolved:
        expected = ", ".join(repr(k) for k in roles.keys["name"])
        raise CatalogError(
            "no_name_field",
            f"no field gives the entity's name (expected one of {expected}); the catalog's fields are "
            f"{', '.join(repr(k) for k in source_fields)}. Map it with a roles file ('roles: {{name: <field>}}')",
        )

    field_fill = {key: 0 for key in source_fields}
    entities: list[Entity] = []
    missing_name: list[int] = []
    missing_id: list[int] = []
    for position, record in enumerate(records, 1):
        normalised: dict[str, Any] = {}
        for key, value in record.items():
            if _is_filled(value):
                field_fill[key] += 1
            normalised.setdefault(key_of[key], value)
        name = clean_scalar(normalised.get(resolved["name"]))
        if name is None:
            missing_name.append(position)
            continue
        if "id" in resolved:
            raw_id = normalised.get(resolved["id"])
            entity_id = clean_scalar(raw_id)
            if entity_id is None:
                missing_id.append(position)
                continue
        else:
            entity_id = slugify(name)
        entities.append(_entity(entity_id, name, normalised, resolved))

    if missing_name:
        raise CatalogError(
            "missing_name",
            f"record(s) {_listing(missing_name)} have no name ({resolved['name']!r} is empty)",
            {"records": missing_name[:_MAX_LISTED]},
        )
    if missing_id:
        raise CatalogError(
            "missing_id",
            f"record(s) {_listing(missing_id)} have no id ({resolved['id']!r} is empty)",
            {"records": missing_id[:_MAX_LISTED]},
        )
    if "id" not in resolved:
        warnings.append("no id field: ids were derived from the names")
    _check_unique_ids(entities, "id" in resolved)
    return Catalog(
        entities=tuple(entities),
        source_format=fmt,
        source_fields=tuple(source_fields),
        field_fill=field_fill,
        collection_key=collection_key,
        warnings=tuple(warnings),
    )


def _check_unique_ids(entities: list[Entity], explicit: bool) -> None:
    seen: dict[str, str] = {}
    duplicates: dict[str, list[str]] = {}
    for entity in entities:
        if entity.id in seen:
            duplicates.setdefault(entity.id, [seen[entity.id]]).append(entity.name)
        else:
            seen[entity.id] = entity.name
    if duplicates:
        shown = "; ".join(f"{i} ({', '.join(names)})" for i, names in list(duplicates.items())[:_MAX_LISTED])
        what = "ids" if explicit else "names (used as ids)"
        raise CatalogError("duplicate_ids", f"duplicate {what}: {shown}", {"ids": list(duplicates)[:_MAX_LISTED]})


def _listing(positions: list[int]) -> str:
    shown = ", ".join(map(str, positions[:_MAX_LISTED]))
    return shown + (f" and {len(positions) - _MAX_LISTED} more" if len(positions) > _MAX_LISTED else "")


def _is_filled(value: Any) -> bool:
    if isinstance(value, str):
        return clean_scalar(value) is not None
    if isinstance(value, list):
        return any(_is_filled(v) for v in value)
    if isinstance(value, dict):  # a nested item holding only empty or placeholder values is not filled
        return any(_is_filled(v) for v in value.values())
    return value is not None


_SCALAR_ROLES = ("long_name", "description", "status", "scope", "family", "functions", "technology", "beneficiaries")


def _entity(entity_id: str, name: str, record: dict[str, Any], resolved: dict[str, str]) -> Entity:
    used = set(resolved.values())
    kwargs: dict[str, Any] = {}
    for role in _SCALAR_ROLES:
        if role in resolved:
            value = record.get(resolved[role])
            kwargs[role] = _join_text(value) if isinstance(value, list) else clean_scalar(value)
    for role, parser in _NESTED_PARSERS.items():
        if role in resolved:
            items = [parser(part) for part in _items(record.get(resolved[role]), role)]
            kwargs[role] = tuple(_unique(i for i in items if i is not None))
    extra = {k: v for k, v in record.items() if k not in used and _is_filled(v)}
    return Entity(id=entity_id, name=name, extra=extra, **kwargs)


def _join_text(values: list[Any]) -> str | None:
    parts = [clean_scalar(v) for v in values if not isinstance(v, (dict, list))]
    parts += [clean_scalar(", ".join(str(x) for x in v.values() if x)) for v in values if isinstance(v, dict)]
    kept = [p for p in parts if p]
    return ", ".join(kept) or None


def _items(value: Any, role: str) -> list[dict[str, Any]]:
    """A nested field as a list of {part: value}, whatever the export made of it."""
    if value is None:
        return []
    if isinstance(value, dict):
        value = [value]
    if isinstance(value, str):
        value = [p for p in _LIST_SPLIT.split(value) if p]
    parts = NESTED_KEYS[role]
    first_part = next(iter(parts))
    items: list[dict[str, Any]] = []
    for item in value:
        if isinstance(item, dict):
            normalised = {normalize_key(k): v for k, v in item.items()}
            items.append(
                {part: next((normalised[k] for k in keys if k in normalised), None) for part, keys in parts.items()}
            )
        elif clean_scalar(item) is not None:
            items.append({first_part: item})
    return items


def _domain(item: dict[str, Any]) -> Domain | None:
    domain = clean_scalar(item.get("domain"))
    subdomain = clean_scalar(item.get("subdomain"))
    obsolete = False
    if domain and _OBSOLETE.match(domain):
        domain, obsolete = _OBSOLETE.sub("", domain).strip() or None, True
    if subdomain and _OBSOLETE.match(subdomain):
        subdomain, obsolete = _OBSOLETE.sub("", subdomain).strip() or None, True
    if not domain:
        return None
    return Domain(domain=domain, subdomain=subdomain, obsolete=obsolete)


def _site(item: dict[str, Any]) -> Site | None:
    url = clean_scalar(item.get("url"))
    return Site(url=repair_url(url), kind=clean_scalar(item.get("kind"))) if url else None


def _actor(item: dict[str, Any]) -> Actor | None:
    name = clean_scalar(item.get("name"))
    return Actor(name=name, role=clean_scalar(item.get("role"))) if name else None


_CONTACT_FUNCTION = re.compile(r"\(([^)]*)\)")


def _contact(item: dict[str, Any]) -> Contact | None:
    raw = clean_scalar(item.get("name")) or ""
    email = clean_scalar(item.get("email"))
    found = _EMAIL.findall(raw)
    email = email or (found[0] if found else None)
    text = _EMAIL.sub("", raw)
    function_match = _CONTACT_FUNCTION.search(text)
    function = function_match.group(1).strip() or None if function_match else None
    text = _CONTACT_FUNCTION.sub("", text)
    pieces = [p.strip() for p in re.split(r"\s[-–]\s", text) if p.strip(" -–")]
    name = pieces[0].strip(" -–") if pieces else None
    service = " - ".join(p.strip(" -–") for p in pieces[1:]) or None
    if not name and not email:
        return None
    return Contact(
        name=name or email or "", role=clean_scalar(item.get("role")), email=email, function=function, service=service
    )


def _event(item: dict[str, Any]) -> Event | None:
    kind = clean_scalar(item.get("kind"))
    date = _iso_date(clean_scalar(item.get("date")))
    if not kind and not date:
        return None
    return Event(kind=kind or "Événement", date=date, version=clean_scalar(item.get("version")))


def _link(item: dict[str, Any]) -> Link | None:
    target = clean_scalar(item.get("target"))
    return Link(target=target, flow=clean_scalar(item.get("flow"))) if target else None


def _hosting(item: dict[str, Any]) -> Hosting | None:
    datacenter, platform = clean_scalar(item.get("datacenter")), clean_scalar(item.get("platform"))
    return Hosting(datacenter=datacenter, platform=platform) if datacenter or platform else None


def _user_group(item: dict[str, Any]) -> UserGroup | None:
    name, count = clean_scalar(item.get("name")), clean_scalar(item.get("count"))
    return UserGroup(name=name, count=count) if name else None


_NESTED_PARSERS = {
    "domains": _domain,
    "sites": _site,
    "actors": _actor,
    "contacts": _contact,
    "events": _event,
    "related_applications": _link,
    "related_data": _link,
    "hostings": _hosting,
    "users": _user_group,
}


def _iso_date(text: str | None) -> str | None:
    if not text:
        return None
    for fmt in ("%d/%m/%Y", "%Y-%m-%d", "%d-%m-%Y", "%d/%m/%y", "%Y-%m-%dT%H:%M:%S"):
        try:
            return datetime.strptime(text[:19], fmt).date().isoformat()
        except ValueError:
            continue
    return text


def _unique(items: Iterable[Any]) -> list[Any]:
    seen: set[Any] = set()
    kept = []
    for item in items:
        if item not in seen:
            seen.add(item)
            kept.append(item)
    return kept
