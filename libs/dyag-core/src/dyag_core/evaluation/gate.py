"""The promotion gate: does a challenger (a model retrained after a catalog change) replace the champion?

Both are evaluated on the same questions; the gate pairs their per-question results by question id and splits
the questions in two: *changed* (about at least one of the changed applications) and *unchanged* (the others).
On each subset, and overall, it measures both accuracies and the gap with compare.py's paired test (McNemar, and
the 95 % Wald interval of the gap). Then, in this order:

- it refuses to decide when the two runs do not hold the same questions, or when no question is about a changed
  application (nothing shows that the challenger learned the change);
- it rejects a challenger significantly worse on the unchanged questions (the gap's interval entirely below 0);
- it rejects a challenger that is not better on the changed questions by both thresholds (MLflow's MetricThreshold:
  gap >= min_absolute, gap >= min_relative x the champion's accuracy there, and gap > 0);
- it rejects a challenger whose overall accuracy is below min_accuracy (0: no minimum);
- else it promotes. Every reason is one sentence with its figures (French, as the comparison's).

A rejected challenger stays a candidate: the caller keeps the report, its reasons as why.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from dyag_core.evaluation.compare import Significance, gap_text, paired_gap
from dyag_core.evaluation.errors import EvaluationError
from dyag_core.evaluation.formatting import pct, points
from dyag_core.evaluation.model import QuestionResult

DECISIONS = ("promote", "reject", "undecided")
EPSILON = 1e-9  # a gap equal to a threshold reaches it (3/20 - 2/20 is 0.04999… in floating point)
SUBSETS = ("changed", "unchanged", "overall")


@dataclass(frozen=True, slots=True)
class Thresholds:
    """What a challenger must show (MLflow's MetricThreshold style); 0 everywhere: only "better, not worse"."""

    min_absolute: float = 0.0  # accuracy points better than the champion on changed facts (0.05 = 5 pts)
    min_relative: float = 0.0  # fraction of the champion's accuracy on changed facts (0.1: 10 % better)
    min_accuracy: float = 0.0  # the challenger's accuracy on every question must reach it; 0: none

    def __post_init__(self) -> None:
        for name, meaning in (
            ("min_absolute", "accuracy points as a fraction: 0.05 = 5 pts"),
            ("min_relative", "a fraction of the champion's accuracy on changed facts: 0.1 = 10 %"),
            ("min_accuracy", "an accuracy as a fraction: 0.8 = 80 %; 0: none"),
        ):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not 0.0 <= value <= 1.0:
                raise EvaluationError(
                    "invalid_thresholds", f"threshold {name} must be between 0 and 1 ({meaning}), not {value!r}"
                )

    def to_dict(self) -> dict[str, float]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class SubsetComparison:
    """One subset of the paired questions: champion and challenger side by side, the gap and its significance."""

    name: str  # changed | unchanged | overall
    questions: int
    entities: int  # changed: the changed applications asked about; else the applications its questions name
    champion_correct: int = 0
    challenger_correct: int = 0
    significance: Significance | None = None  # None when the subset holds no question

    @property
    def champion_accuracy(self) -> float | None:
        return self.champion_correct / self.questions if self.questions else None

    @property
    def challenger_accuracy(self) -> float | None:
        return self.challenger_correct / self.questions if self.questions else None

    @property
    def delta(self) -> float | None:
        return self.significance.delta if self.significance else None

    def to_dict(self) -> dict[str, Any]:
        s = self.significance
        return {
            "name": self.name,
            "questions": self.questions,
            "entities": self.entities,
            "champion_correct": self.champion_correct,
            "challenger_correct": self.challenger_correct,
            "champion_accuracy": self.champion_accuracy,
            "challenger_accuracy": self.challenger_accuracy,
            "delta": self.delta,
            "ci_low": s.ci_low if s else None,
            "ci_high": s.ci_high if s else None,
            "p_value": s.p_value if s else None,
            "test": s.test if s else None,
            "significant": s.significant if s else False,
        }


@dataclass(frozen=True, slots=True)
class GateReport:
    decision: str  # promote | reject | undecided (the runs cannot be compared as asked)
    reasons: tuple[str, ...]  # rejected: every failed rule; promoted: every rule passed; undecided: why
    changed: SubsetComparison
    unchanged: SubsetComparison
    overall: SubsetComparison
    thresholds: Thresholds = field(default_factory=Thresholds)
    changed_entity_ids: tuple[str, ...] = ()

    @property
    def promote(self) -> bool:
        return self.decision == "promote"

    @property
    def summary(self) -> str:
        """The decision and its reasons, as one text (what a rejected candidate keeps as its reason)."""
        head = {
            "promote": "Challenger promu.",
            "reject": "Challenger rejeté, il reste candidat.",
            "undecided": "Pas de décision.",
        }[self.decision]
        return " ".join((head, *self.reasons))

    def to_dict(self) -> dict[str, Any]:
        return {
            "promote": self.promote,
            "decision": self.decision,
            "reasons": list(self.reasons),
            "summary": self.summary,
            "changed": self.changed.to_dict(),
            "unchanged": self.unchanged.to_dict(),
            "overall": self.overall.to_dict(),
            "thresholds": self.thresholds.to_dict(),
            "changed_entity_ids": list(self.changed_entity_ids),
        }


# ---------------------------------------------------------------- the gate


def gate(
    champion_results: Sequence[QuestionResult],
    challenger_results: Sequence[QuestionResult],
    changed_entity_ids: Iterable[str],
    thresholds: Thresholds | None = None,
) -> GateReport:
    """The gate's decision on two runs of the same questions (see the module's docstring for the rules)."""
    thresholds = thresholds or Thresholds()
    changed_ids = tuple(dict.fromkeys(e.strip() for e in changed_entity_ids if e and e.strip()))
    changed_set = set(changed_ids)

    def undecided(reason: str, subsets: dict[str, SubsetComparison] | None = None) -> GateReport:
        subsets = subsets or {name: SubsetComparison(name, 0, 0) for name in SUBSETS}
        return GateReport("undecided", (reason,), **subsets, thresholds=thresholds, changed_entity_ids=changed_ids)

    mismatch = _mismatch(champion_results, challenger_results)
    if mismatch:
        return undecided(mismatch)
    champion = {r.case.id: r for r in champion_results}
    challenger = {r.case.id: r for r in challenger_results}
    entities = {k: set(champion[k].case.entity_ids) | set(challenger[k].case.entity_ids) for k in champion}
    changed_keys = [k for k in champion if entities[k] & changed_set]
    unchanged_keys = [k for k in champion if not entities[k] & changed_set]
    subsets = {
        "changed": _subset(
            "changed", changed_keys, champion, challenger, {e for k in changed_keys for e in entities[k]} & changed_set
        ),
        "unchanged": _subset(
            "unchanged", unchanged_keys, champion, challenger, {e for k in unchanged_keys for e in entities[k]}
        ),
        "overall": _subset("overall", list(champion), champion, challenger, {e for k in champion for e in entities[k]}),
    }
    changed, unchanged, overall = subsets["changed"], subsets["unchanged"], subsets["overall"]
    if not changed_ids:
        return undecided(
            "Aucune application modifiée n'a été donnée : rien ne dit sur quelles questions le challenger doit "
            "être meilleur.",
            subsets,
        )
    if not changed.questions:
        return undecided(
            f"Aucune des {overall.questions} questions évaluées ne porte sur {_apps(len(changed_ids))} "
            f"({_ids(changed_ids)}) : rien ne montre que le challenger a appris le changement ; évaluez les deux "
            "modèles avec ces applications en focus (focus_entity_ids).",
            subsets,
        )

    failed: list[str] = []
    passed: list[str] = []
    # Better on what changed, by both thresholds.
    sig = changed.significance
    assert sig is not None and changed.champion_accuracy is not None
    relative = thresholds.min_relative * changed.champion_accuracy
    figures = f"{_about_changed(changed)}, le challenger répond juste à {_versus(changed)}, soit {gap_text(sig)}"
    short = []
    if sig.delta < thresholds.min_absolute - EPSILON:
        short.append(f"sous le seuil absolu de {points(thresholds.min_absolute)}")
    if sig.delta < relative - EPSILON:
        short.append(
            f"sous le seuil relatif de {thresholds.min_relative * 100:g} % des {pct(changed.champion_accuracy)} "
            f"du champion ({points(relative)})"
        )
    if sig.delta <= 0:
        failed.append(f"{figures} : il n'est pas meilleur sur ce qui a changé.")
    elif short:
        failed.append(f"{figures} : le gain est {' et '.join(short)}.")
    else:
        passed.append(
            f"{figures} : il est meilleur sur ce qui a changé{_above(thresholds, changed.champion_accuracy)}."
        )
    # Not worse on what did not change.
    if unchanged.questions:
        sig = unchanged.significance
        assert sig is not None
        figures = (
            f"{_about_unchanged(unchanged)}, le challenger répond juste à {_versus(unchanged)}, soit {gap_text(sig)}"
        )
        if sig.ci_high < 0:
            failed.append(f"{figures} : il régresse sur ce qui n'a pas changé (l'intervalle est entièrement sous 0).")
        else:
            verdict = "l'intervalle contient 0" if sig.ci_low <= 0 else "l'intervalle est entièrement au-dessus de 0"
            passed.append(f"{figures} : il ne régresse pas sur ce qui n'a pas changé ({verdict}).")
    else:
        passed.append(
            "Toutes les questions portent sur les applications modifiées : la non-régression sur le reste du "
            "catalogue n'a pas pu être vérifiée."
        )
    # The overall minimum.
    if thresholds.min_accuracy > 0:
        assert overall.challenger_accuracy is not None
        reached = overall.challenger_accuracy >= thresholds.min_accuracy - EPSILON
        sentence = (
            f"Sur l'ensemble des {overall.questions} questions, le challenger répond juste à "
            f"{pct(overall.challenger_accuracy)} : {'au moins' if reached else 'sous'} le minimum demandé de "
            f"{pct(thresholds.min_accuracy)}."
        )
        (passed if reached else failed).append(sentence)
    decision = "reject" if failed else "promote"
    return GateReport(
        decision,
        tuple(failed or passed),
        changed,
        unchanged,
        overall,
        thresholds=thresholds,
        changed_entity_ids=changed_ids,
    )


def _mismatch(champion: Sequence[QuestionResult], challenger: Sequence[QuestionResult]) -> str | None:
    """Why the two runs cannot be paired question by question, or None when they can."""
    for who, results in (("du champion", champion), ("du challenger", challenger)):
        if not results:
            return f"L'évaluation {who} ne contient aucune question : il n'y a rien à comparer."
        ids = [r.case.id for r in results]
        if len(set(ids)) != len(ids):
            twice = sorted({i for i in ids if ids.count(i) > 1})
            return (
                f"L'évaluation {who} contient des identifiants de question en double ({_ids(twice)}) : "
                "elle ne peut pas être appariée."
            )
    a = {r.case.id: r.case.question for r in champion}
    b = {r.case.id: r.case.question for r in challenger}
    only_a, only_b = sorted(a.keys() - b.keys()), sorted(b.keys() - a.keys())
    reworded = sorted(k for k in a.keys() & b.keys() if a[k] != b[k])
    if not (only_a or only_b or reworded):
        return None
    parts = []
    if only_a:
        parts.append(f"{_questions(len(only_a))} du champion {_absent(len(only_a))} du challenger ({_ids(only_a)})")
    if only_b:
        parts.append(f"{_questions(len(only_b))} du challenger {_absent(len(only_b))} du champion ({_ids(only_b)})")
    if reworded:
        parts.append(f"{_questions(len(reworded))} de même identifiant mais de texte différent ({_ids(reworded)})")
    return (
        f"Les deux évaluations ne portent pas sur les mêmes questions ({len(a)} pour le champion, {len(b)} pour le "
        f"challenger) : {' ; '.join(parts)}. Évaluez-les sur le même jeu de test, avec le même échantillon "
        "(max_questions, seed et focus_entity_ids identiques)."
    )


def _subset(
    name: str,
    keys: Sequence[str],
    champion: dict[str, QuestionResult],
    challenger: dict[str, QuestionResult],
    entities: set[str],
) -> SubsetComparison:
    if not keys:
        return SubsetComparison(name, 0, len(entities))
    right_a = {k: champion[k].correct for k in keys}
    right_b = {k: challenger[k].correct for k in keys}
    return SubsetComparison(
        name, len(keys), len(entities), sum(right_a.values()), sum(right_b.values()), paired_gap(right_a, right_b)
    )


# ---------------------------------------------------------------- the sentences


def _questions(n: int) -> str:
    return f"{n} question" if n == 1 else f"{n} questions"


def _absent(n: int) -> str:
    return "absente" if n == 1 else "absentes"


def _apps(n: int) -> str:
    return "l'application modifiée" if n == 1 else f"les {n} applications modifiées"


def _ids(ids: Sequence[str], shown: int = 5) -> str:
    head = ", ".join(ids[:shown])
    return head + (f"… (+{len(ids) - shown})" if len(ids) > shown else "")


def _about_changed(s: SubsetComparison) -> str:
    what = "la question" if s.questions == 1 else f"les {s.questions} questions"
    about = "de l'application modifiée" if s.entities == 1 else f"des {s.entities} applications modifiées"
    return f"Sur {what} {about}"


def _about_unchanged(s: SubsetComparison) -> str:
    what = "la question" if s.questions == 1 else f"les {s.questions} questions"
    return f"Sur {what} hors des applications modifiées"


def _versus(s: SubsetComparison) -> str:
    return f"{pct(s.challenger_accuracy)} contre {pct(s.champion_accuracy)} pour le champion"


def _above(t: Thresholds, champion_accuracy: float) -> str:
    asked = []
    if t.min_absolute > 0:
        asked.append(f"seuil absolu de {points(t.min_absolute)}")
    if t.min_relative > 0:
        asked.append(
            f"seuil relatif de {t.min_relative * 100:g} % des {pct(champion_accuracy)} du champion, "
            f"soit {points(t.min_relative * champion_accuracy)}"
        )
    return f", au-dessus du {' et du '.join(asked)}" if asked else ""


__all__ = ["DECISIONS", "SUBSETS", "GateReport", "SubsetComparison", "Thresholds", "gate"]
