"""Any catalog a user brings, whatever its size and shape: each is loaded, its dataset sized to it (dyag run's default,
1,000 questions as a target), generated and split, and grounded answers read its records. Either it works, or it
stops before any heavy step with a message that says what to change."""

from __future__ import annotations

import json

import pytest

from dyag_core.answering.grounded import GroundedAnswerer
from dyag_core.catalog import load_catalog
from dyag_core.dataset import DatasetError, GenerationConfig, fit_to_catalog, generate, split_examples
from tests.catalog_shapes import SHAPES


@pytest.mark.parametrize("shape", list(SHAPES))
def test_any_catalog_is_sized_generated_split_and_answered(shape) -> None:
    data, filename = SHAPES[shape]()
    catalog = load_catalog(data, filename=filename)
    config, why = fit_to_catalog(catalog, GenerationConfig(num_questions=1000, seed=1))
    assert why.startswith(f"{len(catalog.entities)} application") and config.num_questions <= 1000
    examples = generate(catalog, config)
    assert len(examples) == config.num_questions
    split = split_examples(examples, seed=1)
    assert len(split.train) + len(split.validation) + len(split.test) == len(examples)
    answerer = GroundedAnswerer(catalog)
    entity = catalog.entities[-1]
    answer = answerer.answer(f"Quel est le statut de {entity.name} ?")
    assert answer.understood and answer.text
    if entity.status:
        assert entity.status.lower() in answer.text.lower()
    else:
        assert "n'est pas renseign" in answer.text


def test_a_catalog_with_names_only_stops_before_any_heavy_step_with_what_to_change() -> None:
    catalog = load_catalog(json.dumps([{"id": i, "nom": f"APP{i}"} for i in range(5)]).encode(), filename="names.json")
    with pytest.raises(DatasetError) as refused:
        fit_to_catalog(catalog, GenerationConfig(num_questions=1000))
    assert refused.value.code == "no_usable_field" and "Fill these fields" in refused.value.message


def test_a_large_catalogs_dataset_samples_applications_so_that_every_type_reaches_the_test_split() -> None:
    data, filename = SHAPES["1,000 applications"]()
    catalog = load_catalog(data, filename=filename)
    config, why = fit_to_catalog(catalog, GenerationConfig(num_questions=1000, seed=42))
    assert (
        config.max_entities and config.max_entities < 100 and "a sample of" in why and "RAG still reads all 1000" in why
    )
    examples = generate(catalog, config)
    asked = {i for e in examples if e.qtype not in ("listing", "counting") for i in e.provenance.entity_ids}
    assert (
        len(examples) == 1000 and len(asked) <= config.max_entities
    )  # listings and counts stay over the whole catalog
    counts = [e for e in examples if e.qtype == "counting"]
    whole = {(a["statut si"]) for a in json.loads(data)["mes applications"]}
    assert counts and whole  # a count's facts are the whole catalog's (checked below on the status counts)
    in_production = sum(1 for a in json.loads(data)["mes applications"] if a["statut si"] == "En production")
    status_counts = [e for e in counts if e.provenance.key_facts and e.provenance.key_facts[0] == "en production"]
    assert status_counts and all(e.provenance.key_facts[1] == str(in_production) for e in status_counts)
    test_types = {e.qtype for e in split_examples(examples, seed=42).test}
    assert {"status", "domain", "actors", "contacts", "definition"} <= test_types, test_types


def test_a_large_catalogs_many_listing_criteria_still_reach_the_test_split() -> None:
    """1,000 applications over 200 actors and 150 domains: a criterion per value, more listings than their quota. Asked
    once each, none could be tested under a phrasing training did not see; two phrasings each, they reach the test."""
    from tests.catalog_shapes import app, as_json

    data, filename = as_json(
        [
            app(
                i,
                **{
                    "acteurs": [{"role d acteur": "MOA", "acteur": f"DIR/{i % 200}"}],
                    "domaines et sous domaines": [{"domaine metier": f"Domaine {i % 150}"}],
                },
            )
            for i in range(1000)
        ]
    )
    catalog = load_catalog(data, filename=filename)
    config, _ = fit_to_catalog(catalog, GenerationConfig(num_questions=1000, seed=42))
    test_types = {e.qtype for e in split_examples(generate(catalog, config), seed=42).test}
    assert {"listing", "counting"} <= test_types, test_types
