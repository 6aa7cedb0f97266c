"""`dyag run`: the whole workflow as one pipeline on the gateway, with a live display; `dyag pipeline …` to follow
it."""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Group
from rich.live import Live
from rich.markup import escape
from rich.progress_bar import ProgressBar
from rich.spinner import Spinner
from rich.table import Table
from rich.text import Text

from dyag_cli.client import CliError, GatewayClient, Waiter
from dyag_cli.common import (
    DEFAULT_CATALOG_NAME,
    console,
    fail,
    follow_waiter,
    run_or_fail,
    sample_catalog,
    stopped_following,
)

pipeline_app = typer.Typer(
    help="Follow, show and cancel pipelines (the whole workflow, `dyag run`).", no_args_is_help=True
)

ENDED = ("succeeded", "failed", "cancelled")
ICONS = {
    "succeeded": "[green]✓[/]",
    "failed": "[red]✗[/]",
    "cancelled": "[yellow]⊘[/]",
    "skipped": "[dim]–[/]",
    "blocked": "[dim]·[/]",
    "pending": "[dim]○[/]",
    "interrupted": "[yellow]![/]",
}
TARGET_NAMES = {
    "base": "Base",
    "fine_tuned": "Fine-tuned",
    "rag": "RAG",
    "grounded": "Ancré",
    "hybrid": "Hybride",
    "gguf": "GGUF",
}
GUIDE_METRICS = (("accuracy", "Accuracy"), ("precision", "Precision"), ("recall", "Recall"), ("f1_score", "F1_score"))
EXTRA_METRICS = (
    ("fact_accuracy", "Faits clés"),
    ("hallucination_rate", "Hallucinations"),
    ("abstention_rate", "Abstention (négatives)"),
)


EMPTY_MEANS_SOMETHING = ("base_llm",)  # options whose empty value is a choice, not "the default"


# --- starting one ---------------------------------------------------------------------------------------------------
def request_body(catalog: str | None, *, name: str, version: str, **options: Any) -> dict[str, Any]:
    """POST /pipelines' body: a catalog file is sent (base64, its exact bytes), a stored catalog is named."""
    body: dict[str, Any] = {
        k: v for k, v in options.items() if v not in (None, "", []) or (k in EMPTY_MEANS_SOMETHING and v == "")
    }
    path = Path(catalog) if catalog else sample_catalog()
    if path.is_file():
        if version:
            raise CliError("--version names a stored catalog's version; a catalog file is stored as a new version")
        body.update(
            catalog_base64=base64.b64encode(path.read_bytes()).decode(),
            catalog_filename=path.name,
            catalog=name or (DEFAULT_CATALOG_NAME if catalog is None else ""),
        )
    elif catalog and ("/" in catalog or "." in Path(catalog).name):
        raise CliError(f"no such catalog file: {catalog}")
    else:
        body.update(catalog=catalog, catalog_version=version)
    return body


def split_list(value: str) -> list[str]:
    return [v.strip() for v in value.split(",") if v.strip()]


def export_levels(value: str) -> list[str]:
    """`--export q8_0` (or q8_0,f16): the quantization levels, checked here so that a bad one is refused before
    anything starts; empty: no export."""
    from dyag_core.export import ExportError, parse_quantizations

    if not split_list(value):
        return []
    try:
        return list(parse_quantizations(split_list(value)))
    except ExportError as exc:
        raise CliError(f"--export: {exc.message}") from None


# --- the live display ---------------------------------------------------------------------------------------------
def _seconds(value: float | None) -> str:
    if value is None:
        return ""
    value = float(value)
    return f"{value:.1f} s" if value < 90 else f"{int(value // 60)} min {int(value % 60):02d} s"


