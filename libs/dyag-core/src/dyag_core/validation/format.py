"""Reading a fine-tuning JSONL and checking its format line by line.

Formats are named as in dyag_core.dataset.formats. The checks for OpenAI chat are those of the cookbook "Data
preparation and analysis for chat model fine-tuning" (data_type, missing_messages_list, message_missing_key,
message_unrecognized_key, unrecognized_role, missing_content, example_missing_assistant_message), plus invalid_json.
Each issue carries its 1-based line number; a broken line never stops the analysis of the others. Alpaca (a JSON
array: its elements count as lines), ShareGPT, prompt/completion and eval files are checked minimally and
turned into chat messages for the other checks.
"""

from __future__ import annotations

import gc
import json
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from operator import itemgetter
from pathlib import Path
from typing import Any

from .. import nesting
from ..dataset.errors import DatasetError

FORMAT_OPENAI = "openai"
FORMAT_ALPACA = "alpaca"
FORMAT_SHAREGPT = "sharegpt"
FORMAT_PROMPT_COMPLETION = "prompt-completion"
FORMAT_EVAL = "eval"
# The names of dyag_core.dataset.formats.FORMATS.
FORMATS = (FORMAT_OPENAI, FORMAT_ALPACA, FORMAT_SHAREGPT, FORMAT_PROMPT_COMPLETION, FORMAT_EVAL)

# Issue codes, in report order (the cookbook's names, then ours).
ISSUE_TYPES = (
    "invalid_json",
    "data_type",
    "missing_messages_list",
    "message_missing_key",
    "message_unrecognized_key",
    "unrecognized_role",
    "missing_content",
    "example_missing_assistant_message",
    "missing_field",
)

CHAT_ROLES = frozenset({"system", "user", "assistant", "function", "tool"})
CHAT_KEYS = frozenset({"role", "content", "name", "function_call", "weight", "tool_calls", "tool_call_id"})
SHAREGPT_ROLES = {"system": "system", "human": "user", "user": "user", "gpt": "assistant", "assistant": "assistant"}

Source = str | Path | Iterable[str] | Iterable[bytes]


@dataclass(frozen=True, slots=True)
class FormatIssue:
    line: int  # 1-based
    code: str  # one of ISSUE_TYPES
    message: str  # French, for people

    def to_dict(self) -> dict[str, Any]:
        return {"line": self.line, "code": self.code, "message": self.message}


@dataclass(slots=True)
class Record:
    """A well-formed example, as chat messages whatever the file's format."""

    line: int
    roles: list[str]
    contents: list[str]
    names: list[str] = field(default_factory=list)  # "name" values: billed like the cookbook (+1 token each)

    def text_of(self, role: str) -> str:
        if self.roles.count(role) == 1:  # the usual case, without a join
            return self.contents[self.roles.index(role)]
        return "\n".join(c for r, c in zip(self.roles, self.contents, strict=True) if r == role)

    @property
    def question(self) -> str:
        return self.text_of("user")

    @property
    def answer(self) -> str:
        return self.text_of("assistant")


@dataclass(slots=True)
class ParsedDataset:
    dataset_format: str
    n_lines: int
    records: list[Record]  # lines whose format is valid, in file order
    issues: list[FormatIssue]
    broken_text: dict[int, str]  # raw text of lines that are not valid records (for the PII scan)

    @property
    def issue_counts(self) -> dict[str, int]:
        return count_issues(self.issues)

    @property
    def invalid_lines(self) -> list[int]:
        return sorted({issue.line for issue in self.issues})


def count_issues(issues: Iterable[FormatIssue]) -> dict[str, int]:
    """Issues per code, in ISSUE_TYPES order."""
    counts = Counter(issue.code for issue in issues)
    return {code: counts[code] for code in ISSUE_TYPES if counts[code]}


def json_loader() -> Callable[[str | bytes], Any]:
    """orjson when installed (faster), else the standard library."""
    try:
        import orjson
    except ImportError:
        return _json_loads
    return orjson.loads  # refuses nesting past 1,024 levels with a JSONDecodeError


