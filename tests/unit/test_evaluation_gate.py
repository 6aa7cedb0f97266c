"""The promotion gate: a challenger against the champion, on the changed applications' questions and the others."""

from __future__ import annotations

import json

import pytest

from dyag_core.evaluation import (
    EvalCase,
    EvaluationError,
    QuestionResult,
    Thresholds,
    gate,
    paired_gap,
)

CHANGED = ("A", "B", "C")  # 4 questions each: 12 changed questions
UNCHANGED = ("D", "E", "F", "G", "H")  # 8 questions each: 40 unchanged questions
KEYS = [(f"q{i}", (app,)) for i, app in enumerate(a for a in CHANGED for _ in range(4))] + [
    (f"q{12 + i}", (app,)) for i, app in enumerate(a for a in UNCHANGED for _ in range(8))
]


def result(qid: str, entities: tuple[str, ...], correct: bool, question: str | None = None) -> QuestionResult:
    case = EvalCase(qid, question or f"Quel est le statut de l'application {entities[0]} ({qid}) ?", "En production.")
    case = EvalCase(case.id, case.question, case.expected_answer, ("en production",), "status", entities)
    return QuestionResult(
        case, "En production." if correct else "Je ne sais pas.", correct, None if correct else "missing_facts", None
    )


def run(changed_right: int, unchanged_right: int) -> list[QuestionResult]:
    """The first `changed_right` changed questions and the first `unchanged_right` unchanged ones answered right."""
    return [
        result(qid, entities, i < changed_right if i < 12 else i - 12 < unchanged_right)
        for i, (qid, entities) in enumerate(KEYS)
    ]


THRESHOLDS = Thresholds(min_absolute=0.05, min_relative=0.1, min_accuracy=0.5)


def test_a_challenger_better_on_the_changed_facts_is_promoted() -> None:
    champion, challenger = run(1, 36), run(10, 36)
    report = gate(champion, challenger, CHANGED, THRESHOLDS)
    assert report.promote and report.decision == "promote"
    changed, unchanged, overall = report.changed, report.unchanged, report.overall
    assert (changed.questions, changed.entities, unchanged.questions, overall.questions) == (12, 3, 40, 52)
    assert changed.champion_accuracy == pytest.approx(1 / 12) and changed.challenger_accuracy == pytest.approx(10 / 12)
    assert changed.delta == pytest.approx(0.75) and changed.significance.significant
    # The paired routine of compare.py: 9 questions only the challenger gets right, none the other way.
    assert changed.significance == paired_gap(
        {r.case.id: r.correct for r in champion[:12]}, {r.case.id: r.correct for r in challenger[:12]}
    )
    assert changed.significance.ci_low == pytest.approx(0.75 - 1.959963984540054 * 0.125)
    assert unchanged.delta == 0 and (unchanged.significance.ci_low, unchanged.significance.ci_high) == (0, 0)
    first, second, third = report.reasons
    assert first.startswith("Sur les 12 questions des 3 applications modifiées, le challenger répond juste à 83.3 %")
    assert "contre 8.3 % pour le champion, soit +75.0 pts (IC 95 % [+50.5 ; +99.5] pts, significatif" in first
    assert (
        "il est meilleur sur ce qui a changé, au-dessus du seuil absolu de +5.0 pts et du seuil relatif de 10 % des "
        "8.3 % du champion, soit +0.8 pts." in first
    )
    assert second.startswith("Sur les 40 questions hors des applications modifiées") and "ne régresse pas" in second
    assert "90.0 % contre 90.0 %" in second and "l'intervalle contient 0" in second
    assert "le challenger répond juste à 88.5 % : au moins le minimum demandé de 50.0 %" in third
    data = report.to_dict()
    assert data["promote"] and data["changed"]["questions"] == 12 and data["thresholds"]["min_absolute"] == 0.05
    assert data["summary"].startswith("Challenger promu. Sur les 12 questions")
    json.dumps(data)  # plain JSON


def test_a_corrupted_challenger_worse_on_the_unchanged_facts_is_rejected() -> None:
    # Trained on corrupted answers: it learned the change, but lost what it knew about the rest.
    report = gate(run(1, 36), run(10, 20), CHANGED, THRESHOLDS)
    assert not report.promote and report.decision == "reject"
    assert report.unchanged.delta == pytest.approx(-0.4) and report.unchanged.significance.ci_high < 0
    (reason,) = report.reasons  # only what failed: the changed questions passed
    assert reason.startswith(
        "Sur les 40 questions hors des applications modifiées, le challenger répond juste à 50.0 %"
    )
    assert "contre 90.0 % pour le champion, soit -40.0 pts (IC 95 % [-55.2 ; -24.8] pts, significatif" in reason
    assert "il régresse sur ce qui n'a pas changé (l'intervalle est entièrement sous 0)" in reason
    assert report.summary.startswith("Challenger rejeté, il reste candidat. Sur les 40 questions")


