"""Bad input to an export ends with a clear error, before anything is written: an adapter whose base model
doesn't match, a missing or damaged adapter file, an unsupported architecture (named, with the supported
list), a disk too small for the outputs (the free-space check is injected), an unknown quantization.

The models here are tiny folders written by the tests (a random 2-layer Llama, adapters of zeros with the
default model's shapes): only headers and configs are read, so these run in seconds.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
from safetensors.torch import save_file  # noqa: E402

from dyag_core.evaluation import EvalCase  # noqa: E402
from dyag_core.export import ExportError, check_free_space, parse_quantizations, space_needed  # noqa: E402
from dyag_model_exporter.engine import Exporter, ExportInputs, ExportOptions  # noqa: E402

SMOL_HIDDEN, SMOL_KV, SMOL_LAYERS = 576, 192, 30  # SmolLM2-135M: hidden size, k/v projection width, layers
PROBES = (
    EvalCase(
        "p1",
        "Quel est le domaine de INSPECTA ?",
        "Risques naturels et technologiques",
        ("Risques naturels et technologiques",),
    ),
)


def tiny_llama(folder: Path, *, hidden: int = 64, architecture: str = "LlamaForCausalLM") -> Path:
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(
        hidden_size=hidden,
        intermediate_size=2 * hidden,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        vocab_size=256,
        max_position_embeddings=128,
    )
    torch.manual_seed(0)
    LlamaForCausalLM(config).save_pretrained(folder)
    if architecture != "LlamaForCausalLM":
        data = json.loads((folder / "config.json").read_text())
        data["architectures"] = [architecture]
        (folder / "config.json").write_text(json.dumps(data))
    return folder


def lora_adapter(folder: Path, base_name: str, *, hidden: int, kv: int, layers: int, r: int = 4) -> Path:
    """A LoRA adapter of zeros with the shapes peft writes for q_proj and v_proj."""
    folder.mkdir(parents=True, exist_ok=True)
    tensors = {}
    for layer in range(layers):
        for module, out in (("q_proj", hidden), ("v_proj", kv)):
            prefix = f"base_model.model.model.layers.{layer}.self_attn.{module}"
            tensors[f"{prefix}.lora_A.weight"] = torch.zeros(r, hidden)
            tensors[f"{prefix}.lora_B.weight"] = torch.zeros(out, r)
    save_file(tensors, folder / "adapter_model.safetensors")
    (folder / "adapter_config.json").write_text(
        json.dumps(
            {
                "peft_type": "LORA",
                "base_model_name_or_path": base_name,
                "r": r,
                "lora_alpha": 2 * r,
                "target_modules": ["q_proj", "v_proj"],
                "task_type": "CAUSAL_LM",
            }
        )
    )
    return folder


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    return tiny_llama(tmp_path_factory.mktemp("models") / "tiny-llama")


@pytest.fixture(scope="module")
def smol_base() -> Path:
    from dyag_llm.local import default_model_path

    return default_model_path()


def exporter(workdir: Path, *, free: int = 10**15, supported=("LlamaForCausalLM", "MistralForCausalLM")) -> Exporter:
    return Exporter(workdir, free_space=lambda _: free, supported=lambda: list(supported), log=lambda *a: None)


def check(workdir: Path, base: Path, adapter: Path | None, **kwargs) -> dict:
    return exporter(workdir, **kwargs).check(ExportInputs("test", base, adapter), ExportOptions(probes=PROBES))


def refused(code: str, *args, **kwargs) -> str:
    with pytest.raises(ExportError) as caught:
        check(*args, **kwargs)
    assert caught.value.code == code, caught.value.message
    return caught.value.message


# --- the adapter against its base model --------------------------------------------------------------


def test_an_adapter_of_another_base_model_is_refused(tmp_path, tiny, smol_base):
    adapter = lora_adapter(tmp_path / "adapter", str(smol_base), hidden=SMOL_HIDDEN, kv=SMOL_KV, layers=2)
    message = refused("adapter_base_mismatch", tmp_path / "work", tiny, adapter)
    assert "SmolLM2-135M-Instruct" in message and "tiny-llama" in message  # both models named
    assert "lora_A.weight has shape [4, 576]" in message and "[64, 64]" in message  # what does not fit, in numbers
    assert not (tmp_path / "work").exists() or not any((tmp_path / "work").iterdir())  # nothing written


def test_an_adapter_of_the_same_shapes_but_another_model_name_is_refused(tmp_path, tiny):
    other = tiny_llama(tmp_path / "other-tiny-model")
    adapter = lora_adapter(tmp_path / "adapter", str(other), hidden=64, kv=32, layers=2)
    message = refused("adapter_base_mismatch", tmp_path / "work", tiny, adapter)
    assert "trained on 'other-tiny-model'" in message and "not on 'tiny-llama'" in message


def test_the_adapter_of_the_right_base_passes_the_checks(tmp_path, tiny):
    adapter = lora_adapter(tmp_path / "adapter", "/elsewhere/on/the/trainer/tiny-llama", hidden=64, kv=32, layers=2)
    plan = check(tmp_path / "work", tiny, adapter)
    assert plan["architecture"] == "LlamaForCausalLM" and plan["parameters"] > 0


@pytest.mark.parametrize("missing", ["adapter_model.safetensors", "adapter_config.json"])
def test_a_missing_adapter_file_is_named(tmp_path, tiny, missing):
    adapter = lora_adapter(tmp_path / "adapter", str(tiny), hidden=64, kv=32, layers=2)
    (adapter / missing).unlink()
    message = refused("adapter_missing", tmp_path / "work", tiny, adapter)
    assert missing in message


def test_a_missing_adapter_folder_is_named(tmp_path, tiny):
    assert "no LoRA adapter folder" in refused("adapter_missing", tmp_path / "work", tiny, tmp_path / "nowhere")


def test_a_truncated_adapter_file_is_refused(tmp_path, tiny):
    adapter = lora_adapter(tmp_path / "adapter", str(tiny), hidden=64, kv=32, layers=2)
    weights = adapter / "adapter_model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-100])
    message = refused("adapter_corrupt", tmp_path / "work", tiny, adapter)
    assert "damaged or truncated" in message and "adapter_model.safetensors" in message


@pytest.mark.parametrize(
    ("content", "phrase"),
    [
        (b"\x00\x00", "too short"),
        (b"garbage that is not a safetensors file at all", "not a safetensors file"),
        ((20).to_bytes(8, "little") + b"{not json at all!!!}", "header is not JSON"),
    ],
    ids=["short", "garbage", "bad-header"],
)
def test_a_damaged_adapter_file_is_refused(tmp_path, tiny, content, phrase):
    adapter = lora_adapter(tmp_path / "adapter", str(tiny), hidden=64, kv=32, layers=2)
    (adapter / "adapter_model.safetensors").write_bytes(content)
    assert phrase in refused("adapter_corrupt", tmp_path / "work", tiny, adapter)


def test_a_damaged_adapter_config_is_refused(tmp_path, tiny):
    adapter = lora_adapter(tmp_path / "adapter", str(tiny), hidden=64, kv=32, layers=2)
    (adapter / "adapter_config.json").write_text('{"peft_type": "LORA", "r": ')
    assert "adapter_config.json of the adapter is not valid JSON" in refused(
        "adapter_corrupt", tmp_path / "work", tiny, adapter
    )
    (adapter / "adapter_config.json").write_text('{"peft_type": "PREFIX_TUNING"}')
    assert "PREFIX_TUNING" in refused("adapter_corrupt", tmp_path / "work", tiny, adapter)


# --- architecture, disk, options ----------------------------------------------------------------------


def test_an_unsupported_architecture_is_named_with_the_supported_list(tmp_path):
    """Against llama.cpp's own list (convert_hf_to_gguf.py --print-supported-models)."""
    pytest.importorskip(
        "ik_llama_cpp", reason="ik-llama-cpp-python is not installed: pip install 'dyag-model-exporter[llama]'"
    )
    from dyag_model_exporter.llama import find_llama_cpp, supported_architectures

    model = tiny_llama(tmp_path / "fancy", architecture="FancyNetForCausalLM")
    ex = Exporter(tmp_path / "work", free_space=lambda _: 10**15, log=lambda *a: None)
    with pytest.raises(ExportError) as caught:
        ex.check(ExportInputs("fancy", model, None), ExportOptions(probes=PROBES))
    message = caught.value.message
    supported = supported_architectures(find_llama_cpp())
    assert caught.value.code == "unsupported_architecture"
    assert "'FancyNetForCausalLM' is not supported by llama.cpp's converter" in message
    assert "LlamaForCausalLM" in supported and "Qwen2ForCausalLM" in supported and len(supported) > 50
    assert f"supported architectures ({len(supported)}): " in message and ", LlamaForCausalLM, " in message


