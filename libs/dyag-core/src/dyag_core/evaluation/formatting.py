"""How the reports write numbers and labels (one place, so Markdown and HTML agree)."""

from __future__ import annotations

from dyag_core.evaluation.model import APPROACH_LABELS
from dyag_core.validation.coverage import TYPE_LABELS


def pct(value: float | None, digits: int = 1) -> str:
    return "n/d" if value is None else f"{value * 100:.{digits}f} %"


def points(delta: float | None) -> str:
    """A difference of two rates, in percentage points: '+9.5 pts'."""
    return "—" if delta is None else f"{delta * 100:+.1f} pts"


def ms(value: float | None) -> str:
    return "n/d" if value is None else f"{value:,.0f} ms".replace(",", " ")


def ms_delta(delta: float | None) -> str:
    return "—" if delta is None else f"{delta:+,.0f} ms".replace(",", " ")


def usd(value: float | None) -> str:
    if value is None:
        return "n/d"
    if value == 0:
        return "0 $"
    return f"{value:.4f} $" if value < 1 else f"{value:,.2f} $".replace(",", " ")


def score(value: float | None) -> str:
    return "n/d" if value is None else f"{value:.3f}"


def type_label(qtype: str) -> str:
    return TYPE_LABELS.get(qtype, qtype)


def approach_label(approach: str) -> str:
    return APPROACH_LABELS.get(approach, approach)
