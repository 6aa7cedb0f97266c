"""Hosted fine-tuning (the guide's step 4): `dyag hosted train|models|model`, and train_hosted() for
`dyag train --provider openai`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from dyag_cli.client import CliError, GatewayClient
from dyag_cli.common import console, fail, follow_waiter, run_or_fail, stopped_following

hosted_app = typer.Typer(
    help="Fine-tune a hosted model through the OpenAI fine-tuning API or a compatible provider (the guide's step 4).",
    no_args_is_help=True,
)

_METRICS = (
    ("train_loss", "loss"),
    ("valid_loss", "val loss"),
    ("train_mean_token_accuracy", "acc"),
    ("valid_mean_token_accuracy", "val acc"),
)


def train_hosted(
    dataset: str,
    model: str = "",
    *,
    validation: Path | None = None,
    n_epochs: int = 0,
    batch_size: int = 0,
    learning_rate_multiplier: float = 0.0,
    suffix: str = "",
    seed: int | None = None,
    catalog: str = "",
    allow_pii: bool = False,
    redact_pii: bool = False,
    ignore_format_errors: bool = False,
    ignore_budget: bool = False,
    budget_usd: float = 0.0,
    client: GatewayClient | None = None,
) -> dict[str, Any]:
    """Start a hosted training, follow it with a live progress display, and return the registered model.

    `dataset` is a dataset built by the platform (its id, e.g. ds-4be6192d065b8b3e) or a JSONL file
    (then `validation`, or validation.jsonl beside a train.jsonl, goes with it). `model` is the base
    model (empty: the service's default). Exits with a message when the job is refused or fails.
    """
    client = client or GatewayClient()
    body: dict[str, Any] = {
        "base_model": model,
        "hyperparameters": {
            "n_epochs": n_epochs,
            "batch_size": batch_size,
            "learning_rate_multiplier": learning_rate_multiplier,
        },
        "suffix": suffix,
        "seed": seed,
        "gates": {
            "allow_pii": allow_pii,
            "redact_pii": redact_pii,
            "ignore_format_errors": ignore_format_errors,
            "ignore_budget": ignore_budget,
            "budget_usd": budget_usd,
        },
    }
    path = Path(dataset)
    if path.is_file():
        body.update(train=path.read_text(encoding="utf-8"), name=path.name, catalog=catalog)
        validation = validation or (path.with_name("validation.jsonl") if path.name == "train.jsonl" else None)
        if validation is not None:
            if not validation.is_file():
                fail(f"no such validation file: {validation}")
            body["validation"] = validation.read_text(encoding="utf-8")
    elif "/" in dataset or dataset.endswith((".jsonl", ".json")):
        fail(f"no such dataset file: {dataset}")
    else:
        body["dataset_id"] = dataset
    job = run_or_fail(lambda: client.post("/hosted/jobs", json=body))
    console.print(f"🚀 training job {job['id']} (base model {model or 'the service default'})")
    job = follow_training(client, job["id"])
    if job["status"] != "succeeded":
        fail(f"the training {job['status']}: {job.get('error') or 'see dyag jobs logs ' + job['id']}")
    result = job["result"]
    trained = run_or_fail(lambda: client.get(f"/hosted/models/{result['model_id']}"))
    print_model(trained, result)
    return trained


def follow_training(client: GatewayClient, job_id: str) -> dict[str, Any]:
    """A live display of the job: progress bar, step, losses and accuracy as the provider reports them."""
    job: dict[str, Any] = {}
    columns = (
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.percentage:>3.0f}%"),
        TextColumn("{task.fields[step]}"),
        TextColumn("[cyan]{task.fields[metrics]}"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console, transient=False) as progress:
        task = progress.add_task("fine-tuning", total=1.0, step="", metrics="")
        try:
            for job in client.watch_job(job_id, follow_waiter(f"the job goes on: dyag jobs watch {job_id}")):
                p = job.get("progress", {})
                metrics = p.get("metrics") or {}
                shown = "  ".join(
                    f"{label} {metrics[key]:.3f}"
                    for key, label in _METRICS
                    if isinstance(metrics.get(key), (int, float))
                )
                if isinstance(metrics.get("estimated_cost_usd"), (int, float)):
                    shown = f"≈{metrics['estimated_cost_usd']:.2f} $  " + shown
                progress.update(task, completed=p.get("fraction", 0.0), step=p.get("step", ""), metrics=shown)
        except CliError as exc:
            fail(str(exc))
        except KeyboardInterrupt:
            stopped_following("job", f"dyag jobs watch {job_id}", f"dyag jobs cancel {job_id}")
    return job


def print_model(model: dict[str, Any], result: dict[str, Any] | None = None) -> None:
    result = result or {}
    cost = model.get("cost", {})
    reused = (
        " (already trained on this dataset with these parameters: reused, nothing paid again)"
        if result.get("reused_model")
        else ""
    )
    console.print(f"\n[green]✅[/] Modèle fine-tuné: {model['id']}{reused}")
    console.print(
        f"   cible: {model['target']}   modèle de base: {model['base_model']}   job distant: {model['remote_job_id']}"
    )
    hp = model.get("hyperparameters", {})
    console.print(
        f"   hyperparamètres: n_epochs={hp.get('n_epochs')} batch_size={hp.get('batch_size')} "
        f"learning_rate_multiplier={hp.get('learning_rate_multiplier')}"
    )
    console.print(
        f"   coût: estimé {cost.get('estimated_usd', 0):.2f} $, réel {cost.get('actual_usd', 0):.2f} $ "
        f"({cost.get('trained_tokens', 0)} tokens entraînés)"
    )
    if model.get("dataset_id") or model.get("catalog"):
        console.print(
            f"   dataset: {model.get('dataset_id') or model.get('dataset_name')} (catalogue {model.get('catalog')} "
            f"{model.get('catalog_version')})"
        )
    if model.get("smoke_test"):
        console.print(f"\n🧪 Test du modèle fine-tuné: {model['id']}\n")
        for answer in model["smoke_test"]:
            console.print(f"Q: {answer['question']}", markup=False, highlight=False)
            console.print(
                f"R: {answer.get('answer') or '(' + answer.get('error', '') + ')'}\n", markup=False, highlight=False
            )


@hosted_app.command("train")
def train(
    dataset: Annotated[str, typer.Option("--dataset", "-d", help="a built dataset's id (ds-…) or a JSONL train file")],
    model: Annotated[
        str, typer.Option("--model", "-m", help="base model, e.g. gpt-4o-mini-2024-07-18 (default: the service's)")
    ] = "",
    validation: Annotated[
        Path | None,
        typer.Option(help="validation file (with a train file; default: validation.jsonl beside train.jsonl)"),
    ] = None,
    n_epochs: Annotated[int, typer.Option(help="0: the guide's Annex A preset for the dataset size")] = 0,
    batch_size: Annotated[int, typer.Option(help="0: the preset")] = 0,
    learning_rate_multiplier: Annotated[float, typer.Option(help="0: the preset")] = 0.0,
    suffix: Annotated[str, typer.Option(help="added to the fine-tuned model's name (up to 64 characters)")] = "",
    seed: Annotated[int | None, typer.Option(help="the provider's training seed")] = None,
    catalog: Annotated[
        str, typer.Option(help="with a train file: the catalog it was built from (contact names are personal data)")
    ] = "",
    allow_pii: Annotated[
        bool, typer.Option(help="upload personal data as it is (your decision as the data owner)")
    ] = False,
    redact_pii: Annotated[bool, typer.Option(help="mask personal data before the upload")] = False,
    ignore_format_errors: Annotated[bool, typer.Option(help="upload even with invalid lines")] = False,
    ignore_budget: Annotated[bool, typer.Option(help="train even above the budget (DYAG_OPENAI_BUDGET_USD)")] = False,
    budget: Annotated[float, typer.Option(help="a lower budget in USD for this job (0: the service's)")] = 0.0,
) -> None:
    # the docstring is the command's help, one line in `dyag hosted --help`: split, not wrapped
    (
        """Gates (format, personal data, cost), upload, fine-tuning job, live monitoring, smoke test """
        """(the guide's step 4)."""
    )
    train_hosted(
        dataset,
        model,
        validation=validation,
        n_epochs=n_epochs,
        batch_size=batch_size,
        learning_rate_multiplier=learning_rate_multiplier,
        suffix=suffix,
        seed=seed,
        catalog=catalog,
        allow_pii=allow_pii,
        redact_pii=redact_pii,
        ignore_format_errors=ignore_format_errors,
        ignore_budget=ignore_budget,
        budget_usd=budget,
    )


@hosted_app.command("models")
def models(base_model: str = "", dataset: str = "") -> None:
    """The fine-tuned models in the registry, newest first."""
    found = run_or_fail(lambda: GatewayClient().get("/hosted/models", base_model=base_model, dataset_id=dataset))[
        "models"
    ]
    table = Table("model", "base model", "dataset", "cost $", "registered")
    for m in found:
        table.add_row(
            m["id"],
            m["base_model"],
            m.get("dataset_id") or m.get("dataset_name", ""),
            f"{m['cost'].get('actual_usd') or m['cost'].get('estimated_usd', 0):.2f}",
            m["created_at"],
        )
    console.print(table)


@hosted_app.command("model")
def model_show(model_id: str, as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """One fine-tuned model: target, lineage, cost, smoke-test answers."""
    found = run_or_fail(lambda: GatewayClient().get(f"/hosted/models/{model_id}"))
    if as_json:
        console.print_json(json.dumps(found))
    else:
        print_model(found)
