"""A challenger's training split: the examples about the entities that changed, plus a replay of the others.

Event-triggered retraining continues the champion's adapter on what changed. Training on the changed examples alone
would let the model forget the rest, so a seeded random sample of the other train examples comes with them (replay):
round(replay_fraction x the focus examples), capped at what there is. An example is about an entity when its
provenance names it (a listing or a count that names it among others included). Only the train split is narrowed:
validation and test stay the whole dataset's, since an evaluation needs the unchanged facts too.

When the facts that changed are known (an incremental build: `changed_fact_phrasings`, from the two catalogs), the focus
is those of them a question about one application asks, not everything about their entities: a status change is taught
by the status questions (and the definitions, which say the status); the entity's unchanged contacts, and the lists,
counts and comparisons the change touched (long answers that would take most of a short training), join the replay
pool. Facts stick only with several paraphrases:
every phrasing of a changed fact teaches it, except one held out per fact that the test split did not already ask,
so that the evaluation always asks each changed fact in words the training never showed.
"""

from __future__ import annotations

import math
import random
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from dyag_core.dataset.errors import DatasetError
from dyag_core.dataset.generate import CATALOG_WIDE_TYPES
from dyag_core.dataset.model import Example
from dyag_core.dataset.split import Split, fact_key
from dyag_core.text import fold

FactKey = tuple[Any, ...]


@dataclass(frozen=True, slots=True)
class FocusSelection:
    train: tuple[Example, ...]  # the focus examples and the replay, in the order of the split they come from
    focus: int  # examples about the focus entities
    replay: int  # other examples, sampled
    replay_wanted: int  # round(replay_fraction x focus)
    others: int  # other examples there were to sample from
    missing: tuple[str, ...]  # focus entities with no example in the split
    changed_facts: int = 0  # facts the focus examples teach, when the focus is the changed facts (0: by entity)

    def describe(self) -> str:
        about = f"{self.changed_facts} changed facts" if self.changed_facts else "the focus entities"
        text = f"train: {self.focus} examples about {about} + {self.replay} replayed of {self.others} others"
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
    train: Sequence[Example],
    focus_entity_ids: Iterable[str],
    replay_fraction: float = 0.0,
    seed: int = 42,
    changed_facts: Collection[FactKey] = (),
) -> FocusSelection:
    """The train examples about `focus_entity_ids` (those teaching `changed_facts` when given and some do), plus a
    seeded sample of the others of size round(replay_fraction x their number), capped at the others there are. The
    same inputs give the same selection."""
    focus_ids = tuple(dict.fromkeys(i for i in focus_entity_ids if i))
    if not focus_ids:
        raise DatasetError("bad_config", "focus_entity_ids is empty: name at least one entity")
    fraction = check_replay_fraction(replay_fraction)
    wanted = set(focus_ids)
    focus = [i for i, ex in enumerate(train) if wanted & set(ex.provenance.entity_ids)]
    by_fact = [i for i in focus if train[i].qtype not in CATALOG_WIDE_TYPES and fact_key(train[i]) in changed_facts]
    if by_fact:
        focus = by_fact
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
        changed_facts=len({fact_key(train[i]) for i in by_fact}),
    )


def with_paraphrases(split: Split, phrasings: Iterable[Example]) -> tuple[Split, tuple[Example, ...]]:
    """`split` with more phrasings of the changed facts (`changed_fact_phrasings`): per fact that no test question
    asks yet, one held-out phrasing goes to test (a probe), the others to train. A question the split has already is
    skipped; a fact with a single new phrasing only gets its probe when train teaches it already. Returns the split
    and the examples added."""
    asked = {fold(e.question) for part in split.parts().values() for e in part}
    tested = {fact_key(e) for e in split.test}
    taught = {fact_key(e) for e in split.train}
    fresh: dict[FactKey, list[Example]] = {}
    for example in phrasings:
        if fold(example.question) not in asked:
            asked.add(fold(example.question))
            fresh.setdefault(fact_key(example), []).append(example)
    train, test = [], []
    for key, examples in fresh.items():
        if key not in tested and (len(examples) > 1 or key in taught):
            test.append(examples[0])
            examples = examples[1:]
        train.extend(examples)
    added = (*train, *test)
    return replace(split, train=(*split.train, *train), test=(*split.test, *test)), added
