"""The shared chat-template function (training and inference), assistant masks, packing and the loss.

A tiny word-level tokenizer with SmolLM2's chat template and a tiny random Llama stand in for the real
model, so these run in seconds without the model cache.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from dyag_llm.local import count_chat_tokens, encode_chat, encode_prompt, render_chat  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "services" / "gpu-lora-trainer" / "src"))

CHATML = (
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + "
    "'<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
WORDS = (
    "system user assistant Tu es un assistant . Quel est le statut de X ? X est en production Et Y abandonnée".split()
)


@pytest.fixture(scope="module")
def tokenizer():
    from tokenizers import Regex, Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {"[UNK]": 0, "<|im_start|>": 1, "<|im_end|>": 2}
    for word in [*WORDS, "\n", " "]:
        vocab.setdefault(word, len(vocab))
    tok = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Split(Regex(r"\n| |[^\s]+"), behavior="isolated")
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, unk_token="[UNK]", eos_token="<|im_end|>", pad_token="<|im_end|>"
    )
    fast.add_special_tokens({"additional_special_tokens": ["<|im_start|>", "<|im_end|>"]})
    fast.chat_template = CHATML
    return fast


CONVERSATION = [
    {"role": "system", "content": "Tu es un assistant ."},
    {"role": "user", "content": "Quel est le statut de X ?"},
    {"role": "assistant", "content": "X est en production ."},
]


def assistant_text(tokenizer, ids, mask) -> str:
    return tokenizer.decode([i for i, m in zip(ids, mask, strict=True) if m])


def test_the_mask_covers_the_answer_and_its_end_of_turn_only(tokenizer):
    ids, mask = encode_chat(tokenizer, CONVERSATION)
    assert tokenizer.decode(ids).replace(" ", "") == render_chat(tokenizer, CONVERSATION).replace(" ", "")
    taught = assistant_text(tokenizer, ids, mask).replace(" ", "")
    assert taught == "Xestenproduction.<|im_end|>\n"
    assert len(ids) == count_chat_tokens(tokenizer, CONVERSATION)


def test_every_assistant_turn_of_a_dialogue_is_taught(tokenizer):
    dialogue = [
        *CONVERSATION,
        {"role": "user", "content": "Et Y ?"},
        {"role": "assistant", "content": "Y est abandonnée ."},
    ]
    ids, mask = encode_chat(tokenizer, dialogue)
    taught = assistant_text(tokenizer, ids, mask).replace(" ", "")
    assert taught == "Xestenproduction.<|im_end|>\nYestabandonnée.<|im_end|>\n"


def test_inference_asks_exactly_as_training_taught(tokenizer):
    """The prompt at inference is the training sequence up to the first taught token."""
    ids, mask = encode_chat(tokenizer, CONVERSATION)
    prompt = encode_prompt(tokenizer, CONVERSATION[:2])
    assert prompt == ids[: mask.index(1)]
    assert encode_prompt(tokenizer, CONVERSATION) == prompt  # a trailing answer is dropped


def tiny_llama(vocab: int):
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=vocab,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=256,
        tie_word_embeddings=True,
    )
    config._attn_implementation = "sdpa"
    return LlamaForCausalLM(config).eval()


def test_the_assistant_only_loss_equals_transformers_loss_on_the_same_labels():
    from dyag_gpu_lora_trainer.engine import assistant_only_loss

    model = tiny_llama(50)
    ids = torch.randint(3, 50, (2, 20))
    labels = ids.clone()
    labels[:, :12] = -100
    labels[1, 15:] = -100
    ours = assistant_only_loss(model, {"input_ids": ids, "labels": labels})
    reference = model(input_ids=ids, labels=labels).loss
    assert torch.allclose(ours, reference, atol=1e-5)
    ours.backward()
    assert model.model.layers[0].self_attn.q_proj.weight.grad is not None


def test_packed_examples_do_not_see_each_other():
    """Position ids restarting per example give a block-diagonal mask: a packed example's logits are its own.

    (transformers builds that mask only without a KV cache: training passes use_cache=False.)
    """
    model = tiny_llama(50)
    a, b = torch.randint(3, 50, (1, 7)), torch.randint(3, 50, (1, 9))
    packed = torch.cat([a, b], dim=1)
    position_ids = torch.cat([torch.arange(7), torch.arange(9)]).unsqueeze(0)
    with torch.no_grad():
        together = model(input_ids=packed, position_ids=position_ids, use_cache=False).logits
        alone = model(input_ids=b, use_cache=False).logits
        leaky = model(input_ids=packed, use_cache=False).logits  # one long sequence: b would see a
    assert torch.allclose(together[0, 7:], alone[0], atol=1e-5)
    assert not torch.allclose(leaky[0, 7:], alone[0], atol=1e-3)


def test_packing_keeps_the_masks_and_fills_rows(tokenizer):
    """The trainer's data path: our masks become labels, BFD packs them into rows of max_seq_len."""
    from datasets import Dataset
    from trl.data_utils import pack_dataset

    ids, mask = encode_chat(tokenizer, CONVERSATION)
    n = len(ids)
    data = Dataset.from_dict(
        {"input_ids": [ids] * 6, "labels": [[t if m else -100 for t, m in zip(ids, mask, strict=True)]] * 6}
    )
    packed = pack_dataset(data, 3 * n, "bfd")
    assert len(packed) == 2 and all(sum(row) == 3 * n for row in packed["seq_lengths"])
    row = packed[0]
    assert sum(1 for label in row["labels"] if label != -100) == 3 * sum(mask)


