"""A run that continues a registered model: the adapter's shape wins, the base model must match, the weights load."""

from __future__ import annotations

import pytest

from dyag_core.errors import DyagError
from dyag_core.training import TrainingConfig, continued_config
from dyag_gpu_lora_trainer.continuation import base_model_key, continued_base_model

INITIAL = {
    "id": "lora-0123456789abcdef",
    "name": "facts",
    "base_model": "default",
    "base_model_resolved": "/cache/models/SmolLM2-135M-Instruct",
    "hyperparameters": {"r": 16, "lora_alpha": 32, "lora_dropout": 0.1, "target_modules": ["all-linear"]},
}


def resolved(**options):
    return TrainingConfig.from_dict(options).resolve(12)


def test_the_adapter_s_shape_wins_and_what_was_asked_otherwise_is_said():
    asked = {"r": 8, "lora_alpha": 32, "learning_rate": 1e-3, "target_modules": ["q_proj", "v_proj"]}
    config, notes = continued_config(resolved(**asked), INITIAL["hyperparameters"], asked, INITIAL["id"])
    assert (config.r, config.lora_alpha, config.lora_dropout) == (16, 32, 0.1)
    assert config.target_modules == ("all-linear",)
    assert config.learning_rate == 1e-3  # not a shape: the run's own
    assert config.sources["r"] == f"initial model {INITIAL['id']}"
    assert notes == [
        f"r=8 asked, but a run that continues {INITIAL['id']} keeps its adapter's r=16",
        f"target_modules=q_proj,v_proj asked, but a run that continues {INITIAL['id']} keeps its adapter's "
        "target_modules=all-linear",
    ]  # lora_alpha was asked the same; lora_dropout came from the preset, not asked: no note


def test_nothing_asked_nothing_said_and_module_order_does_not_matter():
    initial = {"r": 8, "lora_alpha": 16, "lora_dropout": 0.05, "target_modules": ["q_proj", "k_proj"]}
    config, notes = continued_config(resolved(), initial, {}, "lora-x")
    assert (config.r, config.lora_alpha, config.target_modules) == (8, 16, ("q_proj", "k_proj"))
    _, notes = continued_config(resolved(), initial, {"target_modules": ["k_proj", "q_proj"], "r": 8}, "lora-x")
    assert notes == []


def test_an_initial_model_without_a_recorded_shape_keeps_the_run_s_values():
    config, notes = continued_config(resolved(r=4), {}, {"r": 4}, "lora-x")
    assert config.r == 4 and notes == []


def test_the_base_model_is_taken_from_the_initial_model_when_unset():
    assert continued_base_model({"r": 8}, INITIAL) == {"r": 8, "base_model": "default"}
    for same in ("default", "SmolLM2", "HuggingFaceTB/SmolLM2-135M-Instruct", "/cache/models/SmolLM2-135M-Instruct"):
        assert continued_base_model({"base_model": same}, INITIAL) == {"base_model": same}


@pytest.mark.parametrize("other", ["qwen2.5-0.5b", "smollm2-135m", "/elsewhere/model", "org/other-model"])
def test_another_base_model_is_refused_naming_both(other):
    with pytest.raises(DyagError) as caught:
        continued_base_model({"base_model": other}, INITIAL)
    error = caught.value
    assert error.code == "base_model_mismatch"
    assert repr(other) in error.message and "'default'" in error.message and INITIAL["id"] in error.message


def test_base_model_keys():
    assert base_model_key("") == base_model_key("default") == base_model_key(" smollm2-135m-instruct ") == "default"
    assert base_model_key("qwen2.5-0.5b") == "qwen2.5-0.5b"
    assert base_model_key("/a/b/../c") == "/a/c"
    assert base_model_key("org/model") == "org/model"


def test_the_engine_starts_from_the_initial_adapter_s_weights_trainable(tmp_path):
    """A tiny random Llama and an adapter with non-zero B: the continued run's model carries those very weights."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import LlamaConfig, LlamaForCausalLM

    from dyag_gpu_lora_trainer.engine import LoraTrainer

    torch.manual_seed(0)
    tiny = LlamaConfig(
        vocab_size=64,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=1,
        num_attention_heads=4,
        num_key_value_heads=4,
        max_position_embeddings=64,
    )
    LlamaForCausalLM(tiny).save_pretrained(tmp_path / "base")
    adapted = get_peft_model(
        LlamaForCausalLM.from_pretrained(tmp_path / "base"),
        LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM"),
    )
    with torch.no_grad():
        for name, param in adapted.named_parameters():
            if "lora_B" in name:
                param.normal_()
    saved = {n: p.detach().clone() for n, p in adapted.named_parameters() if "lora_" in n}
    adapted.save_pretrained(tmp_path / "adapter")

    config = resolved(r=16, target_modules=["all-linear"])  # another shape asked: the adapter's is loaded
    trainer = LoraTrainer(
        config, str(tmp_path / "base"), tmp_path / "work", device="cpu", init_adapter=str(tmp_path / "adapter")
    )
    logs: list[str] = []
    trainer.log = logs.append
    model, peft_config = trainer._model()
    assert peft_config is None  # no fresh LoRA on top
    loaded = {n: p for n, p in model.named_parameters() if "lora_" in n}
    assert set(loaded) == set(saved)
    assert all(torch.equal(loaded[n], saved[n]) for n in saved)
    assert all(p.requires_grad for p in loaded.values())
    assert model.peft_config["default"].r == 4
    assert any("starting from the adapter in" in line and "trainable parameters" in line for line in logs)


def test_the_loss_history_keeps_each_logged_loss_and_evaluation_and_drops_the_summary():
    from dyag_gpu_lora_trainer.service import loss_points

    history = [
        {"loss": 3.6, "grad_norm": 0.9, "step": 1, "epoch": 0.1},
        {"loss": 3.4, "step": 2},
        {"eval_loss": 3.0, "eval_runtime": 30.1, "step": 2},
        {"train_runtime": 50.5, "train_loss": 3.5, "step": 2},  # the trainer's summary: neither loss
    ]
    assert loss_points(history) == [
        {"step": 1, "loss": 3.6},
        {"step": 2, "loss": 3.4},
        {"step": 2, "eval_loss": 3.0},
    ]
