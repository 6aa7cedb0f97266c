"""dyag retraining | retrain | champion | ask | lineage: event-triggered retraining of a catalog's assistant, and
questions answered by whatever is the catalog's champion now."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from dyag_cli.client import GatewayClient
from dyag_cli.common import console, fail, run_or_fail
from dyag_core.retraining import APPROACHES, TRIGGERS, PolicyError, RetrainingPolicy

retraining_app = typer.Typer(
    help="A catalog's retraining policy: when a change retrains, what competes, what wins.", no_args_is_help=True
)
champion_app = typer.Typer(help="A catalog's champion: aliases, promotion log, rollback.", no_args_is_help=True)


@retraining_app.command("set")
def set_policy(
    name: Annotated[str, typer.Argument(help="the catalog")],
    trigger: Annotated[str, typer.Option(help=f"{' | '.join(TRIGGERS)}")] = "on_change",
    schedule: Annotated[str, typer.Option(help="with --trigger schedule: a cron expression, e.g. '0 3 * * *'")] = "",
    debounce: Annotated[float, typer.Option(help="seconds a change waits for the next ones (one retraining)")] = 60.0,
    min_changed: Annotated[int, typer.Option(help="fewer changed applications start nothing")] = 1,
    approaches: Annotated[
        str, typer.Option(help=f"what competes, comma-separated: {', '.join(APPROACHES)}")
    ] = "rag,lora",
    max_steps: Annotated[
        int, typer.Option(help="the training's budget in optimizer steps (0: the preset's epochs)")
    ] = 0,
    replay: Annotated[float, typer.Option(help="unchanged examples replayed, as a fraction of the changed ones")] = 0.2,
    min_absolute: Annotated[float, typer.Option(help="points better on changed facts to be promoted (0.05 = 5)")] = 0.0,
    min_relative: Annotated[float, typer.Option(help="better on changed facts, relative to the champion")] = 0.0,
    min_accuracy: Annotated[float, typer.Option(help="the challenger's accuracy on the whole test set")] = 0.0,
    training: Annotated[str, typer.Option(help='TrainingConfig options as JSON, e.g. {"preset": "knowledge"}')] = "",
) -> None:
    """Set (or replace) a catalog's retraining policy."""
    try:
        options = json.loads(training) if training else {}
    except ValueError as exc:
        fail(f"--training is not JSON: {exc}")
    body = {
        "trigger": trigger,
        "schedule": schedule,
        "debounce_s": debounce,
        "min_changed_entities": min_changed,
        "approaches": [a.strip() for a in approaches.split(",") if a.strip()],
        "training": options,
        "replay_fraction": replay,
        "max_training_steps": max_steps,
        "thresholds": {"min_absolute": min_absolute, "min_relative": min_relative, "min_accuracy": min_accuracy},
    }
    try:  # the same schema the gateway checks: a mistake is named here, before anything is sent
        RetrainingPolicy.from_dict(body)
    except PolicyError as exc:
        fail(exc.message)
    view = run_or_fail(lambda: GatewayClient().request("PUT", f"/catalogs/{name}/retraining", json=body))
    console.print(f"[green]✓[/] {name}: retraining {trigger.replace('_', ' ')}")
    print_view(view)


@retraining_app.command("show")
def show_policy(name: Annotated[str, typer.Argument(help="the catalog")]) -> None:
    """A catalog's retraining policy, what is pending or running, and its champion."""
    print_view(run_or_fail(lambda: GatewayClient().get(f"/catalogs/{name}/retraining")))


@retraining_app.command("off")
def remove_policy(name: Annotated[str, typer.Argument(help="the catalog")]) -> None:
    """Stop retraining a catalog (its champion keeps answering)."""
    run_or_fail(lambda: GatewayClient().request("DELETE", f"/catalogs/{name}/retraining"))
    console.print(f"[green]✓[/] {name} is no longer retrained")


def retrain(name: Annotated[str, typer.Argument(help="the catalog")]) -> None:
    """Start a retraining now: what changed since the champion learned, against the champion."""
    view = run_or_fail(lambda: GatewayClient().post(f"/catalogs/{name}/retrain"))
    print_view(view)