def step_detail(step: dict[str, Any]) -> str:
    """One line about a step: what its job is doing, or what it left."""
    r, status = step.get("result") or {}, step["status"]
    if status == "running":
        return (step.get("progress") or {}).get("step") or ("waiting for its job" if step.get("job_id") else "starting")
    if status == "failed":
        kept = f"{r['export_id']} (kept, marked failed): " if r.get("export_id") else ""  # an export's gate failed
        return f"{kept}[red]{escape(step.get('error') or 'failed')}[/]"
    if status in ("skipped", "blocked", "cancelled", "interrupted"):
        return f"[dim]{step.get('note') or step.get('error') or status}[/]"
    if status != "succeeded":
        return ""
    name = step["name"]
    if name == "ingest":
        return (
            f"{r.get('name')} version {str(r.get('version', ''))[:12]}: "
            f"{r.get('entity_count')} entities ({step.get('note', '')})"
        )
    if name == "build":
        counts = r.get("split_counts") or {}
        line = (
            f"{r.get('dataset_id')}: {counts.get('train', 0)} train / "
            f"{counts.get('validation', 0)} validation / {counts.get('test', 0)} test"
        )
        line += f" [dim]({escape(r['sizing'])})[/]" if r.get("sizing") else ""
        return line + "".join(f"\n[yellow]⚠ {escape(w)}[/]" for w in r.get("warnings") or [])
    if name == "validate":
        checklist = r.get("checklist") or {}
        return (
            f"{r.get('verdict')}: {r.get('examples')} examples, checklist "
            f"{checklist.get('passed', 0)}/{checklist.get('total', 0)}"
        )
    if name == "train":
        m = r.get("metrics") or {}
        loss = (
            f", loss {m['first_loss']:.3f} → {m['final_loss']:.3f}"
            if m.get("first_loss") and m.get("final_loss")
            else ""
        )
        speed = f", {m['tokens_per_second']:.0f} tokens/s" if m.get("tokens_per_second") else ""
        steps = f"{m['steps']} steps" if m.get("steps") else ""
        return f"{r.get('model_id')}" + (f": {steps}{loss}{speed} ({m.get('device', '')})" if steps else "")
    if name == "index":
        return ", ".join(f"{k} {r[k]}" for k in ("collection", "chunks", "entities", "chunks_embedded") if k in r)
    if name == "export":
        return export_detail(r)
    if name.startswith("evaluate_"):
        s = r.get("summary") or {}
        if not s:
            return r.get("run_id", "")
        latency = (
            f", {s['average_generation_time_ms']:.0f} ms/question"
            if s.get("average_generation_time_ms") is not None
            else ""
        )
        return (
            f"accuracy {s.get('accuracy', 0):.1%} on {s.get('questions', 0)} "
            f"questions, F1 {s.get('f1_score', 0):.1%}{latency}"
        )
    if name == "report":
        text = r.get("recommendation") or "comparison written"
        return text if len(text) <= 110 else text[:107].rsplit(" ", 1)[0] + "… (below)"
    return ""


def export_detail(r: dict[str, Any]) -> str:
    """The export: its id, the GGUF the gguf target evaluates, and each level's parity verdict with its figures."""
    gguf = r.get("gguf") or {}
    size = f" ({int(gguf['size']) / 1e6:.0f} MB)" if gguf.get("size") else ""
    line = f"{r.get('export_id', '')}: {gguf.get('name', 'no GGUF')}{size}"
    for p in r.get("parity") or []:
        figures = ", ".join(
            f"{label} {p[key]:{fmt}}"
            for key, label, fmt in (("mean_kld", "KL", ".4f"), ("top1_agreement", "top-1", ".1%"))
            if isinstance(p.get(key), int | float)
        )
        verdict = "passed" if p.get("passed") else f"failed ({', '.join(p.get('failed') or []) or 'see its reason'})"
        line += f"; parity {p.get('quantization')} {verdict}" + (f" [dim]({figures})[/]" if figures else "")
    return line


def render(pipeline: dict[str, Any]) -> Group:
    params = pipeline.get("params") or {}
    head = Text.from_markup(
        f"[bold]{pipeline['id']}[/] on [bold]{params.get('catalog')}[/] ({params.get('catalog_entities', '?')} "
        f"entities) — {pipeline['status']}, {_seconds(pipeline.get('elapsed_s'))}\n" + escape(chosen_defaults(pipeline))
    )
    table = Table(box=None, show_header=False, pad_edge=False, expand=False)
    for column in ("", "step", "time", "bar", "detail"):
        table.add_column(column, no_wrap=column != "detail", overflow="fold")
    for step in pipeline["steps"]:
        status = step["status"]
        icon: Any = Spinner("dots", style="cyan") if status == "running" else Text.from_markup(ICONS.get(status, "?"))
        progress = step.get("progress") or {}
        bar: Any = (
            ProgressBar(total=1.0, completed=float(progress.get("fraction") or 0), width=22)
            if status == "running"
            else ""
        )
        label = f"{step['number']}. {step['title']}"
        table.add_row(icon, label, _seconds(step.get("elapsed_s")), bar, Text.from_markup(step_detail(step)))
    parts: list[Any] = [head, table]
    if pipeline.get("stalled"):
        parts.append(Text.from_markup("[yellow]its gateway stopped heart-beating: the next gateway resumes it[/]"))
    return Group(*parts)


