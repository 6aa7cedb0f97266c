"""LoRA commands: `dyag train` (the guide's step 5, with a progress bar) and `dyag query_finetuned`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from dyag_cli.client import GatewayClient
from dyag_cli.common import console, fail, follow_job, run_or_fail
from dyag_core.training import PRESET_NAMES, TrainingConfig, TrainingInputError

PRESETS = ("auto", *PRESET_NAMES)


def _looks_like_file(dataset: str) -> bool:
    return "/" in dataset or dataset.endswith((".jsonl", ".json"))


def train(
    dataset: Annotated[
        str,
        typer.Option(
            "--dataset",
            help="a local OpenAI chat JSONL (e.g. training/train.jsonl; "
            "validation.jsonl beside it is sent too) or a dataset id",
        ),
    ],
    base_model: Annotated[
        str,
        typer.Option(help="'default' (SmolLM2-135M-Instruct, offline), a local HF folder, or a hub id on GPU nodes"),
    ] = "default",
    preset: Annotated[
        str,
        typer.Option(
            help="auto (by the dataset's size, the guide's Annex A), small, "
            "medium, large, or knowledge (epochs by exposures per fact)"
        ),
    ] = "auto",
    epochs: Annotated[int, typer.Option(help="0: the preset's")] = 0,
    learning_rate: Annotated[float, typer.Option(help="0: the preset's")] = 0.0,
    rank: Annotated[int, typer.Option("--r", help="LoRA rank; 0: the preset's")] = 0,
    max_steps: Annotated[int, typer.Option(help="stop after this many steps (0: epochs decide)")] = 0,
    max_seq_len: Annotated[
        int, typer.Option(help="the longest example allowed, in tokens (longer ones are reported, not cut)")
    ] = 1024,
    precision: Annotated[str, typer.Option(help="auto, bf16, fp16 or fp32")] = "auto",
    seed: Annotated[int, typer.Option()] = 42,
    validation: Annotated[
        Path | None, typer.Option(help="validation file (default: validation.jsonl beside the train file)")
    ] = None,
    config: Annotated[
        str, typer.Option(help='more options as JSON, e.g. {"lora_dropout": 0.05, "eval_steps": 20}')
    ] = "",
    name: Annotated[str, typer.Option(help="a name for the model")] = "",
) -> None:
    """Fine-tune a local model with LoRA (the guide's step 5): follow it with a progress bar, then show the model."""
    if preset not in PRESETS:
        fail(f"unknown preset {preset!r}; choose one of {', '.join(PRESETS)}")
    options: dict = {}
    if config:
        try:
            options = json.loads(config)
        except ValueError as exc:
            fail(f"--config is not JSON: {exc}")
    options.update(base_model=base_model, preset=preset, seed=seed, max_seq_len=max_seq_len, precision=precision)
    for key, value in (("epochs", epochs), ("learning_rate", learning_rate), ("r", rank), ("max_steps", max_steps)):
        if value:
            options[key] = value
    try:  # the run's one schema, checked here as the gateway and the trainer check it
        TrainingConfig.from_dict(options)
    except TrainingInputError as exc:
        fail(exc.message)
    body: dict = {"config": options, "name": name}
    path = Path(dataset)
    if path.is_file():
        body.update(train=path.read_text(encoding="utf-8"), filename=path.name)
        val = validation or path.with_name("validation.jsonl")
        if val.is_file() and val != path:
            body["validation"] = val.read_text(encoding="utf-8")
            console.print(f"train: {path}  validation: {val}")
    elif _looks_like_file(dataset):
        fail(f"no such dataset file: {dataset}")
    else:
        body["dataset_id"] = dataset
    client = GatewayClient()
    job = run_or_fail(lambda: client.post("/train", json=body))
    console.print(f"job {job['id']} queued (dyag jobs watch {job['id']})")
    job = follow_job(client, job["id"], "LoRA training")
    if job["status"] != "succeeded":
        fail(f"the training {job['status']}: {job.get('error') or 'see dyag jobs logs ' + job['id']}")
    model = run_or_fail(lambda: client.get(f"/models/{job['result']['model_id']}"))
    print_model(model)


def print_model(model: dict) -> None:
    m = model.get("metrics", {})
    console.print(f"\n[green]✅[/] Modèle {model['id']} ({model['name']})")
    console.print(
        f"  base: {model['base_model']}  backend: {model['backend']}  "
        f"précision: {model['precision']}  matériel: {model['hardware']}"
    )
    table = Table("mesure", "valeur")
    for key in (
        "train_examples",
        "steps",
        "epochs",
        "first_loss",
        "final_loss",
        "first_eval_loss",
        "eval_loss",
        "tokens_per_second",
        "train_seconds",
        "resumed_from_step",
    ):
        if key in m:
            table.add_row(key, str(m[key]))
    console.print(table)
    console.print(f"  dataset: {model.get('dataset_id') or 'fichier'} ({model.get('dataset_hash', '')[:23]}…)")
    console.print("  fichiers: " + ", ".join(a["name"] for a in model.get("artifacts", [])))
    console.print(f"\nTester : dyag query_finetuned {model['id']} \"Qu'est-ce que l'application … ?\"")


def query_finetuned(
    model: Annotated[str, typer.Argument(help="a model id (lora-…), or 'default' for the base model alone")],
    question: Annotated[list[str], typer.Argument(help="one or more questions (answered as one batch)")],
    system: Annotated[
        str, typer.Option(help="a system prompt")
    ] = "Tu es un assistant expert en applications du système d'information français.",
    max_tokens: Annotated[int, typer.Option()] = 0,
    temperature: Annotated[float, typer.Option(help="0: greedy")] = 0.0,
) -> None:
    """Ask a fine-tuned model (base model + its LoRA adapter)."""
    conversations = [
        [{"role": "system", "content": system}, {"role": "user", "content": q}]
        if system
        else [{"role": "user", "content": q}]
        for q in question
    ]
    client = GatewayClient()
    with console.status("generating…"):
        reply = run_or_fail(
            lambda: client.post(
                f"/models/{model}/chat",
                json={"conversations": conversations, "max_tokens": max_tokens, "temperature": temperature},
            )
        )
    for q, answer in zip(question, reply["answers"], strict=False):
        console.print(f"[bold]Q:[/] {q}")
        console.print(f"[bold]R:[/] {answer}\n", highlight=False)
    console.print(f"[dim]{reply['model']}, {reply['latency_ms']:.0f} ms[/]")


def list_models() -> None:
    """LoRA models in the registry, newest first."""
    models = run_or_fail(lambda: GatewayClient().get("/models"))["models"]
    table = Table("id", "name", "base", "dataset", "final loss", "eval loss", "created")
    for m in models:
        metrics = m.get("metrics", {})
        table.add_row(
            m["id"],
            m["name"],
            m["base_model"],
            m.get("dataset_id") or "fichier",
            str(metrics.get("final_loss", "")),
            str(metrics.get("eval_loss", "")),
            m["created_at"],
        )
    console.print(table)