def test_a_disk_too_small_is_refused_before_anything_is_written(tmp_path, tiny, smol_base):
    adapter = lora_adapter(tmp_path / "adapter", str(smol_base), hidden=SMOL_HIDDEN, kv=SMOL_KV, layers=SMOL_LAYERS)
    work = tmp_path / "work"
    with pytest.raises(ExportError) as caught:
        exporter(work, free=50 * 1024 * 1024).run(
            ExportInputs("default", smol_base, adapter), ExportOptions(quantizations=("q8_0", "q4_K_M"), probes=PROBES)
        )
    message = caught.value.message
    assert caught.value.code == "disk_full"
    assert (
        "needs about" in message
        and "50.0 MB free" in message
        and "GGUF q4_K_M" in message
        and "Nothing was written" in message
    )
    assert caught.value.details["needed_bytes"] > 2 * 538_000_000  # the merged folder twice at least
    assert not any(work.rglob("*.gguf")) and not (work / "merged").exists()


def test_the_space_estimate_covers_each_output():
    needed = space_needed(
        base_parameters=134_515_008,
        merged_bytes=538_090_408,
        quantizations=["q8_0", "q4_K_M"],
        adapter_parameters=1_000_000,
        base_gguf=["f16", "q8_0"],
        copies=2,
    )
    names = [name for name, _ in needed.parts]
    assert names == [
        "merged safetensors",
        "GGUF f16",
        "GGUF q8_0",
        "GGUF q4_K_M",
        "base GGUF f16",
        "base GGUF q8_0",
        "adapter GGUF",
    ]
    sizes = dict(needed.parts)
    # measured on SmolLM2-135M: f16 270 MB, q8_0 144 MB, q4_K_M 105 MB; the estimate is never below
    assert (
        sizes["GGUF f16"] >= 270_273_824 and sizes["GGUF q8_0"] >= 144_198_944 and sizes["GGUF q4_K_M"] >= 104_842_016
    )
    assert needed.total == 2 * sum(sizes.values())
    check_free_space(needed, needed.total, "/data")  # exactly enough is enough
    with pytest.raises(ExportError):
        check_free_space(needed, needed.total - 1, "/data")


