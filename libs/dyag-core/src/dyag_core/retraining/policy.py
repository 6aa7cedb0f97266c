"""A catalog's retraining policy: when a change starts a challenger, which approaches compete, what the training may
spend, and what a challenger must show to be promoted (MLflow's MetricThreshold: minimum absolute and relative
change)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from dyag_core.errors import DyagError
from dyag_core.retraining.schedule import CronError, parse_cron

TRIGGERS = ("on_change", "schedule", "manual")
# What may compete. rag: the RAG collection with its model; grounded: its records alone; lora: a LoRA model trained
# from the champion's adapter (or the base model); hosted: a hosted fine-tuning; hybrid: RAG's retrieval + the LoRA.
APPROACHES = ("rag", "grounded", "lora", "hosted", "hybrid")


class PolicyError(DyagError):
    def __init__(self, message: str):
        super().__init__("invalid_policy", message)


@dataclass(frozen=True)
class Thresholds:
    """What a challenger must show on the changed facts, and overall."""

    min_absolute: float = 0.0  # accuracy points (0.05 = 5 points) better than the champion on changed facts
    min_relative: float = 0.0  # fraction of the champion's accuracy on changed facts (0.1 = 10 % better)
    min_accuracy: float = 0.0  # the challenger's accuracy on the whole test set

    def problems(self) -> list[str]:
        return [
            f"thresholds.{name} must be between 0 and 1, not {value}"
            for name, value in dataclasses.asdict(self).items()
            if not 0.0 <= value <= 1.0
        ]


@dataclass(frozen=True)
class RetrainingPolicy:
    trigger: str = "on_change"  # on_change | schedule | manual
    schedule: str = ""  # a cron expression (minute hour day month weekday), with trigger=schedule
    debounce_s: float = 60.0  # a change waits this long for the next ones: several changes, one retraining
    min_changed_entities: int = 1  # fewer added, changed and removed applications start nothing
    approaches: tuple[str, ...] = ("rag", "lora")
    training: dict[str, Any] = field(default_factory=dict)  # TrainingConfig options of the LoRA challenger
    replay_fraction: float = 0.2  # unchanged examples replayed beside the changed ones, as a fraction of them
    max_training_steps: int = 0  # the training's budget in optimizer steps; 0: the preset's epochs
    max_eval_questions: int = 0  # 0: the whole test split (every question about a changed application is asked)
    thresholds: Thresholds = field(default_factory=Thresholds)

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> RetrainingPolicy:
        data = dict(data or {})
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise PolicyError(f"unknown policy option(s): {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        thresholds = data.pop("thresholds", None) or {}
        if not isinstance(thresholds, dict):
            raise PolicyError("thresholds must be an object: min_absolute, min_relative, min_accuracy")
        bad = sorted(set(thresholds) - {f.name for f in dataclasses.fields(Thresholds)})
        if bad:
            raise PolicyError(
                f"unknown threshold(s): {', '.join(bad)}; known: min_absolute, min_relative, min_accuracy"
            )
        try:
            policy = cls(
                **{k: tuple(v) if k == "approaches" else v for k, v in data.items()},
                thresholds=Thresholds(**{k: float(v) for k, v in thresholds.items()}),
            )
        except (TypeError, ValueError) as exc:
            raise PolicyError(f"invalid retraining policy: {exc}") from None
        policy.validate()
        return policy

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["approaches"] = list(self.approaches)
        return data

    def validate(self) -> None:
        problems = list(self.thresholds.problems())
        if self.trigger not in TRIGGERS:
            problems.append(f"trigger must be one of {', '.join(TRIGGERS)}, not {self.trigger!r}")
        if self.trigger == "schedule" and not self.schedule.strip():
            problems.append("trigger=schedule needs a schedule (a cron expression, e.g. '0 3 * * *')")
        elif self.schedule.strip():
            try:
                parse_cron(self.schedule)
            except CronError as exc:
                problems.append(exc.message)
        if not self.approaches:
            problems.append(f"approaches is empty: name at least one of {', '.join(APPROACHES)}")
        unknown = [a for a in self.approaches if a not in APPROACHES]
        if unknown:
            problems.append(f"unknown approach(es) {', '.join(unknown)}; known: {', '.join(APPROACHES)}")
        if not 0 <= self.debounce_s <= 7 * 24 * 3600:
            problems.append(f"debounce_s must be between 0 and a week, not {self.debounce_s}")
        if self.min_changed_entities < 1:
            problems.append(f"min_changed_entities must be at least 1, not {self.min_changed_entities}")
        if not 0 <= self.replay_fraction <= 10:
            problems.append(f"replay_fraction must be between 0 and 10, not {self.replay_fraction}")
        if self.max_training_steps < 0 or self.max_eval_questions < 0:
            problems.append("max_training_steps and max_eval_questions must be 0 or more")
        if problems:
            raise PolicyError("invalid retraining policy: " + "; ".join(problems))
