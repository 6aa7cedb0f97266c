"""dyag: the whole workflow from the command line, through the gateway."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from dyag_cli import datasets, hosted, rag, training, validation
from dyag_cli.client import GatewayClient
from dyag_cli.common import DEFAULT_CATALOG_NAME, console, fail, follow_job, run_or_fail, sample_catalog
from dyag_cli.stack import Stack, StackConfig, tail

app = typer.Typer(help="Dyag: from an application catalog to a measured question-answering assistant.", no_args_is_help=True)
catalog_app = typer.Typer(help="Upload, version and profile catalogs (the guide's step 1).", no_args_is_help=True)
jobs_app = typer.Typer(help="Follow the platform's asynchronous jobs.", no_args_is_help=True)
app.add_typer(catalog_app, name="catalog")
app.add_typer(datasets.dataset_app, name="dataset")
app.command("create_rag", help="The guide's step 2: a grounded QA dataset from a catalog, split 80/10/10.")(datasets.create_rag)
app.command("analyze_training", help="The guide's step 3: coverage, types, format, tokens, duplicates, checklist.")(validation.analyze_training)
app.command("train", help="The guide's step 5: fine-tune a local model with LoRA (CPU or GPU), with a progress bar.")(training.train)
app.command("query_finetuned", help="Ask a LoRA fine-tuned model (base model + adapter).")(training.query_finetuned)
app.command("models", help="LoRA fine-tuned models in the registry.")(training.list_models)
app.command("index_rag", help="The guide's step 7: index a catalog into a RAG collection (only changed applications are re-embedded).")(rag.index_rag)
app.command("query_rag", help="The guide's step 7: answer a question from the catalog, with its sources.")(rag.query_rag)
app.command("rag_stats", help="What a RAG collection holds: catalog version, applications, chunks, embedder.")(rag.rag_stats)
app.add_typer(hosted.hosted_app, name="hosted")
app.add_typer(jobs_app, name="jobs")

# --- the stack -------------------------------------------------------------------------------
@app.command()
def up(
    port: Annotated[int, typer.Option(help="gateway port")] = 8000,
    timeout: Annotated[float, typer.Option(help="seconds to wait for readiness")] = 120.0,
) -> None:
    """Start NATS, every installed service and the gateway on this machine (no Docker)."""
    stack = Stack(StackConfig(gateway_port=port))
    with console.status("starting the stack…") as status:
        run_or_fail(lambda: stack.up(timeout=timeout, on_step=lambda s: status.update(s)))
    console.print(f"[green]✓[/] Dyag is up at {stack.config.gateway_url} (API docs: {stack.config.gateway_url}/docs)")
    _print_status(stack)


@app.command()
def down() -> None:
    """Stop what `dyag up` started."""
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
    for column in ("component", "pid", "process", "health", "log"):
        table.add_column(column)
    services = health.get("services", {})
    for name, info in stack.processes().items():
        alive = stack.alive(name)
        state = services.get(name, health.get("status", "") if name == "gateway" else health.get("nats", ""))
        table.add_row(name, str(info["pid"]), "[green]running[/]" if alive else "[red]stopped[/]", str(state or "-"), str(stack.log_path(name)))
    if not stack.processes():
        console.print("the stack is not running: start it with `dyag up`")
        return
    console.print(table)


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
        console.print(f"[yellow]=[/] {version['name']} is unchanged (version {version['version']}, {version['entity_count']} entities)")
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
        table.add_row(v["version"], str(v["entity_count"]), str(len(v["added"])), str(len(v["changed"])), str(len(v["removed"])), v["created_at"])
    console.print(table)


# --- jobs ------------------------------------------------------------------------------------
@jobs_app.command("list")
def jobs_list(service: str = "", kind: str = "", status: str = "", limit: int = 30) -> None:
    """Jobs of every service, newest first."""
    jobs = run_or_fail(lambda: GatewayClient().get("/jobs", service=service, kind=kind, status=status, limit=limit))["jobs"]
    table = Table("id", "kind", "status", "progress", "step")
    for j in jobs:
        table.add_row(j["id"], j["kind"], j["status"], f"{j['progress'].get('fraction', 0):.0%}", j["progress"].get("step", ""))
    console.print(table)


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
    catalog: Annotated[Path | None, typer.Argument(help="catalog file (default: the sample catalog)")] = None,
    name: Annotated[str, typer.Option(help="catalog name")] = DEFAULT_CATALOG_NAME,
    num_questions: Annotated[int, typer.Option(help="dataset size")] = 1000,
    output: Annotated[Path, typer.Option(help="where the dataset goes; the splits beside it")] = Path("training/finetuning_dataset.jsonl"),
) -> None:
    """The workflow on a catalog: start the stack if needed, ingest and profile the catalog, build the
    dataset and validate it (the guide's steps 1 to 3)."""
    catalog = catalog or sample_catalog()
    stack = Stack()
    with console.status("starting the stack…") as status:
        run_or_fail(lambda: stack.up(on_step=lambda s: status.update(s)))
    console.print(f"[green]✓[/] stack ready at {stack.config.gateway_url}")
    client = GatewayClient(stack.config.gateway_url)

    console.rule("1. Catalogue")
    version = run_or_fail(lambda: client.upload_catalog(catalog, name))
    _print_version(version)
    print_profile(run_or_fail(lambda: client.get(f"/catalogs/{version['name']}/profile")))

    console.rule("2. Dataset")
    dataset = datasets.build(client, version["name"], num_questions=num_questions)
    datasets.print_dataset(dataset, datasets.download_files(client, dataset, output, ("openai",)), verbose=True)

    console.rule("3. Validation")
    result = run_or_fail(lambda: client.post(f"/datasets/{dataset['id']}/validate"))
    console.print(result["text"], markup=False, highlight=False)


@app.command()
def logs(component: str, lines: int = 40) -> None:
    """The last lines of a local stack component's log (gateway, nats, dataset-builder…)."""
    console.print(tail(Stack().log_path(component), lines))


if __name__ == "__main__":
    app()
