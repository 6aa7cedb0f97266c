"""The LoRA training schema, the guide's Annex A presets, and the input checks (dyag_core.training)."""

from __future__ import annotations

import json

import pytest

from dyag_core.training import (
    PRESETS,
    ChatExample,
    TrainingConfig,
    TrainingInputError,
    check_lengths,
    parse_chat_jsonl,
    preset_for_size,
)


def line(question: str = "Quel est le statut de X ?", answer: str = "X est en production.") -> str:
    return json.dumps(
        {
            "messages": [
                {"role": "system", "content": "s"},
                {"role": "user", "content": question},
                {"role": "assistant", "content": answer},
            ]
        },
        ensure_ascii=False,
    )


@pytest.mark.parametrize(
    ("n", "preset"), [(1, "small"), (499, "small"), (500, "medium"), (2000, "medium"), (2001, "large")]
)
def test_auto_preset_follows_annex_a_by_dataset_size(n, preset):
    assert preset_for_size(n).name == preset
    resolved = TrainingConfig().resolve(n)
    assert resolved.preset == preset
    p = PRESETS[preset]
    assert (resolved.r, resolved.lora_alpha, resolved.lora_dropout, resolved.learning_rate, resolved.epochs) == (
        p.r,
        p.lora_alpha,
        p.lora_dropout,
        p.learning_rate,
        p.epochs,
    )
    assert "Annex A" in resolved.preset_reason


def test_annex_a_values():
    assert (
        PRESETS["small"].r,
        PRESETS["small"].lora_alpha,
        PRESETS["small"].lora_dropout,
        PRESETS["small"].learning_rate,
    ) == (8, 16, 0.1, 3e-4)
    assert (
        PRESETS["medium"].r,
        PRESETS["medium"].lora_alpha,
        PRESETS["medium"].lora_dropout,
        PRESETS["medium"].learning_rate,
    ) == (16, 32, 0.05, 2e-4)
    assert (
        PRESETS["large"].r,
        PRESETS["large"].lora_alpha,
        PRESETS["large"].lora_dropout,
        PRESETS["large"].learning_rate,
    ) == (32, 64, 0.01, 1e-4)


def test_every_preset_value_can_be_overridden_and_the_source_is_said():
    config = TrainingConfig.from_dict(
        {"preset": "large", "r": 4, "lora_alpha": 8, "lora_dropout": 0.0, "learning_rate": 1e-3, "epochs": 1}
    )
    resolved = config.resolve(10)
    assert (
        resolved.preset,
        resolved.r,
        resolved.lora_alpha,
        resolved.lora_dropout,
        resolved.learning_rate,
        resolved.epochs,
    ) == ("large", 4, 8, 0.0, 1e-3, 1)
    assert set(resolved.sources.values()) >= {"given"}
    assert TrainingConfig.from_dict({"preset": "large", "r": 4}).resolve(10).sources["lora_alpha"] == "preset large"


def test_json_numbers_are_coerced_and_strings_accepted():
    config = TrainingConfig.from_dict(
        {"epochs": 3.0, "r": 16.0, "packing": "false", "target_modules": "q_proj, v_proj", "seed": None}
    )
    assert (
        config.epochs == 3
        and config.r == 16
        and config.packing is False
        and config.target_modules == ("q_proj", "v_proj")
    )
    assert config.seed == 42
    assert TrainingConfig.from_dict(config.to_dict()) == config


@pytest.mark.parametrize(
    ("options", "phrase"),
    [
        ({"lr": 1e-3}, "unknown training option(s): lr"),
        ({"r": 0}, "r must be at least 1"),
        ({"learning_rate": 2}, "learning_rate must be between 0 and 1"),
        ({"lora_dropout": 1.5}, "lora_dropout must be in [0, 1)"),
        ({"preset": "huge"}, "preset must be auto, small, medium, large or knowledge"),
        ({"precision": "int8"}, "precision must be one of auto, bf16, fp16, fp32"),
        ({"max_seq_len": 4}, "max_seq_len must be between 16"),
        ({"epochs": 2.5}, "training option epochs has a bad value 2.5"),
        ({"base_model": "  "}, "base_model is empty"),
        ({"target_modules": []}, "target_modules must name at least one module"),
        ({"checkpoint_steps": 0}, "checkpoint_steps and logging_steps must be at least 1"),
    ],
)
def test_bad_options_are_named(options, phrase):
    with pytest.raises(TrainingInputError) as caught:
        TrainingConfig.from_dict(options)
    assert caught.value.code == "invalid_config" and phrase in caught.value.message


