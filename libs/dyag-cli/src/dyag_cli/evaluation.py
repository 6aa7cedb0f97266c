"""Evaluation commands (the guide's steps 6 and 7).

- `dyag evaluate_rag training/test.jsonl --collection applications_ia --output evaluation/results.json --verbose`
  (the guide's step 6.1, as written: LLM_PROVIDER / LLM_MODEL, when set, name the model that answers);
- `dyag evaluate --target base|lora:MODEL|openai:MODEL|ollama:MODEL|rag:COLLECTION|hybrid:MODEL+COLLECTION
  --test-set FILE | --dataset ID [--output results.json] [--html report.html]`;
- `dyag compare A.json B.json … [--html comparison.html]` and `dyag report RESULTS.json --html`: offline,
  on result files, through dyag_core.evaluation (no stack needed);
- `dyag evaluations [RUN_ID]`: the runs the evaluator kept.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from dyag_cli.client import CliError, GatewayClient
from dyag_cli.common import DEFAULT_CATALOG_NAME, console, fail, follow_waiter, run_or_fail, stopped_following

TARGETS_HELP = (
    "base | base:FOLDER | lora:MODEL_ID | openai:MODEL | ollama:MODEL | rag:COLLECTION | hybrid:MODEL_ID+COLLECTION"
)
MANIFEST_SUFFIX = ".manifest.jsonl"
TYPE_WIDTH = 12


# ------------------------------------------------------------------ running an evaluation


def _test_set_body(path: Path) -> dict[str, Any]:
    """A local test file (eval JSONL or OpenAI chat JSONL) and its provenance manifest beside it, if any."""
    if not path.is_file():
        fail(f"no such test file: {path}")
    try:
        body: dict[str, Any] = {"test_set": path.read_text(encoding="utf-8-sig"), "filename": path.name}
    except UnicodeDecodeError:
        fail(f"{path} is not UTF-8 text: a test set is JSONL (eval or OpenAI chat format)")
    manifest = path.with_name(path.name + MANIFEST_SUFFIX)
    if manifest.is_file():
        body["manifest"] = manifest.read_text(encoding="utf-8")
    return body


def _eta(seconds: float | None) -> str:
    if seconds is None or seconds < 0:
        return ""
    seconds = int(seconds)
    return f"reste ~{seconds // 60} min {seconds % 60:02d} s" if seconds >= 60 else f"reste ~{seconds} s"


def follow(client: GatewayClient, job_id: str, label: str) -> dict:
    """The job's progress bar (answered/total, failed, ETA) until it ends; returns the final job."""
    job: dict = {}
    columns = (
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.percentage:>3.0f}%"),
        TextColumn("{task.fields[step]}"),
        TextColumn("[dim]{task.fields[eta]}[/]"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console, transient=False) as progress:
        task = progress.add_task(label, total=1.0, step="", eta="")
        try:
            for job in client.watch_job(job_id, follow_waiter(f"the job goes on: dyag jobs watch {job_id}")):
                p = job.get("progress", {})
                done = job.get("status") in ("succeeded", "failed", "cancelled")
                progress.update(
                    task,
                    completed=p.get("fraction", 0.0),
                    step=p.get("step", ""),
                    eta="" if done else _eta(p.get("eta_seconds")),
                )
        except CliError as exc:
            fail(str(exc))
        except KeyboardInterrupt:
            stopped_following("job", f"dyag jobs watch {job_id}", f"dyag jobs cancel {job_id}")
    return job


