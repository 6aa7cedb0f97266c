"""Personal data in a dataset: e-mails, French phone numbers and the catalog's contact names.

`scan_pii` reports each hit with its line; `redact` writes a copy with placeholders ([EMAIL],
[TÉLÉPHONE], [PERSONNE]) and keeps every JSON line valid.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..catalog.model import Catalog
from ..text import strip_accents
from .format import Record, Source, is_json_array_file, json_loader, read_lines, write_lines

EMAIL = "email"
PHONE = "telephone"
PERSON = "personne"
PLACEHOLDERS = {EMAIL: "[EMAIL]", PHONE: "[TÉLÉPHONE]", PERSON: "[PERSONNE]"}

_EMAIL = re.compile(r"(?<![\w.+-])[\w.+-]+@[\w-]+(?:\.[\w-]+)*\.[A-Za-z]{2,}\b")
# 01 23 45 67 89, 01.23.45.67.89, 0123456789, +33 1 23 45 67 89, +33 (0)1 23 45 67 89, 0033 1…
_PHONE = re.compile(r"(?<![\w+])(?:(?:\+|00)33[\s.-]?(?:\(0\)[\s.-]?)?[1-9]|0[1-9])(?:[\s.-]?\d{2}){4}(?!\d)")


@dataclass(frozen=True, slots=True)
class PiiHit:
    line: int
    kind: str  # email | telephone | personne
    text: str

    def to_dict(self) -> dict[str, Any]:
        return {"line": self.line, "kind": self.kind, "text": self.text}


@dataclass(slots=True)
class PiiReport:
    hits: list[PiiHit]
    bound_for_hosted_api: bool = False
    allowed: bool = False  # the owner explicitly allowed this personal data to be uploaded
    warnings: list[str] = field(default_factory=list)

    @property
    def counts(self) -> dict[str, int]:
        counts = Counter(hit.kind for hit in self.hits)
        return {kind: counts[kind] for kind in PLACEHOLDERS if counts[kind]}

    @property
    def lines(self) -> list[int]:
        return sorted({hit.line for hit in self.hits})

    @property
    def blocking(self) -> bool:
        return bool(self.hits) and self.bound_for_hosted_api and not self.allowed

    @property
    def verdict(self) -> str:
        if not self.hits:
            return "Aucune donnée personnelle détectée."
        found = ", ".join(f"{n} {kind}" for kind, n in self.counts.items())
        if self.blocking:
            return (
                f"BLOQUANT : données personnelles détectées ({found}) sur {len(self.lines)} lignes : "
                "à masquer (redact) ou à autoriser explicitement avant l'envoi à une API hébergée."
            )
        if self.bound_for_hosted_api:
            return f"Données personnelles détectées ({found}), envoi autorisé explicitement."
        return f"Données personnelles détectées ({found}) : à vérifier avant diffusion."

    def to_dict(self, max_listed: int | None = None) -> dict[str, Any]:
        return {
            "counts": self.counts,
            "lines": self.lines[:max_listed],
            "hits": [hit.to_dict() for hit in self.hits[:max_listed]],
            "bound_for_hosted_api": self.bound_for_hosted_api,
            "allowed": self.allowed,
            "blocking": self.blocking,
            "verdict": self.verdict,
        }


class PiiScanner:
    """The patterns, with the catalog's contact names of two words or more (either order for two words,
    any case, with or without accents)."""

    def __init__(self, person_names: Iterable[str] = ()):
        forms: set[tuple[str, ...]] = set()
        for name in person_names:
            words = name.split()
            if len(words) < 2:
                continue  # a lone word ("MARTIN") would match ordinary text too often
            for form in {name, strip_accents(name)}:
                w = tuple(form.lower().split())
                forms.add(w)
                if len(w) == 2:
                    forms.add(w[::-1])
        # One trie-shaped pattern: thousands of names cost little more than one (a flat alternation
        # would try every name at every position).
        self._person = re.compile(rf"(?<!\w)(?:{_trie_pattern(forms)})(?!\w)", re.IGNORECASE) if forms else None
        self._cache: dict[str, list[tuple[str, str]]] = {}

    @classmethod
    def for_catalog(cls, catalog: Catalog | None) -> PiiScanner:
        names = [c.name for e in catalog.entities for c in e.contacts if c.name] if catalog else []
        return cls(names)

    def _patterns(self) -> list[tuple[str, re.Pattern[str]]]:
        patterns = [(EMAIL, _EMAIL), (PHONE, _PHONE)]
        return patterns + ([(PERSON, self._person)] if self._person else [])

    def find(self, text: str) -> list[tuple[str, str]]:
        """(kind, matched text) in the text; cached, since system prompts and answers repeat."""
        found = self._cache.get(text)
        if found is None:
            found = [(kind, m.group()) for kind, pattern in self._patterns() for m in pattern.finditer(text)]
            self._cache[text] = found
        return found

    def redact(self, text: str) -> str:
        for kind, pattern in self._patterns():
            text = pattern.sub(PLACEHOLDERS[kind], text)
        return text


_WORD_GAP = r"[\s-]+"


def _trie_pattern(names: Iterable[tuple[str, ...]]) -> str:
    """A regex matching any of the word sequences, longest first, words separated by spaces or hyphens."""
    trie: dict[str, dict] = {}
    for words in names:
        node = trie
        for word in words:
            node = node.setdefault(word, {})
        node[""] = {}  # a name ends here

    def branches(node: dict[str, dict]) -> list[str]:
        return [
            re.escape(word) + continuation(child)
            for word, child in sorted(node.items(), key=lambda kv: (-len(kv[0]), kv[0]))
            if word
        ]

    def continuation(node: dict[str, dict]) -> str:
        longer = branches(node)
        if not longer:
            return ""
        group = f"{_WORD_GAP}(?:{'|'.join(longer)})"
        return f"(?:{group})?" if "" in node else group

    return "|".join(branches(trie))


def scan_pii(
    records: Sequence[Record],
    broken_text: dict[int, str] | None = None,
    *,
    catalog: Catalog | None = None,
    scanner: PiiScanner | None = None,
    bound_for_hosted_api: bool = False,
    allowed: bool = False,
) -> PiiReport:
    """Hits in every message of the valid records, and in the raw text of the broken lines."""
    scanner = scanner or PiiScanner.for_catalog(catalog)
    hits: list[PiiHit] = []
    for record in records:
        for text in (*record.contents, *record.names):
            hits += [PiiHit(record.line, kind, match) for kind, match in scanner.find(text)]
    for line, text in sorted((broken_text or {}).items()):
        hits += [PiiHit(line, kind, match) for kind, match in scanner.find(text)]
    hits.sort(key=lambda hit: hit.line)
    return PiiReport(hits, bound_for_hosted_api, allowed)


@dataclass(frozen=True, slots=True)
class RedactResult:
    lines_changed: list[int]
    output: str


def redact(source: Source, output: str | Path, *, catalog: Catalog | None = None) -> RedactResult:
    """Write a copy with placeholders instead of personal data. JSON lines are rewritten value by value
    (so escapes stay right); a line that is not JSON is redacted as plain text."""
    scanner = PiiScanner.for_catalog(catalog)
    loads = json_loader()
    changed: list[int] = []
    out: list[str] = []
    for lineno, raw in enumerate(read_lines(source), 1):
        text = raw.decode("utf-8", errors="replace") if isinstance(raw, bytes) else raw
        try:
            obj = loads(raw)
        except ValueError:
            new = scanner.redact(text)
        else:
            redacted = _redact_value(obj, scanner)
            new = text if redacted == obj else json.dumps(redacted, ensure_ascii=False)
        if new != text:
            changed.append(lineno)
        out.append(new)
    path = write_lines(output, out, as_array=is_json_array_file(source))
    return RedactResult(changed, str(path))


def _redact_value(value: Any, scanner: PiiScanner) -> Any:
    if isinstance(value, str):
        return scanner.redact(value)
    if isinstance(value, list):
        return [_redact_value(item, scanner) for item in value]
    if isinstance(value, dict):
        return {key: _redact_value(item, scanner) for key, item in value.items()}
    return value