def print_view(view: dict) -> None:
    policy, trigger = view.get("policy"), view.get("trigger") or {}
    if policy:
        t = policy["thresholds"]
        console.print(
            f"policy: {policy['trigger']}{' ' + policy['schedule'] if policy['schedule'] else ''}, "
            f"debounce {policy['debounce_s']:g} s, at least {policy['min_changed_entities']} change(s), "
            f"approaches {', '.join(policy['approaches'])}; promoted when +{t['min_absolute'] * 100:g} pts "
            f"and +{t['min_relative'] * 100:g} % on changed facts, accuracy ≥ {t['min_accuracy'] * 100:g} %"
        )
    else:
        console.print("policy: none (not retrained)")
    if trigger.get("running"):
        running = trigger["running"]
        console.print(
            f"running: {running['pipeline_id']} (catalog version {running['version']}; "
            f"dyag pipeline show {running['pipeline_id']})"
        )
    if trigger.get("pending"):
        pending = trigger["pending"]
        changed = sorted(set(pending["added"]) | set(pending["changed"]) | set(pending["removed"]))
        console.print(
            f"pending: version {pending['version']}, {len(changed)} application(s) changed "
            f"({escape(', '.join(changed[:8]))}{'…' if len(changed) > 8 else ''}), {pending['reason']}"
        )
    if trigger.get("last_error"):
        console.print(f"[red]last error:[/] {escape(trigger['last_error'])}")
    champion = view.get("champion")
    console.print(f"champion: {champion['label'] if champion else 'none yet'}")


@champion_app.command("show")
def show_champion(name: Annotated[str, typer.Argument(help="the catalog")]) -> None:
    """The aliases and the promotion log, newest first."""
    book = run_or_fail(lambda: GatewayClient().get(f"/catalogs/{name}/champion"))
    for alias, target in book["aliases"].items():
        console.print(f"{alias}: {target['label']} (catalog version {target['catalog_version'] or '?'})")
    table = Table("#", "action", "target", "by", "reason")
    for entry in book["log"][:20]:
        target = entry["target"]
        table.add_row(
            str(entry["seq"]),
            entry["action"],
            f"{target['kind']}:{target['id']}",
            escape(entry["by"]),
            escape(entry["reason"][:160]),
        )
    console.print(table)


@champion_app.command("set")
def set_champion(
    name: Annotated[str, typer.Argument(help="the catalog")],
    target: Annotated[str, typer.Argument(help="KIND:ID, e.g. lora:lora-3f2a…, rag:applications_ia, grounded:NAME")],
    reason: Annotated[str, typer.Option(help="why (kept in the promotion log)")] = "",
) -> None:
    """Make a target the champion by hand."""
    kind, _, target_id = target.partition(":")
    if not target_id:
        fail(f"give the target as KIND:ID (e.g. rag:{name}), not {target!r}")
    body = {"target": {"kind": kind, "id": target_id}, "reason": reason}
    run_or_fail(lambda: GatewayClient().post(f"/catalogs/{name}/champion", json=body))
    console.print(f"[green]✓[/] {target} is the champion of {name}")


@champion_app.command("rollback")
def rollback(
    name: Annotated[str, typer.Argument(help="the catalog")],
    to: Annotated[str, typer.Option(help="a log entry's number or an earlier champion (default: the previous)")] = "",
    reason: Annotated[str, typer.Option(help="why (kept in the promotion log)")] = "",
) -> None:
    """Restore an earlier champion in one call."""
    book = run_or_fail(
        lambda: GatewayClient().post(f"/catalogs/{name}/champion/rollback", json={"to": to, "reason": reason})
    )
    console.print(f"[green]✓[/] {name}: {book['aliases']['champion']['label']} is the champion again")


def ask(
    name: Annotated[str, typer.Argument(help="the catalog")],
    question: Annotated[str, typer.Argument(help="the question, e.g. 'Quel est le statut de 8-SINP ?'")],
    as_json: Annotated[bool, typer.Option("--json", help="print the whole answer as JSON")] = False,
) -> None:
    """Answer with the catalog's champion, citing its sources."""
    reply = run_or_fail(lambda: GatewayClient().post(f"/catalogs/{name}/ask", json={"question": question}))
    if as_json:
        console.print_json(json.dumps(reply, ensure_ascii=False))
        return
    console.print(escape(reply["answer"]))
    champion = reply["champion"]
    sources = ", ".join(s.get("name") or s.get("entity_id", "") for s in reply.get("sources", [])[:5])
    console.print(
        f"[dim]{champion['kind']}:{champion['id']} in {reply['seconds']:.2f} s"
        f"{' · sources: ' + escape(sources) if sources else ''}[/]"
    )


def lineage(name: Annotated[str, typer.Argument(help="the catalog")]) -> None:
    """catalog version → dataset → job → model → evaluation → promotion, as edges."""
    graph = run_or_fail(lambda: GatewayClient().get(f"/catalogs/{name}/lineage"))
    console.print(f"champion: {graph['champion'] or 'none'}; {len(graph['nodes'])} nodes")
    for edge in graph["edges"]:
        console.print(f"{escape(edge['from'])} —{edge['kind']}→ {escape(edge['to'])}")
