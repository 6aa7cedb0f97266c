"""A challenger's training split: the examples about the entities that changed, plus a replay of the others.

Event-triggered retraining continues the champion's adapter on what changed. Training on the changed examples alone
would let the model forget the rest, so a seeded random sample of the other train examples comes with them (replay):
round(replay_fraction x the focus examples), capped at what there is. An example is about an entity when its
provenance names it (a listing or a count that names it among others included). Only the train split is narrowed:
validation and test stay the whole dataset's, since an evaluation needs the unchanged facts too.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from dyag_core.dataset.errors import DatasetError
from dyag_core.dataset.model import Example


@dataclass(frozen=True, slots=True)
class FocusSelection:
    train: tuple[Example, ...]  # the focus examples and the replay, in the order of the split they come from
    focus: int  # examples about the focus entities
    replay: int  # other examples, sampled
    replay_wanted: int  # round(replay_fraction x focus)
    others: int  # other examples there were to sample from
    missing: tuple[str, ...]  # focus entities with no example in the split

    def describe(self) -> str:
        text = f"train: {self.focus} examples about the focus entities + {self.replay} replayed of {self.others} others"
        if self.replay < self.replay_wanted:
            text += f" (replay asked {self.replay_wanted}: there are only {self.others})"
        if self.missing:
            text += f"; no train example about {', '.join(self.missing)}"
        return text


def check_replay_fraction(replay_fraction: float) -> float:
    value = float(replay_fraction)
    if not math.isfinite(value) or value < 0:
        raise DatasetError("bad_config", f"replay_fraction must be a number >= 0, not {replay_fraction!r}")
    return value


def focus_train(
    train: Sequence[Example], focus_entity_ids: Iterable[str], replay_fraction: float = 0.0, seed: int = 42
) -> FocusSelection:
    """The train examples about `focus_entity_ids`, plus a seeded sample of the others of size
    round(replay_fraction x their number), capped at the others there are. The same inputs give the same selection."""
    focus_ids = tuple(dict.fromkeys(i for i in focus_entity_ids if i))
    if not focus_ids:
        raise DatasetError("bad_config", "focus_entity_ids is empty: name at least one entity")
    fraction = check_replay_fraction(replay_fraction)
    wanted = set(focus_ids)
    focus = [i for i, ex in enumerate(train) if wanted & set(ex.provenance.entity_ids)]
    chosen = set(focus)
    others = [i for i in range(len(train)) if i not in chosen]
    replay_wanted = round(fraction * len(focus))
    replay = random.Random(f"replay:{seed}").sample(others, min(replay_wanted, len(others)))
    chosen.update(replay)
    seen = {e for ex in (train[i] for i in focus) for e in ex.provenance.entity_ids}
    return FocusSelection(
        train=tuple(ex for i, ex in enumerate(train) if i in chosen),
        focus=len(focus),
        replay=len(replay),
        replay_wanted=replay_wanted,
        others=len(others),
        missing=tuple(e for e in focus_ids if e not in seen),
    )
