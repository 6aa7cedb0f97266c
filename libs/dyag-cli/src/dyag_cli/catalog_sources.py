"""dyag catalog follow | source | unfollow: a catalog that follows a file or an HTTP(S) URL (dataset-builder polls it;
each change is a new version and one catalog.updated, as an upload)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from dyag_cli.client import GatewayClient
from dyag_cli.common import console, err, fail, run_or_fail


def source_body(path_or_url: str, every: int, reject_mojibake: bool = False, roles: Path | None = None) -> dict:
    """A URL (anything with a scheme: dataset-builder refuses all but http and https) or a path, made absolute here."""
    body: dict = {"interval_s": every, "reject_mojibake": reject_mojibake}
    if "://" in path_or_url:
        body["url"] = path_or_url
    else:
        body["path"] = str(Path(path_or_url).expanduser().resolve())
    if roles:
        if not roles.is_file():
            fail(f"no such roles file: {roles}")
        body["roles"] = roles.read_text(encoding="utf-8")
    return body


def follow(
    name: Annotated[str, typer.Argument(help="the catalog (created at the first good poll if it does not exist)")],
    path_or_url: Annotated[
        str,
        typer.Argument(
            help="a catalog file (read by dataset-builder on its own host: with `dyag up`, "
            "this machine) or an http(s):// URL"
        ),
    ],
    every: Annotated[
        int, typer.Option("--every", help="seconds between polls (default: dataset-builder's, 60; at least 5)")
    ] = 0,
    reject_mojibake: Annotated[bool, typer.Option(help="refuse mis-encoded text instead of repairing it")] = False,
    roles: Annotated[Path | None, typer.Option(help="field roles file (YAML) for a non-default catalog")] = None,
) -> None:
    """Follow a file or a URL: checked at once, then every --every seconds; each change is a new version."""
    body = source_body(path_or_url, every, reject_mojibake, roles)
    poll = run_or_fail(lambda: GatewayClient().request("PUT", f"/catalogs/{name}/source", json=body))
    source = poll["source"]
    console.print(f"[green]✓[/] {name} follows {escape(_where(source))} (every {source['interval_s']} s)")
    _print_poll(poll)
    if poll["outcome"] == "failed":
        raise typer.Exit(1)


def source(
    name: Annotated[str, typer.Argument(help="the catalog")],
    poll: Annotated[bool, typer.Option("--poll", help="check the source now first")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="print the source as JSON")] = False,
) -> None:
    """What a catalog follows and its poll state: last check, last change, last version, last error."""
    client = GatewayClient()
    result = None
    if poll:
        result = run_or_fail(lambda: client.post(f"/catalogs/{name}/source/poll"))
        state = result["source"]
    else:
        state = run_or_fail(lambda: client.get(f"/catalogs/{name}/source"))
    if as_json:
        console.print_json(json.dumps(result or state))
        return
    if result:
        _print_poll(result)
    print_source(state)


def unfollow(name: Annotated[str, typer.Argument(help="the catalog")]) -> None:
    """Stop following the catalog's source (the catalog and its versions stay)."""
    removed = run_or_fail(lambda: GatewayClient().request("DELETE", f"/catalogs/{name}/source"))
    console.print(f"[green]✓[/] {name} no longer follows {escape(_where(removed))} (its versions stay)")


def _where(source: dict) -> str:
    return source.get("path") or source.get("url") or "?"


def _print_poll(poll: dict) -> None:
    version = poll.get("version") or {}
    if poll["outcome"] == "changed":
        console.print(
            f"  [green]new version[/] {version['version']}: {version['entity_count']} entities "
            f"(+{len(version['added'])} added, ~{len(version['changed'])} changed, -{len(version['removed'])} removed)"
        )
        for warning in version.get("warnings", []):
            console.print(f"  [yellow]⚠[/] {escape(warning)}")
    elif poll["outcome"] == "unchanged":
        at = f" at version {version['version']}" if version else ""
        console.print(f"  [yellow]=[/] unchanged{at} ({poll['detail']})")
    else:
        error = poll["source"].get("last_error", {})
        kept = poll["source"].get("last_version")
        err.print(
            f"  [red]✗ the check failed:[/] {escape(error.get('message', poll['detail']))} "
            + escape(f"[{error.get('code', 'failed')}]")
        )
        err.print(
            f"    {'the last good version stays: ' + kept if kept else 'no version stored'}; "
            f"checked again every {poll['source']['interval_s']} s"
        )


def print_source(state: dict) -> None:
    table = Table(show_header=False, box=None)
    table.add_column(style="bold")
    table.add_column()
    error = state.get("last_error")
    rows = [
        ("catalog", state["name"]),
        ("follows", escape(f"{_where(state)} ({state['kind']})")),
        ("every", f"{state['interval_s']} s"),
        ("last check", state["last_checked_at"] or "never"),
        ("next check", state["next_check_at"]),
        ("last change", state["last_changed_at"] or "none since the source was set"),
        ("version", state["last_version"] or "none yet"),
        (
            "status",
            f"[red]failing[/] ({state['consecutive_failures']} check(s) in a row): "
            + escape(f"{error['message']} [{error['code']}]")
            if error
            else "[green]ok[/]",
        ),
        ("checks", f"{state['checks']} ({state['changes']} stored a new version)"),
    ]
    if state["kind"] == "http":
        rows += [("etag", state["etag"] or "-"), ("last modified", state["last_modified"] or "-")]
    else:
        rows += [("mtime", state["mtime"] or "-")]
    rows += [("size", f"{int(state['size']):,} bytes" if state["size"] else "-"), ("sha256", state["sha256"] or "-")]
    if error:  # the validators above are those of the last good content
        rows = [
            (k + " (last good)" if k in ("etag", "last modified", "mtime", "size", "sha256") else k, v) for k, v in rows
        ]
    for key, value in rows:
        table.add_row(key, value)
    console.print(table)
