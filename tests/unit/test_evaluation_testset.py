"""Reading test sets: eval JSONL, OpenAI chat JSONL with or without its manifest, and clear errors."""

from __future__ import annotations

import json

import pytest

from dyag_core.catalog.loader import load_catalog_file
from dyag_core.dataset import GenerationConfig, generate, write_dataset, write_manifest
from dyag_core.errors import DyagError
from dyag_core.evaluation import EvalCase, EvaluationError, cases_from_examples, read_test_set


@pytest.fixture(scope="module")
def examples(sample_catalog_path):
    return generate(load_catalog_file(sample_catalog_path), GenerationConfig(num_questions=40))


def test_eval_jsonl(tmp_path, examples) -> None:
    path = write_dataset(examples, tmp_path / "test.jsonl", "eval")
    test_set = read_test_set(path)
    assert test_set.source_format == "eval" and test_set.has_provenance and len(test_set) == 40
    assert test_set.cases == cases_from_examples(examples)
    negatives = [c for c in test_set.cases if c.negative]
    assert negatives and all(c.key_facts == () for c in negatives)


def test_openai_chat_jsonl_with_its_manifest(tmp_path, examples) -> None:
    path = write_dataset(examples, tmp_path / "test.jsonl", "openai")
    write_manifest(examples, path)
    test_set = read_test_set(path)
    assert test_set.source_format == "openai" and test_set.has_provenance
    assert test_set.cases == cases_from_examples(examples)
    # An explicit manifest elsewhere.
    moved = tmp_path / "elsewhere.jsonl"
    (tmp_path / "test.jsonl.manifest.jsonl").rename(moved)
    assert read_test_set(path, "openai", manifest=moved).cases == test_set.cases


def test_openai_chat_jsonl_without_manifest(tmp_path) -> None:
    lines = [
        {
            "messages": [
                {"role": "system", "content": "s"},
                {"role": "user", "content": "Statut de GEOVAL ?"},
                {"role": "assistant", "content": "En production."},
            ]
        },
        {
            "messages": [
                {"role": "user", "content": "Statut de ZORGLUB ?"},
                {"role": "assistant", "content": "Je ne connais pas ZORGLUB."},
            ]
        },
    ]
    path = tmp_path / "chat.jsonl"
    path.write_text("\n".join(json.dumps(x, ensure_ascii=False) for x in lines) + "\n", encoding="utf-8")
    test_set = read_test_set(path)
    assert not test_set.has_provenance
    assert [(c.question, c.expected_answer, c.key_facts, c.negative) for c in test_set.cases] == [
        ("Statut de GEOVAL ?", "En production.", (), False),
        ("Statut de ZORGLUB ?", "Je ne connais pas ZORGLUB.", (), True),  # negative: the expected answer abstains
    ]
    assert len({c.id for c in test_set.cases}) == 2


@pytest.mark.parametrize(
    ("content", "fmt", "code", "words"),
    [
        (
            '{"instruction": "q", "output": "a"}\n',
            None,
            "unknown_format",
            ("instruction", "output", "eval", "messages"),
        ),
        ('[{"instruction": "q", "output": "a"}]\n', None, "unknown_format", ("JSON array",)),
        ('{"question": "q", "expected_answer": "a"}\n', "csv", "unknown_format", ("'csv'", "eval, openai")),
        ('{"question": "q", "expected_answer": "a"}\n', "openai", "unknown_format", ("eval JSONL, not openai",)),
        ("", None, "empty_test_set", ("0 questions",)),
        ("\n  \n\n", None, "empty_test_set", ("0 questions",)),
        ('{"question": "q", "expected_answer": "a"}\n{broken\n', None, "bad_test_set", ("line 2",)),
    ],
)
def test_bad_test_sets_get_a_clear_error(tmp_path, content, fmt, code, words) -> None:
    path = tmp_path / "test.jsonl"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(EvaluationError) as err:
        read_test_set(path, fmt)
    assert isinstance(err.value, DyagError) and err.value.code == code
    for word in words:
        assert word in err.value.message
    assert err.value.to_dict()["code"] == code


def test_a_missing_file(tmp_path) -> None:
    with pytest.raises(EvaluationError) as err:
        read_test_set(tmp_path / "nope.jsonl")
    assert err.value.code == "bad_test_set" and "nope.jsonl" in err.value.message


def test_eval_record_round_trip() -> None:
    c = EvalCase("x", "q ?", "a.", ("f",), "status", ("1",), False)
    assert EvalCase.from_record(c.to_record()) == c
    assert EvalCase.from_record({"question": "q", "expected_answer": "a", "type": "negative_empty_field"}).negative
