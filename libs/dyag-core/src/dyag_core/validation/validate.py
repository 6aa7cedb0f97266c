"""validate_dataset: every check of the guide's step 3 on one JSONL, in one report."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ..catalog.model import Catalog
from ..dataset.model import NEGATIVE_TYPES
from ..errors import DyagError
from .checklist import FAIL, build_checklist, find_split, looks_negative
from .cost import DEFAULT_PRICES, estimate_cost
from .coverage import analyse_coverage, type_advice, type_distribution
from .duplicates import find_duplicates
from .format import Record, Source, parse_dataset
from .manifest import ManifestEntry, find_manifest, load_manifest
from .pii import scan_pii
from .report import ValidationReport
from .tokens import HFTokenizer, LOCAL_MAX_TOKENS, Tokenizer, max_tokens_for, token_stats, tokenizer_for

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
    max_listed: int = 1000,
) -> ValidationReport:
    """Check a fine-tuning dataset (a JSONL path or its lines).

    Broken lines are reported by line and the others are analysed. `tokenizer` defaults to the offline
    tiktoken encoding of `model`, or to the HuggingFace tokenizer in `local_model_path`. The manifest
    defaults to the sidecar `<dataset>.manifest.jsonl`; the split to train/validation/test files beside it.
    """
    timings: dict[str, float] = {}
    clock = time.perf_counter()

    def lap(step: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        timings[step] = now - clock
        clock = now

    path = Path(source) if isinstance(source, (str, Path)) else None
    parsed = parse_dataset(source, dataset_format=dataset_format)
    records = parsed.records
    warnings: list[str] = []
    lap("format")

    local = local_model_path is not None or isinstance(tokenizer, HFTokenizer)
    limit = max_tokens or (LOCAL_MAX_TOKENS if local else max_tokens_for(model))
    tokens = None
    if count_tokens:
        try:
            tokenizer = tokenizer or tokenizer_for(model, local_path=local_model_path)
        except DyagError as exc:
            warnings.append(f"tokens non comptés : {exc.message}")
        else:
            tokens = token_stats(records, tokenizer, limit=limit)
            warnings += tokens.warnings
    lap("tokens")

    entries = _manifest(manifest, path, parsed.n_lines, warnings)
    type_counts = type_distribution(entries, records) if entries else {}
    dup_report = find_duplicates(records, near=near_duplicates, threshold=near_threshold) if duplicates else None
    if dup_report:
        warnings += dup_report.warnings
    lap("duplicates")

    coverage = (
        analyse_coverage(catalog, records, entries, max_type_share=max_type_share) if catalog is not None else None
    )
    lap("coverage")
    pii_report = (
        scan_pii(records, parsed.broken_text, catalog=catalog, bound_for_hosted_api=bound_for_hosted_api, allowed=allow_pii)
        if pii
        else None
    )
    lap("pii")

    cost = None
    if tokens is not None and not local:
        try:
            cost = estimate_cost(tokens.billed_tokens, model, n_examples=len(records), epochs=epochs, prices=prices or DEFAULT_PRICES)
        except DyagError as exc:
            warnings.append(exc.message)

    split = split if split is not None else (find_split(path) or None)
    answers = [record.answer for record in records]
    answer_lengths = [len(answer.split()) for answer in answers]
    negatives = _count_negatives(entries, records, answers)
    checklist = build_checklist(
        n_examples=len(records),
        n_format_issues=len(parsed.issues),
        n_question_duplicates=dup_report.n_question_extra if dup_report else 0,
        n_exact_duplicates=dup_report.n_exact_extra if dup_report else 0,
        coverage_percent=coverage.percent if coverage else None,
        type_counts=type_counts or None,
        answer_word_counts=answer_lengths,
        negatives=negatives,
        split=split,
        max_type_share=max_type_share,
        answer_words=answer_words,
        min_answer_share=min_answer_share,
    )
    report = ValidationReport(
        source=str(path) if path else None,
        dataset_format=parsed.dataset_format,
        n_lines=parsed.n_lines,
        n_examples=len(records),
        issues=parsed.issues[:max_listed],
        issue_counts=parsed.issue_counts,
        n_invalid_lines=len(parsed.invalid_lines),
        tokens=tokens,
        duplicates=dup_report,
        coverage=coverage,
        type_counts=type_counts,
        pii=pii_report,
        cost=cost,
        checklist=checklist,
        warnings=warnings,
        max_listed=max_listed,
    )
    report.recommendations = _recommendations(report, type_counts, max_type_share)
    lap("report")
    report.timings = timings
    return report


def _manifest(
    manifest: str | Path | Sequence[Any] | None, path: Path | None, n_lines: int, warnings: list[str]
) -> list[ManifestEntry]:
    if manifest is None and path is not None:
        manifest = find_manifest(path)
    if manifest is None:
        return []
    try:
        entries = load_manifest(manifest)
    except DyagError as exc:
        warnings.append(f"manifeste ignoré : {exc.message}")
        return []
    if len(entries) != n_lines:
        warnings.append(f"le manifeste a {len(entries)} lignes pour {n_lines} lignes de données")
    return entries


def _count_negatives(entries: list[ManifestEntry], records: Sequence[Record], answers: list[str]) -> int:
    """From the manifest when there is one, else from the answers' wording."""
    if entries:
        valid = {record.line for record in records}
        return sum(1 for e in entries if e.line in valid and (e.negative or e.qtype in NEGATIVE_TYPES))
    return sum(map(looks_negative, answers))


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
        advice.append(f"Raccourcir les {len(report.tokens.over_limit)} exemples au-delà de {report.tokens.limit} tokens (ils seraient tronqués)")
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
