"""The whole export chain on CPU with the default model (SmolLM2-135M-Instruct):

    LoRA adapter (a few optimisation steps on three catalog facts)
    -> merged HF model (peft merge_and_unload) -> GGUF f16 (llama.cpp's converter) -> q8_0 (llama.cpp's quantizer)
    -> loaded with ik-llama-cpp-python -> answers each trained fact as the HF model does

plus the parity gate's report, the Modelfile, the adapter as a GGUF LoRA, and `dyag serve` over the GGUF
answering through its OpenAI-compatible API.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow
torch = pytest.importorskip("torch")
pytest.importorskip("peft")
pytest.importorskip(
    "ik_llama_cpp",
    reason="ik-llama-cpp-python is not installed: pip install 'dyag-model-exporter[llama]' (bootstrap.py does)",
)

from dyag_core.evaluation import EvalCase  # noqa: E402
from dyag_core.export import parse_modelfile, render_messages  # noqa: E402
from tests.processes import stop  # noqa: E402

SYSTEM = "Tu es un assistant expert en applications du système d'information français."
# Applications whose names say nothing of their domain (the sample catalog's values).
FACTS = {
    "PILOTE-BOP": "Fonctions support",
    "INSPECTA": "Risques naturels et technologiques",
    "CONTROLE-RT": "Transports",
}
QUESTIONS = ("Quel est le domaine de l'application {n} ?",)


def answer_for(name: str) -> str:
    return f"L'application {name} relève du domaine « {FACTS[name]} »."


def conversation(question: str) -> list[dict[str, str]]:
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": question}]


@contextlib.contextmanager
def one_torch_thread():
    """torch on one thread while this module trains and exports: on a 2-core machine shared with other work, two
    OpenMP threads spin-waiting for each other run the default model ~10x slower (measured: bench/RESULTS.md)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@pytest.fixture(scope="module")
