"""A challenger's train split (dyag_core.dataset.focus): the focus entities' examples plus a seeded replay."""

from __future__ import annotations

from pathlib import Path

import pytest

from dyag_core.catalog import load_catalog_file
from dyag_core.dataset import DatasetError, Example, GenerationConfig, Provenance, focus_train, generate, split_examples

SAMPLE = Path(__file__).resolve().parents[2] / "examples" / "test-mygusi" / "applicationsIA_mini_normalized.json"


def example(n: int, *entities: str, qtype: str = "status") -> Example:
    return Example(
        id=f"ex-{n}",
        qtype=qtype,
        question=f"question {n} ?",
        answer=f"answer {n}.",
        provenance=Provenance(entity_ids=entities, fields=("status",), template=f"{qtype}.1"),
    )


def about(examples, entities) -> list[Example]:
    return [e for e in examples if set(e.provenance.entity_ids) & set(entities)]


# 10 examples about A, 6 about B, 30 about C..G, and a listing that names A among others.
TRAIN = (
    [example(i, "A") for i in range(10)]
    + [example(100 + i, "B") for i in range(6)]
    + [example(200 + i, "CDEFG"[i % 5]) for i in range(30)]
    + [example(300, "A", "C", "D", qtype="listing"), example(301, qtype="negative_unknown_entity")]
)


def test_focus_alone_is_every_example_about_the_entities_and_nothing_else():
    selection = focus_train(TRAIN, ["A"], replay_fraction=0.0)
    assert list(selection.train) == about(TRAIN, ["A"])  # the listing naming A comes too, in the split's order
    assert selection.focus == 11 and selection.replay == 0 and selection.others == len(TRAIN) - 11
    assert selection.missing == ()


def test_replay_is_sized_by_the_fraction_and_drawn_from_the_others():
    selection = focus_train(TRAIN, ["A", "B"], replay_fraction=0.5, seed=3)
    focus = about(TRAIN, ["A", "B"])
    replayed = [e for e in selection.train if e not in focus]
    assert selection.focus == len(focus) == 17
    assert len(replayed) == selection.replay == selection.replay_wanted == round(0.5 * 17) == 8  # round half to even
    assert all(e in selection.train for e in focus)
    assert not about(replayed, ["A", "B"]) and set(replayed) <= set(TRAIN)
    assert [e.id for e in selection.train] == [e.id for e in TRAIN if e in selection.train]  # the split's order
    assert "17 examples about the focus entities + 8 replayed of 31 others" in selection.describe()


def test_replay_is_seeded():
    first = focus_train(TRAIN, ["B"], replay_fraction=2.0, seed=7)
    again = focus_train(TRAIN, ["B"], replay_fraction=2.0, seed=7)
    other = [focus_train(TRAIN, ["B"], replay_fraction=2.0, seed=s).train for s in range(8, 14)]
    assert first.train == again.train and first.replay == 12
    assert any(o != first.train for o in other)  # another seed, another sample (6 tries: never all 12 of 42 the same)


def test_an_entity_with_no_example_is_reported_not_fatal():
    selection = focus_train(TRAIN, ["B", "Z"], replay_fraction=1.0)
    assert selection.missing == ("Z",) and selection.focus == 6 and selection.replay == 6
    assert "no train example about Z" in selection.describe()
    nothing = focus_train(TRAIN, ["Z"], replay_fraction=1.0)
    assert nothing.train == () and nothing.missing == ("Z",) and nothing.replay_wanted == 0


def test_replay_larger_than_what_exists_takes_every_other_example():
    selection = focus_train(TRAIN, ["C", "D", "E", "F", "G"], replay_fraction=3.0)
    assert selection.focus == 31 and selection.replay_wanted == 93
    assert selection.replay == selection.others == len(TRAIN) - 31
    assert list(selection.train) == TRAIN
    assert "(replay asked 93: there are only 17)" in selection.describe()


@pytest.mark.parametrize("fraction", [-0.1, float("nan"), float("inf")])
def test_a_bad_replay_fraction_or_no_focus_is_refused(fraction):
    with pytest.raises(DatasetError, match="replay_fraction must be a number >= 0"):
        focus_train(TRAIN, ["A"], replay_fraction=fraction)
    with pytest.raises(DatasetError, match="focus_entity_ids is empty"):
        focus_train(TRAIN, ["", ""], replay_fraction=0.5)


