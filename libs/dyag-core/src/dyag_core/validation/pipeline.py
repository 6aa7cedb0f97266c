"""Parsing, format checks and token counts, on one core or on several for large files.

Each worker process reads one slice of whole lines, checks it and counts its tokens, and sends back
only per-example figures (and the records themselves when later checks need their text). Processes
are forked when that is safe (POSIX, no other thread running), so nothing is re-imported or reloaded;
an explicit `workers` > 1 falls back on spawned processes otherwise.
"""

from __future__ import annotations

import functools
import multiprocessing
import os
import threading
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import DyagError
from .checklist import negative_answers
from .format import FormatIssue, Record, Source, is_json_array_file, parse_lines, read_file, read_lines, sniff_format
from .tokens import TiktokenTokenizer, Tokenizer, record_tokens

PARALLEL_MIN_BYTES = 8 * 1024 * 1024  # below this, forking and merging cost about what they save
MAX_WORKERS = 8
SLICE_BYTES = 8 * 1024 * 1024  # lines are analysed by slices of about this size (a worker takes one at a time)


@dataclass(slots=True)
class Facts:
    """What the report needs from each valid example, in file order, computed where it was parsed."""

    lines: list[int] = field(default_factory=list)
    n_messages: list[int] = field(default_factory=list)
    answer_words: list[int] = field(default_factory=list)
    billed: list[int] = field(default_factory=list)  # empty when tokens are not counted
    assistant: list[int] = field(default_factory=list)
    negatives: int = 0  # answers worded as "je ne sais pas", "non renseigné"…
    missing_system: int = 0
    missing_user: int = 0

    def extend(self, other: Facts) -> None:
        for name in ("lines", "n_messages", "answer_words", "billed", "assistant"):
            getattr(self, name).extend(getattr(other, name))
        self.negatives += other.negatives
        self.missing_system += other.missing_system
        self.missing_user += other.missing_user


@dataclass(slots=True)
class Analysis:
    dataset_format: str
    n_lines: int
    issues: list[FormatIssue]
    broken_text: dict[int, str]
    facts: Facts
    records: list[Record]  # empty unless asked for (keep_records)
    tokenizer: str | None = None  # the tokenizer's name when tokens were counted
    warnings: list[str] = field(default_factory=list)
    workers: int = 1

    @property
    def invalid_lines(self) -> list[int]:
        return sorted({issue.line for issue in self.issues})


def analyse(
    source: Source,
    *,
    dataset_format: str | None = None,
    tokenizer: Tokenizer | None = None,
    keep_records: bool = True,
    workers: int | None = None,
) -> Analysis:
    """Parse and check every line, and count tokens when a tokenizer is given.

    A JSONL file is read in slices of whole lines (SLICE_BYTES), which keeps the working set small.
    workers: None picks several processes for a large file when forking is safe and the records
    need not come back; 1 stays in this process; more asks for that many (tiktoken tokenizers only,
    since workers rebuild them)."""
    path = Path(source) if isinstance(source, (str, Path)) else None
    if path is None or is_json_array_file(path):
        return _analyse_lines(read_lines(source), dataset_format, tokenizer, keep_records, 1)
    n_workers = _worker_count(path, tokenizer, workers, keep_records)
    if n_workers > 1:
        try:
            return _analyse_in_processes(path, n_workers, dataset_format, tokenizer, keep_records)
        except (OSError, RuntimeError, DyagError) as exc:  # BrokenProcessPool is a RuntimeError
            analysis = _analyse_in_slices(path, dataset_format, tokenizer, keep_records)
            analysis.warnings.append(f"analyse parallèle impossible ({exc}) : faite dans ce processus")
            return analysis
    return _analyse_in_slices(path, dataset_format, tokenizer, keep_records)


