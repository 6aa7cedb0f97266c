"""Output formats, and the provenance manifest that travels next to them.

Hosted fine-tuning APIs reject unknown keys, so the training formats hold only the conversation;
provenance goes to a sidecar `<dataset>.manifest.jsonl`, one line per example in the same order.

- openai: JSONL, {"messages": [system, user, assistant]}
- alpaca: one JSON array, {"instruction": question, "input": system prompt, "output": answer} (the guide's step 5.2)
- sharegpt: JSONL, {"conversations": [{"from": "system"|"human"|"gpt", "value": …}]}
- prompt-completion: JSONL, {"prompt": question, "completion": answer} (no system prompt)
- eval: JSONL, {"id", "question", "expected_answer", "key_facts", "type", "entity_ids", "negative"}

Everything is UTF-8, ensure_ascii=False, "\n" line ends.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from dyag_core.dataset.errors import DatasetError
from dyag_core.dataset.model import DEFAULT_SYSTEM_PROMPT, QUESTION_TYPES, Example, Provenance
from dyag_core.nesting import TooDeep
from dyag_core.nesting import loads as json_loads

FORMATS = ("openai", "alpaca", "sharegpt", "prompt-completion", "eval")
MANIFEST_SUFFIX = ".manifest.jsonl"
MANIFEST_KEYS = ("line", "id", "type", "entity_ids", "fields", "template", "key_facts", "negative")


# ---------------------------------------------------------------- records


def to_record(example: Example, fmt: str) -> dict[str, Any]:
    """One example in one format (nothing else: no provenance in training formats)."""
    return _WRITERS[_check_format(fmt)](example)


def _openai(ex: Example) -> dict[str, Any]:
    return {
        "messages": [
            {"role": "system", "content": ex.system},
            {"role": "user", "content": ex.question},
            {"role": "assistant", "content": ex.answer},
        ]
    }


def _alpaca(ex: Example) -> dict[str, Any]:
    return {"instruction": ex.question, "input": ex.system, "output": ex.answer}


def _sharegpt(ex: Example) -> dict[str, Any]:
    return {
        "conversations": [
            {"from": "system", "value": ex.system},
            {"from": "human", "value": ex.question},
            {"from": "gpt", "value": ex.answer},
        ]
    }


def _prompt_completion(ex: Example) -> dict[str, Any]:
    return {"prompt": ex.question, "completion": ex.answer}


def _eval(ex: Example) -> dict[str, Any]:
    p = ex.provenance
    return {
        "id": ex.id,
        "question": ex.question,
        "expected_answer": ex.answer,
        "key_facts": list(p.key_facts),
        "type": ex.qtype,
        "entity_ids": list(p.entity_ids),
        "negative": p.negative,
    }


_WRITERS: dict[str, Callable[[Example], dict[str, Any]]] = {
    "openai": _openai,
    "alpaca": _alpaca,
    "sharegpt": _sharegpt,
    "prompt-completion": _prompt_completion,
    "eval": _eval,
}


def _check_format(fmt: str) -> str:
    if fmt not in FORMATS:
        raise DatasetError("unknown_format", f"unknown format {fmt!r}; valid formats: {', '.join(FORMATS)}")
    return fmt


# ---------------------------------------------------------------- writing


def write_dataset(examples: Sequence[Example], path: str | Path, fmt: str = "openai") -> Path:
    """Write the examples in one format; alpaca is one JSON array, the others JSONL. Returns the path."""
    _check_format(fmt)
    records = [to_record(ex, fmt) for ex in examples]
    if fmt == "alpaca":
        text = json.dumps(records, ensure_ascii=False, indent=2) + "\n"
    else:
        text = _jsonl(records)
    return _write_text(Path(path), text)


def manifest_path(path: str | Path) -> Path:
    """The manifest next to a dataset ('train.jsonl' -> 'train.jsonl.manifest.jsonl'); a manifest path is returned as
    is."""
    path = Path(path)
    return path if path.name.endswith(MANIFEST_SUFFIX) else path.with_name(path.name + MANIFEST_SUFFIX)


def manifest_record(example: Example, line: int) -> dict[str, Any]:
    p = example.provenance
    return {
        "line": line,
        "id": example.id,
        "type": example.qtype,
        "entity_ids": list(p.entity_ids),
        "fields": list(p.fields),
        "template": p.template,
        "key_facts": list(p.key_facts),
        "negative": p.negative,
    }


def write_manifest(examples: Sequence[Example], path: str | Path) -> Path:
    """The provenance sidecar of the dataset at `path`: one line per example, same order, line numbers from 1."""
    return _write_text(manifest_path(path), _jsonl(manifest_record(ex, n) for n, ex in enumerate(examples, 1)))


def _jsonl(records: Iterable[dict[str, Any]]) -> str:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)


def _write_text(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="\n") as handle:
        handle.write(text)
    return path


# ---------------------------------------------------------------- reading


def read_manifest(path: str | Path) -> list[dict[str, Any]]:
    """The manifest of the dataset at `path` (or the manifest file itself)."""
    target = manifest_path(path)
    if not target.exists():
        raise DatasetError(
            "missing_manifest",
            f"no provenance manifest {target.name} next to {Path(path).name}; write it with write_manifest()",
        )
    entries = _read_jsonl(target)
    for n, entry in enumerate(entries, 1):
        missing = [k for k in MANIFEST_KEYS if k not in entry]
        if missing or entry["line"] != n:
            raise DatasetError(
                "manifest_mismatch",
                f"{target.name} line {n}: "
                + (f"missing {', '.join(missing)}" if missing else f"says line {entry['line']}"),
            )
    return entries


def read_dataset(path: str | Path, fmt: str = "openai") -> tuple[Example, ...]:
    """Examples back from a dataset file, joined line by line with its manifest."""
    path = Path(path)
    _check_format(fmt)
    records = _read_json_array(path) if fmt == "alpaca" else _read_jsonl(path)
    entries = read_manifest(path)
    if len(entries) != len(records):
        raise DatasetError(
            "manifest_mismatch", f"{path.name} holds {len(records)} examples but its manifest {len(entries)}"
        )
    return tuple(
        _example(_READERS[fmt](record, n, path), entry)
        for n, (record, entry) in enumerate(zip(records, entries, strict=True), 1)
    )


def read_openai_jsonl(path: str | Path) -> tuple[Example, ...]:
    return read_dataset(path, "openai")


def _example(conversation: tuple[str, str, str], entry: dict[str, Any]) -> Example:
    system, question, answer = conversation
    if entry["type"] not in QUESTION_TYPES:
        raise DatasetError("manifest_mismatch", f"manifest line {entry['line']}: unknown type {entry['type']!r}")
    provenance = Provenance(
        entity_ids=tuple(entry["entity_ids"]),
        fields=tuple(entry["fields"]),
        template=entry["template"],
        key_facts=tuple(entry["key_facts"]),
        negative=bool(entry["negative"]),
    )
    return Example(entry["id"], entry["type"], question, answer, provenance, system)


def _read_openai(record: dict[str, Any], n: int, path: Path) -> tuple[str, str, str]:
    by_role = {m.get("role"): m.get("content") for m in _list(record, "messages", n, path)}
    return (
        by_role.get("system") or DEFAULT_SYSTEM_PROMPT,
        _text(by_role.get("user"), "user", n, path),
        _text(by_role.get("assistant"), "assistant", n, path),
    )


def _read_alpaca(record: dict[str, Any], n: int, path: Path) -> tuple[str, str, str]:
    return (
        record.get("input") or DEFAULT_SYSTEM_PROMPT,
        _text(record.get("instruction"), "instruction", n, path),
        _text(record.get("output"), "output", n, path),
    )


def _read_sharegpt(record: dict[str, Any], n: int, path: Path) -> tuple[str, str, str]:
    by_role = {m.get("from"): m.get("value") for m in _list(record, "conversations", n, path)}
    return (
        by_role.get("system") or DEFAULT_SYSTEM_PROMPT,
        _text(by_role.get("human"), "human", n, path),
        _text(by_role.get("gpt"), "gpt", n, path),
    )


def _read_prompt_completion(record: dict[str, Any], n: int, path: Path) -> tuple[str, str, str]:
    return (
        DEFAULT_SYSTEM_PROMPT,
        _text(record.get("prompt"), "prompt", n, path),
        _text(record.get("completion"), "completion", n, path),
    )


def _read_eval(record: dict[str, Any], n: int, path: Path) -> tuple[str, str, str]:
    return (
        DEFAULT_SYSTEM_PROMPT,
        _text(record.get("question"), "question", n, path),
        _text(record.get("expected_answer"), "expected_answer", n, path),
    )


_READERS: dict[str, Callable[[dict[str, Any], int, Path], tuple[str, str, str]]] = {
    "openai": _read_openai,
    "alpaca": _read_alpaca,
    "sharegpt": _read_sharegpt,
    "prompt-completion": _read_prompt_completion,
    "eval": _read_eval,
}


def _list(record: dict[str, Any], key: str, n: int, path: Path) -> list[dict[str, Any]]:
    value = record.get(key)
    if not isinstance(value, list) or not all(isinstance(m, dict) for m in value):
        raise DatasetError("bad_dataset", f"{path.name} record {n}: {key!r} must be a list of objects")
    return value


def _text(value: Any, what: str, n: int, path: Path) -> str:
    if not isinstance(value, str) or not value:
        raise DatasetError("bad_dataset", f"{path.name} record {n}: no {what} text")
    return value


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    records = []
    for n, line in enumerate(_read_text(path).splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = json_loads(line)
        except json.JSONDecodeError as exc:
            raise DatasetError("bad_dataset", f"{path.name} line {n} is not valid JSON: {exc.msg}") from exc
        except TooDeep as exc:
            raise DatasetError("bad_dataset", f"{path.name} line {n}: {exc}") from None
        if not isinstance(record, dict):
            raise DatasetError("bad_dataset", f"{path.name} line {n} is not a JSON object")
        records.append(record)
    return records


def _read_json_array(path: Path) -> list[dict[str, Any]]:
    try:
        records = json_loads(_read_text(path))
    except json.JSONDecodeError as exc:
        raise DatasetError("bad_dataset", f"{path.name} is not valid JSON: {exc.msg} at line {exc.lineno}") from exc
    except TooDeep as exc:
        raise DatasetError("bad_dataset", f"{path.name}: {exc}") from None
    if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
        raise DatasetError("bad_dataset", f"{path.name} must hold a JSON array of objects")
    return records


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise DatasetError("bad_dataset", f"cannot read {path}: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise DatasetError(
            "bad_dataset", f"{path.name} is not UTF-8: byte 0x{exc.object[exc.start]:02x} at offset {exc.start}"
        ) from None