def run_evaluation(
    client: GatewayClient,
    body: dict[str, Any],
    *,
    output: Path | None,
    verbose: bool,
    html: Path | None = None,
    markdown: Path | None = None,
) -> dict[str, Any]:
    """POST /evaluations, follow the job, write the reports asked for; returns the results (results.json)."""
    job = run_or_fail(lambda: client.post("/evaluations", json=body))
    label = (
        "évaluation "
        f"{body.get('name') or (body['target'] if isinstance(body['target'], str) else body['target'].get('kind'))}"
    )
    console.print(f"[dim]job {job['id']} (dyag jobs watch {job['id']})[/]")
    job = follow(client, job["id"], label)
    if job.get("status") != "succeeded":
        fail(f"the evaluation {job.get('status')}: {job.get('error') or 'see dyag jobs logs ' + job['id']}")
    run_id = job["result"].get("run_id") or job["id"]
    data = run_or_fail(lambda: client.get(f"/evaluations/{run_id}/report.json"))
    if output:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(json.dumps(data, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    for path, fmt in ((html, "html"), (markdown, "md")):
        if path:
            run_or_fail(lambda p=path, f=fmt: client.download(f"/evaluations/{run_id}/report.{f}", p))
    print_results(data, verbose=verbose)
    for path, what in ((output, "Résultats (JSON)"), (html, "Rapport HTML"), (markdown, "Rapport Markdown")):
        if path:
            console.print(f"[green]✅[/] {what} : {path}")
    console.print(f"[dim]run {run_id}: GET /evaluations/{run_id}/report.html[/]")
    return data


def _pct(value: Any) -> str:
    return "n/d" if value is None else f"{value:.1%}"


def _ms(value: Any) -> str:
    return "n/d" if value is None else f"{value:.0f} ms"


def print_results(data: dict[str, Any], *, verbose: bool = False) -> None:
    """A run's figures as the guide's step 6.2 reads them, and with --verbose one line per question."""
    target = data.get("target", {})
    if verbose:
        console.print()
        for r in data.get("results", []):
            mark = "✅" if r.get("correct") else ("⚠️ " if r.get("failed") else "❌")
            qtype = str(r.get("type", ""))[:TYPE_WIDTH].ljust(TYPE_WIDTH)
            line = f"{mark} [{qtype}] {r.get('question', '')}"
            if r.get("latency_ms") is not None:
                line += f"  ({r['latency_ms']:.0f} ms)"
            console.print(line, markup=False, highlight=False)
            got = " ".join(str(r.get("got") or "").split())
            console.print(f"      → {got[:160] or '(vide)'}", markup=False, highlight=False)
            if not r.get("correct"):
                console.print(f"      ✗ {r.get('reason') or r.get('reason_code') or ''}", markup=False, highlight=False)
    console.print(
        f"\n📊 Résultats : {target.get('name', '')} ({data.get('questions', 0)} "
        f"questions, {data.get('test_set', {}).get('name', '')})"
    )
    rows = [
        ("Accuracy", f"{_pct(data.get('accuracy'))} ({data.get('correct', 0)}/{data.get('questions', 0)})"),
        ("Precision", _pct(data.get("precision"))),
        ("Recall", _pct(data.get("recall"))),
        ("F1_score", _pct(data.get("f1_score"))),
        ("Faits clés énoncés", _pct(data.get("fact_accuracy"))),
        ("Exact match", _pct(data.get("exact_match"))),
        (
            "Similarité sémantique",
            "non mesurée" if data.get("semantic_similarity") is None else f"{data['semantic_similarity']:.3f}",
        ),
        ("Hallucinations", _pct(data.get("hallucination_rate"))),
        ("Abstention (questions négatives)", _pct(data.get("abstention_rate"))),
        ("Appels en échec", str(data.get("failed", 0))),
        ("Latence moyenne", _ms(data.get("average_generation_time_ms"))),
        ("Latence p50 / p95", f"{_ms(data.get('latency_p50_ms'))} / {_ms(data.get('latency_p95_ms'))}"),
        ("Coût estimé", "non estimé" if data.get("cost_usd") is None else f"{data['cost_usd']:.4f} $"),
    ]
    if data.get("judge_score") is not None:
        rows.append(("Score du juge LLM", f"{data['judge_score']:.2f}"))
    for name, value in rows:
        console.print(f"  {name:<34} {value}", highlight=False)
    errors = data.get("errors", [])
    if errors and not verbose:
        console.print(f"\n❌ Erreurs ({len(errors)}) — les 3 premières (toutes dans le JSON, champ errors) :")
        for i, err in enumerate(errors[:3], 1):
            console.print(
                f"  {i}. {err['question']}\n     Raison : {err.get('reason') or 'N/A'}", markup=False, highlight=False
            )
    for note in data.get("meta", {}).get("notes", []):
        console.print(f"  [yellow]⚠[/] {note}", highlight=False)


def _llm_from_env() -> str:
    """The guide's LLM_PROVIDER / LLM_MODEL (step 6.1), as a chat-model spec; empty when not both set."""
    provider, model = os.environ.get("LLM_PROVIDER", "").strip(), os.environ.get("LLM_MODEL", "").strip()
    return f"{provider}:{model}" if provider and model else ""


def evaluate_rag(
    test_file: Annotated[
        Path,
        typer.Argument(
            help="the test set: training/test.jsonl (OpenAI chat JSONL, with its manifest beside it) or test.eval.jsonl"
        ),
    ],
    collection: Annotated[str, typer.Option(help="the RAG collection")] = DEFAULT_CATALOG_NAME,
    output: Annotated[Path, typer.Option(help="where the results go (JSON with the guide's fields)")] = Path(
        "evaluation/results.json"
    ),
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="one line per question: answer, verdict, reason")
    ] = False,
    n_chunks: Annotated[int, typer.Option("--n-chunks", help="chunks of the catalog given to the model")] = 5,
    model: Annotated[
        str,
        typer.Option(
            help="the answering model (ollama:NAME, openai:NAME, local:default); "
            "default: LLM_PROVIDER:LLM_MODEL if set, else rag-service's"
        ),
    ] = "",
    max_questions: Annotated[int, typer.Option(help="0: every question; else a sample stratified by type")] = 0,
    concurrency: Annotated[
        int | None, typer.Option(help="questions in flight at once (default: the evaluator's)")
    ] = None,
    name: Annotated[str, typer.Option(help="the run's label in reports")] = "",
    html: Annotated[Path | None, typer.Option(help="also write the HTML report here")] = None,
) -> None:
    """The guide's step 6.1: evaluate the RAG target on a test file, write the results JSON (accuracy, precision,
    recall, f1_score, average_generation_time_ms, errors…)."""
    llm = model or _llm_from_env()
    body = {
        "target": f"rag:{collection}",
        "n_chunks": n_chunks,
        "llm": llm,
        "max_questions": max_questions,
        "name": name,
        **_test_set_body(test_file),
    }
    if concurrency is not None:
        body["concurrency"] = concurrency
    console.print(
        f"🔍 Évaluation RAG : collection {collection}, {n_chunks} extraits, "
        f"modèle {llm or 'celui de rag-service'}, jeu de test {test_file}"
    )
    run_evaluation(GatewayClient(timeout=300), body, output=output, verbose=verbose, html=html)


