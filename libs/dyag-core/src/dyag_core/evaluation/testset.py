"""Reading a test set: the eval JSONL, or an OpenAI chat JSONL (with its provenance manifest for the key facts).

- eval: {"id", "question", "expected_answer", "key_facts", "type", "entity_ids", "negative"} per line
  (dyag_core.dataset.formats' "eval" format);
- openai: {"messages": [system, user, assistant]} per line; the question is the last user message before
  the last assistant message, the expected answer that assistant message. Provenance (key facts, type,
  entities, negative) comes from the manifest: the one given, or `<file>.manifest.jsonl` next to it.
  Without one, questions have no key facts (scored on token overlap / similarity) and a question is
  negative when its expected answer abstains.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dyag_core.dataset.formats import MANIFEST_KEYS, MANIFEST_SUFFIX, manifest_path, read_manifest
from dyag_core.dataset.model import NEGATIVE_TYPES, Example
from dyag_core.evaluation.errors import EvaluationError
from dyag_core.evaluation.metrics import abstains
from dyag_core.evaluation.model import EvalCase
from dyag_core.nesting import TooDeep
from dyag_core.nesting import loads as json_loads

TEST_SET_FORMATS = ("eval", "openai")


@dataclass(frozen=True, slots=True)
class EvalSet:
    name: str
    source_format: str  # eval | openai
    cases: tuple[EvalCase, ...]
    has_provenance: bool  # key facts, types and entities known

    def __len__(self) -> int:
        return len(self.cases)


def cases_from_examples(examples: Iterable[Example]) -> tuple[EvalCase, ...]:
    return tuple(EvalCase.from_example(e) for e in examples)


def detect_format(record: dict[str, Any]) -> str | None:
    if isinstance(record.get("messages"), list):
        return "openai"
    if "question" in record and "expected_answer" in record:
        return "eval"
    return None


def read_test_set(path: str | Path, fmt: str | None = None, manifest: str | Path | None = None) -> EvalSet:
    """A test set from a file; fmt None detects it from the first record. Clear errors (EvaluationError):
    unknown_format (with the keys found), empty_test_set (0 lines), bad_test_set (unreadable, bad JSON)."""
    path = Path(path)
    if fmt is not None and fmt not in TEST_SET_FORMATS:
        raise EvaluationError(
            "unknown_format", f"unknown test set format {fmt!r}; valid formats: {', '.join(TEST_SET_FORMATS)}"
        )
    records = _read_jsonl(path)
    if not records:
        raise EvaluationError(
            "empty_test_set",
            f"test set {path.name} holds 0 questions: give a JSONL file with "
            f"one question per line (formats: {', '.join(TEST_SET_FORMATS)})",
        )
    detected = detect_format(records[0][1])
    if detected is None:
        keys = ", ".join(sorted(records[0][1])) or "none"
        raise EvaluationError(
            "unknown_format",
            f"{path.name} line {records[0][0]}: unknown test set format (keys: {keys}); expected eval JSONL "
            "(question, expected_answer, key_facts…) or OpenAI chat JSONL (messages)",
        )
    fmt = fmt or detected
    if detected != fmt:
        raise EvaluationError("unknown_format", f"{path.name} line {records[0][0]} is {detected} JSONL, not {fmt}")
    if fmt == "eval":
        cases = tuple(_eval_case(record, n, path) for n, record in records)
        return EvalSet(path.name, fmt, cases, any(c.key_facts or c.entity_ids for c in cases))
    return _openai_set(path, records, manifest)


def _eval_case(record: dict[str, Any], n: int, path: Path) -> EvalCase:
    if detect_format(record) != "eval":
        raise EvaluationError(
            "bad_test_set", f'{path.name} line {n}: an eval record needs "question" and "expected_answer"'
        )
    case = EvalCase.from_record(record)
    if not case.question.strip():
        raise EvaluationError("bad_test_set", f"{path.name} line {n}: empty question")
    return case if case.id else EvalCase(_line_id(n, case.question), *_rest(case))


def _rest(case: EvalCase) -> tuple[Any, ...]:
    return (case.question, case.expected_answer, case.key_facts, case.qtype, case.entity_ids, case.negative)


def _line_id(n: int, question: str) -> str:
    return hashlib.sha256(f"{n}|{question}".encode()).hexdigest()[:16]


def _conversation(record: dict[str, Any], n: int, path: Path) -> tuple[str, str]:
    messages = record.get("messages")
    if not isinstance(messages, list) or not all(isinstance(m, dict) for m in messages):
        raise EvaluationError("bad_test_set", f'{path.name} line {n}: "messages" must be a list of objects')
    last_assistant = max((i for i, m in enumerate(messages) if m.get("role") == "assistant"), default=-1)
    users = [m for m in messages[: last_assistant if last_assistant >= 0 else len(messages)] if m.get("role") == "user"]
    if not users or not isinstance(users[-1].get("content"), str) or not users[-1]["content"].strip():
        raise EvaluationError("bad_test_set", f"{path.name} line {n}: no user message (the question)")
    expected = messages[last_assistant].get("content") if last_assistant >= 0 else ""
    return users[-1]["content"], expected if isinstance(expected, str) else ""


def _openai_set(path: Path, records: Sequence[tuple[int, dict[str, Any]]], manifest: str | Path | None) -> EvalSet:
    conversations = [_conversation(record, n, path) for n, record in records]
    source = Path(manifest) if manifest is not None else manifest_path(path)
    if manifest is None and not source.exists():
        cases = tuple(
            EvalCase(_line_id(n, q), q, a, negative=abstains(a))
            for (n, _), (q, a) in zip(records, conversations, strict=True)
        )
        return EvalSet(path.name, "openai", cases, False)
    entries = _manifest(source)
    if len(entries) != len(conversations):
        raise EvaluationError(
            "bad_test_set",
            f"{path.name} holds {len(conversations)} questions but its manifest {source.name} {len(entries)}",
        )
    cases = tuple(
        EvalCase(
            id=str(e["id"]),
            question=q,
            expected_answer=a,
            key_facts=tuple(e["key_facts"]),
            qtype=str(e["type"]),
            entity_ids=tuple(str(i) for i in e["entity_ids"]),
            negative=bool(e["negative"]) or e["type"] in NEGATIVE_TYPES,
        )
        for (q, a), e in zip(conversations, entries, strict=True)
    )
    return EvalSet(path.name, "openai", cases, True)


def _manifest(source: Path) -> list[dict[str, Any]]:
    """A provenance manifest: `<dataset>.manifest.jsonl` through the dataset's reader, any other name read here."""
    if source.name.endswith(MANIFEST_SUFFIX):
        return read_manifest(source)
    entries = [record for _, record in _read_jsonl(source)]
    for n, entry in enumerate(entries, 1):
        missing = [k for k in MANIFEST_KEYS if k not in entry]
        if missing:
            raise EvaluationError("bad_test_set", f"manifest {source.name} line {n}: missing {', '.join(missing)}")
    return entries


def _read_jsonl(path: Path) -> list[tuple[int, dict[str, Any]]]:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise EvaluationError("bad_test_set", f"cannot read test set {path}: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise EvaluationError("bad_test_set", f"test set {path.name} is not UTF-8 text") from exc
    if text.lstrip().startswith("["):
        raise EvaluationError(
            "unknown_format",
            f"{path.name} is a JSON array (alpaca?); a test set is JSONL, "
            f"one question per line (formats: {', '.join(TEST_SET_FORMATS)})",
        )
    records = []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = json_loads(line)
        except json.JSONDecodeError as exc:
            raise EvaluationError("bad_test_set", f"{path.name} line {n} is not valid JSON: {exc.msg}") from exc
        except TooDeep as exc:
            raise EvaluationError("bad_test_set", f"{path.name} line {n}: {exc}") from None
        if not isinstance(record, dict):
            raise EvaluationError("bad_test_set", f"{path.name} line {n} is not a JSON object")
        records.append((n, record))
    return records
