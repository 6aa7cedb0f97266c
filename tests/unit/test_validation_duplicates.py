"""Exact and near duplicates, by line, and the de-duplicated copy."""

from __future__ import annotations

import pytest
from test_validation_support import chat, long_answer

from dyag_core.validation import clean, find_duplicates, parse_dataset

pytest.importorskip("numpy")


def records(lines: list[str]):
    return parse_dataset(lines).records


def test_exact_duplicates_ignore_case_accents_and_punctuation() -> None:
    lines = [
        chat("Qu'est-ce que GEOVAL ?", "Un outil géographique."),
        chat("Quel est le statut de SINP ?", "En production."),
        chat("qu est ce que geoval", "Un outil GEOGRAPHIQUE"),
    ]
    report = find_duplicates(records(lines), near=False)
    assert report.exact_groups == [[1, 3]]
    assert report.question_groups == [[1, 3]]
    assert report.n_exact_extra == 1


def test_a_repeated_question_with_another_answer_is_a_question_duplicate_only() -> None:
    lines = [chat("Qu'est-ce que GEOVAL ?", "Un outil."), chat("Qu'est-ce que GEOVAL ?", "Une application.")]
    report = find_duplicates(records(lines), near=False)
    assert report.exact_groups == [] and report.question_groups == [[1, 2]]


def test_near_duplicates_are_found_and_distinct_examples_are_not() -> None:
    base = long_answer("GEOVAL", 1)
    lines = [
        chat("Qu'est-ce que GEOVAL ?", base),
        chat(
            "Peux-tu me présenter HYDROSTAT ?",
            "HYDROSTAT observe la qualité des cours d'eau depuis 2015 pour les agences de l'eau et les DREAL.",
        ),
        chat("Qu'est-ce que GEOVAL ?", base.replace("actuellement", "aujourd'hui")),
        chat(
            "Quel est le statut de SINP ?",
            "SINP est en construction, sa mise en service est prévue pour la fin de l'année.",
        ),
    ]
    report = find_duplicates(records(lines), near=True, threshold=0.7)
    assert report.near_groups == [[1, 3]]
    assert report.exact_groups == []


def test_near_duplicates_scale_sub_quadratically_on_distinct_examples() -> None:
    lines = [
        chat(
            f"Question {i} sur l'application APP{i} ?",
            f"Réponse unique {i} : APP{i} gère le dossier {i * 7919} du service {i % 13}.",
        )
        for i in range(3000)
    ]
    report = find_duplicates(records(lines), near=True)
    assert report.near_groups == []


def test_clean_keeps_the_first_occurrence(tmp_path) -> None:
    lines = [
        chat("Qu'est-ce que GEOVAL ?", "Un outil."),
        "{broken",
        chat("Qu'est-ce que GEOVAL ?", "Un outil."),
        chat("Qu'est-ce que GEOVAL ?", "Une autre réponse."),
        chat("Quel est le statut de SINP ?", "En production."),
    ]
    source = tmp_path / "train.jsonl"
    source.write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = clean(source, tmp_path / "train_clean.jsonl")
    assert result.removed_lines == [2, 3]
    assert (tmp_path / "train_clean.jsonl").read_text(encoding="utf-8").splitlines() == [lines[0], lines[3], lines[4]]
    by_question = clean(source, tmp_path / "by_question.jsonl", by_question=True)
    assert by_question.removed_lines == [2, 3, 4] and by_question.kept == 2


def test_word_by_word_folding_equals_fold() -> None:
    from dyag_core.text import fold
    from dyag_core.validation.duplicates import WordFolder

    texts = [
        "Qu'est-ce que l'ÉCOLE ?",
        "  espaces\tet\nlignes  ",
        "œuvre ﬁn ½ İstanbul ¨a",
        "a\u00a0b — c…d",
        "",
        "ΑΣ ΣΑ",
    ]
    folder = WordFolder()
    assert [folder(t) for t in texts] == [fold(t) for t in texts]
