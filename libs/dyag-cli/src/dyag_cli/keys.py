"""dyag keys create | list | revoke, and dyag audit: API keys and the audit log (an admin key: the one `dyag up`
writes to DYAG_HOME/api-key is one)."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from dyag_cli.client import GatewayClient
from dyag_cli.common import console, fail, run_or_fail

SCOPES = ("read", "write", "admin")

keys_app = typer.Typer(
    help="API keys: read (content, answers), write (jobs, uploads; includes read), admin (keys, promotion, rollback, "
    "deletion; includes write).",
    no_args_is_help=True,
)


def parse_scopes(text: str) -> list[str]:
    scopes = [s.strip().lower() for s in text.split(",") if s.strip()]
    unknown = [s for s in scopes if s not in SCOPES]
    if unknown or not scopes:
        fail(f"--scope takes one or more of {', '.join(SCOPES)}, comma-separated (got {text!r})")
    return scopes


@keys_app.command("create")
def create(
    name: Annotated[str, typer.Argument(help="who or what holds the key, e.g. ci or alice")],
    scope: Annotated[str, typer.Option(help="read, write, admin, comma-separated")] = "read",
    rate_limit: Annotated[
        int, typer.Option(help="this key's requests a minute per gateway (0: the gateway's default)")
    ] = 0,
) -> None:
    """Create a key. It is printed once, here: keep it (the gateway stores only its hash)."""
    body: dict = {"name": name, "scopes": parse_scopes(scope)}
    if rate_limit:
        body["rate_limit_per_min"] = rate_limit
    created = run_or_fail(lambda: GatewayClient().post("/keys", json=body))
    console.print(f"[green]✓[/] key {created['id']} ({escape(created['name'])}): {', '.join(created['scopes'])}")
    console.print("shown once, never again; send it as X-API-Key (or DYAG_API_KEY for the dyag command):")
    print(created["key"])


@keys_app.command("list")
def list_keys() -> None:
    """Every key: id, name, scopes, when it was created and last used, whether it is revoked. Never a key."""
    keys = run_or_fail(lambda: GatewayClient().get("/keys"))["keys"]
    table = Table(title="API keys")
    for column in ("id", "name", "scopes", "created", "by", "last used", "revoked", "limit/min"):
        table.add_column(column)
    for key in keys:
        table.add_row(
            key["id"],
            escape(key["name"]),
            ",".join(key["scopes"]),
            key["created_at"] or ("settings" if key.get("source") == "settings" else "-"),
            escape(key["created_by"] or "-"),
            key["last_used_at"] or "-",
            f"[red]{key['revoked_at']}[/]" if key["revoked_at"] else "-",
            str(key["rate_limit_per_min"] or "default"),
        )
    console.print(table)


@keys_app.command("revoke")
def revoke(key_id: Annotated[str, typer.Argument(help="the key's id (dyag keys list), 8 hex digits or more")]) -> None:
    """Revoke a key: every gateway refuses it within seconds."""
    key = run_or_fail(lambda: GatewayClient().request("DELETE", f"/keys/{key_id}"))
    console.print(f"[green]✓[/] key {key['id']} ({escape(key['name'])}) revoked at {key['revoked_at']}")


def audit(
    limit: Annotated[int, typer.Option(help="how many records, newest first")] = 50,
) -> None:
    """The audit log: every POST, PUT and DELETE (refused ones too), newest first: when, which key, who, what."""
    records = run_or_fail(lambda: GatewayClient().get("/audit", limit=limit))["records"]
    table = Table(title="Audit log (newest first)")
    for column in ("when", "key", "caller", "method", "path", "status"):
        table.add_column(column)
    for r in records:
        key = f"{r['key_id']} ({r['key_name']})" if r.get("key_id") else "-"
        status = str(r["status"])
        table.add_row(
            r["at"],
            escape(key),
            escape(r.get("caller") or "-"),
            r["method"],
            escape(r["path"]),
            f"[red]{status}[/]" if r["status"] >= 400 else status,
        )
    console.print(table)
