"""Output formats and the provenance manifest: exact shapes, round trips, encoding."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dyag_core.catalog import load_catalog
from dyag_core.dataset import (
    FORMATS,
    DatasetError,
    Example,
    GenerationConfig,
    generate,
    manifest_path,
    read_dataset,
    read_manifest,
    read_openai_jsonl,
    write_dataset,
    write_manifest,
)

APPS = [
    {
        "id": 1,
        "nom": "GEOVAL",
        "nom long": "Gestion des valorisations géographiques",
        "statut si": "En production",
        "descriptif": "Outil de gestion des valorisations « géographiques ».",
        "portee geographique": "Nationale",
        "domaines et sous domaines": [{"domaine metier": "Information géographique"}],
        "acteurs": [{"role d acteur": "MOA", "acteur": "DGALN/DEB"}],
    },
    {
        "id": 2,
        "nom": "HYDROSTAT",
        "nom long": "Observatoire de la qualité des cours d'eau",
        "statut si": "En construction",
        "domaines et sous domaines": [{"domaine metier": "Eau et milieux aquatiques"}],
        "sites": [{"nature de l url": "Site public", "url": "https://hydrostat.example.gouv.fr/"}],
    },
    {
        "id": 3,
        "nom": "ÉOLIA",
        "statut si": "Abandonnée",
        "descriptif": "Instruction des projets éoliens.\nDeuxième ligne.",
    },
]


@pytest.fixture(scope="module")
def examples() -> tuple[Example, ...]:
    catalog = load_catalog(json.dumps({"applications": APPS}, ensure_ascii=False).encode(), filename="mini.json")
    return generate(catalog, GenerationConfig(system_prompt="Tu es l'assistant du catalogue."))


def lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_openai_lines_hold_messages_and_nothing_else(examples, tmp_path):
    path = write_dataset(examples, tmp_path / "train.jsonl", "openai")
    records = lines(path)
    assert len(records) == len(examples)
    for record, example in zip(records, examples, strict=True):
        assert set(record) == {"messages"}
        assert [set(m) for m in record["messages"]] == [{"role", "content"}] * 3
        assert [m["role"] for m in record["messages"]] == ["system", "user", "assistant"]
        assert [m["content"] for m in record["messages"]] == [example.system, example.question, example.answer]


def test_alpaca_follows_the_guide_conversion(examples, tmp_path):
    records = json.loads(write_dataset(examples, tmp_path / "train_alpaca.json", "alpaca").read_text(encoding="utf-8"))
    assert records[0] == {
        "instruction": examples[0].question,
        "input": "Tu es l'assistant du catalogue.",
        "output": examples[0].answer,
    }
    assert all(set(r) == {"instruction", "input", "output"} for r in records)


def test_sharegpt_prompt_completion_and_eval_shapes(examples, tmp_path):
    sharegpt = lines(write_dataset(examples, tmp_path / "s.jsonl", "sharegpt"))[0]
    assert sharegpt == {
        "conversations": [
            {"from": "system", "value": examples[0].system},
            {"from": "human", "value": examples[0].question},
            {"from": "gpt", "value": examples[0].answer},
        ]
    }
    assert lines(write_dataset(examples, tmp_path / "p.jsonl", "prompt-completion"))[0] == {
        "prompt": examples[0].question,
        "completion": examples[0].answer,
    }
    evaluation = lines(write_dataset(examples, tmp_path / "test.jsonl", "eval"))
    first = examples[0]
    assert evaluation[0] == {
        "id": first.id,
        "question": first.question,
        "expected_answer": first.answer,
        "key_facts": list(first.provenance.key_facts),
        "type": first.qtype,
        "entity_ids": list(first.provenance.entity_ids),
        "negative": first.provenance.negative,
    }


def test_manifest_has_one_line_per_example_in_order(examples, tmp_path):
    dataset = write_dataset(examples, tmp_path / "train.jsonl", "openai")
    path = write_manifest(examples, dataset)
    assert path == tmp_path / "train.jsonl.manifest.jsonl" == manifest_path(dataset)
    entries = read_manifest(dataset)
    assert [e["line"] for e in entries] == list(range(1, len(examples) + 1))
    assert [e["id"] for e in entries] == [e.id for e in examples]
    assert set(entries[0]) == {"line", "id", "type", "entity_ids", "fields", "template", "key_facts", "negative"}
    assert read_manifest(path) == entries


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_format_round_trips_with_its_manifest(examples, tmp_path, fmt):
    path = tmp_path / ("data.json" if fmt == "alpaca" else "data.jsonl")
    write_dataset(examples, path, fmt)
    write_manifest(examples, path)
    back = read_dataset(path, fmt)
    assert [(e.id, e.qtype, e.question, e.answer, e.provenance) for e in back] == [
        (e.id, e.qtype, e.question, e.answer, e.provenance) for e in examples
    ]
    if fmt in ("openai", "alpaca", "sharegpt"):  # the formats that carry the system prompt
        assert back == examples


def test_read_openai_jsonl_needs_a_matching_manifest(examples, tmp_path):
    path = write_dataset(examples, tmp_path / "train.jsonl", "openai")
    with pytest.raises(DatasetError) as caught:
        read_openai_jsonl(path)
    assert caught.value.code == "missing_manifest"
    write_manifest(examples[:-1], path)
    with pytest.raises(DatasetError) as caught:
        read_openai_jsonl(path)
    assert caught.value.code == "manifest_mismatch"
    write_manifest(examples, path)
    assert read_openai_jsonl(path) == examples


def test_files_are_utf8_with_unescaped_accents_and_unix_line_ends(examples, tmp_path):
    for fmt in FORMATS:
        data = write_dataset(examples, tmp_path / f"out.{fmt}", fmt).read_bytes()
        assert b"\r" not in data and "é".encode() in data and b"\\u00e9" not in data
        assert data.endswith(b"\n")
    manifest = write_manifest(examples, tmp_path / "out.openai").read_bytes()
    assert "é".encode() in manifest and b"\\u00e9" not in manifest and b"\r" not in manifest


def test_writing_is_byte_identical_for_the_same_input(examples, tmp_path):
    first = write_dataset(examples, tmp_path / "a.jsonl").read_bytes()
    assert write_dataset(examples, tmp_path / "b.jsonl").read_bytes() == first


def test_unknown_format_and_bad_files_are_refused(examples, tmp_path):
    with pytest.raises(DatasetError) as caught:
        write_dataset(examples, tmp_path / "x", "csv")
    assert caught.value.code == "unknown_format" and "openai" in caught.value.message
    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"messages": []}\nnot json\n', encoding="utf-8")
    write_manifest(examples[:2], broken)
    with pytest.raises(DatasetError) as caught:
        read_openai_jsonl(broken)
    assert caught.value.code == "bad_dataset" and "line 2" in caught.value.message
