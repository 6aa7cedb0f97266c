"""Test sets: where the questions come from (a dataset's split, an upload, an artifact), checked when the
run is asked for, read again by the job from the artifact store, and sampled (max_questions, focus_entity_ids)."""

from __future__ import annotations

import random
import tempfile
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dyag_core.dataset.formats import MANIFEST_SUFFIX
from dyag_core.errors import DyagError
from dyag_core.evaluation import TEST_SET_FORMATS, EvalCase, EvalSet, EvaluationError, read_test_set
from dyag_runtime.peers import dataset_files

SPLITS = ("test", "validation", "train")


@dataclass(frozen=True, slots=True)
class TestSetRef:
    """A test set as the job finds it again: its bytes in the artifact store, and where it came from."""

    digest: str
    filename: str
    format: str  # "" (detect) | eval | openai
    manifest_digest: str = ""
    dataset_id: str = ""
    split: str = ""
    catalog: str = ""  # the dataset's catalog, when it comes from a dataset
    catalog_version: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "digest": self.digest,
            "filename": self.filename,
            "format": self.format,
            "manifest_digest": self.manifest_digest,
            "dataset_id": self.dataset_id,
            "split": self.split,
            "catalog": self.catalog,
            "catalog_version": self.catalog_version,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TestSetRef:
        return cls(**{k: str(data.get(k) or "") for k in cls.__slots__})  # type: ignore[attr-defined]


def safe_filename(name: str, default: str = "test.jsonl") -> str:
    name = Path(name or "").name.strip()
    return name if name and name not in (".", "..") else default


def check_format(fmt: str) -> str:
    if fmt and fmt not in TEST_SET_FORMATS:
        raise EvaluationError(
            "unknown_format",
            f"unknown test set format {fmt!r}; valid formats: {', '.join(TEST_SET_FORMATS)} (or empty to detect it)",
        )
    return fmt


def parse(data: bytes, filename: str, fmt: str = "", manifest: bytes | None = None) -> EvalSet:
    """The questions of a test file's bytes, with the domain's clear errors (unknown_format, empty_test_set,
    bad_test_set). An OpenAI chat JSONL's manifest, when given, supplies the key facts."""
    with tempfile.TemporaryDirectory(prefix="dyag-eval-") as tmp:
        path = Path(tmp) / safe_filename(filename)
        path.write_bytes(data)
        manifest_path = None
        if manifest:
            manifest_path = path.with_name(path.name + MANIFEST_SUFFIX)
            manifest_path.write_bytes(manifest)
        return read_test_set(path, fmt or None, manifest_path)


def dataset_file(dataset: Any, split: str) -> tuple[Any, str, Any | None]:
    """(artifact, format, manifest artifact) of a dataset's split: its eval file, else its OpenAI chat file
    with the provenance manifest. `dataset` is a dyag.v1.Dataset."""
    split = split or "test"
    if split not in SPLITS:
        raise DyagError("invalid_split", f"unknown split {split!r}; choose one of {', '.join(SPLITS)}")
    files = dataset_files(dataset)
    if (split, "eval") in files:
        return files[(split, "eval")], "eval", None
    if (split, "openai") in files:
        return files[(split, "openai")], "openai", files.get((split, "manifest"))
    available = sorted({f.split for f in dataset.files})
    raise DyagError(
        "split_not_found", f"dataset {dataset.id} has no {split!r} split (it has: {', '.join(available) or 'no files'})"
    )


def sample(cases: Sequence[EvalCase], max_questions: int, seed: int, focus: Iterable[str] = ()) -> tuple[EvalCase, ...]:
    """At most max_questions questions, drawn at random (seeded) in proportion to each question type's share
    (largest remainders), kept in the test set's order. 0: every question.

    focus: entity ids whose questions are all asked, on top of the sample (drawn from the other questions): a
    champion and its challenger, sampled alike, are both asked every question about the changed applications."""
    focus = set(focus)
    if max_questions <= 0 or max_questions >= len(cases):
        return tuple(cases)
    if not focus:
        return tuple(cases[i] for i in _stratified(range(len(cases)), cases, max_questions, seed))
    kept = {i for i, case in enumerate(cases) if focus.intersection(case.entity_ids)}
    rest = [i for i in range(len(cases)) if i not in kept]
    chosen = kept.union(_stratified(rest, cases, max_questions, seed))
    return tuple(cases[i] for i in sorted(chosen))


def _stratified(indexes: Iterable[int], cases: Sequence[EvalCase], wanted: int, seed: int) -> list[int]:
    """`wanted` of these questions (all when fewer), in proportion to each type's share, sorted."""
    groups: dict[str, list[int]] = defaultdict(list)
    for i in indexes:
        groups[cases[i].qtype].append(i)
    total = sum(len(ids) for ids in groups.values())
    if wanted >= total:
        return sorted(i for ids in groups.values() for i in ids)
    rng = random.Random(seed)
    exact = {t: wanted * len(ids) / total for t, ids in groups.items()}
    quota = {t: int(v) for t, v in exact.items()}
    left = wanted - sum(quota.values())
    for t in sorted(exact, key=lambda t: (-(exact[t] - quota[t]), t))[:left]:
        quota[t] += 1
    chosen: list[int] = []
    for t in sorted(groups):
        ids = list(groups[t])
        rng.shuffle(ids)
        chosen += ids[: quota[t]]
    return sorted(chosen)
