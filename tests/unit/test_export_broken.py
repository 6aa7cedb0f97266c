"""The parity gate on the sample's fine-tuned model (SmolLM2-135M + a LoRA trained on the sample catalog as `dyag run`
trains it on CPU): an honest q8_0 and q4_K_M pass, and each broken conversion fails, naming the measure that caught it:

    wrong chat template      the GGUF's tokenizer.chat_template replaced (llama.cpp's gguf_new_metadata.py)
    missing chat template    removed
    tokenizer mismatch       the GGUF's pre-tokenizer set to llama.cpp's "default" instead of "smollm"
    corrupted tensor         one layer's ffn_down zeroed in the file
    missing LoRA tensors     the GGUF made from the base model (the adapter never merged)
    swapped LoRA tensors     the adapter's layers merged in reverse order (layer i's tensors on layer N-1-i)
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow
torch = pytest.importorskip("torch")
pytest.importorskip("peft")
pytest.importorskip("ik_llama_cpp")

from dyag_core.catalog.loader import load_catalog_file  # noqa: E402
from dyag_core.dataset.generate import generate  # noqa: E402
from dyag_core.dataset.split import split_examples  # noqa: E402
from dyag_core.evaluation import EvalCase  # noqa: E402
from dyag_core.export import choose_probes  # noqa: E402
from tests.unit.test_export_chain import one_torch_thread  # noqa: E402

SYSTEM = "Tu es un assistant expert en applications du système d'information français."
SAMPLE = Path(__file__).resolve().parents[2] / "examples/test-mygusi/applicationsIA_mini_normalized.json"
WRONG_TEMPLATE = "{% for m in messages %}[INST] {{ m['content'] }} [/INST]{% endfor %}"


@pytest.fixture(scope="module")
def sample_split():
    return split_examples(generate(load_catalog_file(SAMPLE)))


@pytest.fixture(scope="module")
def adapter(sample_split, tmp_path_factory) -> Path:
    """A LoRA on the sample catalog's training split with `dyag run`'s CPU settings (the "knowledge" preset: r 32,
    alpha 64, learning rate 1e-3), 8 steps of 4 examples."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from dyag_llm.local import default_model_path, encode_chat, load_tokenizer, padded_batch

    torch.manual_seed(0)
    base = default_model_path()
    tokenizer = load_tokenizer(str(base))
    model = get_peft_model(
        AutoModelForCausalLM.from_pretrained(str(base), dtype=torch.float32),
        LoraConfig(r=32, lora_alpha=64, lora_dropout=0.0, task_type="CAUSAL_LM", target_modules="all-linear"),
    )
    rows = [
        encode_chat(
            tokenizer,
            [
                {"role": "system", "content": SYSTEM},
                {"role": "user", "content": e.question},
                {"role": "assistant", "content": e.answer},
            ],
        )
        for e in sample_split.train[:32]
    ]
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-3)
    model.train()
    with one_torch_thread():
        for step in range(8):
            batch = rows[step * 4 : step * 4 + 4]
            loss = model(**padded_batch(batch, tokenizer.pad_token_id)).loss
            loss.backward()
            optimizer.step()
            optimizer.zero_grad()
    folder = tmp_path_factory.mktemp("sample-lora") / "adapter"
    model.save_pretrained(folder)
    return folder


def options(probes, **more):
    from dyag_model_exporter.engine import ExportOptions

    return ExportOptions(system_prompt=SYSTEM, probes=probes, greedy_probes=2, scored_tokens=512, **more)


@pytest.fixture(scope="module")
def probes(sample_split):
    cases = [EvalCase.from_example(e) for e in sample_split.test]
    return choose_probes(cases, len(cases))


@pytest.fixture(scope="module")
def honest(adapter, probes, tmp_path_factory):
    """`dyag export MODEL --gguf q8_0,q4_K_M`'s work: merge, convert, quantize, parity gate."""
    from dyag_llm.local import default_model_path
    from dyag_model_exporter.engine import Exporter, ExportInputs

    with one_torch_thread():
        return Exporter(tmp_path_factory.mktemp("honest"), log=lambda *a: None).run(
            ExportInputs("default", default_model_path(), adapter),
            options(probes, quantizations=("q8_0", "q4_K_M")),
        )


def test_an_honest_q8_0_and_q4_k_m_of_the_sample_model_pass(honest):
    assert honest.passed, honest.failure()
    q8, q4 = honest.parity
    for report in (q8, q4):
        f = report.fidelity
        assert f.tokens >= 512 and report.checks.same_tokens == report.checks.conversations > 1
        assert report.checks.chat_template == "same" and report.checks.adapter.verdict == "present"
        assert f.mean_kld <= report.limits.max_mean_kld and f.top1_agreement >= report.limits.min_top1_agreement
    # 4 bits lose more than 8, measurably: the measures see the quantization, not greedy decoding's luck.
    assert q8.fidelity.mean_kld < q4.fidelity.mean_kld and q8.fidelity.top1_agreement > q4.fidelity.top1_agreement
    assert q8.fidelity.perplexity_ratio < q4.fidelity.perplexity_ratio
    saved = json.loads((honest.folder / "parity.json").read_text())
    assert [r["quantization"] for r in saved] == ["q8_0", "q4_K_M"] and saved[0]["limits"]["max_mean_kld"] == 0.03
    assert "| q8_0 | " in (honest.folder / "README.md").read_text()