def _json_loads(data: str | bytes) -> Any:
    """json.loads whose RecursionError on a deeply nested line is a ValueError, like every other broken line."""
    try:
        return json.loads(data)
    except RecursionError:
        raise ValueError("lists and objects nested too deeply") from None


def read_lines(source: Source) -> list[bytes | str]:
    """The lines of a JSONL file or of an iterable of lines, without their line ends.

    A final line end does not make an extra empty line."""
    if isinstance(source, (str, Path)):
        data = read_file(source)
        if data.lstrip()[:1] == b"[":  # a JSON array (the alpaca format): one "line" per element
            return _array_items(data)
        lines: list[bytes | str] = data.split(b"\n")
        if lines and lines[-1] == b"":
            lines.pop()
        return lines
    return [line.rstrip("\r\n") if isinstance(line, str) else line.rstrip(b"\r\n") for line in source]


def read_file(source: str | Path) -> bytes:
    path = Path(source)
    if not path.is_file():
        raise DatasetError("bad_dataset", f"Jeu de données introuvable : {path}", {"path": str(path)})
    return path.read_bytes()


def is_json_array_file(source: Source) -> bool:
    if not isinstance(source, (str, Path)) or not Path(source).is_file():
        return False
    with open(source, "rb") as handle:
        return handle.read(4096).lstrip()[:1] == b"["


def write_lines(output: str | Path, lines: Iterable[bytes | str], *, as_array: bool = False) -> Path:
    """JSONL, or a JSON array when the source was one (so a cleaned alpaca file stays an alpaca file)."""
    path = Path(output)
    path.parent.mkdir(parents=True, exist_ok=True)
    texts = [line.decode("utf-8") if isinstance(line, bytes) else line for line in lines]
    if as_array:
        path.write_text("[\n" + ",\n".join(texts) + "\n]\n", encoding="utf-8")
    else:
        path.write_text("".join(text + "\n" for text in texts), encoding="utf-8")
    return path


def _array_items(data: bytes) -> list[bytes | str]:
    """The elements of a JSON array file, re-serialised one per "line"; an unreadable array is one broken line."""
    try:
        items = nesting.loads(data)
    except ValueError:  # TooDeep too: one broken "line", which the format check names
        return [data]
    return [json.dumps(item, ensure_ascii=False) for item in items]


def detect_format(obj: Any) -> str:
    """The format of a dataset, from its first JSON object."""
    if isinstance(obj, dict):
        if "messages" in obj:
            return FORMAT_OPENAI
        if "conversations" in obj:
            return FORMAT_SHAREGPT
        if "instruction" in obj and "output" in obj:
            return FORMAT_ALPACA
        if "prompt" in obj and "completion" in obj:
            return FORMAT_PROMPT_COMPLETION
        if "question" in obj and "expected_answer" in obj:
            return FORMAT_EVAL
    return FORMAT_OPENAI


def parse_dataset(source: Source, *, dataset_format: str | None = None) -> ParsedDataset:
    """Parse every line, check its format and keep the valid ones as chat records."""
    return parse_lines(read_lines(source), dataset_format=dataset_format)


