"""The provenance sidecar of an OpenAI JSONL: `<dataset>.manifest.jsonl`, one line per dataset line.

Each line: {"line", "id", "type", "entity_ids", "fields", "template", "key_facts", "negative"}. The
dataset package's own reader is used when it exists; this small reader stands in otherwise.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..dataset.errors import DatasetError


@dataclass(frozen=True, slots=True)
class ManifestEntry:
    line: int  # 1-based line of the dataset
    qtype: str
    entity_ids: tuple[str, ...]
    negative: bool = False
    id: str = ""
    template: str = ""


def manifest_candidates(dataset: str | Path) -> list[Path]:
    """`train.jsonl.manifest.jsonl`, then `train.manifest.jsonl`."""
    path = Path(dataset)
    return [path.with_name(path.name + ".manifest.jsonl"), path.with_name(path.stem + ".manifest.jsonl")]


def find_manifest(dataset: str | Path) -> Path | None:
    return next((p for p in manifest_candidates(dataset) if p.is_file()), None)


def load_manifest(source: str | Path | Iterable[Any]) -> list[ManifestEntry]:
    """Entries from a manifest file, or from already-read entries (dicts or objects)."""
    if isinstance(source, (str, Path)):
        items = _read(Path(source))
    else:
        items = list(source)
    return [_entry(item, position) for position, item in enumerate(items, 1)]


def _read(path: Path) -> list[Any]:
    try:
        from ..dataset.formats import read_manifest  # type: ignore[attr-defined]
    except ImportError:
        read_manifest = None
    if read_manifest is not None:
        return list(read_manifest(path))
    if not path.is_file():
        raise DatasetError("missing_manifest", f"Manifeste introuvable : {path}", {"path": str(path)})
    entries = []
    for lineno, text in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not text.strip():
            continue
        try:
            entries.append(json.loads(text))
        except json.JSONDecodeError as exc:
            raise DatasetError("bad_dataset", f"{path}:{lineno} : ligne de manifeste illisible ({exc})") from exc
    return entries


def _entry(item: Any, position: int) -> ManifestEntry:
    def get(key: str, *aliases: str, default: Any = None) -> Any:
        for name in (key, *aliases):
            if isinstance(item, dict) and name in item:
                return item[name]
            if not isinstance(item, dict) and hasattr(item, name):
                return getattr(item, name)
        return default

    provenance = get("provenance")  # an Example-like object carries its provenance apart
    entity_ids = get("entity_ids", default=None)
    negative = get("negative", default=None)
    if provenance is not None:
        entity_ids = entity_ids if entity_ids is not None else getattr(provenance, "entity_ids", ())
        negative = negative if negative is not None else getattr(provenance, "negative", False)
    return ManifestEntry(
        line=int(get("line", default=position)),
        qtype=str(get("type", "qtype", default="") or ""),
        entity_ids=tuple(str(e) for e in (entity_ids or ())),
        negative=bool(negative),
        id=str(get("id", default="") or ""),
        template=str(get("template", default="") or ""),
    )