def test_a_partial_checkpoint_is_never_resumed_from(tmp_path):
    from dyag_gpu_lora_trainer.engine import last_complete_checkpoint

    folder = tmp_path / "checkpoints"
    good, partial = folder / "checkpoint-4", folder / "checkpoint-6"
    for path in (good, partial):
        path.mkdir(parents=True)
    for name in ("trainer_state.json", "optimizer.pt", "scheduler.pt", "adapter_model.safetensors"):
        (good / name).write_text("{}")
    (partial / "adapter_model.safetensors").write_text("x")  # killed while saving
    assert last_complete_checkpoint(folder) == good
    assert not partial.exists()
    assert last_complete_checkpoint(tmp_path / "none") is None


def test_cpu_precision_falls_back_where_bf16_is_not_native(monkeypatch):
    from dyag_core.training import TrainingConfig
    from dyag_gpu_lora_trainer import engine

    monkeypatch.setattr(engine, "cpu_has_bf16", lambda: False)
    hw = engine.pick_hardware(TrainingConfig().resolve(10), device="cpu")
    assert (hw.device, hw.precision, hw.use_unsloth, hw.load_in_4bit) == ("cpu", "fp32", False, False)
    monkeypatch.setattr(engine, "cpu_has_bf16", lambda: True)
    assert engine.pick_hardware(TrainingConfig().resolve(10), device="cpu").precision == "bf16"
    hw = engine.pick_hardware(
        TrainingConfig.from_dict({"precision": "fp16", "use_unsloth": True, "load_in_4bit": True}).resolve(10),
        device="cpu",
    )
    assert hw.precision == "bf16" and not hw.use_unsloth and not hw.load_in_4bit and len(hw.notes) == 3


def test_packed_rows_are_stacked_with_positions_restarting_per_example():
    from dyag_gpu_lora_trainer.engine import PackedRowsCollator, packing_plan

    rows = [
        {"input_ids": [5, 6, 7, 8, 9], "labels": [-100, 6, 7, -100, 9], "seq_lengths": [3, 2]},
        {"input_ids": [5, 6, 7], "labels": [5, 6, 7], "seq_lengths": [3]},
    ]
    batch = PackedRowsCollator(pad_token_id=0)(rows)
    assert batch["input_ids"].tolist() == [[5, 6, 7, 8, 9], [5, 6, 7, 0, 0]]
    assert batch["position_ids"].tolist() == [[0, 1, 2, 0, 1], [0, 1, 2, 0, 1]]
    # no label on an example's first token (nothing learnt across a boundary) nor on padding
    assert batch["labels"].tolist() == [[-100, 6, 7, -100, 9], [-100, 6, 7, -100, -100]]
    assert packing_plan(76, 256, 1) == (256, 1)
    assert packing_plan(300, 1024, 0) == (320, 3)
    assert packing_plan(80, 1024, 0) == (256, 4)
