"""The rules on the sample catalog's generated test set: the gold answers pass untouched (no false
hallucination), and gold answers given to the wrong question are caught."""

from __future__ import annotations

import random
from collections import defaultdict

import pytest

from dyag_core.catalog.loader import load_catalog_file
from dyag_core.dataset import GenerationConfig, generate
from dyag_core.evaluation import CatalogIndex, Response, Target, cases_from_examples, evaluate


@pytest.fixture(scope="module")
def sample(sample_catalog_path):
    catalog = load_catalog_file(sample_catalog_path)
    cases = cases_from_examples(generate(catalog, GenerationConfig(num_questions=400)))
    return CatalogIndex(catalog), cases


def test_gold_answers_are_all_correct_and_never_hallucinated(sample) -> None:
    index, cases = sample
    run = evaluate(cases, [Response(c.expected_answer, 100.0) for c in cases], target=Target("gold"), catalog=index)
    assert run.overall.hallucinated == 0, [(r.case.question, r.hallucinations) for r in run.results if r.hallucinated][
        :3
    ]
    assert run.accuracy == 1.0 and run.overall.fact_accuracy == 1.0 and run.overall.abstention_rate == 1.0
    assert len(run.by_type) == 14


def test_answers_about_another_application_are_caught(sample) -> None:
    index, cases = sample
    rng = random.Random(7)
    by_type = defaultdict(list)
    for c in cases:
        by_type[c.qtype].append(c)
    swapped = []
    for c in cases:
        others = [o for o in by_type[c.qtype] if set(o.entity_ids) != set(c.entity_ids)]
        swapped.append(Response(rng.choice(others).expected_answer if others else c.expected_answer, 100.0))
    run = evaluate(cases, swapped, target=Target("swapped"), catalog=index)
    answerable = [
        r for r in run.results if r.case.qtype != "negative_unknown_entity"
    ]  # a refusal swapped for a refusal is right
    caught = sum(r.hallucinated for r in answerable) / len(answerable)
    assert caught > 0.85, caught
    assert sum(r.correct for r in answerable) / len(answerable) < 0.05