def new_metadata(source: Path, target: Path, *args: str) -> Path:
    """A copy of a GGUF with other metadata, by llama.cpp's own gguf_new_metadata.py."""
    from dyag_model_exporter.llama import find_llama_cpp

    script = find_llama_cpp().scripts / "gguf-py" / "gguf" / "scripts" / "gguf_new_metadata.py"
    done = subprocess.run(
        [sys.executable, str(script), str(source), str(target), "--force", *args], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return target


def zero_tensor(source: Path, target: Path, name: str) -> Path:
    from gguf import GGUFReader

    shutil.copy(source, target)
    tensor = next(t for t in GGUFReader(str(target)).tensors if t.name == name)
    offset = GGUFReader(str(target)).data_offset + tensor.data_offset
    with open(target, "r+b") as f:
        f.seek(offset)
        f.write(bytes(int(tensor.n_bytes)))
    return target


def reversed_layers(adapter: Path, target: Path) -> Path:
    """The adapter with layer i's LoRA tensors stored as layer N-1-i's (a converter that mapped the layers wrong)."""
    import re

    from safetensors.torch import load_file, save_file

    tensors = load_file(str(adapter / "adapter_model.safetensors"))
    layers = 1 + max(int(m.group(1)) for k in tensors if (m := re.search(r"\.layers\.(\d+)\.", k)))
    swapped = {
        re.sub(r"\.layers\.(\d+)\.", lambda m: f".layers.{layers - 1 - int(m.group(1))}.", k): v
        for k, v in tensors.items()
    }
    target.mkdir(parents=True)
    save_file(swapped, str(target / "adapter_model.safetensors"))
    shutil.copy(adapter / "adapter_config.json", target)
    return target


@pytest.fixture(scope="module")
def broken(honest, adapter, probes, tmp_path_factory):
    """Each broken GGUF through the gate, against the HF model the honest export merged."""
    from dyag_llm.local import default_model_path
    from dyag_model_exporter.engine import Exporter, ExportInputs

    work = tmp_path_factory.mktemp("broken")
    q8 = honest.folder / "model-q8_0.gguf"
    base = default_model_path()
    with one_torch_thread():
        base_gguf = Exporter(work / "base", log=lambda *a: None).quantize(
            Exporter(work / "base", log=lambda *a: None).convert(base), "q8_0"
        )
        swapped_adapter = reversed_layers(adapter, work / "swapped-adapter")
        swap = Exporter(work / "swapped", log=lambda *a: None)
        merged = swap.merge(
            ExportInputs("default", base, swapped_adapter), json.loads((base / "config.json").read_text())
        )
        swapped_gguf = swap.quantize(swap.convert(merged), "q8_0")
        cases = {
            "wrong chat template": new_metadata(q8, work / "template.gguf", "--chat-template", WRONG_TEMPLATE),
            "missing chat template": new_metadata(
                q8, work / "no-template.gguf", "--remove-metadata", "tokenizer.chat_template"
            ),
            "tokenizer mismatch": new_metadata(q8, work / "pre.gguf", "--pre-tokenizer", "default"),
            "corrupted tensor": zero_tensor(q8, work / "zeroed.gguf", "blk.10.ffn_down.weight"),
            "missing LoRA tensors": base_gguf,
            "swapped LoRA tensors": swapped_gguf,
        }
        gate = Exporter(work / "gate", log=lambda *a: None)
        merged_dir = honest.folder / "merged"
        tokenizer, template = gate.template(merged_dir)
        reports = gate.parity(
            merged_dir, tokenizer, template, [("q8_0", p, None) for p in cases.values()], options(probes), base_dir=base
        )
    return dict(zip(cases, reports, strict=True))


@pytest.mark.parametrize(
    ("case", "measure", "words"),
    [
        ("wrong chat template", "chat_template", "renders conversation 1 otherwise from character 0: '[INST]"),
        ("missing chat template", "chat_template", "is missing (the HF tokenizer has one)"),
        ("tokenizer mismatch", "tokenizer", "probe conversations differently from the HF tokenizer"),
        ("corrupted tensor", "mean_kld", "more than this level's rounding explains"),
        ("missing LoRA tensors", "adapter", "nearer the base model than the merged one"),
        ("swapped LoRA tensors", "mean_kld", "damaged, missing or misplaced weights"),
    ],
)
def test_each_broken_conversion_fails_with_its_reason(broken, case, measure, words):
    report = broken[case]
    assert not report.passed and measure in report.failed, (case, report.failed, report.reason)
    assert words in report.reason, report.reason


def test_a_broken_conversion_fails_only_on_what_it_broke(broken):
    """A metadata-only change leaves the weights alone: the teacher-forced measures still pass."""
    for case in ("wrong chat template", "missing chat template", "tokenizer mismatch"):
        assert set(broken[case].failed) <= {"chat_template", "tokenizer", "fact_accuracy"}, broken[case].failed
    assert broken["missing LoRA tensors"].checks.adapter.verdict == "missing"