def chosen_defaults(pipeline: dict[str, Any]) -> str:
    """What the run chose, and why, in one line: the dataset's size (the build says what the catalog allows), the
    training budget, the questions evaluated, the base target's model."""
    params = pipeline.get("params") or {}
    device = params.get("device", "?")
    build = next((s for s in pipeline["steps"] if s["name"] == "build"), {})
    sizing = (build.get("result") or {}).get("sizing") or ""
    if params.get("num_questions_given"):
        dataset = f"{params.get('num_questions')} questions (asked)"
    else:
        dataset = sizing or f"up to {params.get('num_questions')} questions, sized to the catalog"
    steps = params.get("max_steps")
    training = (
        f"{steps} training steps ({'the CPU time budget' if device == 'cpu' else 'asked'})"
        if steps
        else "whole training epochs"
    )
    questions = params.get("max_eval_questions")
    evaluation = (
        f"{questions} test questions per target (a sample stratified by type)" if questions else "every test question"
    )
    parts = [f"defaults for {device}: {dataset}", training, evaluation]
    if params.get("base_llm") and "base" in (params.get("targets") or []):
        parts.append(f"base target: {params['base_llm']}")
    return "; ".join(parts)


def follow(
    client: GatewayClient, pipeline_id: str, *, poll: float = 1.0, waiter: Waiter | None = None
) -> dict[str, Any]:
    """The live display until the pipeline ends. The pipeline lives on the gateway, which resumes it after a restart:
    a restart of the gateway (or of a service) is waited through, with one notice line (`follow_waiter`)."""
    waiter = waiter or follow_waiter(f"the pipeline goes on: dyag pipeline watch {pipeline_id}")
    path = f"/pipelines/{pipeline_id}"
    pipeline = client.get_waiting(path, waiter)
    with Live(render(pipeline), console=console, refresh_per_second=4, transient=False) as live:
        while pipeline["status"] not in ENDED:
            time.sleep(poll)
            pipeline = client.get_waiting(path, waiter)
            live.update(render(pipeline))
    return pipeline


# --- the comparison -------------------------------------------------------------------------------------------------
def comparison_table(pipeline: dict[str, Any]) -> Table | None:
    """The guide's step 6.2 table: each target's accuracy, precision, recall, F1 and latency, with Δ against the
    base."""
    steps = [s for s in pipeline["steps"] if s["name"].startswith("evaluate_") and s["status"] == "succeeded"]
    runs = [(s["name"].removeprefix("evaluate_"), (s.get("result") or {}).get("summary") or {}) for s in steps]
    if not runs:
        return None
    baseline = runs[0][1]
    questions = max(s.get("questions", 0) for _, s in runs)
    table = Table(
        title=f"📊 Comparaison ({questions} questions de test par cible "
        f"; Δ contre {TARGET_NAMES.get(runs[0][0], runs[0][0])})",
        title_justify="left",
    )
    table.add_column("Métrique")
    for i, (target, _) in enumerate(runs):
        table.add_column(TARGET_NAMES.get(target, target), justify="right")
        if i:
            table.add_column("Δ", justify="right")

    def row(label: str, key: str, fmt) -> None:
        cells = [label]
        for i, (_, s) in enumerate(runs):
            value = s.get(key)
            cells.append(fmt(value) if value is not None else "–")
            if i:
                base = baseline.get(key)
                cells.append(_delta(key, value, base))
        table.add_row(*cells)

    for key, label in GUIDE_METRICS:
        row(label, key, lambda v: f"{v:.1%}")
    table.add_section()
    for key, label in EXTRA_METRICS:
        row(label, key, lambda v: f"{v:.1%}")
    row("⏱️  Latence moyenne", "average_generation_time_ms", lambda v: f"{v:.0f} ms")
    row("Latence p95", "latency_p95_ms", lambda v: f"{v:.0f} ms")
    return table


def models_line(pipeline: dict[str, Any]) -> str:
    """Which model answered for each target: they may differ (on a CPU, a small model is trained, and the base target
    is the capable CPU model RAG falls back to)."""
    parts = []
    for step in pipeline["steps"]:
        if step["name"].startswith("evaluate_") and step["status"] == "succeeded":
            target = step["name"].removeprefix("evaluate_")
            model = (step.get("result") or {}).get("model") or ""
            if target in ("rag", "grounded") and not model:
                model = "les fiches du catalogue" + (" (sinon le modèle de RAG)" if target == "rag" else "")
            parts.append(f"{TARGET_NAMES.get(target, target)} : {model or 'n/d'}")
    return "Modèles — " + " · ".join(parts) if parts else ""