def _analyse_in_slices(
    path: Path, dataset_format: str | None, tokenizer: Tokenizer | None, keep_records: bool
) -> Analysis:
    data = read_file(path)
    dataset_format = dataset_format or sniff_format(data[: 1 << 20].split(b"\n"))
    parts = [
        _analyse_lines(_lines(data[start:end]), dataset_format, tokenizer, keep_records, first)
        for start, end, first in _slices(data, max(1, len(data) // SLICE_BYTES))
    ] or [_analyse_lines([], dataset_format, tokenizer, keep_records, 1)]
    return _merge(parts)


def _lines(data: bytes) -> list[bytes | str]:
    lines: list[bytes | str] = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    return lines


def _merge(parts: list[Analysis]) -> Analysis:
    merged = parts[0]
    for part in parts[1:]:
        merged.n_lines += part.n_lines
        merged.issues += part.issues
        merged.broken_text.update(part.broken_text)
        merged.facts.extend(part.facts)
        merged.records += part.records
    return merged


def _analyse_lines(
    lines: list[bytes | str],
    dataset_format: str | None,
    tokenizer: Tokenizer | None,
    keep_records: bool,
    first_line: int,
) -> Analysis:
    parsed = parse_lines(lines, dataset_format=dataset_format, first_line=first_line)
    records = parsed.records
    answers = [record.answer for record in records]
    distinct = list(dict.fromkeys(answers))  # answers repeat across question variations
    words = {answer: len(answer.split()) for answer in distinct}
    negative = dict.fromkeys(distinct, False)
    negative.update((distinct[index], True) for index in negative_answers(distinct))
    facts = Facts(
        lines=[record.line for record in records],
        n_messages=[len(record.roles) for record in records],
        answer_words=list(map(words.__getitem__, answers)),
        negatives=sum(map(negative.__getitem__, answers)),
        missing_system=sum(1 for record in records if "system" not in record.roles),
        missing_user=sum(1 for record in records if "user" not in record.roles),
    )
    if tokenizer is not None:
        facts.billed, facts.assistant = record_tokens(records, tokenizer)
    return Analysis(
        dataset_format=parsed.dataset_format,
        n_lines=parsed.n_lines,
        issues=parsed.issues,
        broken_text=parsed.broken_text,
        facts=facts,
        records=records if keep_records else [],
        tokenizer=tokenizer.name if tokenizer is not None else None,
        warnings=list(tokenizer.warnings) if tokenizer is not None else [],
    )


def _fork_is_safe() -> bool:
    return "fork" in multiprocessing.get_all_start_methods() and threading.active_count() == 1


def _worker_count(path: Path | None, tokenizer: Tokenizer | None, workers: int | None, keep_records: bool) -> int:
    if path is None or workers == 1 or not path.is_file() or is_json_array_file(path):
        return 1
    if tokenizer is not None and not isinstance(tokenizer, TiktokenTokenizer):
        return 1
    cpus = os.cpu_count() or 1
    if workers is None:  # automatic: large files, forking safe, and no records to send back (that costs a parse)
        if keep_records or cpus < 2 or path.stat().st_size < PARALLEL_MIN_BYTES or not _fork_is_safe():
            return 1
        return min(cpus, MAX_WORKERS)
    return max(1, min(workers, MAX_WORKERS))


def _slices(data: bytes, n: int) -> list[tuple[int, int, int]]:
    """(start, end, first line) of n slices of whole lines."""
    bounds = [0]
    for k in range(1, n):
        cut = data.find(b"\n", max(bounds[-1], len(data) * k // n))
        if cut < 0:
            break
        bounds.append(cut + 1)
    bounds.append(len(data))
    slices, line = [], 1
    for start, end in zip(bounds, bounds[1:], strict=False):
        if end > start:
            slices.append((start, end, line))
            line += data.count(b"\n", start, end)
    return slices


def _analyse_in_processes(
    path: Path, n_workers: int, dataset_format: str | None, tokenizer: Tokenizer | None, keep_records: bool
) -> Analysis:
    data = read_file(path)
    dataset_format = dataset_format or sniff_format(data[: 1 << 20].split(b"\n"))
    spec = (tokenizer.model, tokenizer.encoding_name, 1) if isinstance(tokenizer, TiktokenTokenizer) else None
    slices = _slices(data, max(n_workers, len(data) // SLICE_BYTES))
    del data
    context = multiprocessing.get_context("fork" if _fork_is_safe() else "spawn")
    with ProcessPoolExecutor(n_workers, mp_context=context) as pool:
        futures = [
            pool.submit(_analyse_slice, str(path), start, end, first, dataset_format, spec, keep_records)
            for start, end, first in slices
        ]
        merged = _merge([future.result() for future in futures])
    merged.workers = n_workers
    merged.warnings = list(tokenizer.warnings) if tokenizer is not None else []  # the parent's (o200k fallback…)
    merged.tokenizer = tokenizer.name if tokenizer is not None else None
    return merged


@functools.lru_cache(maxsize=2)
def _worker_tokenizer(spec: tuple[str, str, int]) -> TiktokenTokenizer:
    """One tokenizer per worker process, so that its caches serve every slice the worker takes."""
    model, encoding, threads = spec
    return TiktokenTokenizer(model, encoding=encoding, threads=threads)


def _analyse_slice(
    path: str,
    start: int,
    end: int,
    first_line: int,
    dataset_format: str | None,
    tokenizer_spec: tuple[str, str, int] | None,
    keep_records: bool,
) -> Analysis:
    """Runs in a worker process."""
    with open(path, "rb") as handle:
        handle.seek(start)
        lines = _lines(handle.read(end - start))
    tokenizer = _worker_tokenizer(tokenizer_spec) if tokenizer_spec is not None else None
    return _analyse_lines(lines, dataset_format, tokenizer, keep_records, first_line)