def test_several_problems_are_reported_together():
    with pytest.raises(TrainingInputError) as caught:
        TrainingConfig.from_dict({"r": 0, "learning_rate": 5})
    assert "r must be at least 1" in caught.value.message and "learning_rate" in caught.value.message


def test_total_steps():
    resolved = TrainingConfig.from_dict({"epochs": 3, "batch_size": 2}).resolve(10)
    assert resolved.total_steps(5) == 9  # ceil(5 / 2) x 3
    assert TrainingConfig.from_dict({"max_steps": 7}).resolve(10).total_steps(100) == 7


# --- input checks -------------------------------------------------------------------------------
def test_a_good_file_parses_with_line_numbers():
    data = (line() + "\n\n" + line("Q2 ?", "R2.") + "\n").encode()
    examples = parse_chat_jsonl(data)
    assert [e.line for e in examples] == [1, 3]
    assert examples[1].messages[-1] == {"role": "assistant", "content": "R2."}


@pytest.mark.parametrize("data", [b"", b"\n  \n", b""])
def test_an_empty_dataset_is_refused(data):
    with pytest.raises(TrainingInputError) as caught:
        parse_chat_jsonl(data, "train")
    assert caught.value.code == "empty_dataset" and "train dataset is empty" in caught.value.message


def test_malformed_lines_are_all_named():
    rows = [
        line(),
        "{not json",
        json.dumps({"text": "no messages"}),
        json.dumps({"messages": [{"role": "user", "content": "q"}]}),
        json.dumps({"messages": [{"role": "robot", "content": "q"}, {"role": "assistant", "content": "a"}]}),
        json.dumps({"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": 3}]}),
        json.dumps({"messages": [{"role": "assistant", "content": "a"}, {"role": "user", "content": "q"}]}),
        json.dumps([1, 2]),
    ]
    with pytest.raises(TrainingInputError) as caught:
        parse_chat_jsonl("\n".join(rows))
    error = caught.value
    assert error.code == "malformed_dataset" and "7 malformed line(s)" in error.message
    assert error.details["lines"] == [2, 3, 4, 5, 6, 7, 8]
    for phrase in (
        "line 2: not JSON",
        'line 3: no "messages"',
        "line 4: no assistant answer",
        "line 5: message 1 has role 'robot'",
        "line 6: message 2 has no text content",
        "line 7: the last message is not the assistant's answer",
        "line 8: not a JSON object",
    ):
        assert phrase in error.message


def test_too_long_examples_are_reported_with_their_lines_not_cut():
    examples = [ChatExample(line, []) for line in (1, 2, 5, 9)]
    check_lengths(examples, [10, 64, 12, 3], 64)  # exactly max_seq_len is fine
    with pytest.raises(TrainingInputError) as caught:
        check_lengths(examples, [10, 65, 12, 300], 64, "validation")
    error = caught.value
    assert error.code == "examples_too_long" and error.details["lines"] == [2, 9]
    assert "2 example(s) of the validation dataset are longer than max_seq_len=64" in error.message
    assert (
        "line 2 (65 tokens)" in error.message and "line 9 (300 tokens)" in error.message and "not cut" in error.message
    )


def test_the_knowledge_preset_sizes_epochs_by_exposures_per_fact():
    from dyag_core.training.config import EXPOSURES_PER_FACT

    one_phrasing = TrainingConfig(preset="knowledge").resolve(100, 100)
    assert one_phrasing.epochs == EXPOSURES_PER_FACT and one_phrasing.target_modules == ("all-linear",)
    five_phrasings = TrainingConfig(preset="knowledge").resolve(500, 100)
    assert (
        five_phrasings.epochs == EXPOSURES_PER_FACT // 5 and "30 exposures per fact" in five_phrasings.sources["epochs"]
    )
    assert "100 facts, 5.0 phrasings each" in five_phrasings.preset_reason
    assert TrainingConfig(preset="knowledge", epochs=2).resolve(500, 100).epochs == 2  # given values still win


def test_facts_are_the_distinct_answers_of_a_split():
    from dyag_core.training import count_facts, parse_chat_jsonl

    examples = parse_chat_jsonl(
        "\n".join([line("Statut de X ?"), line("X est-il en service ?"), line("Domaine de X ?", "X relève de l'eau.")])
    )
    assert count_facts(examples) == 2
