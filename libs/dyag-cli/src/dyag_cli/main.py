"""dyag: the whole workflow from the command line, through the gateway."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import time
from pathlib import Path
from typing import Annotated
from urllib.parse import urlparse

import typer
from rich.table import Table

from dyag_cli import (
    backup,
    catalog_sources,
    datasets,
    evaluation,
    hosted,
    keys,
    pipeline,
    rag,
    retraining,
    training,
    validation,
)
from dyag_cli import export as exporting
from dyag_cli.client import GatewayClient
from dyag_cli.common import console, fail, follow_job, follow_waiter, run_or_fail
from dyag_cli.stack import Stack, StackConfig, tail

app = typer.Typer(
    help="Dyag: from an application catalog to a measured question-answering assistant.", no_args_is_help=True
)
catalog_app = typer.Typer(
    help="Upload, version, profile and follow catalogs (the guide's step 1).", no_args_is_help=True
)
jobs_app = typer.Typer(help="Follow the platform's asynchronous jobs.", no_args_is_help=True)
app.add_typer(catalog_app, name="catalog")
app.add_typer(datasets.dataset_app, name="dataset")
app.command("create_rag", help="The guide's step 2: a grounded QA dataset from a catalog, split 80/10/10.")(
    datasets.create_rag
)
app.command("analyze_training", help="The guide's step 3: coverage, types, format, tokens, duplicates, checklist.")(
    validation.analyze_training
)
app.command("train", help="The guide's step 5: fine-tune a local model with LoRA (CPU or GPU), with a progress bar.")(
    training.train
)
app.command("query_finetuned", help="Ask a LoRA fine-tuned model (base model + adapter).")(training.query_finetuned)
app.command("models", help="LoRA fine-tuned models in the registry.")(training.list_models)
app.command(
    "index_rag",
    help="The guide's step 7: index a catalog into a RAG collection (only changed applications are re-embedded).",
)(rag.index_rag)
app.command("query_rag", help="The guide's step 7: answer a question from the catalog, with its sources.")(
    rag.query_rag
)
app.command("rag_stats", help="What a RAG collection holds: catalog version, applications, chunks, embedder.")(
    rag.rag_stats
)
app.command(
    "evaluate_rag",
    help="The guide's step 6.1: evaluate the RAG target on a test file; results JSON with the guide's fields.",
)(evaluation.evaluate_rag)
app.command(
    "evaluate",
    help="The guide's step 6: evaluate a target (base, lora:, openai:, ollama:, rag:, hybrid:) on a test set.",
)(evaluation.evaluate)
app.command(
    "compare", help="The guide's steps 6.2 and 7.2: compare result files side by side, offline (--html for the report)."
)(evaluation.compare)
app.command("report", help="A result file's report, offline: --html (charts) or --markdown.")(evaluation.report)
app.command("evaluations", help="The evaluation runs the evaluator kept, or one run.")(evaluation.evaluations)
app.command(
    "export",
    help="The guide's step 5.4: GGUF (f16, q8_0, q4_K_M) and an "
    "Ollama model, checked by a parity gate, with a progress bar.",
)(exporting.export)
app.command("exports", help="Exports (GGUF, Ollama) with their parity results.")(exporting.list_exports)
app.command(
    "serve",
    help="Serve an exported GGUF as an OpenAI-compatible API (llama.cpp through dyag_llm.serve); prints the base URL.",
)(exporting.serve)
app.add_typer(hosted.hosted_app, name="hosted")
app.add_typer(jobs_app, name="jobs")
app.add_typer(pipeline.pipeline_app, name="pipeline")
app.add_typer(retraining.retraining_app, name="retraining")
app.add_typer(retraining.champion_app, name="champion")
app.command("retrain", help="Start a catalog's retraining now (against its champion).")(retraining.retrain)
app.command("ask", help="Answer a question with the catalog's champion, citing its sources.")(retraining.ask)
app.command("lineage", help="A catalog's lineage: version → dataset → job → model → evaluation → promotion.")(
    retraining.lineage
)
app.add_typer(keys.keys_app, name="keys")
app.command("backup", help="Back up the local stack (DYAG_HOME) into one tar.gz with a manifest; works while it runs.")(
    backup.backup_command
)
app.command("restore", help="Restore a backup into a stopped, empty DYAG_HOME (--force: replace it); then dyag up.")(
    backup.restore_command
)
app.command("audit", help="The audit log, newest first: who (key, caller) changed what (method, path), when.")(
    keys.audit
)


# --- the stack -------------------------------------------------------------------------------
@app.command()
def up(
    port: Annotated[int, typer.Option(help="gateway port")] = 8000,
    timeout: Annotated[float, typer.Option(help="seconds to wait for readiness")] = 120.0,
) -> None:
    """Start NATS, every installed service and the gateway on this machine (no Docker), and the supervisor that
    restarts one that crashes. On a running stack: start only what is down, never restart what runs."""
    stack = Stack(StackConfig(gateway_port=port))
    with console.status("starting the stack…") as status:
        started = run_or_fail(lambda: stack.up(timeout=timeout, on_step=lambda s: status.update(s)))
    running = [name for name in stack.processes() if name not in started]
    if not started:
        console.print("[green]✓[/] already running: nothing started, nothing restarted")
    elif running:
        console.print(f"started: {', '.join(started)}; left running as they were: {', '.join(running)}")
    console.print(f"[green]✓[/] Dyag is up at {stack.config.gateway_url} (API docs: {stack.config.gateway_url}/docs)")
    _print_status(stack)


@app.command()
def down() -> None:
    """Stop what `dyag up` started: the supervisor first (nothing is restarted), then the gateway, services, NATS."""
    stopped = Stack().down()
    console.print(f"stopped: {', '.join(stopped)}" if stopped else "nothing was running")


@app.command()
def status() -> None:
    """Show the local stack's processes and the health of each service."""
    _print_status(Stack())


