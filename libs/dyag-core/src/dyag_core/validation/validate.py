"""validate_dataset: every check of the guide's step 3 on one JSONL, in one report."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..catalog.model import Catalog
from ..dataset.model import NEGATIVE_TYPES
from ..errors import DyagError
from .checklist import FAIL, build_checklist, find_split
from .cost import DEFAULT_PRICES, estimate_cost
from .coverage import analyse_coverage, type_advice, type_distribution
from .duplicates import find_duplicates
from .format import Source, count_issues, gc_paused
from .manifest import ManifestEntry, find_manifest, load_manifest
from .pii import scan_pii
from .pipeline import analyse
from .report import ValidationReport
from .tokens import LOCAL_MAX_TOKENS, HFTokenizer, Tokenizer, max_tokens_for, summarise_tokens, tokenizer_for

DEFAULT_MODEL = "gpt-4o-mini-2024-07-18"


def validate_dataset(
    source: Source,
    *,
    catalog: Catalog | None = None,
    tokenizer: Tokenizer | None = None,
    model: str = DEFAULT_MODEL,
    local_model_path: str | Path | None = None,
    max_tokens: int | None = None,
    manifest: str | Path | Sequence[Any] | None = None,
    dataset_format: str | None = None,
    count_tokens: bool = True,
    duplicates: bool = True,
    near_duplicates: bool = True,
    near_threshold: float = 0.8,
    pii: bool = True,
    bound_for_hosted_api: bool = False,
    allow_pii: bool = False,
    split: Mapping[str, int | str | Path] | None = None,
    epochs: int | None = None,
    prices: Mapping[str, float] | None = None,
    max_type_share: float = 0.40,
    answer_words: tuple[int, int] = (20, 200),
    min_answer_share: float = 0.90,
    workers: int | None = None,
    max_listed: int = 1000,
) -> ValidationReport:
    """Check a fine-tuning dataset (a JSONL path or its lines).

    Broken lines are reported by line and the others are analysed. `tokenizer` defaults to the offline
    tiktoken encoding of `model`, or to the HuggingFace tokenizer in `local_model_path`. The manifest
    defaults to the sidecar `<dataset>.manifest.jsonl`; the split to train/validation/test files beside
    it. `workers`: None uses several processes for a large file when that is safe (see pipeline), 1 never.
    """
    options = dict(locals())
    with gc_paused():  # millions of long-lived objects and no cycles: see format.gc_paused
        return _Validation(**options).run()


@dataclass
class _Validation:
    source: Source
    catalog: Catalog | None
    tokenizer: Tokenizer | None
    model: str
    local_model_path: str | Path | None
    max_tokens: int | None
    manifest: str | Path | Sequence[Any] | None
    dataset_format: str | None
    count_tokens: bool
    duplicates: bool
    near_duplicates: bool
    near_threshold: float
    pii: bool
    bound_for_hosted_api: bool
    allow_pii: bool
    split: Mapping[str, int | str | Path] | None
    epochs: int | None
    prices: Mapping[str, float] | None
    max_type_share: float
    answer_words: tuple[int, int]
    min_answer_share: float
    workers: int | None
    max_listed: int
    timings: dict[str, float] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    _clock: float = field(default_factory=time.perf_counter)

    def lap(self, step: str) -> None:
        now = time.perf_counter()
        self.timings[step] = now - self._clock
        self._clock = now

    def run(self) -> ValidationReport:
        path = Path(self.source) if isinstance(self.source, (str, Path)) else None
        local = self.local_model_path is not None or isinstance(self.tokenizer, HFTokenizer)
        limit = self.max_tokens or (LOCAL_MAX_TOKENS if local else max_tokens_for(self.model))
        tokenizer = self._tokenizer()
        keep_records = self.duplicates or self.pii or self.catalog is not None
        analysis = analyse(
            self.source,
            dataset_format=self.dataset_format,
            tokenizer=tokenizer,
            keep_records=keep_records,
            workers=self.workers,
        )
        facts, records = analysis.facts, analysis.records
        self.warnings += analysis.warnings
        self.lap("format+tokens" if tokenizer else "format")

        tokens = None
        if tokenizer is not None:
            tokens = summarise_tokens(
                lines=facts.lines,
                billed=facts.billed,
                assistant=facts.assistant,
                n_messages=facts.n_messages,
                n_missing_system=facts.missing_system,
                n_missing_user=facts.missing_user,
                limit=limit,
                tokenizer=analysis.tokenizer or tokenizer.name,
                warnings=list(analysis.warnings),
            )
        entries = self._manifest(path, analysis.n_lines)
        valid_lines = set(facts.lines) if entries else set()
        type_counts = type_distribution(entries, valid_lines) if entries else {}
        dup_report = None
        if self.duplicates:
            dup_report = find_duplicates(records, near=self.near_duplicates, threshold=self.near_threshold)
            self.warnings += dup_report.warnings
            self.lap("duplicates")
        coverage = None
        if self.catalog is not None:
            coverage = analyse_coverage(self.catalog, records, entries, max_type_share=self.max_type_share)
            self.lap("coverage")
        pii_report = None
        if self.pii:
            pii_report = scan_pii(
                records,
                analysis.broken_text,
                catalog=self.catalog,
                bound_for_hosted_api=self.bound_for_hosted_api,
                allowed=self.allow_pii,
            )
            self.lap("pii")

        cost = None
        if tokens is not None and not local:
            try:
                cost = estimate_cost(
                    tokens.billed_tokens,
                    self.model,
                    n_examples=len(facts.lines),
                    epochs=self.epochs,
                    prices=self.prices or DEFAULT_PRICES,
                )
            except DyagError as exc:
                self.warnings.append(exc.message)

        if entries:
            negatives = sum(1 for e in entries if e.line in valid_lines and (e.negative or e.qtype in NEGATIVE_TYPES))
        else:
            negatives = facts.negatives
        checklist = build_checklist(
            n_examples=len(facts.lines),
            n_format_issues=len(analysis.issues),
            n_question_duplicates=dup_report.n_question_extra if dup_report else 0,
            n_exact_duplicates=dup_report.n_exact_extra if dup_report else 0,
            coverage_percent=coverage.percent if coverage else None,
            type_counts=type_counts or None,
            answer_word_counts=facts.answer_words,
            negatives=negatives,
            split=self.split if self.split is not None else (find_split(path) or None),
            max_type_share=self.max_type_share,
            answer_words=self.answer_words,
            min_answer_share=self.min_answer_share,
        )
        report = ValidationReport(
            source=str(path) if path else None,
            dataset_format=analysis.dataset_format,
            n_lines=analysis.n_lines,
            n_examples=len(facts.lines),
            issues=analysis.issues[: self.max_listed],
            issue_counts=count_issues(analysis.issues),
            n_invalid_lines=len(analysis.invalid_lines),
            tokens=tokens,
            duplicates=dup_report,
            coverage=coverage,
            type_counts=type_counts,
            pii=pii_report,
            cost=cost,
            checklist=checklist,
            warnings=self.warnings,
            max_listed=self.max_listed,
            workers=analysis.workers,
        )
        report.recommendations = _recommendations(report, type_counts, self.max_type_share)
        self.lap("report")
        report.timings = self.timings
        return report

    def _tokenizer(self) -> Tokenizer | None:
        if not self.count_tokens:
            return None
        try:
            return self.tokenizer or tokenizer_for(self.model, local_path=self.local_model_path)
        except DyagError as exc:
            self.warnings.append(f"tokens non comptés : {exc.message}")
            return None

    def _manifest(self, path: Path | None, n_lines: int) -> list[ManifestEntry]:
        manifest = self.manifest
        if manifest is None and path is not None:
            manifest = find_manifest(path)
        if manifest is None:
            return []
        try:
            entries = load_manifest(manifest)
        except DyagError as exc:
            self.warnings.append(f"manifeste ignoré : {exc.message}")
            return []
        if len(entries) != n_lines:
            self.warnings.append(f"le manifeste a {len(entries)} lignes pour {n_lines} lignes de données")
        return entries


def _recommendations(report: ValidationReport, type_counts: dict[str, int], max_type_share: float) -> list[str]:
    advice: list[str] = []
    if report.n_invalid_lines:
        lines = sorted({issue.line for issue in report.issues})
        shown = ", ".join(map(str, lines[:10])) + (" …" if report.n_invalid_lines > 10 else "")
        advice.append(f"Corriger ou retirer les {report.n_invalid_lines} lignes invalides (lignes {shown})")
    if report.coverage is not None:
        advice += report.coverage.recommendations
    elif type_counts:
        advice += type_advice(type_counts, max_type_share)
    if report.duplicates and (report.duplicates.n_exact_extra or report.duplicates.n_question_extra):
        advice.append(
            f"Supprimer les doublons ({report.duplicates.n_exact_extra} exemples identiques, "
            f"{report.duplicates.n_question_extra} questions répétées) : clean(..., by_question=True)"
        )
    if report.tokens and report.tokens.over_limit:
        advice.append(
            f"Raccourcir les {len(report.tokens.over_limit)} exemples "
            f"au-delà de {report.tokens.limit} tokens (ils seraient tronqués)"
        )
    failed = {item.key for item in report.checklist if item.status == FAIL}
    if "answer_length" in failed:
        advice.append("Revoir les réponses trop courtes ou trop longues (cible : 20 à 200 mots)")
    if "negatives" in failed and not any("négatifs" in text for text in advice):
        advice.append("Ajouter des exemples négatifs (« Je ne sais pas », champ non renseigné)")
    if "size" in failed:
        advice.append("Générer davantage d'exemples (au moins 100, idéalement plus de 500)")
    if "split" in failed:
        advice.append("Séparer le dataset en train / validation / test (80/10/10)")
    if report.pii and report.pii.blocking:
        advice.append("Masquer les données personnelles (redact) ou autoriser explicitement leur envoi")
    return advice
