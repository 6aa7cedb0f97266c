"""Train / validation / test splits that do not leak, stratified by question type.

- "paraphrase" (default): a *fact* is (qtype, entity_ids, fields, key_facts) — the key facts tell
  apart two listings whose member sets happen to coincide. Every fact sent to validation or test
  keeps at least one phrasing in train, so evaluation measures recall of taught facts under new
  wording. Only facts with two or more phrasings can send one out of train.
- "entity": no entity appears in two splits (it tests unseen entities). Listings and counts name
  many entities at once; they are catalog-wide facts and, like the unknown-entity negatives, are
  spread by type.

In both, a question (fold()-normalised) never appears in two splits.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from dyag_core.dataset.errors import DatasetError
from dyag_core.dataset.model import Example
from dyag_core.text import fold

STRATEGIES = ("paraphrase", "entity")
SPLIT_NAMES = ("train", "validation", "test")
AGGREGATE_TYPES = ("listing", "counting")  # catalog-wide: their entity_ids do not tie them to one entity


@dataclass(frozen=True, slots=True)
class Split:
    train: tuple[Example, ...]
    validation: tuple[Example, ...]
    test: tuple[Example, ...]
    strategy: str = "paraphrase"
    notes: tuple[str, ...] = ()  # where the split could not reach the asked ratios, and why

    def parts(self) -> dict[str, tuple[Example, ...]]:
        return {"train": self.train, "validation": self.validation, "test": self.test}

    def sizes(self) -> dict[str, int]:
        return {name: len(part) for name, part in self.parts().items()}


def fact_key(example: Example) -> tuple[Any, ...]:
    """What an example teaches, whatever its phrasing."""
    p = example.provenance
    return (example.qtype, p.entity_ids, p.fields, p.key_facts)


def split_examples(
    examples: Sequence[Example],
    strategy: str = "paraphrase",
    ratios: tuple[float, float, float] = (0.8, 0.1, 0.1),
    seed: int = 42,
) -> Split:
    _check_arguments(strategy, ratios)
    rng = random.Random(seed)
    targets = _targets(len(examples), ratios)
    if strategy == "paraphrase":
        assignment, notes = _by_paraphrase(examples, targets, rng)
    else:
        assignment, notes = _by_entity(examples, targets, ratios, rng)
    parts = {
        name: tuple(ex for ex, where in zip(examples, assignment, strict=True) if where == name) for name in SPLIT_NAMES
    }
    return Split(parts["train"], parts["validation"], parts["test"], strategy, tuple(notes))


def split_warnings(examples: Sequence[Example], split: Split) -> list[str]:
    """What an evaluation on this split will not measure: the split's shortfalls, and the question types of the dataset
    that none of its test questions has (with the paraphrase strategy, a fact needs two phrasings to send one to
    test)."""
    warnings = list(split.notes)
    if split.test:
        missing = sorted({e.qtype for e in examples} - {e.qtype for e in split.test})
        if missing:
            hint = (
                " (more questions, e.g. --num-questions 1000, give facts a second phrasing)"
                if split.strategy == "paraphrase"
                else ""
            )
            warnings.append(
                f"test: no question of type {', '.join(missing)}; an "
                f"evaluation on this split does not measure them{hint}"
            )
    return warnings


def check_leakage(split: Split, strategy: str | None = None) -> list[str]:
    """Problems that would make evaluation on validation/test over-optimistic; empty when the split is clean."""
    strategy = strategy or split.strategy
    problems = _shared_questions(split)
    if strategy == "paraphrase":
        problems += _untaught_facts(split)
    elif strategy == "entity":
        problems += _shared_entities(split)
    else:
        raise DatasetError("bad_config", f"unknown split strategy {strategy!r}; valid: {', '.join(STRATEGIES)}")
    return problems


# ---------------------------------------------------------------- arguments and targets


def _check_arguments(strategy: str, ratios: Sequence[float]) -> None:
    if strategy not in STRATEGIES:
        raise DatasetError("bad_config", f"unknown split strategy {strategy!r}; valid: {', '.join(STRATEGIES)}")
    if len(ratios) != 3 or any(r < 0 for r in ratios) or abs(sum(ratios) - 1) > 1e-6:
        raise DatasetError(
            "bad_config",
            f"ratios must be three non-negative shares of 1 (train, validation, test), got {tuple(ratios)}",
        )


def _targets(total: int, ratios: Sequence[float]) -> dict[str, int]:
    validation, test = round(total * ratios[1]), round(total * ratios[2])
    return {"train": total - validation - test, "validation": validation, "test": test}


def _apportion(total: int, weights: dict[str, int], caps: dict[str, int]) -> dict[str, int]:
    """Split total in proportion to weights (largest remainder), never above caps; what a cap refuses goes elsewhere."""
    given = dict.fromkeys(weights, 0)
    remaining = min(total, sum(caps.values()))
    active = [k for k in weights if weights[k] > 0 and caps[k] > 0]
    while remaining > 0 and active:
        weight = sum(weights[k] for k in active)
        exact = {k: remaining * weights[k] / weight for k in active}
        add = {k: min(int(exact[k]), caps[k] - given[k]) for k in active}
        left = remaining - sum(add.values())
        for k in sorted(active, key=lambda k: (int(exact[k]) - exact[k], k)):
            if left and add[k] < caps[k] - given[k]:
                add[k] += 1
                left -= 1
        for k in active:
            given[k] += add[k]
            remaining -= add[k]
        active = [k for k in active if given[k] < caps[k]]
    return given


def _strata(indices: Iterable[int], examples: Sequence[Example]) -> dict[str, list[int]]:
    strata: dict[str, list[int]] = {}
    for i in indices:
        strata.setdefault(examples[i].qtype, []).append(i)
    return strata


def _shortfall(targets: dict[str, int], got: dict[str, int], why: str) -> list[str]:
    return [
        f"{name}: {got[name]} examples instead of {targets[name]} ({why})"
        for name in ("validation", "test")
        if got[name] < targets[name]
    ]


# ---------------------------------------------------------------- paraphrase strategy


def _by_paraphrase(
    examples: Sequence[Example], targets: dict[str, int], rng: random.Random
) -> tuple[list[str], list[str]]:
    assignment = ["train"] * len(examples)
    repeated = _repeated_questions(examples)
    strata = _strata(range(len(examples)), examples)
    movable = {qtype: _movable(indices, examples, repeated, rng) for qtype, indices in strata.items()}
    weights = {qtype: len(indices) for qtype, indices in strata.items()}
    test = _apportion(targets["test"], weights, {q: len(m) for q, m in movable.items()})
    validation = _apportion(targets["validation"], weights, {q: len(m) - test[q] for q, m in movable.items()})
    for qtype, sequence in movable.items():
        for i in sequence[: test[qtype]]:
            assignment[i] = "test"
        for i in sequence[test[qtype] : test[qtype] + validation[qtype]]:
            assignment[i] = "validation"
    got = {"validation": sum(validation.values()), "test": sum(test.values())}
    return assignment, _shortfall(targets, got, "only facts with two or more phrasings can leave train")


def _movable(indices: list[int], examples: Sequence[Example], repeated: set[int], rng: random.Random) -> list[int]:
    """Examples that may leave train, one fact after the other (round-robin), each fact keeping a phrasing in train."""
    facts: dict[tuple[Any, ...], list[int]] = {}
    for i in indices:
        facts.setdefault(fact_key(examples[i]), []).append(i)
    groups = list(facts.values())
    rng.shuffle(groups)
    spare_lists = []
    for members in groups:
        rng.shuffle(members)
        members.sort(key=lambda i: i not in repeated)  # a repeated question stays in train: let it be the taught one
        spare_lists.append([i for i in members[1:] if i not in repeated])
    return [i for row in _round_robin(spare_lists) for i in row]


def _round_robin(lists: list[list[int]]) -> Iterable[list[int]]:
    depth = max((len(items) for items in lists), default=0)
    for level in range(depth):
        yield [items[level] for items in lists if level < len(items)]


def _repeated_questions(examples: Sequence[Example]) -> set[int]:
    counts: dict[str, int] = {}
    for ex in examples:
        counts[fold(ex.question)] = counts.get(fold(ex.question), 0) + 1
    return {i for i, ex in enumerate(examples) if counts[fold(ex.question)] > 1}


# ---------------------------------------------------------------- entity strategy


def _by_entity(
    examples: Sequence[Example], targets: dict[str, int], ratios: Sequence[float], rng: random.Random
) -> tuple[list[str], list[str]]:
    units = _units(examples)
    owned = [u for u in units if any(_owned_ids(examples[i]) for i in u)]
    free = [u for u in units if not any(_owned_ids(examples[i]) for i in u)]
    assignment = ["train"] * len(examples)
    for unit, where in _balance(owned, sum(map(len, owned)), ratios, rng):
        for i in unit:
            assignment[i] = where
    # The catalog-wide examples (one per unit, as a rule) make up what whole entities could not reach.
    wanted = {name: max(0, targets[name] - assignment.count(name)) for name in ("validation", "test")}
    for unit, where in _stratified_units(free, examples, wanted, rng):
        for i in unit:
            assignment[i] = where
    got = {name: assignment.count(name) for name in SPLIT_NAMES}
    return assignment, _shortfall(targets, got, "entities are kept whole, and an entity's examples move together")


def _owned_ids(example: Example) -> tuple[str, ...]:
    return () if example.qtype in AGGREGATE_TYPES else example.provenance.entity_ids


def _units(examples: Sequence[Example]) -> list[list[int]]:
    """Groups that must stay together: examples sharing an entity, or the same question."""
    parent = list(range(len(examples)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    first_of: dict[object, int] = {}
    for i, ex in enumerate(examples):
        for key in (("q", fold(ex.question)), *(("e", e) for e in _owned_ids(ex))):
            j = first_of.setdefault(key, i)
            parent[root(i)] = root(j)
    groups: dict[int, list[int]] = {}
    for i in range(len(examples)):
        groups.setdefault(root(i), []).append(i)
    return list(groups.values())


def _balance(
    units: list[list[int]], total: int, ratios: Sequence[float], rng: random.Random
) -> list[tuple[list[int], str]]:
    """Units in a seeded order fill validation and test (the emptier first) while they fit; the rest is train.

    A second pass offers the smallest train units to whatever room is left, to land close to the ratios.
    """
    targets = _targets(total, ratios)
    room = {"validation": targets["validation"], "test": targets["test"]}
    order = list(units)
    rng.shuffle(order)
    placed: dict[int, str] = {}

    def offer(position: int) -> None:
        where = max(room, key=lambda name: room[name])
        if len(order[position]) <= room[where]:
            room[where] -= len(order[position])
            placed[position] = where

    for position in range(len(order)):
        offer(position)
    for position in sorted((p for p in range(len(order)) if p not in placed), key=lambda p: len(order[p])):
        offer(position)
    return [(unit, placed.get(position, "train")) for position, unit in enumerate(order)]


def _stratified_units(
    units: list[list[int]], examples: Sequence[Example], wanted: dict[str, int], rng: random.Random
) -> list[tuple[list[int], str]]:
    """Units spread by type: `wanted` units go to validation and test, in proportion to each type's size."""
    strata: dict[str, list[list[int]]] = {}
    for unit in units:
        strata.setdefault(examples[unit[0]].qtype, []).append(unit)
    weights = {qtype: len(us) for qtype, us in strata.items()}
    test = _apportion(wanted["test"], weights, weights)
    validation = _apportion(wanted["validation"], weights, {q: weights[q] - test[q] for q in weights})
    placed = []
    for qtype, members in strata.items():
        rng.shuffle(members)
        for position, unit in enumerate(members):
            where = (
                "test"
                if position < test[qtype]
                else "validation"
                if position < test[qtype] + validation[qtype]
                else "train"
            )
            placed.append((unit, where))
    return placed


