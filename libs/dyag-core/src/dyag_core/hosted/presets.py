"""Hyperparameters of a hosted fine-tuning job, with the guide's Annex A presets by dataset size.

| parameter                | small (<500) | medium (500-2000) | large (>2000) |
|--------------------------|--------------|-------------------|---------------|
| n_epochs                 | 5-10         | 3-5               | 1-3           |
| batch_size               | 2-4          | 4-8               | 8-16          |
| learning_rate_multiplier | 2.0          | 1.5               | 1.0           |

From a range we take its middle, rounded up (as the cost estimate does for epochs, so that it is not
optimistic): 8, 4, 2 epochs and batch sizes 3, 6, 12. Every value can be given instead.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

from ..errors import DyagError
from ..validation.cost import LARGE_DATASET, SMALL_DATASET, default_epochs

BATCH_SIZE_SMALL, BATCH_SIZE_MEDIUM, BATCH_SIZE_LARGE = 3, 6, 12
LR_SMALL, LR_MEDIUM, LR_LARGE = 2.0, 1.5, 1.0

# What OpenAI's API accepts (and compatible providers follow).
MAX_EPOCHS, MAX_BATCH_SIZE, MAX_LR_MULTIPLIER = 50, 256, 10.0


def size_band(n_examples: int) -> str:
    if n_examples < SMALL_DATASET:
        return "small"
    return "medium" if n_examples <= LARGE_DATASET else "large"


@dataclass(frozen=True, slots=True)
class Hyperparameters:
    n_epochs: int
    batch_size: int
    learning_rate_multiplier: float
    # Where each value comes from: "annex A (<band>)" or "given".
    sources: tuple[tuple[str, str], ...] = ()

    def values(self) -> dict[str, Any]:
        """What the API receives (and what the plan key hashes)."""
        return {
            "n_epochs": self.n_epochs,
            "batch_size": self.batch_size,
            "learning_rate_multiplier": self.learning_rate_multiplier,
        }

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["sources"] = dict(self.sources)
        return data


def preset_for(n_examples: int) -> Hyperparameters:
    """The Annex A preset for a training set of n_examples."""
    band = size_band(n_examples)
    batch = {"small": BATCH_SIZE_SMALL, "medium": BATCH_SIZE_MEDIUM, "large": BATCH_SIZE_LARGE}[band]
    lr = {"small": LR_SMALL, "medium": LR_MEDIUM, "large": LR_LARGE}[band]
    source = f"annex A ({band}: {n_examples} examples)"
    return Hyperparameters(
        default_epochs(n_examples),
        batch,
        lr,
        tuple((k, source) for k in ("n_epochs", "batch_size", "learning_rate_multiplier")),
    )


def resolve_hyperparameters(
    n_examples: int,
    *,
    n_epochs: int | None = None,
    batch_size: int | None = None,
    learning_rate_multiplier: float | None = None,
) -> Hyperparameters:
    """The preset for the dataset size, with every value given (not None, not 0) taking its place."""
    preset = preset_for(n_examples)
    sources = dict(preset.sources)
    values = preset.values()
    given = {"n_epochs": n_epochs, "batch_size": batch_size, "learning_rate_multiplier": learning_rate_multiplier}
    for name, value in given.items():
        if value is None or value == 0:
            continue
        values[name] = value
        sources[name] = "given"
    _check(values)
    return Hyperparameters(
        int(values["n_epochs"]),
        int(values["batch_size"]),
        float(values["learning_rate_multiplier"]),
        tuple(sources.items()),
    )


def _check(values: dict[str, Any]) -> None:
    epochs, batch, lr = values["n_epochs"], values["batch_size"], values["learning_rate_multiplier"]
    if not (isinstance(epochs, int) or float(epochs).is_integer()) or not 1 <= epochs <= MAX_EPOCHS:
        raise DyagError(
            "invalid_hyperparameters", f"n_epochs must be a whole number from 1 to {MAX_EPOCHS}, not {epochs}"
        )
    if not (isinstance(batch, int) or float(batch).is_integer()) or not 1 <= batch <= MAX_BATCH_SIZE:
        raise DyagError(
            "invalid_hyperparameters", f"batch_size must be a whole number from 1 to {MAX_BATCH_SIZE}, not {batch}"
        )
    if not math.isfinite(lr) or not 0 < lr <= MAX_LR_MULTIPLIER:
        raise DyagError(
            "invalid_hyperparameters",
            f"learning_rate_multiplier must be above 0 and at most {MAX_LR_MULTIPLIER}, not {lr}",
        )
