"""Event-triggered retraining: a catalog's policy, its champion book, and when a change starts a challenger."""

from dyag_core.retraining.champions import ALIASES, TARGET_KINDS, ChampionBook, ChampionError, LogEntry, ModelRef
from dyag_core.retraining.policy import APPROACHES, TRIGGERS, PolicyError, RetrainingPolicy, Thresholds
from dyag_core.retraining.triggers import (
    PendingChange,
    TriggerState,
    abandon,
    finish,
    is_due,
    on_change,
    request,
    start,
)

__all__ = [
    "ALIASES",
    "APPROACHES",
    "TARGET_KINDS",
    "TRIGGERS",
    "abandon",
    "ChampionBook",
    "ChampionError",
    "LogEntry",
    "ModelRef",
    "PendingChange",
    "PolicyError",
    "RetrainingPolicy",
    "Thresholds",
    "TriggerState",
    "finish",
    "is_due",
    "on_change",
    "request",
    "start",
]