def evaluate(
    target: Annotated[str, typer.Option("--target", help=TARGETS_HELP)],
    test_set: Annotated[
        Path | None, typer.Option("--test-set", help="a local test file (eval JSONL or OpenAI chat JSONL + manifest)")
    ] = None,
    dataset: Annotated[str, typer.Option("--dataset", help="or a dataset id (its test split)")] = "",
    output: Annotated[Path | None, typer.Option(help="write the results JSON here")] = None,
    html: Annotated[Path | None, typer.Option(help="write the HTML report here")] = None,
    markdown: Annotated[Path | None, typer.Option("--markdown", help="write the Markdown report here")] = None,
    name: Annotated[str, typer.Option(help="the run's label in reports (default: the target)")] = "",
    max_questions: Annotated[int, typer.Option(help="0: every question; else a sample stratified by type")] = 0,
    concurrency: Annotated[
        int | None, typer.Option(help="questions in flight at once (default: the evaluator's)")
    ] = None,
    seed: Annotated[int, typer.Option(help="the sample's seed")] = 0,
    llm: Annotated[
        str,
        typer.Option(
            help="rag target: the answering model (default: LLM_PROVIDER:LLM_MODEL if set, else rag-service's)"
        ),
    ] = "",
    n_chunks: Annotated[int, typer.Option("--n-chunks", help="rag/hybrid: chunks given to the model (0: 5)")] = 0,
    base_url: Annotated[str, typer.Option(help="openai target: an OpenAI-compatible endpoint")] = "",
    api_key_env: Annotated[
        str, typer.Option(help="openai target: the NAME of the variable holding the key on the evaluator's host")
    ] = "",
    host: Annotated[str, typer.Option(help="ollama target: the Ollama server")] = "",
    approach: Annotated[
        str, typer.Option(help="base | fine_tuned | rag | hybrid, for comparisons (default: from the target)")
    ] = "",
    catalog: Annotated[
        str, typer.Option(help="check answers against this catalog (default: the dataset's or collection's)")
    ] = "",
    judge: Annotated[str, typer.Option(help="an LLM judge (openai:…, ollama:…); optional")] = "",
    max_tokens: Annotated[int, typer.Option(help="per answer (0: the evaluator's default)")] = 0,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="one line per question")] = False,
) -> None:
    """Evaluate a target on a test set: accuracy, precision/recall/F1, key facts, hallucinations, abstention,
    latency p50/p95, cost; reports in JSON, Markdown and HTML."""
    if (test_set is None) == (not dataset):
        fail("give the questions: --test-set FILE or --dataset ID (one of them)")
    body: dict[str, Any] = {
        "target": target,
        "name": name,
        "max_questions": max_questions,
        "seed": seed,
        "n_chunks": n_chunks,
        "base_url": base_url,
        "api_key_env": api_key_env,
        "host": host,
        "approach": approach,
        "catalog": catalog,
        "judge_model": judge,
        "max_tokens": max_tokens,
    }
    if target.strip().lower().startswith("rag:"):
        body["llm"] = llm or _llm_from_env()
    elif llm:
        fail("--llm only applies to a rag target")
    if concurrency is not None:
        body["concurrency"] = concurrency
    if test_set is not None:
        body.update(_test_set_body(test_set))
    else:
        body["dataset_id"] = dataset
    run_evaluation(GatewayClient(timeout=300), body, output=output, verbose=verbose, html=html, markdown=markdown)


