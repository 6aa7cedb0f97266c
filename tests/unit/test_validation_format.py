"""Format checks: each error type of the OpenAI cookbook, by line, and broken lines do not stop the rest."""

from __future__ import annotations

import json

import pytest
from test_validation_support import chat

from dyag_core.validation import parse_dataset, validate_dataset


def _has(module: str) -> bool:
    try:
        __import__(module)
    except ImportError:
        return False
    return True


GOOD = chat("Qu'est-ce que GEOVAL ?", "GEOVAL est l'outil de gestion des valorisations géographiques.")


def codes(lines: list[str]) -> list[tuple[int, str]]:
    return [(issue.line, issue.code) for issue in parse_dataset(lines).issues]


@pytest.mark.parametrize(
    ("line", "code"),
    [
        ('{"messages": [', "invalid_json"),
        ("", "invalid_json"),
        ('["not", "an", "object"]', "data_type"),
        ('{"messages": []}', "missing_messages_list"),
        ('{"prompt": "x"}', "missing_messages_list"),
        ('{"messages": [{"role": "user"}, {"role": "assistant", "content": "ok"}]}', "message_missing_key"),
        (
            '{"messages": [{"role": "user", "content": "q", "lang": "fr"}, {"role": "assistant", "content": "a"}]}',
            "message_unrecognized_key",
        ),
        (
            '{"messages": [{"role": "human", "content": "q"}, {"role": "assistant", "content": "a"}]}',
            "unrecognized_role",
        ),
        ('{"messages": [{"role": "user", "content": 42}, {"role": "assistant", "content": "a"}]}', "missing_content"),
        ('{"messages": [{"role": "user", "content": ""}, {"role": "assistant", "content": "a"}]}', "missing_content"),
        (
            '{"messages": [{"role": "system", "content": "s"}, {"role": "user", "content": "q"}]}',
            "example_missing_assistant_message",
        ),
        ('{"messages": ["text"]}', "data_type"),
    ],
)
def test_each_error_type_is_reported_with_its_line(line: str, code: str) -> None:
    found = codes([GOOD, line, GOOD])
    assert (2, code) in found
    assert all(lineno == 2 for lineno, _ in found)


def test_broken_lines_are_reported_by_line_and_the_rest_is_analysed() -> None:
    lines = [GOOD, "{oops", chat("Quel est le statut de SINP ?", "SINP est en production."), '{"messages": []}', GOOD]
    report = validate_dataset(lines, pii=False)
    assert report.n_lines == 5
    assert report.n_examples == 3
    assert report.n_invalid_lines == 2
    assert [(i.line, i.code) for i in report.issues] == [(2, "invalid_json"), (4, "missing_messages_list")]
    if _has("tiktoken"):
        assert report.tokens is not None and report.tokens.n_examples == 3
    else:  # without the validation extra, the report says why tokens are missing
        assert report.tokens is None and any("tokens non comptés" in w for w in report.warnings)
    assert report.verdict == "à corriger"


def test_a_valid_file_has_no_issue(tmp_path) -> None:
    path = tmp_path / "train.jsonl"
    path.write_text("\n".join([GOOD] * 3) + "\n", encoding="utf-8")
    parsed = parse_dataset(path)
    assert parsed.issues == [] and len(parsed.records) == 3 and parsed.n_lines == 3
    assert parsed.records[0].question == "Qu'est-ce que GEOVAL ?"


def test_tool_and_name_messages_are_accepted() -> None:
    line = json.dumps(
        {
            "messages": [
                {"role": "user", "content": "q", "name": "alice"},
                {"role": "assistant", "content": None, "function_call": {"name": "f", "arguments": "{}"}},
                {"role": "assistant", "content": "done", "weight": 1},
            ]
        }
    )
    parsed = parse_dataset([line])
    assert parsed.issues == []
    assert parsed.records[0].names == ["alice"]


@pytest.mark.parametrize(
    ("good", "bad", "fmt", "code"),
    [
        ({"instruction": "q", "input": "s", "output": "a"}, {"instruction": "q"}, "alpaca", "missing_field"),
        (
            {"conversations": [{"from": "human", "value": "q"}, {"from": "gpt", "value": "a"}]},
            {"conversations": [{"from": "robot", "value": "q"}, {"from": "gpt", "value": "a"}]},
            "sharegpt",
            "unrecognized_role",
        ),
        ({"prompt": "q", "completion": "a"}, {"prompt": "q", "completion": ""}, "prompt-completion", "missing_content"),
    ],
)
def test_other_formats_are_detected_and_checked(good: dict, bad: dict, fmt: str, code: str) -> None:
    parsed = parse_dataset([json.dumps(good), json.dumps(bad)])
    assert parsed.dataset_format == fmt
    assert [(i.line, i.code) for i in parsed.issues] == [(2, code)]
    assert parsed.records[0].answer == "a"


def test_an_alpaca_json_array_counts_its_elements_as_lines(tmp_path) -> None:
    path = tmp_path / "train.json"
    path.write_text(json.dumps([{"instruction": "q", "input": "", "output": "a"}, {"output": "a"}]), encoding="utf-8")
    parsed = parse_dataset(path)
    assert parsed.dataset_format == "alpaca"
    assert [(i.line, i.code) for i in parsed.issues] == [(2, "missing_field")]