def parse_lines(lines: list[bytes | str], *, dataset_format: str | None = None, first_line: int = 1) -> ParsedDataset:
    """parse_dataset on lines already read; `first_line` numbers a slice of a larger file."""
    if dataset_format is not None and dataset_format not in FORMATS:
        raise DatasetError("unknown_format", f"Format inconnu : {dataset_format} (attendus : {', '.join(FORMATS)})")
    loads = json_loader()
    records: list[Record] = []
    issues: list[FormatIssue] = []
    broken: dict[int, str] = {}
    checker: Callable[[int, Any, list[FormatIssue]], Record | None] | None = (
        _CHECKERS[dataset_format] if dataset_format else None
    )
    with gc_paused():
        for lineno, raw in enumerate(lines, first_line):
            try:
                obj = loads(raw)
            except ValueError as exc:  # orjson, json and UTF-8 decoding errors are all ValueErrors
                blank = not raw.strip()
                issues.append(FormatIssue(lineno, "invalid_json", "ligne vide" if blank else f"JSON invalide : {exc}"))
                broken[lineno] = _as_text(raw)
                continue
            if checker is None:
                checker = _CHECKERS[detect_format(obj)]
            if checker is _check_openai:
                # Fast path, inlined for speed: the usual valid line, with C-level checks only.
                try:
                    messages = _messages_of(obj)
                    roles = list(map(_role_of, messages))
                    contents = list(map(_content_of, messages))
                    if (
                        type(messages) is list
                        and sum(map(len, messages)) == 2 * len(messages)  # role and content, nothing else
                        and CHAT_ROLES.issuperset(roles)
                        and "assistant" in roles
                        and all(map(_is_str, contents))
                        and "" not in contents
                    ):
                        records.append(Record(lineno, roles, contents))
                        continue
                except (TypeError, KeyError):  # not a dict, a message that is not a dict, an unhashable role…
                    pass
            record = checker(lineno, obj, issues)
            if record is None:
                broken[lineno] = _as_text(raw)
            else:
                records.append(record)
    detected = next((name for name, fn in _CHECKERS.items() if fn is checker), dataset_format or FORMAT_OPENAI)
    return ParsedDataset(detected, len(lines), records, issues, broken)


def sniff_format(lines: Iterable[bytes | str]) -> str | None:
    """The format of the first line that holds a JSON object, if any."""
    loads = json_loader()
    for raw in lines:
        try:
            obj = loads(raw)
        except ValueError:
            continue
        if isinstance(obj, dict):
            return detect_format(obj)
    return None


_is_str = str.__instancecheck__  # isinstance(x, str), mapped at C speed


