"""Splits: ratios, stratification, no leakage (by paraphrase or by entity), and the leakage check itself."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import replace
from pathlib import Path

import pytest

from dyag_core.catalog import load_catalog, load_catalog_file
from dyag_core.dataset import (
    DatasetError,
    Example,
    GenerationConfig,
    Split,
    check_leakage,
    fact_key,
    generate,
    split_examples,
)
from dyag_core.text import fold

SAMPLE = Path(__file__).resolve().parents[2] / "examples" / "test-mygusi" / "applicationsIA_mini_normalized.json"
DOMAINS = ("Transports", "Biodiversité", "Eau et milieux aquatiques", "Énergie et climat")
STATUSES = ("En production", "En construction", "En fin de vie", "Abandonnée")


def synthetic_apps(count: int) -> list[dict]:
    """A small varied catalog: every fourth record leaves most fields empty."""
    apps = []
    for i in range(count):
        app = {"id": 100 + i, "nom": f"APP-{chr(65 + i % 26)}{i}", "statut si": STATUSES[i % 4]}
        if i % 4:
            app |= {
                "nom long": f"Application numéro {i}",
                "descriptif": f"Outil de suivi numéro {i}.",
                "portee geographique": "Nationale" if i % 2 else "Régionale",
                "domaines et sous domaines": [{"domaine metier": DOMAINS[i % 3]}],
                "acteurs": [{"role d acteur": "MOA", "acteur": f"DIRECTION-{i % 5}"}],
                "sites": [{"nature de l url": "Site principal", "url": f"https://app{i}.example.gouv.fr/"}],
            }
        apps.append(app)
    return apps


@pytest.fixture(scope="module")
def examples() -> tuple[Example, ...]:
    catalog = load_catalog(json.dumps({"applications": synthetic_apps(24)}).encode(), filename="apps.json")
    return generate(catalog, GenerationConfig(num_questions=400))


@pytest.mark.parametrize("strategy", ["paraphrase", "entity"])
def test_split_reaches_80_10_10_without_leakage(examples, strategy):
    split = split_examples(examples, strategy)
    assert split.sizes() == {"train": 320, "validation": 40, "test": 40}
    assert check_leakage(split, strategy) == []
    assert sorted(e.id for e in split.train + split.validation + split.test) == sorted(e.id for e in examples)


@pytest.mark.parametrize("strategy", ["paraphrase", "entity"])
def test_split_is_stratified_by_type(examples, strategy):
    split = split_examples(examples, strategy)
    for part in (split.validation, split.test):
        types = Counter(e.qtype for e in part)
        assert len(types) >= 10, types


def test_paraphrase_split_teaches_every_tested_fact_in_train(examples):
    split = split_examples(examples, "paraphrase")
    taught = {fact_key(e) for e in split.train}
    assert all(fact_key(e) in taught for e in split.validation + split.test)
    train_questions = {fold(e.question) for e in split.train}
    assert not any(fold(e.question) in train_questions for e in split.validation + split.test)


def test_entity_split_keeps_each_entity_in_one_split(examples):
    split = split_examples(examples, "entity")
    owner: dict[str, str] = {}
    for name, part in split.parts().items():
        for example in part:
            if example.qtype in ("listing", "counting"):
                continue
            for entity_id in example.provenance.entity_ids:
                assert owner.setdefault(entity_id, name) == name
    assert {"train", "validation", "test"} <= set(owner.values())
    assert any(e.qtype == "negative_unknown_entity" for e in split.test)


def test_split_is_deterministic_for_a_seed(examples):
    assert split_examples(examples, seed=3) == split_examples(examples, seed=3)
    assert split_examples(examples, seed=3).test != split_examples(examples, seed=4).test


def test_facts_with_a_single_phrasing_stay_in_train(examples):
    single = generate(
        load_catalog(json.dumps({"applications": synthetic_apps(24)}).encode(), filename="apps.json"),
        GenerationConfig(variations=1, add_negatives=False),
    )
    split = split_examples(single, "paraphrase")
    assert split.validation == () and split.test == ()
    assert split.notes and "two or more phrasings" in split.notes[0]


def test_check_leakage_catches_injected_leaks(examples):
    split = split_examples(examples, "paraphrase")
    tested = split.test[0]
    # 1. The tested fact loses its phrasing in train.
    untaught = replace(split, train=tuple(e for e in split.train if fact_key(e) != fact_key(tested)))
    assert any("not taught in train" in p for p in check_leakage(untaught, "paraphrase"))
    # 2. The same question (up to case and accents) in train and validation.
    copy = replace(split.train[0], id="copy", question=split.train[0].question.upper())
    duplicated = replace(split, validation=split.validation + (copy,))
    assert any("is in both train and validation" in p for p in check_leakage(duplicated, "paraphrase"))
    # 3. An entity of the test split also in train.
    entity_split = split_examples(examples, "entity")
    moved = next(e for e in entity_split.test if e.qtype == "status")
    leaked = replace(
        entity_split,
        train=entity_split.train + (moved,),
        test=tuple(e for e in entity_split.test if e is not moved)
        + (replace(moved, id="x", question="Autre question ?"),),
    )
    assert any(p.startswith(f"entity {moved.provenance.entity_ids[0]}") for p in check_leakage(leaked, "entity"))


def test_repeated_questions_are_kept_in_train(examples):
    first = examples[0]
    twice = examples + (replace(first, id="again", question=first.question.lower()),)
    split = split_examples(twice, "paraphrase")
    assert check_leakage(split, "paraphrase") == []
    assert {e.id for e in split.train} >= {first.id, "again"}


def test_bad_ratios_and_strategies_are_refused(examples):
    with pytest.raises(DatasetError) as caught:
        split_examples(examples, ratios=(0.8, 0.3, 0.1))
    assert caught.value.code == "bad_config"
    with pytest.raises(DatasetError) as caught:
        split_examples(examples, strategy="random")
    assert caught.value.code == "bad_config" and "paraphrase" in caught.value.message
    assert isinstance(split_examples((), "entity"), Split)


@pytest.mark.skipif(not SAMPLE.exists(), reason="the sample catalog is not there")
@pytest.mark.parametrize("strategy", ["paraphrase", "entity"])
def test_sample_catalog_at_1000_questions_splits_800_100_100(strategy):
    examples = generate(load_catalog_file(SAMPLE), GenerationConfig(num_questions=1000))
    split = split_examples(examples, strategy)
    assert split.sizes() == {"train": 800, "validation": 100, "test": 100}
    assert check_leakage(split, strategy) == []


def test_a_split_says_which_question_types_its_test_part_cannot_measure() -> None:
    """400 questions on the sample: most facts have one phrasing, which stays in train, so the test split holds only
    catalog-wide and negative types; the warning names the others. 1,000 questions: every type reaches test."""
    from dyag_core.dataset import split_warnings

    catalog = load_catalog_file(SAMPLE)
    small = generate(catalog, GenerationConfig(num_questions=400, seed=42))
    warnings = split_warnings(small, split := split_examples(small, seed=42))
    missing = {e.qtype for e in small} - {e.qtype for e in split.test}
    assert missing and "status" in missing
    [line] = [w for w in warnings if w.startswith("test: no question of type")]
    assert all(t in line for t in missing) and "--num-questions" in line
    full = generate(catalog, GenerationConfig(num_questions=1000, seed=42))
    assert not [
        w for w in split_warnings(full, split_examples(full, seed=42)) if w.startswith("test: no question of type")
    ]