def _delta(key: str, value: float | None, base: float | None) -> str:
    if value is None or base is None:
        return ""
    if key.endswith("_ms"):
        return f"{(base - value) / base * 100:+.1f} %" if base else ""
    return f"{(value - base) * 100:+.1f} pts"


def print_outcome(client: GatewayClient, pipeline: dict[str, Any], out_dir: Path | None) -> None:
    console.print()
    table = comparison_table(pipeline)
    if table is not None:
        console.print(table)
        console.print(models_line(pipeline), highlight=False)
    report_step = next((s for s in pipeline["steps"] if s["name"] == "report"), None)
    if report_step and report_step["status"] == "succeeded":
        r = report_step.get("result") or {}
        if r.get("recommendation"):
            console.print(f"\n🎯 {r['recommendation']}")
        for warning in r.get("warnings") or []:
            console.print(f"  [yellow]⚠[/] {warning}")
        links = (pipeline.get("report") or {}).get("links") or {}
        if out_dir is not None:
            saved = []
            for fmt, link in links.items():
                try:
                    saved.append(client.download(link, out_dir / f"comparison.{fmt}"))
                except CliError as exc:
                    console.print(f"  [yellow]⚠[/] could not save the {fmt} report: {exc}")
            html = next((p for p in saved if p.suffix == ".html"), None)
            if html:
                console.print(
                    f"\n📄 HTML report: [bold]{html.resolve()}[/] (also "
                    f"{', '.join(str(p) for p in saved if p != html)})"
                )
        if links.get("html"):
            console.print(f"   on the gateway: {client.url}{links['html']}")


def finish(client: GatewayClient, pipeline: dict[str, Any], out_dir: Path | None) -> None:
    print_outcome(client, pipeline, out_dir)
    status = pipeline["status"]
    if status == "succeeded":
        console.print(f"\n[green]✓[/] pipeline {pipeline['id']} succeeded in {_seconds(pipeline.get('elapsed_s'))}")
        return
    fail(
        f"pipeline {pipeline['id']} {status}"
        + (f" at step {pipeline['failed_step']}" if pipeline.get("failed_step") else "")
        + f": {pipeline.get('error') or 'see dyag pipeline show ' + pipeline['id']}"
    )


# --- dyag pipeline … --------------------------------------------------------------------------------------------------
@pipeline_app.command("list")
def list_pipelines(status: str = "", limit: int = 20) -> None:
    """Pipelines, newest first."""
    pipelines = run_or_fail(lambda: GatewayClient().get("/pipelines", status=status, limit=limit))["pipelines"]
    table = Table("id", "catalog", "status", "created", "elapsed", "failed step")
    for p in pipelines:
        table.add_row(
            p["id"],
            str(p.get("catalog")),
            p["status"],
            str(p.get("created_at")),
            _seconds(p.get("elapsed_s")),
            p.get("failed_step") or "",
        )
    console.print(table)


@pipeline_app.command("show")
def show(
    pipeline_id: str, as_json: Annotated[bool, typer.Option("--json", help="the whole record as JSON")] = False
) -> None:
    """A pipeline's steps, timings and comparison."""
    client = GatewayClient()
    pipeline = run_or_fail(lambda: client.get(f"/pipelines/{pipeline_id}"))
    if as_json:
        console.print_json(json.dumps(pipeline))
        return
    console.print(render(pipeline))
    print_outcome(client, pipeline, None)


@pipeline_app.command("watch")
def watch(
    pipeline_id: str,
    out: Annotated[Path, typer.Option(help="where the comparison reports are saved")] = Path("evaluation"),
) -> None:
    """Follow a pipeline live until it ends (exits non-zero when it fails)."""
    client = GatewayClient()
    try:
        pipeline = run_or_fail(lambda: follow(client, pipeline_id))
    except KeyboardInterrupt:
        stopped_following("pipeline", f"dyag pipeline watch {pipeline_id}", f"dyag pipeline cancel {pipeline_id}")
        return
    finish(client, pipeline, out)


@pipeline_app.command("cancel")
def cancel(pipeline_id: str) -> None:
    """Cancel a pipeline: its running steps' jobs are cancelled; what is done stays."""
    pipeline = run_or_fail(lambda: GatewayClient().post(f"/pipelines/{pipeline_id}/cancel"))
    console.print(
        f"{pipeline['id']}: {pipeline['status']}{' (cancel requested)' if pipeline.get('cancel_requested') else ''}"
    )
