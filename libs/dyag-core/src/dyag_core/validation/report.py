"""The validation report: every check's result, JSON-able, and a French rendering in the guide's layout."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .checklist import FAIL, MANUAL, PASS, CheckItem
from .cost import CostEstimate
from .coverage import TYPE_LABELS, CoverageReport
from .duplicates import DuplicateReport
from .format import FormatIssue
from .pii import PiiReport
from .tokens import TokenStats

READY, USABLE, TO_FIX = "prêt", "utilisable avec réserves", "à corriger"
_ICONS = {PASS: "✅", FAIL: "❌", MANUAL: "👁️ ", "skip": "➖"}
RENDER_LIMIT = 10  # lines listed per section in the text rendering


@dataclass(slots=True)
class ValidationReport:
    source: str | None
    dataset_format: str
    n_lines: int
    n_examples: int  # valid examples
    issues: list[FormatIssue]  # up to max_listed; issue_counts has the full counts
    issue_counts: dict[str, int]
    n_invalid_lines: int
    tokens: TokenStats | None = None
    duplicates: DuplicateReport | None = None
    coverage: CoverageReport | None = None
    type_counts: dict[str, int] = field(default_factory=dict)  # question type -> examples (from the manifest)
    pii: PiiReport | None = None
    cost: CostEstimate | None = None
    checklist: list[CheckItem] = field(default_factory=list)
    recommendations: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)  # seconds per step
    max_listed: int = 1000
    workers: int = 1  # processes that parsed the file

    @property
    def blocking(self) -> list[str]:
        """What a hosted fine-tuning job would refuse, or must not receive."""
        reasons = []
        if self.n_invalid_lines:
            reasons.append(f"{self.n_invalid_lines} ligne(s) invalide(s)")
        if self.n_examples == 0:
            reasons.append("aucun exemple valide")
        if self.pii is not None and self.pii.blocking:
            reasons.append("données personnelles à masquer ou à autoriser avant l'envoi")
        return reasons

    @property
    def verdict(self) -> str:
        if self.blocking:
            return TO_FIX
        return READY if all(item.status != FAIL for item in self.checklist) else USABLE

    def to_dict(self) -> dict[str, Any]:
        n = self.max_listed
        return {
            "source": self.source,
            "format": self.dataset_format,
            "lines": self.n_lines,
            "examples": self.n_examples,
            "invalid_lines": self.n_invalid_lines,
            "issue_counts": dict(self.issue_counts),
            "issues": [issue.to_dict() for issue in self.issues[:n]],
            "tokens": self.tokens.to_dict() if self.tokens else None,
            "duplicates": self.duplicates.to_dict(n) if self.duplicates else None,
            "coverage": self.coverage.to_dict() if self.coverage else None,
            "type_counts": dict(self.type_counts),
            "pii": self.pii.to_dict(n) if self.pii else None,
            "cost": self.cost.to_dict() if self.cost else None,
            "checklist": [item.to_dict() for item in self.checklist],
            "recommendations": list(self.recommendations),
            "warnings": list(self.warnings),
            "blocking": self.blocking,
            "verdict": self.verdict,
            "timings_s": {step: round(s, 4) for step, s in self.timings.items()},
            "workers": self.workers,
        }

    def render(self) -> str:
        """The French text report (the guide's step 3.1 layout, plus format, tokens, PII, cost, checklist)."""
        out: list[str] = [
            "╔" + "═" * 62 + "╗",
            "║" + "VALIDATION DU DATASET DE FINE-TUNING".center(62) + "║",
            "╚" + "═" * 62 + "╝",
            "",
            "📊 Statistiques globales:",
            f"  Fichier: {self.source or '(flux)'} — format {self.dataset_format}",
            f"  Lignes: {self.n_lines}, exemples valides: {self.n_examples}, lignes invalides: {self.n_invalid_lines}",
        ]
        out += _coverage_lines(self.coverage)
        out += _token_lines(self.tokens)
        out += _duplicate_lines(self.duplicates)
        out += self._issue_lines()
        out += _type_lines(self.type_counts)
        out += _pii_lines(self.pii)
        if self.cost:
            c = self.cost
            out += [
                "",
                "💶 Coût estimé de l'entraînement:",
                f"  {c.model}: {_thousands(c.billed_tokens_per_epoch)} tokens × {c.epochs} époques ({c.epochs_source})"
                f" × {c.price_per_million:.2f} $/M = {c.cost_usd:.2f} $",
            ]
        out += ["", "✅ Checklist qualité (annexe B):"]
        out += [f"  {_ICONS.get(i.status, '?')} {i.label} — mesuré : {i.measured}" for i in self.checklist]
        if self.recommendations:
            out += ["", "⚠️  Recommandations:"]
            out += [f"  [{k}] {text}" for k, text in enumerate(self.recommendations, 1)]
        if self.warnings:
            out += ["", "ℹ️  Avertissements:"] + [f"  - {w}" for w in self.warnings]
        out += ["", f"Verdict: {self.verdict}" + (f" ({'; '.join(self.blocking)})" if self.blocking else "")]
        return "\n".join(out)

    def _issue_lines(self) -> list[str]:
        if not self.issue_counts:
            return ["", "✅ Format valide : aucune erreur détectée."]
        total = sum(self.issue_counts.values())
        out = ["", f"❌ Erreurs de format ({total}):"]
        out += [f"  {code}: {n}" for code, n in self.issue_counts.items()]
        out += [f"  Ligne {i.line}: {i.code} — {i.message}" for i in self.issues[:RENDER_LIMIT]]
        if total > RENDER_LIMIT:
            out.append(f"  … et {total - RENDER_LIMIT} autres")
        return out


def _thousands(n: int) -> str:
    return f"{n:,}".replace(",", " ")


def _coverage_lines(coverage: CoverageReport | None) -> list[str]:
    if coverage is None:
        return []
    out = [
        f"  Applications totales: {coverage.total}",
        f"  Applications couvertes: {len(coverage.covered)} ({coverage.percent:.1f}%)",
        f"  Applications non couvertes: {len(coverage.uncovered)}",
    ]
    out += [f"    - ID {eid}: {name}" for eid, name in coverage.uncovered[:RENDER_LIMIT]]
    if len(coverage.uncovered) > RENDER_LIMIT:
        out.append(f"    … et {len(coverage.uncovered) - RENDER_LIMIT} autres")
    return out


def _token_lines(tokens: TokenStats | None) -> list[str]:
    if tokens is None:
        return []
    d = tokens.per_example
    return [
        f"  Tokens par exemple ({tokens.tokenizer}): min {d.min} "
        f"/ moyenne {d.mean:.1f} / p95 {d.p95:.0f} / max {d.max}",
        f"  Tokens assistant par exemple: moyenne {tokens.assistant.mean:.1f} / p95 {tokens.assistant.p95:.0f}",
        f"  Exemples au-delà de la limite ({tokens.limit} tokens): {len(tokens.over_limit)}"
        + (
            f" (lignes {', '.join(str(line) for line, _ in tokens.over_limit[:RENDER_LIMIT])})"
            if tokens.over_limit
            else ""
        ),
        f"  Tokens facturés par époque: {_thousands(tokens.billed_tokens)}",
    ]


def _duplicate_lines(duplicates: DuplicateReport | None) -> list[str]:
    if duplicates is None:
        return []
    near = str(duplicates.n_near_extra) if duplicates.near_computed else "non calculés"
    out = [
        f"  Doublons exacts: {duplicates.n_exact_extra}, questions répétées: {duplicates.n_question_extra}, "
        f"quasi-doublons (Jaccard ≥ {duplicates.near_threshold}): {near}"
    ]
    groups = duplicates.exact_groups + duplicates.question_groups + duplicates.near_groups
    out += [f"    - lignes {', '.join(map(str, group[:8]))}{' …' if len(group) > 8 else ''}" for group in groups[:5]]
    return out


def _type_lines(type_counts: dict[str, int]) -> list[str]:
    if not type_counts:
        return []
    total = sum(type_counts.values())
    out = ["", "📈 Distribution des types de questions:"]
    out += [f"  {TYPE_LABELS.get(t, t)}: {n} ({100 * n / total:.1f}%)" for t, n in type_counts.items()]
    return out


def _pii_lines(pii: PiiReport | None) -> list[str]:
    if pii is None:
        return []
    out = ["", "🔒 Données personnelles:", f"  {pii.verdict}"]
    out += [f"  Ligne {h.line}: {h.kind} « {h.text} »" for h in pii.hits[:RENDER_LIMIT]]
    if len(pii.hits) > RENDER_LIMIT:
        out.append(f"  … et {len(pii.hits) - RENDER_LIMIT} autres")
    return out