# ------------------------------------------------------------------ offline: compare and report


def _load_runs(files: list[Path]) -> list[Any]:
    from dyag_core.evaluation import EvaluationError, load_run

    runs = []
    for path in files:
        try:
            runs.append(load_run(path))
        except EvaluationError as exc:
            fail(exc.message)
    return runs


def compare(
    results: Annotated[
        list[Path], typer.Argument(help="result files (from dyag evaluate / evaluate_rag), the baseline first")
    ],
    html: Annotated[Path | None, typer.Option(help="write the HTML comparison report here")] = None,
    markdown: Annotated[Path | None, typer.Option("--markdown", help="write the Markdown comparison here")] = None,
    as_json: Annotated[Path | None, typer.Option("--json", help="write the comparison as JSON here")] = None,
    baseline: Annotated[int, typer.Option(help="which file is the baseline (0: the first)")] = 0,
    catalog_size: Annotated[
        int | None, typer.Option(help="applications in the catalog (picks the guide's 7.2 row; default: the runs')")
    ] = None,
) -> None:
    """Compare result files side by side (offline): the guide's 6.2 table with deltas, latency, RAG vs
    fine-tuned vs hybrid, and the 7.2 decision table with the measured figures."""
    from dyag_core.evaluation import EvaluationError, compare_runs, render_html, render_markdown

    runs = _load_runs(results)
    try:
        c = compare_runs(runs, baseline=baseline, catalog_size=catalog_size)
    except EvaluationError as exc:
        fail(exc.message)
    names = [r.target.name for r in runs]
    base = c.baseline
    console.print("📊 Comparaison Baseline vs Fine-tuned\n" if len(runs) == 2 else "📊 Comparaison\n")
    for w in c.warnings:
        console.print(f"[yellow]⚠ {w}[/]")
    head = (
        f"{'Métrique':<25}"
        + "".join(f"{n[:14]:>15}" for n in names)
        + "".join(f"{'Δ ' + n[:10]:>14}" for i, n in enumerate(names) if i != base)
    )
    console.print(head, markup=False, highlight=False)
    console.print("-" * len(head))
    for m in c.table:
        cells = "".join(f"{_pct(v):>15}" for v in m.values)
        deltas = "".join(
            f"{'n/d' if d is None else f'{d * 100:+.1f} pts':>14}" for i, d in enumerate(m.deltas) if i != base
        )
        console.print(f"{m.label:<25}{cells}{deltas}", markup=False, highlight=False)
    console.print("\n⏱️  Latence (moyenne)")
    for i, (n, v) in enumerate(zip(names, c.latency_ms, strict=True)):
        imp = c.latency_improvement[i]
        extra = "" if i == base or imp is None else f"  (amélioration {imp * 100:+.1f} %)"
        console.print(f"  {n}: {_ms(v)}{extra}", markup=False, highlight=False)
    if len(c.approaches) > 1 or c.guide_row is not None:
        table = Table(
            "approche",
            "cible",
            "exactitude",
            "hallucinations",
            "latence p50",
            "coût / 1000 q.",
            title="RAG vs fine-tuning vs hybride",
        )
        for a in c.approaches:
            cost = "n/d" if a.cost_per_1000_usd is None else f"{a.cost_per_1000_usd:.3f} $"
            table.add_row(a.label, a.target, _pct(a.accuracy), _pct(a.hallucination_rate), _ms(a.latency_p50_ms), cost)
        console.print(table)
    console.print(f"\n[bold]{c.recommendation}[/]", highlight=False)
    if html:
        html.parent.mkdir(parents=True, exist_ok=True)
        html.write_text(render_html(runs, c), encoding="utf-8")
        console.print(f"[green]✅[/] Rapport HTML : {html}")
    if markdown:
        markdown.parent.mkdir(parents=True, exist_ok=True)
        markdown.write_text(render_markdown(runs, c), encoding="utf-8")
        console.print(f"[green]✅[/] Rapport Markdown : {markdown}")
    if as_json:
        as_json.parent.mkdir(parents=True, exist_ok=True)
        as_json.write_text(json.dumps(c.to_dict(), ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
        console.print(f"[green]✅[/] Comparaison JSON : {as_json}")


def report(
    results: Annotated[Path, typer.Argument(help="a result file (from dyag evaluate / evaluate_rag)")],
    html: Annotated[bool, typer.Option("--html", help="write the self-contained HTML report (charts, errors)")] = False,
    markdown: Annotated[bool, typer.Option("--markdown", help="write the Markdown report")] = False,
    output: Annotated[
        Path | None, typer.Option(help="where the report goes (default: beside the results, .html / .md)")
    ] = None,
) -> None:
    """A result file's report (offline): HTML with charts and/or Markdown; without --html/--markdown, the figures."""
    from dyag_core.evaluation import render_html, render_markdown

    run = _load_runs([results])[0]
    if html and markdown and output:
        fail("--output names one file: ask for --html or --markdown, not both")
    if not html and not markdown:
        print_results(json.loads(results.read_text(encoding="utf-8")))
        return
    for wanted, suffix, render in ((html, ".html", render_html), (markdown, ".md", render_markdown)):
        if wanted:
            path = output or results.with_suffix(suffix)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(render(run), encoding="utf-8")
            console.print(f"[green]✅[/] {path}")


def evaluations(
    run_id: Annotated[str, typer.Argument(help="a run id: show it (default: list the runs)")] = "",
    limit: Annotated[int, typer.Option(help="runs listed")] = 30,
) -> None:
    """The evaluation runs the evaluator kept, or one run's figures."""
    client = GatewayClient()
    if run_id:
        run = run_or_fail(lambda: client.get(f"/evaluations/{run_id}"))
        console.print_json(json.dumps(run, ensure_ascii=False))
        return
    runs = run_or_fail(lambda: client.get("/evaluations", limit=limit))["evaluations"]
    table = Table("id", "name", "status", "approach", "questions", "accuracy", "F1", "latency", "created")
    for r in runs:
        s = r.get("summary") or {}
        table.add_row(
            r["id"],
            r["name"],
            r["status"],
            r.get("approach", ""),
            str(s.get("questions", "")),
            _pct(s.get("accuracy")) if s else "",
            _pct(s.get("f1_score")) if s else "",
            _ms(s.get("average_generation_time_ms")) if s else "",
            r.get("created_at", ""),
        )
    console.print(table)