def _print_status(stack: Stack) -> None:
    health: dict = {}
    try:
        import httpx

        health = httpx.get(f"{stack.state.get('gateway_url', stack.config.gateway_url)}/readyz", timeout=3).json()
    except Exception:
        pass
    table = Table(title="Dyag stack")
    for column in ("component", "pid", "process", "up", "restarts", "last exit", "health", "log"):
        table.add_column(column)
    services = health.get("services", {})
    now = time.time()
    for name, info in stack.processes().items():
        alive = stack.alive(name)
        state = services.get(name, health.get("status", "") if name == "gateway" else health.get("nats", ""))
        table.add_row(
            name,
            str(info["pid"]),
            "[green]running[/]" if alive else "[red]stopped[/]",
            _duration(now - info["started_at"]) if alive and info.get("started_at") else "-",
            str(info.get("restarts", 0)),
            _exit(info),
            str(state or "-"),
            str(stack.log_path(name)),
        )
    if not stack.processes():
        console.print("the stack is not running: start it with `dyag up`")
        return
    supervisor = stack.state.get("supervisor") or {}
    pid = stack.supervisor_pid()
    table.add_row(
        "supervisor",
        str(supervisor.get("pid", "-")),
        "[green]running[/]" if pid else "[red]stopped: nothing restarts a crashed process (dyag up)[/]",
        _duration(now - supervisor["started_at"]) if pid and supervisor.get("started_at") else "-",
        "",
        "",
        "",
        str(stack.log_path("supervisor")),
    )
    console.print(table)


def _duration(seconds: float) -> str:
    seconds = int(max(seconds, 0))
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 7200:
        return f"{seconds // 60} min"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d}"


def _exit(info: dict) -> str:
    if "last_exit" not in info:
        return "-"
    code = info["last_exit"]
    if code is None:
        return "unknown"
    if code < 0:
        with contextlib.suppress(ValueError):
            return signal.Signals(-code).name
    return str(code)


# --- catalogs --------------------------------------------------------------------------------
@catalog_app.command("upload")
def catalog_upload(
    file: Annotated[Path, typer.Argument(help="catalog export: keyed JSON, JSON list, JSONL or CSV")],
    name: Annotated[str, typer.Option(help="catalog name (default: from the file name)")] = "",
    roles: Annotated[Path | None, typer.Option(help="field roles file (YAML) for a non-default catalog")] = None,
    reject_mojibake: Annotated[bool, typer.Option(help="refuse mis-encoded text instead of repairing it")] = False,
) -> None:
    """Store a new version of a catalog (emits catalog.updated)."""
    version = run_or_fail(lambda: GatewayClient().upload_catalog(file, name, roles, reject_mojibake))
    _print_version(version)


