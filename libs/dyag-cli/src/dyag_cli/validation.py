"""Validation commands: the guide's `dyag analyze_training` and `dyag dataset validate|analyze|clean`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from dyag_cli.client import GatewayClient
from dyag_cli.common import console, fail, run_or_fail
from dyag_cli.datasets import dataset_app, upload_catalog

TO_FIX = "à corriger"


def _show(result: dict, as_json: bool) -> None:
    if as_json:
        console.print_json(json.dumps(result["report"]))
    else:
        console.print(result["text"], markup=False, highlight=False)


def analyze_training(
    catalog: Annotated[str, typer.Argument(help="the catalog file (or name) the dataset was built from")],
    dataset: Annotated[Path, typer.Argument(help="the dataset file, e.g. training/train.jsonl")],
    model: Annotated[str, typer.Option(help="target model: tokenizer, context limit and price")] = "",
    name: Annotated[str, typer.Option(help="catalog name when uploading a file")] = "",
    as_json: Annotated[bool, typer.Option("--json", help="print the whole report as JSON")] = False,
    verbose: Annotated[
        bool,
        typer.Option("--verbose", "-v", help="accepted for the guide's command line; the report is always complete"),
    ] = False,
) -> None:
    # the docstring is the command's help, one line in `dyag --help`: split, not wrapped
    (
        """Coverage of the catalog, question types, format, tokens, duplicates, PII and the quality checklist """
        """(the guide's step 3)."""
    )
    client = GatewayClient()
    catalog_name = upload_catalog(client, catalog, name)
    _show(run_or_fail(lambda: client.validate(dataset, catalog=catalog_name, model=model)), as_json)


dataset_app.command("analyze")(analyze_training)


@dataset_app.command("validate")
def validate(
    dataset: Annotated[Path, typer.Argument(help="the dataset file (OpenAI chat JSONL, Alpaca, ShareGPT…)")],
    catalog: Annotated[str, typer.Option(help="catalog file or name, for coverage")] = "",
    model: Annotated[str, typer.Option(help="target model: tokenizer, context limit and price")] = "",
    hosted: Annotated[
        bool, typer.Option("--hosted", help="bound for a hosted fine-tuning API: personal data blocks it")
    ] = False,
    allow_pii: Annotated[bool, typer.Option(help="accept personal data explicitly")] = False,
    as_json: Annotated[bool, typer.Option("--json")] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="accepted; the report is always complete")] = False,
) -> None:
    """Check a dataset file; exits 1 when it must be fixed before training."""
    client = GatewayClient()
    catalog_name = upload_catalog(client, catalog, "") if catalog else ""
    result = run_or_fail(
        lambda: client.validate(dataset, catalog=catalog_name, model=model, hosted=hosted, allow_pii=allow_pii)
    )
    _show(result, as_json)
    if result["verdict"] == TO_FIX:
        raise typer.Exit(1)


@dataset_app.command("clean")
def clean(
    dataset: Annotated[Path, typer.Argument(help="the dataset file")],
    output: Annotated[Path, typer.Option(help="where the cleaned copy goes")],
    near: Annotated[bool, typer.Option(help="drop near duplicates too")] = False,
    redact: Annotated[
        bool, typer.Option("--redact-pii", help="replace e-mails, phone numbers and contact names by placeholders")
    ] = False,
    catalog: Annotated[str, typer.Option(help="catalog file or name, whose contact names are redacted")] = "",
) -> None:
    """Write a cleaned copy: duplicates dropped (the guide's step 3.3), personal data redacted on request."""
    if not dataset.is_file():
        fail(f"no such dataset file: {dataset}")
    client = GatewayClient()
    catalog_name = upload_catalog(client, catalog, "") if catalog else ""
    params = {
        "duplicates": "true",
        "near_duplicates": str(near).lower(),
        "redact_pii": str(redact).lower(),
        "catalog": catalog_name,
    }
    with open(dataset, "rb") as f:
        try:
            reply = client.http.post("/clean", params=params, files={"file": (dataset.name, f)}, timeout=600)
        except Exception as exc:  # the same words as every other command
            fail(f"the gateway at {client.url} does not answer: {exc}")
    if reply.status_code >= 400:
        fail(reply.json().get("error", {}).get("message", reply.text))
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_bytes(reply.content)
    console.print(
        f"✅ Nettoyage terminé: {reply.headers['X-Dyag-Kept']} lignes gardées, "
        f"{reply.headers['X-Dyag-Dropped']} retirées, {reply.headers['X-Dyag-Redacted']} caviardées → {output}"
    )
