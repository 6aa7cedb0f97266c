"""`dyag export` (the guide's step 5.4: GGUF, Ollama, with a progress bar), `dyag exports`, and `dyag serve`
(an OpenAI-compatible server over an exported GGUF: dyag_llm.serve, on ik-llama-cpp-python)."""

from __future__ import annotations

import importlib.util
import re
import signal
import subprocess
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from dyag_cli.client import CliError, GatewayClient
from dyag_cli.common import console, fail, follow_job, run_or_fail
from dyag_cli.stack import dyag_home

_EXPORT_ID = re.compile(r"\b(exp-[0-9a-f]{16})\b")


def _size(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GB"


def _probes(path: Path) -> list[dict]:
    from dyag_core.evaluation import read_test_set
    from dyag_core.evaluation.errors import EvaluationError

    try:
        cases = read_test_set(path).cases
    except EvaluationError as exc:
        fail(exc.message)
    return [
        {
            "id": c.id,
            "question": c.question,
            "expected_answer": c.expected_answer,
            "key_facts": list(c.key_facts),
            "type": c.qtype,
            "negative": c.negative,
        }
        for c in cases
    ]


def export(
    model: Annotated[
        str,
        typer.Argument(
            help="a LoRA model id (lora-…), a merged HF model folder, or a LoRA adapter folder (with --base-model)"
        ),
    ],
    gguf: Annotated[
        list[str], typer.Option("--gguf", help="quantization(s): f16, q8_0, q4_K_M (repeat or comma-separate)")
    ] = ["q8_0"],  # noqa: B006
    ollama: Annotated[
        str,
        typer.Option(
            "--ollama",
            help="create this Ollama model (when the exporter has OLLAMA_HOST; else the bundle has the command)",
        ),
    ] = "",
    base_model: Annotated[
        str, typer.Option(help="with an adapter folder: its base model ('default' or a folder)")
    ] = "",
    mode: Annotated[
        str, typer.Option(help="merged (FROM the merged GGUF) or adapter (FROM the base GGUF + ADAPTER)")
    ] = "merged",
    system: Annotated[str, typer.Option(help="the Modelfile's SYSTEM prompt (default: the guide's)")] = "",
    temperature: Annotated[float | None, typer.Option(help="PARAMETER temperature (default 0.7)")] = None,
    top_p: Annotated[float | None, typer.Option(help="PARAMETER top_p (default 0.9)")] = None,
    probes: Annotated[
        Path | None, typer.Option(help="parity probes: an eval or chat JSONL file (default: the dataset's test split)")
    ] = None,
    probe_count: Annotated[int, typer.Option(help="probes answered greedily (0: the default)")] = 0,
    threshold: Annotated[
        float | None, typer.Option(help="least greedy answer agreement accepted (0-1; default: none)")
    ] = None,
    name: Annotated[str, typer.Option(help="a name for the export")] = "",
) -> None:
    """Export a fine-tuned model (the guide's step 5.4): merged HF folder, GGUF with llama.cpp, quantized, an Ollama
    Modelfile whose template comes from the tokenizer, a parity gate against the HF model, and `ollama create`."""
    body: dict = {
        "quantizations": [q for value in gguf for q in value.split(",") if q.strip()],
        "ollama_name": ollama,
        "mode": mode,
        "system_prompt": system,
        "probe_count": probe_count,
        "name": name,
    }
    if model.startswith("lora-"):
        body["model_id"] = model
    else:
        folder = Path(model).expanduser()
        if not folder.is_dir():
            fail(f"{model} is neither a LoRA model id (lora-…) nor a model folder")
        if (folder / "adapter_config.json").is_file():
            body.update(adapter_dir=str(folder.resolve()), base_model=base_model or "default")
        else:
            body["base_model"] = str(folder.resolve())
    for key, value in (("temperature", temperature), ("top_p", top_p), ("parity_threshold", threshold)):
        if value is not None:
            body[key] = value
    if probes is not None:
        if not probes.is_file():
            fail(f"no such probe file: {probes}")
        body["probes"] = _probes(probes)
    client = GatewayClient()
    job = run_or_fail(lambda: client.post("/exports", json=body))
    console.print(f"job {job['id']} queued (dyag jobs watch {job['id']})")
    job = follow_job(client, job["id"], "export")
    export_id = (job.get("result") or {}).get("export_id") or next(iter(_EXPORT_ID.findall(job.get("error") or "")), "")
    if export_id:
        print_export(run_or_fail(lambda: client.get(f"/exports/{export_id}")))
    if job["status"] != "succeeded":
        fail(f"the export {job['status']}: {job.get('error') or 'see dyag jobs logs ' + job['id']}")


def print_export(export: dict) -> None:
    ok = export["status"] == "succeeded"
    console.print(
        f"\n{'[green]✅[/]' if ok else '[red]❌[/]'} Export {export['id']} ({export['name']}): {export['status']}"
    )
    lineage = ", ".join(f"{k} {export[k]}" for k in ("model_id", "dataset_id", "catalog_version") if export.get(k))
    console.print(
        f"  {export['architecture']} from "
        f"{export['base_model']}{' — ' + lineage if lineage else ''}; mode {export['mode']}"
    )
    files = Table("file", "quantization", "size", "sha256")
    for f in export["files"]:
        if not f["name"].startswith("merged/") or f["name"].endswith(".safetensors"):
            files.add_row(f["name"], f.get("quantization", ""), _size(int(f["size"])), f["sha256"][:16] + "…")
    console.print(files)
    parity = Table(
        "GGUF",
        "mean KLD",
        "p99 KLD",
        "top-1",
        "perplexity ratio",
        "tokens",
        "template",
        "adapter",
        "greedy",
        "verdict",
        title=f"parity gate (HF vs GGUF: {_scored(export)} reference-answer tokens teacher-forced; limits in brackets)",
    )
    for p in export["parity"]:
        limits = p.get("limits") or {}
        verdict = "[green]passed[/]" if p["passed"] else f"[red]failed[/]: {p['reason']}"
        parity.add_row(
            p["quantization"],
            f"{p.get('mean_kld', 0):.4f} (≤{limits.get('max_mean_kld', 0):g})",
            f"{p.get('p99_kld', 0):.3f} (≤{limits.get('max_p99_kld', 0):g})",
            f"{p.get('top1_agreement', 0):.1%} (≥{limits.get('min_top1_agreement', 0):.0%})",
            f"{p.get('perplexity_ratio', 0):.3f} (≤{limits.get('max_perplexity_ratio', 0):g})",
            f"{p.get('sequence_token_agreement', 0):.0%} same",
            p.get("chat_template", ""),
            (p.get("adapter") or {}).get("verdict", "-"),
            f"{p['agreement']:.0%} of {p['probes']}",
            verdict,
        )
    console.print(parity)
    ollama = export["ollama"]
    if ollama.get("created"):
        console.print(
            f"[green]✓[/] Ollama model [bold]{ollama['name']}[/] "
            f"created on {ollama['host']}: ollama run {ollama['name']}"
        )
    elif ok:
        console.print(f"Bundle: {export['bundle_dir']}\nCreate the Ollama model with:\n  {ollama['command']}")
    if ok:
        console.print(f"Serve it as an OpenAI-compatible target: dyag serve {export['id']}")


def _scored(export: dict) -> int:
    return max((int(p.get("scored_tokens") or 0) for p in export["parity"]), default=0)


def list_exports(model_id: Annotated[str, typer.Option(help="only the exports of this LoRA model")] = "") -> None:
    """Exports, newest first."""
    exports = run_or_fail(lambda: GatewayClient().get("/exports", model_id=model_id))["exports"]
    table = Table("id", "model", "status", "GGUF", "parity (mean KLD)", "Ollama", "created")
    for e in exports:
        parity = ", ".join(
            f"{p['quantization']} {p.get('mean_kld', 0):.4f}{'' if p['passed'] else ' ✗'}" for p in e["parity"]
        )
        table.add_row(
            e["id"],
            e.get("model_id") or e["base_model"],
            e["status"],
            ", ".join(e["quantizations"]),
            parity,
            e["ollama"]["name"] + (" ✓" if e["ollama"].get("created") else ""),
            e["created_at"],
        )
    console.print(table)


# --- dyag serve -------------------------------------------------------------------------------------------
def _pick_export(client: GatewayClient, model: str) -> dict:
    if model.startswith("exp-"):
        return client.get(f"/exports/{model}")
    if model.startswith("lora-"):
        exports = [e for e in client.get("/exports", model_id=model)["exports"] if e["status"] == "succeeded"]
        if not exports:
            raise CliError(f"{model} has no successful export yet: dyag export {model} --gguf q8_0")
        return exports[0]
    raise CliError(f"{model} is neither a GGUF file, an export id (exp-…) nor a LoRA model id (lora-…)")


def _local_file(client: GatewayClient, export: dict, name: str) -> Path:
    """The export's file on this machine: in its bundle when the exporter runs here, else downloaded once."""
    info = next(f for f in export["files"] if f["name"] == name)
    local = Path(export["bundle_dir"]) / name
    if local.is_file() and local.stat().st_size == int(info["size"]):
        return local
    cached = dyag_home() / "exports" / export["id"] / name
    if not (cached.is_file() and cached.stat().st_size == int(info["size"])):
        console.print(f"downloading {name} ({_size(int(info['size']))}) from the gateway…")
        client.download(f"/exports/{export['id']}/files/{name}", cached)
    return cached


def serve(
    model: Annotated[
        str, typer.Argument(help="an export id (exp-…), a LoRA model id (its latest export), or a .gguf file")
    ],
    port: Annotated[int, typer.Option(help="the server's port")] = 8080,
    host: Annotated[str, typer.Option(help="the address it listens on")] = "127.0.0.1",
    gguf: Annotated[
        str, typer.Option("--gguf", help="which of the export's GGUF (f16, q8_0, q4_K_M); default: the Modelfile's")
    ] = "",
    name: Annotated[
        str, typer.Option(help="the model name the API answers to (default: the export's Ollama name)")
    ] = "",
    n_ctx: Annotated[int, typer.Option(help="context length")] = 2048,
) -> None:
    """Serve an exported GGUF with an OpenAI-compatible server (dyag_llm.serve, on ik-llama-cpp-python): the evaluator,
    the RAG service or any OpenAI client can use it as the target openai:NAME (OPENAI_BASE_URL=the printed URL)."""
    if (
        any(importlib.util.find_spec(m) is None for m in ("ik_llama_cpp", "dyag_llm"))
        or importlib.util.find_spec("dyag_llm.serve") is None
    ):
        fail(
            "the GGUF server is not installed here: pip install 'dyag-model-exporter[llama]' "
            "(prebuilt ik-llama-cpp-python, nothing to compile; bootstrap.py installs it)"
        )
    lora: Path | None = None
    path = Path(model).expanduser()
    if path.suffix == ".gguf":
        if not path.is_file():
            fail(f"no such GGUF file: {model}")
        alias = name or path.stem
    else:
        client = GatewayClient()
        export = run_or_fail(lambda: _pick_export(client, model))
        ggufs = {f["quantization"]: f["name"] for f in export["files"] if f["kind"] == "gguf"}
        from_line = re.search(r"^FROM \./(\S+)", export["ollama"]["modelfile"], re.MULTILINE)
        if gguf:
            if gguf not in ggufs:
                fail(f"export {export['id']} has no {gguf} GGUF; it has {', '.join(ggufs)}")
            chosen = ggufs[gguf]
        else:
            chosen = from_line.group(1) if from_line else next(iter(ggufs.values()))
        adapter = next((f["name"] for f in export["files"] if f["kind"] == "adapter_gguf"), None)
        path = run_or_fail(lambda: _local_file(client, export, chosen))
        if export["mode"] == "adapter" and chosen.startswith("base-") and adapter:
            lora = run_or_fail(lambda: _local_file(client, export, adapter))
        alias = name or export["ollama"]["name"]
    url = f"http://{host}:{port}/v1"
    print(
        f"Serving {path}{' + ' + lora.name if lora else ''} at {url} (OpenAI-compatible, ik-llama-cpp-python)",
        flush=True,
    )
    print(
        f"Use it as the target openai:{alias} with OPENAI_BASE_URL={url} (any OPENAI_API_KEY); Ctrl-C stops it",
        flush=True,
    )
    argv = [
        sys.executable,
        "-m",
        "dyag_llm.serve",
        "--model",
        str(path),
        "--host",
        host,
        "--port",
        str(port),
        "--alias",
        alias,
        "--n-ctx",
        str(n_ctx),
    ] + (["--lora", str(lora)] if lora else [])
    proc = subprocess.Popen(argv)

    def stop(signum, _frame):
        proc.send_signal(signal.SIGTERM if signum == signal.SIGTERM else signal.SIGINT)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    raise typer.Exit(proc.wait())