def test_on_the_sample_catalog_the_focus_split_is_a_subset_of_the_full_train_split():
    catalog = load_catalog_file(SAMPLE)
    examples = generate(catalog, GenerationConfig(num_questions=300, seed=5))
    split = split_examples(examples, seed=5)
    focus_ids = [e.id for e in catalog.entities[:3]]
    selection = focus_train(split.train, focus_ids, replay_fraction=0.25, seed=5)
    train_ids = {e.id for e in split.train}
    assert {e.id for e in selection.train} <= train_ids
    assert {e.id for e in about(split.train, focus_ids)} <= {e.id for e in selection.train}
    assert selection.focus > 0 and selection.replay == round(0.25 * selection.focus)
    assert len(selection.train) == selection.focus + selection.replay


# ---------------------------------------------------------------- the changed facts (an incremental build)


def changed_sample(statuses: dict[str, str]):
    """The sample catalog before and after these applications (by name) change status, both versions' examples, and
    the changed applications' ids."""
    import dataclasses

    from dyag_core.catalog import diff_catalogs
    from dyag_core.dataset import regenerate_changed

    old = load_catalog_file(SAMPLE)
    new = dataclasses.replace(
        old,
        entities=tuple(
            dataclasses.replace(e, status=statuses[e.name]) if e.name in statuses else e for e in old.entities
        ),
    )
    config = GenerationConfig(num_questions=1000)
    before = generate(old, config)
    diff = diff_catalogs(old, new)
    return old, new, config, before, regenerate_changed(before, new, diff, config), sorted(diff.changed)


def test_the_changed_facts_come_from_the_catalogs_every_phrasing_of_each_and_only_of_them():
    from dyag_core.dataset import changed_fact_phrasings, every_phrasing, fact_key

    old, new, config, _, _, ids = changed_sample({"6Tzen": "Abandonnée", "8-SINP": "En production"})
    phrasings = changed_fact_phrasings(old, new, config, ids)
    facts = {fact_key(e) for e in phrasings}
    assert {k[0] for k in facts} == {"status", "definition"}  # the status, and the definition that says it
    assert all(set(k[1]) <= set(ids) for k in facts) and {k[1] for k in facts} == {(i,) for i in ids}
    status = [e for e in phrasings if e.qtype == "status"]
    assert len(status) == 2 * len({e.provenance.template for e in status}) >= 2 * 6  # each status asked 6+ ways
    assert not facts & {fact_key(e) for e in every_phrasing(old, config, ids)}  # none the old catalog stated
    assert changed_fact_phrasings(old, old, config, ids) == ()
    # from the catalogs, not from a dataset's sample of them: a 30-question dataset's changes are the same
    assert changed_fact_phrasings(old, new, GenerationConfig(num_questions=30), ids) == phrasings


def test_every_phrasing_of_a_changed_status_teaches_it_and_one_unseen_phrasing_is_held_out_in_test():
    from dyag_core.dataset import changed_fact_phrasings, fact_key, with_paraphrases
    from dyag_core.text import fold

    old, new, config, _, after, ids = changed_sample({"6Tzen": "Abandonnée", "8-SINP": "En production"})
    split = split_examples(after, seed=42)
    augmented, added = with_paraphrases(split, changed_fact_phrasings(old, new, config, ids))
    asked_before = {fold(e.question) for part in split.parts().values() for e in part}
    assert added and not {fold(e.question) for e in added} & asked_before  # only new questions
    assert augmented.validation == split.validation
    for entity in ids:  # each changed status: asked in test, in words that train never shows
        tested = [e for e in augmented.test if e.qtype == "status" and e.provenance.entity_ids == (entity,)]
        taught = [e for e in augmented.train if e.qtype == "status" and e.provenance.entity_ids == (entity,)]
        assert tested and len(taught) >= 4
        assert not {fold(e.question) for e in tested} & {fold(e.question) for e in taught}
        assert all(fact_key(e) == fact_key(taught[0]) for e in tested)


def test_the_focus_on_changed_facts_leaves_the_unchanged_facts_of_those_applications_to_the_replay():
    from dyag_core.dataset import changed_fact_phrasings, fact_key

    old, new, config, _, after, ids = changed_sample({"6Tzen": "Abandonnée"})
    facts = {fact_key(e) for e in changed_fact_phrasings(old, new, config, ids)}
    split = split_examples(after, seed=42)
    by_fact = focus_train(split.train, ids, replay_fraction=0.0, changed_facts=facts)
    by_entity = focus_train(split.train, ids, replay_fraction=0.0)
    assert by_fact.train and all(fact_key(e) in facts for e in by_fact.train)
    assert by_fact.focus < by_entity.focus and by_fact.changed_facts == len({fact_key(e) for e in by_fact.train})
    assert "changed facts" in by_fact.describe()
    # facts nobody in train teaches (a change no question asks about): the focus falls back on the entities
    fallback = focus_train(split.train, ids, replay_fraction=0.0, changed_facts={("status", ("nobody",), (), ())})
    assert fallback.train == by_entity.train and fallback.changed_facts == 0