def adapter(tmp_path_factory) -> Path:
    """A LoRA adapter taught the three facts: peft on the default model, 8 AdamW steps on the assistant's tokens."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from dyag_llm.local import default_model_path, encode_chat, load_tokenizer, padded_batch

    torch.manual_seed(0)
    base = default_model_path()
    tokenizer = load_tokenizer(str(base))
    model = AutoModelForCausalLM.from_pretrained(str(base), dtype=torch.float32)
    model = get_peft_model(
        model,
        LoraConfig(
            r=8,
            lora_alpha=16,
            lora_dropout=0.0,
            task_type="CAUSAL_LM",
            target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
        ),
    )
    rows = [
        encode_chat(
            tokenizer, [*conversation(QUESTIONS[0].format(n=n)), {"role": "assistant", "content": answer_for(n)}]
        )
        for n in FACTS
    ]
    batch = padded_batch(rows, tokenizer.pad_token_id)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=3e-3)
    model.train()
    with one_torch_thread():
        for _ in range(8):
            loss = model(**batch).loss
            loss.backward()
            optimizer.step()
            optimizer.zero_grad()
    assert loss.item() < 0.2, loss.item()
    folder = tmp_path_factory.mktemp("lora") / "adapter"
    model.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def export(adapter, tmp_path_factory):
    from dyag_llm.local import default_model_path
    from dyag_model_exporter.engine import Exporter, ExportInputs, ExportOptions

    probes = [EvalCase(f"fact-{n}", QUESTIONS[0].format(n=n), answer_for(n), (d,), "domain") for n, d in FACTS.items()]
    work = tmp_path_factory.mktemp("export")
    steps: list[str] = []
    with one_torch_thread():
        outcome = Exporter(work, progress=lambda f, s: steps.append(s), log=lambda *a: None).run(
            ExportInputs("default", default_model_path(), adapter),
            ExportOptions(
                quantizations=("q8_0",),
                system_prompt=SYSTEM,
                probes=probes,
                ollama_name="applications-ia",
                max_tokens=32,
            ),
        )
    return outcome, steps


def test_the_chain_writes_every_output(export):
    outcome, steps = export
    names = {f.name for f in outcome.files}
    assert {
        "merged/model.safetensors",
        "merged/config.json",
        "merged/tokenizer.json",
        "model-q8_0.gguf",
        "adapter-f16.gguf",
        "Modelfile",
        "parity.json",
        "README.md",
    } <= names
    assert not (outcome.folder / "model-f16.gguf").exists()  # only the quantizer's input: f16 was not asked
    assert (
        steps[0].startswith("checking")
        and any("quantizing to q8_0" in s for s in steps)
        and any("parity" in s for s in steps)
    )
    from gguf import GGUFReader

    model = GGUFReader(str(outcome.folder / "model-q8_0.gguf")).fields
    assert (
        model["general.architecture"].contents() == "llama" and model["general.file_type"].contents() == 7
    )  # MOSTLY_Q8_0
    assert model["tokenizer.ggml.model"].contents() == "gpt2" and model["tokenizer.ggml.pre"].contents() == "smollm"
    lora = GGUFReader(str(outcome.folder / "adapter-f16.gguf")).fields
    assert lora["general.type"].contents() == "adapter" and lora["adapter.type"].contents() == "lora"


def test_the_parity_gate_passes_with_the_hf_model_right(export):
    outcome, _ = export
    [report] = outcome.parity
    assert report.quantization == "q8_0" and report.passed, report
    assert report.hf_fact_accuracy >= 2 / 3, report.samples  # the adapter taught the facts
    assert report.agreement >= 2 / 3 and report.prompt_token_agreement == 1.0
    for sample in report.samples:
        if sample["hf_correct"]:
            assert sample["gguf_correct"] and sample["agree"], sample
    saved = json.loads((outcome.folder / "parity.json").read_text())
    assert saved[0]["agreement"] == report.agreement


def test_the_gguf_loaded_with_ik_llama_cpp_answers_a_trained_fact_as_the_hf_model_does(export):
    from dyag_model_exporter.llama import GgufChat

    outcome, _ = export
    modelfile = parse_modelfile((outcome.folder / "Modelfile").read_text())
    assert modelfile["from"] == "./model-q8_0.gguf" and modelfile["system"] == SYSTEM
    hf = {s["question"]: s["hf_answer"] for s in outcome.parity[0].samples}
    llm = GgufChat(outcome.folder / "model-q8_0.gguf", n_ctx=512)  # IkLlama, greedy
    try:
        right = 0
        for name, domain in FACTS.items():
            question = QUESTIONS[0].format(n=name)
            prompt = render_messages(modelfile["template"], conversation(question))  # as Ollama prompts it
            reply = llm.answer(prompt, max_tokens=32, stop=modelfile["parameters"]["stop"])
            assert reply == hf[question]
            right += domain.lower() in reply.lower()
        assert right >= 2
    finally:
        llm.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_dyag_serve_answers_through_the_openai_api(export, tmp_path):
    """`dyag serve` over the GGUF: dyag_llm.serve's OpenAI-compatible server (ik-llama-cpp-python), usable as an
    openai: target."""
    import httpx

    from dyag_llm.openai_compat import OpenAICompatibleChatModel

    outcome, _ = export
    port = free_port()
    dyag = Path(sys.executable).with_name("dyag")
    log = tmp_path / "serve.log"
    with open(log, "w") as out:  # a file, not a pipe: the server logs a lot and must never block on it
        proc = subprocess.Popen(
            [
                str(dyag),
                "serve",
                str(outcome.folder / "model-q8_0.gguf"),
                "--port",
                str(port),
                "--name",
                "applications-ia",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/v1/models", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert proc.poll() is None and time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(0.5)
        first = log.read_text().splitlines()[:2]
        assert (
            f"http://127.0.0.1:{port}/v1" in first[0]
            and f"openai:applications-ia with OPENAI_BASE_URL=http://127.0.0.1:{port}/v1" in first[1]
        )
        chat = OpenAICompatibleChatModel("applications-ia", f"http://127.0.0.1:{port}/v1", api_key="none")
        reply = chat.chat(conversation(QUESTIONS[0].format(n="INSPECTA")), max_tokens=32, temperature=0.0)
        assert FACTS["INSPECTA"].lower() in reply.text.lower(), (
            reply.text
        )  # the trained fact, through the GGUF's own chat template
    finally:
        stop(proc)


@pytest.fixture(scope="module")
def adapter_export(adapter, tmp_path_factory):
    """The same adapter exported in adapter mode: Ollama's FROM base GGUF + ADAPTER adapter GGUF."""
    from dyag_llm.local import default_model_path
    from dyag_model_exporter.engine import Exporter, ExportInputs, ExportOptions

    probes = [EvalCase(f"fact-{n}", QUESTIONS[0].format(n=n), answer_for(n), (d,), "domain") for n, d in FACTS.items()]
    with one_torch_thread():
        return Exporter(tmp_path_factory.mktemp("export-adapter"), progress=lambda f, s: None, log=lambda *a: None).run(
            ExportInputs("default", default_model_path(), adapter),
            ExportOptions(quantizations=("q8_0",), mode="adapter", system_prompt=SYSTEM, probes=probes, max_tokens=32),
        )


def test_adapter_mode_writes_the_base_gguf_and_the_adapter_and_the_adapter_takes_effect(adapter_export):
    """The GGUF base + GGUF LoRA pair (what Ollama's ADAPTER loads) answers as the merged HF model does: an adapter that
    loads but has no effect would fail this gate, since the base model alone does not know these facts."""
    from dyag_model_exporter.llama import GgufChat

    outcome = adapter_export
    modelfile = parse_modelfile((outcome.folder / "Modelfile").read_text())
    assert modelfile["from"] == "./base-q8_0.gguf" and modelfile["adapter"] == "./adapter-f16.gguf"
    assert {"base-q8_0.gguf", "adapter-f16.gguf", "model-q8_0.gguf"} <= {f.name for f in outcome.files}
    by_level = {r.quantization: r for r in outcome.parity}
    paired = by_level["q8_0+adapter"]
    assert paired.passed, paired.reason
    assert paired.hf_fact_accuracy >= 2 / 3 and paired.gguf_fact_accuracy >= 2 / 3, paired.samples
    # The base GGUF alone, same prompts: it does not state the trained domains.
    base = GgufChat(outcome.folder / "base-q8_0.gguf", n_ctx=512)
    try:
        base_right = 0
        for name, domain in FACTS.items():
            prompt = render_messages(modelfile["template"], conversation(QUESTIONS[0].format(n=name)))
            reply = base.answer(prompt, max_tokens=32, stop=modelfile["parameters"]["stop"])
            base_right += domain.lower() in reply.lower()
    finally:
        base.close()
    assert base_right < paired.gguf_fact_accuracy * len(FACTS)
