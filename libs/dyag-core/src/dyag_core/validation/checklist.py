"""The guide's Annex B quality checklist: one pass/fail line per item, with the measured value."""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from itertools import accumulate
from pathlib import Path
from typing import Any

from ..dataset.model import NEGATIVE_TYPES, QUESTION_TYPES

PASS, FAIL, SKIP, MANUAL = "pass", "fail", "skip", "manual"

MIN_EXAMPLES, IDEAL_EXAMPLES = 100, 500
MIN_COVERAGE = 90.0
MAX_TYPE_SHARE = 0.40
ANSWER_WORDS = (20, 200)
MIN_ANSWER_SHARE = 0.90  # share of answers whose length is within ANSWER_WORDS
SPLIT_NAMES = {"train": ("train",), "validation": ("validation", "val", "valid"), "test": ("test",)}

# Honest "I don't know" answers. Each phrase holds one of the hints, which are looked for first
# (plain substring search) so that the regex runs on few answers.
_NEGATIVE_ANSWER = re.compile(
    r"je ne sais pas|je ne connais pas|je n['’]ai pas (?:d['’]|l['’]|cette )?information|je ne dispose pas"
    r"|aucune information|pas d['’]information|non renseign[ée]|"
    r"n['’]est pas renseign[ée]|ne figure pas|aucune application nommée",
    re.IGNORECASE,
)
_NEGATIVE_HINTS = (
    "sais pas",
    "connais pas",
    "information",
    "dispose pas",
    "renseign",
    "figure pas",
    "aucune application",
)


@dataclass(frozen=True, slots=True)
class CheckItem:
    key: str
    label: str  # the guide's wording
    status: str  # pass | fail | skip (not measurable here) | manual (a person checks it)
    measured: str
    expected: str

    @property
    def passed(self) -> bool:
        return self.status == PASS

    def to_dict(self) -> dict[str, Any]:
        return asdict(self) | {"passed": self.passed}


def looks_negative(answer: str) -> bool:
    return any(hint in answer for hint in _NEGATIVE_HINTS) and bool(_NEGATIVE_ANSWER.search(answer))


def negative_answers(answers: Sequence[str]) -> set[int]:
    """Indexes of the answers that look negative. The hints are searched in all answers joined (a few C
    scans), and only the answers that hold one go through the regex."""
    joined = "\x00".join(answers)
    ends = list(accumulate(len(answer) + 1 for answer in answers))
    candidates: set[int] = set()
    for hint in _NEGATIVE_HINTS:
        position = joined.find(hint)
        while position >= 0:
            index = bisect_right(ends, position)
            candidates.add(index)
            position = joined.find(hint, ends[index])
    return {index for index in candidates if _NEGATIVE_ANSWER.search(answers[index])}


def find_split(dataset: str | Path | None) -> dict[str, Path]:
    """train / validation / test files next to the dataset (train.jsonl, val.jsonl, test.jsonl…)."""
    if dataset is None:
        return {}
    folder = Path(dataset).parent
    found: dict[str, Path] = {}
    for part, names in SPLIT_NAMES.items():
        for name in names:
            candidate = folder / f"{name}.jsonl"
            if candidate.is_file():
                found[part] = candidate
                break
    return found


def _split_sizes(split: Mapping[str, int | str | Path]) -> dict[str, int]:
    sizes = {}
    for part, value in split.items():
        if isinstance(value, int):
            sizes[part] = value
        else:
            with open(value, "rb") as handle:
                sizes[part] = sum(1 for line in handle if line.strip())
    return sizes


def build_checklist(
    *,
    n_examples: int,
    n_format_issues: int,
    n_question_duplicates: int,
    n_exact_duplicates: int,
    coverage_percent: float | None,
    type_counts: Mapping[str, int] | None,
    answer_word_counts: Sequence[int],
    negatives: int | None,
    split: Mapping[str, int | str | Path] | None,
    max_type_share: float = MAX_TYPE_SHARE,
    answer_words: tuple[int, int] = ANSWER_WORDS,
    min_answer_share: float = MIN_ANSWER_SHARE,
) -> list[CheckItem]:
    items = [
        _size(n_examples),
        CheckItem(
            "format",
            "Format valide : tous les JSONs sont bien formés",
            PASS if n_format_issues == 0 else FAIL,
            f"{n_format_issues} erreur(s)",
            "0 erreur",
        ),
        CheckItem(
            "duplicates",
            "Pas de duplicatas : questions uniques",
            PASS if n_question_duplicates == 0 and n_exact_duplicates == 0 else FAIL,
            f"{n_question_duplicates} question(s) répétée(s), {n_exact_duplicates} exemple(s) identique(s)",
            "0",
        ),
        _coverage(coverage_percent),
        _balance(type_counts, max_type_share),
        CheckItem(
            "quality", "Qualité : réponses précises et complètes", MANUAL, "relecture d'un échantillon", "à vérifier"
        ),
        _lengths(answer_word_counts, answer_words, min_answer_share),
        _negatives(negatives),
        _split(split),
    ]
    return items