# ---------------------------------------------------------------- leakage checks


def _shared_questions(split: Split) -> list[str]:
    problems = []
    where: dict[str, str] = {}
    ids: dict[str, str] = {}
    for name, part in split.parts().items():
        for ex in part:
            first = where.setdefault(fold(ex.question), name)
            if first != name:
                problems.append(f"question {ex.question!r} is in both {first} and {name}")
            first_id = ids.setdefault(ex.id, name)
            if first_id != name:
                problems.append(f"example {ex.id} is in both {first_id} and {name}")
    return problems


def _untaught_facts(split: Split) -> list[str]:
    taught = {fact_key(ex) for ex in split.train}
    return [
        f"{name}: the fact of example {ex.id} ({ex.qtype}, entities "
        f"{', '.join(ex.provenance.entity_ids) or '-'}) is not taught in train"
        for name in ("validation", "test")
        for ex in split.parts()[name]
        if fact_key(ex) not in taught
    ]


def _shared_entities(split: Split) -> list[str]:
    owner: dict[str, str] = {}
    reported: set[str] = set()
    problems = []
    for name, part in split.parts().items():
        for ex in part:
            for entity_id in _owned_ids(ex):
                first = owner.setdefault(entity_id, name)
                if first != name and entity_id not in reported:
                    reported.add(entity_id)
                    problems.append(f"entity {entity_id} is in both {first} and {name}")
    return problems
