"""Checks on what a LoRA run is given: the dataset must be usable as it is, or the run stops with the reason.

- an empty dataset, or a line that is not a chat example (OpenAI chat JSONL, what dataset-builder writes),
  is reported with its line numbers;
- an example longer than max_seq_len tokens is reported with its line number and length, never cut.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from dyag_core.nesting import TooDeep
from dyag_core.nesting import loads as json_loads
from dyag_core.training.config import TrainingInputError

Messages = list[dict[str, str]]
ROLES = ("system", "user", "assistant")
MAX_LISTED = 10  # problems named in one error message


@dataclass(frozen=True, slots=True)
class ChatExample:
    line: int  # 1-based line of the file it came from
    messages: Messages


def count_facts(examples: Sequence[ChatExample]) -> int:
    """The distinct facts a split teaches: its distinct answers (Dyag renders one fact in one sentence, whichever
    phrasing asks for it), so examples / facts is the phrasings per fact."""
    return len({next((m["content"] for m in reversed(e.messages) if m["role"] == "assistant"), "") for e in examples})


def _problems_message(what: str, problems: list[str], total: int) -> str:
    listed = "; ".join(problems[:MAX_LISTED])
    more = f"; and {total - MAX_LISTED} more" if total > MAX_LISTED else ""
    return f"{what}: {listed}{more}"


def parse_chat_jsonl(data: bytes | str, name: str = "train") -> list[ChatExample]:
    """Every example of an OpenAI chat JSONL; a malformed line fails the whole file, naming each bad line."""
    try:
        text = data.decode("utf-8-sig", errors="strict") if isinstance(data, bytes) else data
    except UnicodeDecodeError as exc:
        raise TrainingInputError(
            "not_utf8", f"the {name} dataset is not UTF-8: byte 0x{data[exc.start]:02x} at offset {exc.start}"
        ) from None
    examples: list[ChatExample] = []
    problems: list[str] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip():
            continue
        problem = None
        try:
            record = json_loads(raw)
        except json.JSONDecodeError as exc:
            problem = f"line {number}: not JSON ({exc.msg})"
        except TooDeep as exc:
            problem = f"line {number}: {exc}"
        else:
            messages, problem = _messages_of(record)
            if problem is None:
                examples.append(ChatExample(number, messages))
        if problem:
            problems.append(problem if problem.startswith("line") else f"line {number}: {problem}")
    if problems:
        raise TrainingInputError(
            "malformed_dataset",
            _problems_message(f"the {name} dataset has {len(problems)} malformed line(s)", problems, len(problems)),
            {"lines": [int(p.split(":")[0].split()[1]) for p in problems]},
        )
    if not examples:
        raise TrainingInputError("empty_dataset", f"the {name} dataset is empty: no example to train on")
    return examples


def _messages_of(record: object) -> tuple[Messages, str | None]:
    if not isinstance(record, dict):
        return [], "not a JSON object"
    if "messages" not in record:
        return [], 'no "messages" list (OpenAI chat format expected: {"messages": [{"role", "content"}, …]})'
    messages = record["messages"]
    if not isinstance(messages, list) or not messages:
        return [], '"messages" is not a non-empty list'
    out: Messages = []
    for i, message in enumerate(messages, start=1):
        if not isinstance(message, dict):
            return [], f"message {i} is not an object"
        role, content = message.get("role"), message.get("content")
        if role not in ROLES:
            return [], f"message {i} has role {role!r} (expected system, user or assistant)"
        if not isinstance(content, str):
            return [], f"message {i} has no text content"
        out.append({"role": role, "content": content})
    if not any(m["role"] == "assistant" and m["content"].strip() for m in out):
        return [], "no assistant answer to learn"
    if out[-1]["role"] != "assistant":
        return [], "the last message is not the assistant's answer"
    return out, None


def check_lengths(
    examples: Sequence[ChatExample], lengths: Sequence[int], max_seq_len: int, name: str = "train"
) -> None:
    """Refuse examples longer than max_seq_len tokens (counted with the model's chat template), naming them."""
    too_long = [(e.line, n) for e, n in zip(examples, lengths, strict=True) if n > max_seq_len]
    if too_long:
        problems = [f"line {line} ({n} tokens)" for line, n in too_long]
        raise TrainingInputError(
            "examples_too_long",
            _problems_message(
                f"{len(too_long)} example(s) of the {name} dataset are longer than max_seq_len={max_seq_len} tokens "
                "(they are not cut: shorten them, drop them, or raise max_seq_len)",
                problems,
                len(too_long),
            ),
            {"lines": [line for line, _ in too_long], "max_seq_len": max_seq_len},
        )


def check_examples(
    examples: Sequence[ChatExample], count_tokens: Callable[[Messages], int], max_seq_len: int, name: str = "train"
) -> list[int]:
    """Token lengths of every example (with the model's chat template); raises on any longer than max_seq_len."""
    lengths = [count_tokens(e.messages) for e in examples]
    check_lengths(examples, lengths, max_seq_len, name)
    return lengths
