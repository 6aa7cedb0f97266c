"""The guide's Annex B: each line fails on the input it is about, with the measured value."""

from __future__ import annotations

import pytest
from test_validation_support import chat, long_answer

from dyag_core.validation import build_checklist, validate_dataset

GOOD = dict(
    n_examples=600,
    n_format_issues=0,
    n_question_duplicates=0,
    n_exact_duplicates=0,
    coverage_percent=95.0,
    type_counts={
        t: 50
        for t in (
            "definition",
            "status",
            "domain",
            "actors",
            "sites",
            "contacts",
            "scope",
            "events",
            "related",
            "comparative",
            "listing",
            "counting",
            "negative_unknown_entity",
        )
    },
    answer_word_counts=[40] * 600,
    negatives=50,
    split={"train": 480, "validation": 60, "test": 60},
)


def items(**changes):
    return {item.key: item for item in build_checklist(**(GOOD | changes))}


def test_a_good_dataset_passes_every_measurable_line() -> None:
    checks = items()
    assert {k: c.status for k, c in checks.items()} == {
        "size": "pass",
        "format": "pass",
        "duplicates": "pass",
        "coverage": "pass",
        "balance": "pass",
        "quality": "manual",
        "answer_length": "pass",
        "negatives": "pass",
        "split": "pass",
    }


@pytest.mark.parametrize(
    ("key", "changes", "measured"),
    [
        ("size", {"n_examples": 80}, "80 exemples"),
        ("format", {"n_format_issues": 3}, "3 erreur(s)"),
        ("duplicates", {"n_question_duplicates": 2}, "2 question(s) répétée(s)"),
        ("coverage", {"coverage_percent": 80.0}, "80.0 %"),
        ("balance", {"type_counts": {"definition": 500, "status": 100}}, "« definition » à 83.3%"),
        ("answer_length", {"answer_word_counts": [5] * 300 + [40] * 300}, "50.0% dans les bornes (300 trop courtes"),
        ("negatives", {"negatives": 0}, "0 exemple(s) négatif(s)"),
        ("split", {"split": None}, "aucun split trouvé"),
        ("split", {"split": {"train": 480, "test": 60}}, "train 480"),
    ],
)
def test_each_line_fails_with_its_measure(key: str, changes: dict, measured: str) -> None:
    item = items(**changes)[key]
    assert item.status == "fail"
    assert measured in item.measured


def test_a_balanced_set_with_one_dominant_type_fails() -> None:
    counts = dict(GOOD["type_counts"]) | {"definition": 700}
    assert items(type_counts=counts)["balance"].status == "fail"


def test_the_split_files_beside_the_dataset_count(tmp_path) -> None:
    lines = [chat(f"Question {i} ?", long_answer("APP", i)) for i in range(5)]
    for name, n in (("train", 4), ("validation", 1), ("test", 1)):
        (tmp_path / f"{name}.jsonl").write_text("\n".join(lines[:n]) + "\n", encoding="utf-8")
    report = validate_dataset(tmp_path / "train.jsonl", pii=False)
    split = next(item for item in report.checklist if item.key == "split")
    assert split.status == "pass" and "validation 1" in split.measured


def test_negatives_are_recognised_in_the_answers_without_a_manifest() -> None:
    lines = [
        chat("Quel est le statut de ZORGLUB ?", "Je ne sais pas : ZORGLUB ne figure pas dans le catalogue."),
        chat("Q ?", long_answer("X")),
    ]
    report = validate_dataset(lines, pii=False)
    negatives = next(item for item in report.checklist if item.key == "negatives")
    assert negatives.status == "pass" and negatives.measured.startswith("1 ")
