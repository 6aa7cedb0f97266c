"""Large files go through slices, possibly in worker processes: same report, same line numbers."""

from __future__ import annotations

import pytest
from test_validation_support import chat, long_answer

from dyag_core.validation import pipeline, validate_dataset

pytest.importorskip("tiktoken")


@pytest.fixture()
def dataset(tmp_path, monkeypatch):
    monkeypatch.setattr(pipeline, "SLICE_BYTES", 2000)  # a few lines per slice
    lines = [chat(f"Question {i} sur APP{i % 7} ?", long_answer(f"APP{i % 7}", i % 5)) for i in range(60)]
    lines[17] = "{cassé"
    lines[44] = '{"messages": []}'
    path = tmp_path / "train.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.mark.parametrize("workers", [1, 2])
def test_slices_and_workers_give_the_serial_report(dataset, workers: int) -> None:
    whole = validate_dataset(dataset.read_text(encoding="utf-8").splitlines(), model="gpt-3.5-turbo", pii=False)
    sliced = validate_dataset(dataset, model="gpt-3.5-turbo", pii=False, workers=workers)
    assert [(i.line, i.code) for i in sliced.issues] == [(18, "invalid_json"), (45, "missing_messages_list")]
    assert sliced.n_lines == 60 and sliced.n_examples == 58
    assert sliced.tokens.billed_tokens == whole.tokens.billed_tokens
    assert sliced.tokens.per_example == whole.tokens.per_example
    assert sliced.duplicates.exact_groups == whole.duplicates.exact_groups  # records came back from the workers
    assert sliced.workers == workers


def test_auto_mode_stays_in_process_for_small_files(dataset) -> None:
    assert validate_dataset(dataset, pii=False, duplicates=False).workers == 1