def test_an_unknown_quantization_is_refused_with_the_list():
    assert parse_quantizations(["Q8_0", "q4_k_m,f16", "q8_0"]) == ("q8_0", "q4_K_M", "f16")
    assert parse_quantizations([]) == ("q8_0",)
    with pytest.raises(ExportError) as caught:
        parse_quantizations(["q3_K_S"])
    assert caught.value.code == "unknown_quantization" and "f16, q8_0, q4_K_M" in caught.value.message


def test_no_probe_means_no_export(tmp_path, tiny):
    with pytest.raises(ExportError) as caught:
        exporter(tmp_path / "work").check(ExportInputs("tiny", tiny, None), ExportOptions(probes=()))
    assert caught.value.code == "no_probes"


def test_a_folder_that_is_not_a_model_is_refused(tmp_path):
    (tmp_path / "empty").mkdir()
    assert "no config.json" in refused("unsupported_model", tmp_path / "work", tmp_path / "empty", None)
    (tmp_path / "not-a-model").mkdir()
    (tmp_path / "not-a-model" / "config.json").write_text("{}")
    assert "no safetensors weights" in refused("unsupported_model", tmp_path / "work", tmp_path / "not-a-model", None)


def test_a_quantizer_failure_names_what_llama_quantize_said_and_leaves_no_part_file(tmp_path):
    """ik_llama.cpp's llama-quantize on a file that is not a GGUF: an ExportError with the tool's last lines."""
    pytest.importorskip(
        "ik_llama_cpp", reason="ik-llama-cpp-python is not installed: pip install 'dyag-model-exporter[llama]'"
    )
    from dyag_model_exporter.llama import quantize_in_child

    source = tmp_path / "model-f16.gguf"
    source.write_bytes(b"not a gguf at all" * 64)
    with pytest.raises(ExportError) as caught:
        quantize_in_child(source, tmp_path / "model-q8_0.gguf", "q8_0", log=lambda *a: None)
    assert caught.value.code == "conversion_failed" and "llama-quantize (Q8_0) failed" in caught.value.message
    assert "failed to quantize" in caught.value.message, caught.value.message
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model-f16.gguf"]