def test_a_challenger_worse_everywhere_is_rejected_for_every_rule() -> None:
    report = gate(run(10, 36), run(0, 4), CHANGED, THRESHOLDS)
    assert report.decision == "reject" and len(report.reasons) == 3
    assert "il n'est pas meilleur sur ce qui a changé" in report.reasons[0]
    assert "il régresse" in report.reasons[1]
    assert "7.7 % : sous le minimum demandé de 50.0 %" in report.reasons[2]


def test_a_gain_below_the_absolute_or_relative_threshold_is_rejected() -> None:
    champion, challenger = run(6, 36), run(7, 36)  # 50 % -> 58.3 % on the changed questions: +8.3 pts
    report = gate(champion, challenger, CHANGED, Thresholds(min_absolute=0.10))
    assert report.decision == "reject"
    assert (
        "soit +8.3 pts" in report.reasons[0] and "le gain est sous le seuil absolu de +10.0 pts." in report.reasons[0]
    )
    report = gate(champion, challenger, CHANGED, Thresholds(min_relative=0.2))  # 20 % of 50 %: 10 pts
    assert report.decision == "reject"
    assert "le gain est sous le seuil relatif de 20 % des 50.0 % du champion (+10.0 pts)" in report.reasons[0]
    report = gate(champion, challenger, CHANGED, Thresholds(min_absolute=0.1, min_relative=0.2))
    assert "sous le seuil absolu de +10.0 pts et sous le seuil relatif" in report.reasons[0]
    # Both reached: 8.3 >= 5 and 8.3 >= 10 % of 50 %; a gap equal to a threshold reaches it.
    assert gate(champion, challenger, CHANGED, Thresholds(min_absolute=0.05, min_relative=0.1)).promote
    assert gate(champion, challenger, CHANGED, Thresholds(min_absolute=1 / 12)).promote
    # Not better at all: rejected even without thresholds.
    same = gate(champion, run(6, 36), CHANGED, Thresholds())
    assert same.decision == "reject" and "soit +0.0 pts" in same.reasons[0] and "pas meilleur" in same.reasons[0]


def test_no_question_about_the_changed_applications_decides_nothing() -> None:
    report = gate(run(1, 36), run(10, 36), ["Z", "Y"], THRESHOLDS)
    assert not report.promote and report.decision == "undecided"
    (reason,) = report.reasons
    assert "Aucune des 52 questions évaluées ne porte sur les 2 applications modifiées (Z, Y)" in reason
    assert "focus_entity_ids" in reason
    assert report.changed.questions == 0 and report.unchanged.questions == 52 and report.changed.delta is None
    assert report.to_dict()["changed"]["champion_accuracy"] is None
    empty = gate(run(1, 36), run(10, 36), [" ", ""], THRESHOLDS)
    assert empty.decision == "undecided" and "Aucune application modifiée n'a été donnée" in empty.reasons[0]


def test_runs_on_different_questions_are_not_compared() -> None:
    champion, challenger = run(1, 36), run(10, 36)
    report = gate(champion, challenger[:3] + challenger[4:], CHANGED, THRESHOLDS)
    assert report.decision == "undecided" and not report.promote and report.overall.questions == 0
    assert "ne portent pas sur les mêmes questions (52 pour le champion, 51 pour le challenger)" in report.reasons[0]
    assert "1 question du champion absente du challenger (q3)" in report.reasons[0]
    reworded = challenger[:5] + [result("q5", ("B",), True, "Une autre question ?")] + challenger[6:]
    assert "de même identifiant mais de texte différent (q5)" in gate(champion, reworded, CHANGED).reasons[0]
    assert "aucune question" in gate([], challenger, CHANGED).reasons[0]
    assert "en double (q0)" in gate(champion + champion[:1], challenger, CHANGED).reasons[0]


def test_no_unchanged_question_is_said() -> None:
    report = gate(run(1, 0)[:12], run(10, 0)[:12], CHANGED)
    assert report.promote and report.unchanged.questions == 0
    assert "la non-régression sur le reste du catalogue n'a pas pu être vérifiée" in report.reasons[1]


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        (
            {"min_absolute": 5},
            "min_absolute must be between 0 and 1 (accuracy points as a fraction: 0.05 = 5 pts), not 5",
        ),
        ({"min_relative": -0.1}, "min_relative must be between 0 and 1"),
        ({"min_accuracy": float("nan")}, "min_accuracy must be between 0 and 1"),
        ({"min_accuracy": "0.8"}, "not '0.8'"),
    ],
)
def test_bad_thresholds_are_named(kwargs, words) -> None:
    with pytest.raises(EvaluationError) as info:
        Thresholds(**kwargs)
    assert info.value.code == "invalid_thresholds" and words in info.value.message
