"""The provenance sidecar of a dataset: `<dataset>.manifest.jsonl`, one line per dataset line.

Read with the dataset package's own reader (dyag_core.dataset.formats.read_manifest); entries already
in memory (dicts, or objects with the same attributes) are accepted too.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..dataset.formats import manifest_path, read_manifest


@dataclass(frozen=True, slots=True)
class ManifestEntry:
    line: int  # 1-based line of the dataset
    qtype: str
    entity_ids: tuple[str, ...]
    negative: bool = False
    id: str = ""
    template: str = ""


def find_manifest(dataset: str | Path) -> Path | None:
    path = manifest_path(dataset)
    return path if path.is_file() else None


def load_manifest(source: str | Path | Iterable[Any]) -> list[ManifestEntry]:
    """Entries from a manifest file (or the dataset it sits next to), or from entries already read."""
    items = read_manifest(source) if isinstance(source, (str, Path)) else list(source)
    return [_entry(item, position) for position, item in enumerate(items, 1)]


def _entry(item: Any, position: int) -> ManifestEntry:
    def get(*names: str, default: Any = None) -> Any:
        for name in names:
            if isinstance(item, dict):
                if name in item:
                    return item[name]
            elif hasattr(item, name):
                return getattr(item, name)
        return default

    provenance = get("provenance")  # an Example carries its provenance apart
    entity_ids = get("entity_ids", default=getattr(provenance, "entity_ids", ()))
    negative = get("negative", default=getattr(provenance, "negative", False))
    return ManifestEntry(
        line=int(get("line", default=position)),
        qtype=str(get("type", "qtype", default="") or ""),
        entity_ids=tuple(str(e) for e in (entity_ids or ())),
        negative=bool(negative),
        id=str(get("id", default="") or ""),
        template=str(get("template", default=getattr(provenance, "template", "")) or ""),
    )
