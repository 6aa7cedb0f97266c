"""The guide's step 3.1: which catalog entities the dataset covers, and how its question types balance.

Entities come from the provenance manifest when there is one; otherwise an entity is covered when its
name or long name appears, fold()-normalised and on word boundaries, in a question.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..catalog.model import Catalog
from ..dataset.model import NEGATIVE_TYPES, QUESTION_TYPES
from ..text import fold
from .format import Record
from .manifest import ManifestEntry

TYPE_LABELS = {
    "definition": "Définition",
    "status": "Statut",
    "domain": "Domaine",
    "actors": "Acteurs",
    "sites": "Sites",
    "contacts": "Contacts",
    "scope": "Périmètre",
    "events": "Événements",
    "related": "Applications liées",
    "comparative": "Comparative",
    "listing": "Listing",
    "counting": "Comptage",
    "negative_unknown_entity": "Négative (entité inconnue)",
    "negative_empty_field": "Négative (champ vide)",
}
# "(plus de comparatives)": the plural the recommendation uses.
TYPE_PLURALS = {
    "definition": "définitions",
    "status": "questions de statut",
    "domain": "questions de domaine",
    "actors": "questions sur les acteurs",
    "sites": "questions sur les sites",
    "contacts": "questions sur les contacts",
    "scope": "questions de périmètre",
    "events": "questions sur les événements",
    "related": "questions sur les applications liées",
    "comparative": "comparatives",
    "listing": "listings",
    "counting": "questions de comptage",
    "negative_unknown_entity": "négatives (entité inconnue)",
    "negative_empty_field": "négatives (champ vide)",
}
MIN_DESCRIPTION_CHARS = 50
MAX_NAMES_LISTED = 10


@dataclass(slots=True)
class CoverageReport:
    total: int
    covered: list[str]  # entity ids
    uncovered: list[tuple[str, str]]  # (id, name)
    source: str  # "manifest" or "texte" (names found in the questions)
    type_counts: dict[str, int]  # question type -> examples (manifest only)
    short_descriptions: list[tuple[str, str]]  # (id, name) whose description is missing or < 50 characters
    recommendations: list[str] = field(default_factory=list)

    @property
    def percent(self) -> float:
        return 100.0 * len(self.covered) / self.total if self.total else 100.0

    @property
    def type_shares(self) -> dict[str, float]:
        total = sum(self.type_counts.values())
        return {t: 100.0 * n / total for t, n in self.type_counts.items()} if total else {}

    def to_dict(self) -> dict[str, Any]:
        return {
            "total": self.total,
            "covered": len(self.covered),
            "percent": round(self.percent, 2),
            "covered_ids": list(self.covered),
            "uncovered": [{"id": i, "name": n} for i, n in self.uncovered],
            "source": self.source,
            "type_counts": dict(self.type_counts),
            "type_shares": {t: round(s, 2) for t, s in self.type_shares.items()},
            "short_descriptions": [{"id": i, "name": n} for i, n in self.short_descriptions],
            "recommendations": list(self.recommendations),
        }


def analyse_coverage(
    catalog: Catalog,
    records: Sequence[Record],
    manifest: Sequence[ManifestEntry] | None = None,
    *,
    max_type_share: float = 0.40,
    min_description_chars: int = MIN_DESCRIPTION_CHARS,
) -> CoverageReport:
    known = catalog.by_id()
    valid_lines = {record.line for record in records}
    if manifest:
        entries = [entry for entry in manifest if entry.line in valid_lines]
        mentioned = {eid for entry in entries for eid in entry.entity_ids if eid in known}
        type_counts = type_distribution(entries, valid_lines)
        source = "manifest"
    else:
        mentioned = _entities_named_in(catalog, (record.question for record in records))
        type_counts = {}
        source = "texte"
    covered = [e.id for e in catalog.entities if e.id in mentioned]
    uncovered = [(e.id, e.name) for e in catalog.entities if e.id not in mentioned]
    short = [(e.id, e.name) for e in catalog.entities if len((e.description or "").strip()) < min_description_chars]
    report = CoverageReport(len(catalog.entities), covered, uncovered, source, type_counts, short)
    report.recommendations = _recommendations(report, max_type_share, min_description_chars)
    return report


def type_distribution(manifest: Sequence[ManifestEntry], valid_lines: Collection[int]) -> dict[str, int]:
    """Examples per question type among the valid lines, in QUESTION_TYPES order, then any other type."""
    counts = Counter(entry.qtype for entry in manifest if entry.qtype and entry.line in valid_lines)
    ordered = {t: counts[t] for t in QUESTION_TYPES if counts[t]}
    ordered.update({t: n for t, n in sorted(counts.items()) if t not in ordered})
    return ordered


def _entities_named_in(catalog: Catalog, questions) -> set[str]:
    """Ids of entities whose folded name or long name appears as whole words in a folded question."""
    by_name: dict[str, set[str]] = {}
    for entity in catalog.entities:
        for name in (entity.name, entity.long_name):
            key = fold(name) if name else ""
            if len(key) >= 2:
                by_name.setdefault(key, set()).add(entity.id)
    longest = max((len(key.split()) for key in by_name), default=0)
    found: set[str] = set()
    for question in questions:
        words = fold(question).split()
        for size in range(1, longest + 1):
            for start in range(len(words) - size + 1):
                ids = by_name.get(" ".join(words[start : start + size]))
                if ids:
                    found |= ids
    return found


def _names(pairs: Sequence[tuple[str, str]]) -> str:
    shown = ", ".join(f"{name} (ID {eid})" for eid, name in pairs[:MAX_NAMES_LISTED])
    more = len(pairs) - MAX_NAMES_LISTED
    return shown + (f" et {more} autres" if more > 0 else "")


def _recommendations(report: CoverageReport, max_type_share: float, min_description_chars: int) -> list[str]:
    advice: list[str] = []
    if report.uncovered:
        advice.append(f"Ajouter des exemples pour les applications non couvertes : {_names(report.uncovered)}")
    if report.type_counts:
        advice += type_advice(report.type_counts, max_type_share)
    else:
        advice.append("Fournir le manifeste de provenance pour mesurer la distribution des types de questions")
    if report.short_descriptions:
        advice.append(
            f"Vérifier la qualité des descriptifs trop courts (<{min_description_chars} caractères) : "
            + _names(report.short_descriptions)
        )
    return advice


def type_advice(type_counts: dict[str, int], max_type_share: float) -> list[str]:
    """Missing or scarce types (under half a fair share), dominant types, missing negatives."""
    advice: list[str] = []
    total = sum(type_counts.values())
    expected = [t for t in QUESTION_TYPES if t not in NEGATIVE_TYPES]
    missing = [t for t in expected if not type_counts.get(t)]
    fair_share = total / max(1, len([t for t in type_counts if t not in NEGATIVE_TYPES]))
    scarce = [t for t in expected if 0 < type_counts.get(t, 0) < fair_share / 2]
    if missing or scarce:
        advice.append(
            "Équilibrer les types de questions (plus de " + ", ".join(TYPE_PLURALS[t] for t in missing + scarce) + ")"
        )
    for qtype, n in type_counts.items():
        if n > max_type_share * total:
            label = TYPE_LABELS.get(qtype, qtype)
            advice.append(f"Réduire la part du type « {label} » ({100.0 * n / total:.1f} % > {max_type_share:.0%})")
    if not any(type_counts.get(t) for t in NEGATIVE_TYPES):
        advice.append("Ajouter des exemples négatifs (« Je ne sais pas », champ non renseigné)")
    return advice