@contextmanager
def gc_paused() -> Iterator[None]:
    """Parsing builds millions of objects that all stay alive: the cyclic GC would rescan them again
    and again (it more than doubles the time on 100 MB). Nothing here makes cycles."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


_messages_of, _role_of, _content_of = itemgetter("messages"), itemgetter("role"), itemgetter("content")


def _as_text(raw: str | bytes) -> str:
    return raw.decode("utf-8", errors="replace") if isinstance(raw, bytes) else raw


def _check_openai(lineno: int, obj: Any, issues: list[FormatIssue]) -> Record | None:
    if type(obj) is not dict:
        issues.append(FormatIssue(lineno, "data_type", f"un objet JSON est attendu, pas {type(obj).__name__}"))
        return None
    messages = obj.get("messages")
    if not messages or not isinstance(messages, list):
        issues.append(FormatIssue(lineno, "missing_messages_list", "liste « messages » absente ou vide"))
        return None
    roles: list[str] = []
    contents: list[str] = []
    names: list[str] = []
    before = len(issues)
    for index, message in enumerate(messages, 1):
        # Fast path: exactly {"role", "content"} with a known role and a non-empty string content.
        if type(message) is dict and len(message) == 2:
            role = message.get("role")
            content = message.get("content")
            if role in CHAT_ROLES and type(content) is str and content:
                roles.append(role)
                contents.append(content)
                continue
        _check_chat_message(lineno, index, message, issues, roles, contents, names)
    if "assistant" not in roles:
        issues.append(FormatIssue(lineno, "example_missing_assistant_message", "aucun message « assistant »"))
    if len(issues) > before:
        return None
    return Record(lineno, roles, contents, names)


def _check_chat_message(
    lineno: int,
    index: int,
    message: Any,
    issues: list[FormatIssue],
    roles: list[str],
    contents: list[str],
    names: list[str],
) -> None:
    where = f"message {index}"
    if not isinstance(message, dict):
        issues.append(FormatIssue(lineno, "data_type", f"{where} : un objet est attendu, pas {type(message).__name__}"))
        return
    missing = [key for key in ("role", "content") if key not in message]
    if missing:
        issues.append(FormatIssue(lineno, "message_missing_key", f"{where} : clé(s) absente(s) : {', '.join(missing)}"))
    unknown = sorted(str(key) for key in message if key not in CHAT_KEYS)
    if unknown:
        issues.append(
            FormatIssue(lineno, "message_unrecognized_key", f"{where} : clé(s) inconnue(s) : {', '.join(unknown)}")
        )
    role = message.get("role")
    if role not in CHAT_ROLES:
        issues.append(FormatIssue(lineno, "unrecognized_role", f"{where} : rôle inconnu : {role!r}"))
    content = message.get("content")
    calls = message.get("function_call") or message.get("tool_calls")
    if not (isinstance(content, str) and content) and not (calls and content is None):
        issues.append(FormatIssue(lineno, "missing_content", f"{where} : contenu absent, vide ou non textuel"))
    if isinstance(role, str):
        roles.append(role)
        contents.append(content if isinstance(content, str) else "")
    name = message.get("name")
    if isinstance(name, str):
        names.append(name)


def _check_sharegpt(lineno: int, obj: Any, issues: list[FormatIssue]) -> Record | None:
    if type(obj) is not dict:
        issues.append(FormatIssue(lineno, "data_type", f"un objet JSON est attendu, pas {type(obj).__name__}"))
        return None
    turns = obj.get("conversations")
    if not turns or not isinstance(turns, list):
        issues.append(FormatIssue(lineno, "missing_messages_list", "liste « conversations » absente ou vide"))
        return None
    before = len(issues)
    roles: list[str] = []
    contents: list[str] = []
    for index, turn in enumerate(turns, 1):
        where = f"tour {index}"
        if not isinstance(turn, dict):
            issues.append(FormatIssue(lineno, "data_type", f"{where} : un objet est attendu"))
            continue
        if "from" not in turn or "value" not in turn:
            issues.append(FormatIssue(lineno, "message_missing_key", f"{where} : « from » et « value » sont attendus"))
        role = SHAREGPT_ROLES.get(turn.get("from"))  # type: ignore[arg-type]
        if role is None:
            issues.append(FormatIssue(lineno, "unrecognized_role", f"{where} : rôle inconnu : {turn.get('from')!r}"))
        value = turn.get("value")
        if not (isinstance(value, str) and value):
            issues.append(FormatIssue(lineno, "missing_content", f"{where} : contenu absent, vide ou non textuel"))
        elif role:
            roles.append(role)
            contents.append(value)
    if "assistant" not in roles:
        issues.append(FormatIssue(lineno, "example_missing_assistant_message", "aucun tour « gpt »"))
    return None if len(issues) > before else Record(lineno, roles, contents)


def _flat_checker(question_key: str, answer_key: str, system_key: str | None = None):
    """Alpaca ({instruction, input: the system prompt, output}), prompt/completion and eval: string fields."""

    def check(lineno: int, obj: Any, issues: list[FormatIssue]) -> Record | None:
        if type(obj) is not dict:
            issues.append(FormatIssue(lineno, "data_type", f"un objet JSON est attendu, pas {type(obj).__name__}"))
            return None
        before = len(issues)
        for key in (question_key, answer_key):
            value = obj.get(key)
            if key not in obj:
                issues.append(FormatIssue(lineno, "missing_field", f"champ « {key} » absent"))
            elif not (isinstance(value, str) and value.strip()):
                issues.append(FormatIssue(lineno, "missing_content", f"champ « {key} » vide ou non textuel"))
        system = obj.get(system_key) if system_key else None
        if system is not None and not isinstance(system, str):
            issues.append(FormatIssue(lineno, "missing_content", f"champ « {system_key} » non textuel"))
        if len(issues) > before:
            return None
        if system:
            return Record(lineno, ["system", "user", "assistant"], [system, obj[question_key], obj[answer_key]])
        return Record(lineno, ["user", "assistant"], [obj[question_key], obj[answer_key]])

    return check


_CHECKERS: dict[str, Callable[[int, Any, list[FormatIssue]], Record | None]] = {
    FORMAT_OPENAI: _check_openai,
    FORMAT_SHAREGPT: _check_sharegpt,
    FORMAT_ALPACA: _flat_checker("instruction", "output", system_key="input"),
    FORMAT_PROMPT_COMPLETION: _flat_checker("prompt", "completion"),
    FORMAT_EVAL: _flat_checker("question", "expected_answer"),
}
