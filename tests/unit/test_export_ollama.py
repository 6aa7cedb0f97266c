"""`ollama create` through Ollama's HTTP API, against a fake server implementing the documented endpoints:
HEAD/POST /api/blobs/sha256:<digest> (the digest checked on upload) and POST /api/create (streamed status
lines). The request is the export's Modelfile: FROM (and ADAPTER) as blobs, TEMPLATE, SYSTEM, PARAMETERs."""

from __future__ import annotations

import hashlib

import httpx
import pytest

from dyag_core.export import ExportError, ModelfileSpec, create_command
from dyag_llm.base import LLMError
from dyag_llm.ollama import OllamaModels
from tests.fakes.ollama_server import FakeOllamaServer

TEMPLATE = "{{ range .Messages }}<|im_start|>{{ .Role }}\n{{ .Content }}<|im_end|>\n{{ end }}<|im_start|>assistant\n"
SYSTEM = "Tu es un assistant expert en applications du système d'information français."


@pytest.fixture
def ollama():
    with FakeOllamaServer() as server:
        yield server


def gguf_file(path, payload: bytes = b"weights") -> tuple[str, str]:
    data = b"GGUF\x03\x00\x00\x00" + payload
    path.write_bytes(data)
    return str(path), "sha256:" + hashlib.sha256(data).hexdigest()


def test_blobs_are_pushed_once_and_checked(ollama, tmp_path):
    path, digest = gguf_file(tmp_path / "model-q8_0.gguf")
    client = OllamaModels(ollama.host.removeprefix("http://"))  # OLLAMA_HOST may omit the scheme
    assert client.has_blob(digest) is False
    assert client.push_blob(path, digest) is True
    assert client.has_blob(digest) is True
    assert client.push_blob(path, digest) is False  # already there: not sent again
    assert [r for r in ollama.requests if r[0] == "POST"] == [("POST", f"/api/blobs/{digest}")]


def test_a_blob_whose_bytes_do_not_match_its_digest_is_refused(ollama, tmp_path):
    path, _ = gguf_file(tmp_path / "model.gguf")
    wrong = "sha256:" + "0" * 64
    with pytest.raises(LLMError) as caught:
        OllamaModels(ollama.host).push_blob(path, wrong)
    assert "digest mismatch" in caught.value.message and "HTTP 400" in caught.value.message
    assert wrong not in ollama.blobs


def test_ollama_create_from_the_modelfile(ollama, tmp_path):
    model, model_digest = gguf_file(tmp_path / "model-q8_0.gguf")
    adapter, adapter_digest = gguf_file(tmp_path / "adapter-f16.gguf", b"lora")
    spec = ModelfileSpec(
        "model-q8_0.gguf", TEMPLATE, SYSTEM, 0.7, 0.9, ("<|im_end|>", "<|im_start|>"), adapter_file="adapter-f16.gguf"
    )
    client = OllamaModels(ollama.host)
    for path, digest in ((model, model_digest), (adapter, adapter_digest)):
        client.push_blob(path, digest)
    seen: list[str] = []
    statuses = client.create(
        spec.create_request("applications-ia", {"model-q8_0.gguf": model_digest, "adapter-f16.gguf": adapter_digest}),
        on_status=seen.append,
    )
    assert statuses == seen and statuses[0] == "parsing GGUF" and statuses[-2:] == ["writing manifest", "success"]
    created = httpx.post(f"{ollama.host}/api/show", json={"model": "applications-ia"}).json()
    assert created["files"] == {"model-q8_0.gguf": model_digest} and created["adapters"] == {
        "adapter-f16.gguf": adapter_digest
    }
    assert created["template"] == TEMPLATE and created["system"] == SYSTEM
    assert created["parameters"] == {"temperature": 0.7, "top_p": 0.9, "stop": ["<|im_end|>", "<|im_start|>"]}
    assert [m["name"] for m in httpx.get(f"{ollama.host}/api/tags").json()["models"]] == ["applications-ia:latest"]


def test_create_without_the_blob_is_refused(ollama, tmp_path):
    _, digest = gguf_file(tmp_path / "model.gguf")
    spec = ModelfileSpec("model.gguf", TEMPLATE, SYSTEM)
    with pytest.raises(LLMError) as caught:
        OllamaModels(ollama.host).create(spec.create_request("applications-ia", {"model.gguf": digest}))
    assert "blob not found" in caught.value.message and "HTTP 400" in caught.value.message


def test_a_file_that_is_not_gguf_ends_the_stream_with_an_error(ollama, tmp_path):
    path = tmp_path / "model.gguf"
    path.write_bytes(b"not a gguf")
    digest = "sha256:" + hashlib.sha256(b"not a gguf").hexdigest()
    client = OllamaModels(ollama.host)
    client.push_blob(path, digest)
    with pytest.raises(LLMError) as caught:
        client.create(
            ModelfileSpec("model.gguf", TEMPLATE, SYSTEM).create_request("applications-ia", {"model.gguf": digest})
        )
    assert "not a GGUF file" in caught.value.message
    assert "applications-ia" not in ollama.models


def test_no_server_is_a_clear_error(tmp_path):
    path, digest = gguf_file(tmp_path / "model.gguf")
    with pytest.raises(LLMError) as caught:
        OllamaModels("http://127.0.0.1:9", timeout=2).push_blob(path, digest)
    assert caught.value.code == "unavailable" and "ollama serve" in caught.value.message


def test_the_create_command_and_model_names():
    assert create_command("applications-ia") == "ollama create applications-ia -f Modelfile"
    assert (
        create_command("team/app:q8", folder="/data/exports/exp 1")
        == "cd '/data/exports/exp 1' && ollama create team/app:q8 -f Modelfile"
    )
    for bad in ("", "-x", "a b", "../x", "a:b:c"):
        with pytest.raises(ExportError):
            create_command(bad)