def _print_version(version: dict) -> None:
    if version["unchanged"]:
        console.print(
            f"[yellow]=[/] {version['name']} is unchanged (version "
            f"{version['version']}, {version['entity_count']} entities)"
        )
    else:
        console.print(
            f"[green]✓[/] {version['name']} version {version['version']}: {version['entity_count']} entities "
            f"(+{len(version['added'])} added, ~{len(version['changed'])} changed, -{len(version['removed'])} removed)"
        )
    for warning in version.get("warnings", []):
        console.print(f"  [yellow]⚠[/] {warning}")


@catalog_app.command("profile")
def catalog_profile(
    catalog: Annotated[str, typer.Argument(help="a catalog file (uploaded first) or the name of a stored catalog")],
    name: Annotated[str, typer.Option(help="catalog name when uploading a file")] = "",
    roles: Annotated[Path | None, typer.Option(help="field roles file (YAML)")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the profile as JSON")] = False,
) -> None:
    """Entity count, per-field fill rate and status distribution (the guide's step 1.1)."""
    client = GatewayClient()
    path = Path(catalog)
    if path.is_file():
        version = run_or_fail(lambda: client.upload_catalog(path, name, roles))
        if not as_json:
            _print_version(version)
        catalog = version["name"]
    profile = run_or_fail(lambda: client.get(f"/catalogs/{catalog}/profile"))
    if as_json:
        console.print_json(json.dumps(profile))
    else:
        print_profile(profile)


def print_profile(profile: dict) -> None:
    total = profile["entity_count"]
    statuses = profile["status_distribution"]
    in_production = sum(n for s, n in statuses.items() if s.strip().lower() == "en production")
    roles = {r["field"]: r["filled"] for r in profile["roles"]}
    console.print("\n📊 Statistiques:")
    console.print(f"  Nombre total d'applications: {total}")
    console.print(f"  Applications en production: {in_production}")
    console.print(f"  Applications avec descriptif: {roles.get('description', 0)}")
    console.print(f"\n📋 Champs disponibles ({len(profile['fields'])}):")
    for f in profile["fields"]:
        console.print(f"  - {f['field']}: {f['filled']}/{total} ({f['rate']:.0%})")
    console.print("\n🏷️  Statuts:")
    for status_name, count in sorted(statuses.items(), key=lambda kv: -kv[1]):
        console.print(f"  - {status_name}: {count} ({count / total:.0%})")
    if profile.get("domain_distribution"):
        console.print("\n🗂️  Domaines:")
        for domain, count in sorted(profile["domain_distribution"].items(), key=lambda kv: -kv[1]):
            console.print(f"  - {domain}: {count}")
    for warning in profile.get("warnings", []):
        console.print(f"  [yellow]⚠[/] {warning}")


@catalog_app.command("list")
def catalog_list() -> None:
    """Every stored catalog at its latest version."""
    catalogs = run_or_fail(lambda: GatewayClient().get("/catalogs"))["catalogs"]
    table = Table("name", "version", "entities", "format", "stored at")
    for c in catalogs:
        table.add_row(c["name"], c["version"], str(c["entity_count"]), c["source_format"], c["created_at"])
    console.print(table)


@catalog_app.command("versions")
def catalog_versions(name: str) -> None:
    """A catalog's versions, newest first, with what changed."""
    versions = run_or_fail(lambda: GatewayClient().get(f"/catalogs/{name}/versions"))["versions"]
    table = Table("version", "entities", "added", "changed", "removed", "stored at")
    for v in versions:
        table.add_row(
            v["version"],
            str(v["entity_count"]),
            str(len(v["added"])),
            str(len(v["changed"])),
            str(len(v["removed"])),
            v["created_at"],
        )
    console.print(table)


# a catalog that follows a file or a URL (catalog_sources.py)
catalog_app.command("follow")(catalog_sources.follow)
catalog_app.command("source")(catalog_sources.source)
catalog_app.command("unfollow")(catalog_sources.unfollow)


# --- jobs ------------------------------------------------------------------------------------
@jobs_app.command("list")
def jobs_list(service: str = "", kind: str = "", status: str = "", limit: int = 30) -> None:
    """Jobs of every service, newest first."""
    listing = run_or_fail(lambda: GatewayClient().get("/jobs", service=service, kind=kind, status=status, limit=limit))
    table = Table("id", "kind", "status", "progress", "step")
    for j in listing["jobs"]:
        table.add_row(
            j["id"], j["kind"], j["status"], f"{j['progress'].get('fraction', 0):.0%}", j["progress"].get("step", "")
        )
    console.print(table)
    for name, reason in listing.get("unavailable", {}).items():
        console.print(f"[yellow]{name} did not answer ({reason}): its jobs are not listed[/]")


@jobs_app.command("show")
def jobs_show(job_id: str) -> None:
    """One job, as JSON."""
    console.print_json(json.dumps(run_or_fail(lambda: GatewayClient().get(f"/jobs/{job_id}"))))


@jobs_app.command("logs")
def jobs_logs(job_id: str, tail_lines: Annotated[int, typer.Option("--tail")] = 0) -> None:
    """A job's log lines."""
    for line in run_or_fail(lambda: GatewayClient().get(f"/jobs/{job_id}/logs", tail=tail_lines))["lines"]:
        console.print(f"[dim]{line.get('level', '')}[/] {line.get('message', '')}")


@jobs_app.command("cancel")
def jobs_cancel(job_id: str) -> None:
    """Cancel a queued or running job."""
    job = run_or_fail(lambda: GatewayClient().post(f"/jobs/{job_id}/cancel"))
    console.print(f"{job['id']}: {job['status']}{' (cancel requested)' if job.get('cancel_requested') else ''}")


@jobs_app.command("watch")
def jobs_watch(job_id: str) -> None:
    """Follow a job with a progress bar until it ends."""
    job = follow_job(GatewayClient(), job_id)
    if job["status"] != "succeeded":
        fail(f"job {job_id} {job['status']}: {job.get('error') or 'see dyag jobs logs ' + job_id}")


# --- the main job ----------------------------------------------------------------------------
@app.command()
def run(
    catalog: Annotated[
        str | None, typer.Argument(help="a catalog file, or the name of a stored catalog (default: the sample catalog)")
    ] = None,
    name: Annotated[
        str, typer.Option(help="the catalog's name (default: from the file; the sample's is applications_ia)")
    ] = "",
    version: Annotated[str, typer.Option(help="a stored catalog's version (default: the latest)")] = "",
    num_questions: Annotated[int | None, typer.Option(help="dataset size (default: 1000)")] = None,
    preset: Annotated[
        str,
        typer.Option(
            help="LoRA preset: auto | small | medium | large | knowledge (every phrasing of "
            "each fact, epochs by exposures per fact)"
        ),
    ] = "auto",
    epochs: Annotated[int | None, typer.Option(help="training epochs (default: the preset's)")] = None,
    max_steps: Annotated[
        int | None, typer.Option(help="training steps; 0: whole epochs (default: 24 on CPU, 0 on GPU)")
    ] = None,
    collection: Annotated[str, typer.Option(help="RAG collection (default: the catalog's name)")] = "",
    targets: Annotated[
        str,
        typer.Option(
            help="what is evaluated, comma-separated: base, fine_tuned, "
            "rag (in --rag-mode), grounded (RAG's records alone), "
            "hybrid (RAG's retrieval, the fine-tuned model answers), gguf (the --export's first level through "
            "llama.cpp) (default: base,fine_tuned,rag, and gguf with --export)"
        ),
    ] = "",
    export: Annotated[
        str,
        typer.Option(
            help="export the fine-tuned model to GGUF after the training (model-exporter, with its parity gate) at "
            "these levels, comma-separated: f16, q8_0, q4_K_M; the first is compared as the gguf target "
            "(default: no export)"
        ),
    ] = "",
    max_eval_questions: Annotated[
        int | None, typer.Option(help="test questions per target; 0: all (default: 30 on CPU, all on GPU)")
    ] = None,
    skip: Annotated[
        str, typer.Option(help="steps to skip, comma-separated: validate, train, index, evaluate, report")
    ] = "",
    model_id: Annotated[str, typer.Option(help="with --skip train: an existing fine-tuned model to evaluate")] = "",
    rag_llm: Annotated[
        str, typer.Option(help="the chat model RAG answers with (ollama:NAME, openai:NAME…; default: rag-service's)")
    ] = "",
    base_llm: Annotated[
        str | None,
        typer.Option(
            help="what the base target answers with: gguf:NAME or ollama:NAME; '' for the "
            "fine-tuning's base model (default: gguf:qwen2.5-0.5b on CPU, the base model on GPU)"
        ),
    ] = None,
    rag_mode: Annotated[
        str,
        typer.Option(
            help="how RAG answers: auto (from the catalog's records when the question is understood, "
            "else the model), grounded (the records only), generative (the model always)"
        ),
    ] = "auto",
    eval_max_tokens: Annotated[
        int | None, typer.Option(help="answer length per test question (default: 96 on CPU)")
    ] = None,
    similarity: Annotated[bool, typer.Option(help="semantic similarity in the evaluation (an embedding model)")] = True,
    device: Annotated[
        str, typer.Option(help="size the defaults for: auto (the trainer's device) | cpu | cuda")
    ] = "auto",
    out: Annotated[Path, typer.Option(help="where the comparison reports (HTML, Markdown, JSON) are saved")] = Path(
        "evaluation"
    ),
    start: Annotated[bool, typer.Option(help="start the local stack when it is not running")] = True,
    detach: Annotated[
        bool, typer.Option(help="start the pipeline and return (dyag pipeline watch ID follows it)")
    ] = False,
) -> None:
    """The whole workflow on a catalog, through the services: ingest, build the dataset, validate it, fine-tune
    (LoRA), export it to GGUF when asked (--export), index RAG, evaluate the base, fine-tuned and RAG targets (and the
    exported GGUF) on the test split, compare and report (the guide's steps 1 to 7). Starts the local stack if needed;
    exits non-zero when the pipeline fails."""
    levels = run_or_fail(lambda: pipeline.export_levels(export))  # a bad level is refused before anything starts
    if start and not os.environ.get("DYAG_URL"):
        stack = Stack()
        port = int(urlparse(stack.state.get("gateway_url", "")).port or 8000) if stack.alive("gateway") else 8000
        stack = Stack(StackConfig(gateway_port=port))
        with console.status("starting the stack…") as status:
            run_or_fail(lambda: stack.up(on_step=lambda s: status.update(s)))
        console.print(f"[green]✓[/] stack ready at {stack.config.gateway_url}")
        client = GatewayClient(stack.config.gateway_url)
    else:
        client = GatewayClient()
    body = run_or_fail(
        lambda: pipeline.request_body(
            catalog,
            name=name,
            version=version,
            num_questions=num_questions,
            preset=preset,
            epochs=epochs,
            max_steps=max_steps,
            rag_collection=collection,
            targets=pipeline.split_list(targets),
            export=levels,
            max_eval_questions=max_eval_questions,
            skip=pipeline.split_list(skip),
            model_id=model_id,
            device=device,
            rag_llm=rag_llm,
            rag_mode=rag_mode,
            eval_max_tokens=eval_max_tokens,
            base_llm=base_llm,
            skip_similarity=not similarity,
        )
    )
    waiter = follow_waiter("nothing was started: run it again")
    created = run_or_fail(lambda: client.post_idempotent("/pipelines", waiter, json=body, timeout=300))
    if detach:
        console.print(f"pipeline {created['id']} started: dyag pipeline watch {created['id']}")
        return
    try:
        final = run_or_fail(lambda: pipeline.follow(client, created["id"]))
    except KeyboardInterrupt:
        fail(
            "stopped following; the pipeline goes on: dyag pipeline watch "
            f"{created['id']} (or dyag pipeline cancel {created['id']})",
            130,
        )
        return
    pipeline.finish(client, final, out)


@app.command()
def logs(component: str, lines: int = 40) -> None:
    """The last lines of a local stack component's log (gateway, nats, dataset-builder…)."""
    console.print(tail(Stack().log_path(component), lines))


if __name__ == "__main__":
    app()