def _size(n: int) -> CheckItem:
    note = "" if n > IDEAL_EXAMPLES or n <= MIN_EXAMPLES else f" (idéal > {IDEAL_EXAMPLES})"
    return CheckItem(
        "size",
        f"Taille minimale : >{MIN_EXAMPLES} exemples (idéal >{IDEAL_EXAMPLES})",
        PASS if n > MIN_EXAMPLES else FAIL,
        f"{n} exemples{note}",
        f"> {MIN_EXAMPLES}",
    )


def _coverage(percent: float | None) -> CheckItem:
    label = f"Couverture : ≥{MIN_COVERAGE:.0f} % des applications représentées"
    if percent is None:
        return CheckItem("coverage", label, SKIP, "catalogue non fourni", f"≥ {MIN_COVERAGE:.0f} %")
    return CheckItem(
        "coverage", label, PASS if percent >= MIN_COVERAGE else FAIL, f"{percent:.1f} %", f"≥ {MIN_COVERAGE:.0f} %"
    )


def _balance(type_counts: Mapping[str, int] | None, max_share: float) -> CheckItem:
    label = f"Équilibre : chaque type de question représenté, aucun au-delà de {max_share:.0%}"
    expected = f"tous les types, chacun ≤ {max_share:.0%}"
    if not type_counts:
        return CheckItem("balance", label, SKIP, "types inconnus (pas de manifeste)", expected)
    total = sum(type_counts.values())
    missing = [t for t in QUESTION_TYPES if t not in NEGATIVE_TYPES and not type_counts.get(t)]
    top, top_n = max(type_counts.items(), key=lambda item: item[1])
    share = top_n / total if total else 0.0
    measured = f"{len(type_counts)} types, le plus fréquent « {top} » à {share:.1%}"
    if missing:
        measured += f" ; absents : {', '.join(missing)}"
    return CheckItem("balance", label, PASS if not missing and share <= max_share else FAIL, measured, expected)


def _lengths(word_counts: Sequence[int], bounds: tuple[int, int], min_share: float) -> CheckItem:
    low, high = bounds
    within = sum(1 for n in word_counts if low <= n <= high)
    share = within / len(word_counts) if word_counts else 0.0
    short = sum(1 for n in word_counts if n < low)
    long = sum(1 for n in word_counts if n > high)
    return CheckItem(
        "answer_length",
        f"Longueur : réponses ni trop courtes (<{low} mots) ni trop longues (>{high} mots)",
        PASS if word_counts and share >= min_share else FAIL,
        f"{share:.1%} dans les bornes ({short} trop courtes, {long} trop longues)",
        f"≥ {min_share:.0%} dans [{low}, {high}] mots",
    )


def _negatives(negatives: int | None) -> CheckItem:
    label = "Négatifs : inclut des exemples « Je ne sais pas »"
    if negatives is None:
        return CheckItem("negatives", label, SKIP, "non mesurable", "> 0")
    return CheckItem("negatives", label, PASS if negatives > 0 else FAIL, f"{negatives} exemple(s) négatif(s)", "> 0")


def _split(split: Mapping[str, int | str | Path] | None) -> CheckItem:
    label = "Split : train / validation / test séparés (80/10/10)"
    if not split:
        return CheckItem("split", label, FAIL, "aucun split trouvé", "train, validation et test")
    sizes = _split_sizes(split)
    total = sum(sizes.values()) or 1
    measured = " / ".join(f"{part} {n} ({100 * n / total:.0f} %)" for part, n in sizes.items())
    complete = all(sizes.get(part) for part in SPLIT_NAMES)
    return CheckItem("split", label, PASS if complete else FAIL, measured, "train, validation et test")
