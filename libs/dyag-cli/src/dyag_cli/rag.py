"""RAG commands (the guide's step 7): `dyag index_rag`, `dyag query_rag "…"`, `dyag rag_stats`."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.table import Table

from dyag_cli.client import GatewayClient
from dyag_cli.common import DEFAULT_CATALOG_NAME, console, fail, follow_job, run_or_fail
from dyag_cli.datasets import upload_catalog

COLLECTION_HELP = "the collection (one per catalog, as the guide names it)"


def index_rag(
    catalog: Annotated[str, typer.Argument(help="catalog file (uploaded first) or the name of a stored catalog")],
    collection: Annotated[str, typer.Option(help=COLLECTION_HELP)] = DEFAULT_CATALOG_NAME,
    name: Annotated[str, typer.Option(help="catalog name when uploading a file (default: from the file name)")] = "",
    rebuild: Annotated[bool, typer.Option(help="embed every chunk again, not only the changed ones")] = False,
) -> None:
    """Index a catalog into a collection: one chunk per application and section, embedded offline.
    Later versions of the catalog are followed by themselves (only the changed applications)."""
    client = GatewayClient()
    catalog_name = upload_catalog(client, catalog, name)
    job = run_or_fail(
        lambda: client.post(f"/rag/{collection}/index", json={"catalog": catalog_name, "rebuild": rebuild})
    )
    job = follow_job(client, job["id"], f"indexing into {collection}")
    if job["status"] != "succeeded":
        fail(f"indexing {job['status']}: {job.get('error') or 'see dyag jobs logs ' + job['id']}")
    r = job["result"]
    console.print(
        f"[green]✅[/] Collection {r['collection']} : {r['entities']} applications, {r['chunks']} extraits "
        f"(catalogue {r['catalog']} version {r['catalog_version']})"
    )
    console.print(
        f"  +{len(r['added'])} ajoutées, ~{len(r['changed'])} modifiées, -{len(r['removed'])} "
        f"supprimées, {r['unchanged']} inchangées ; {r['chunks_embedded']} extraits "
        f"vectorisés, {r['chunks_deleted']} supprimés en {r['seconds']:.1f} s"
    )


def query_rag(
    question: Annotated[str, typer.Argument(help="the question")],
    collection: Annotated[str, typer.Option(help=COLLECTION_HELP)] = DEFAULT_CATALOG_NAME,
    n_chunks: Annotated[int, typer.Option("--n-chunks", help="chunks of the catalog given to the model")] = 5,
    model: Annotated[
        str, typer.Option(help="chat model: ollama:NAME, openai:NAME, local:default… (default: the service's)")
    ] = "",
    retrieve_only: Annotated[
        bool, typer.Option("--retrieve-only", help="show the retrieved chunks, ask no model")
    ] = False,
    mode: Annotated[
        str,
        typer.Option(
            help="auto (default): from the records when the question is understood, else the model; "
            "grounded: the records only; generative: the model over the chunks"
        ),
    ] = "auto",
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="show the chunks with their scores")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="print the whole response as JSON")] = False,
) -> None:
    """Ask the catalog a question: an answer from its records, with the sources cited."""
    if mode not in ("auto", "grounded", "generative"):
        fail(f"unknown --mode {mode!r}: auto, grounded or generative")
    body = {"question": question, "n_chunks": n_chunks, "model": model, "retrieve_only": retrieve_only, "mode": mode}
    reply = run_or_fail(lambda: GatewayClient(timeout=900).post(f"/rag/{collection}/query", json=body))
    if as_json:
        console.print_json(json.dumps(reply, ensure_ascii=False))
        return
    if reply["answer"]:
        console.print(f"\n💬 {reply['answer']}\n", markup=False, highlight=False)
    sources = ", ".join(
        f"[{s['entity_id']}] {s['entity_name']}{' ✓' if s.get('cited') else ''}" for s in reply["sources"]
    )
    console.print(f"📚 Sources : {sources or 'aucune'}", markup=False, highlight=False)
    if reply.get("citations"):
        cited = ", ".join(f"[{c['entity_id']}] {c['entity_name']} · {c['field']}" for c in reply["citations"][:12])
        console.print(f"📌 Champs cités : {cited}", markup=False, highlight=False)
    if reply.get("mode"):
        how = (
            "depuis les fiches du catalogue"
            if reply["mode"] == "grounded"
            else f"par le modèle {reply.get('model', '')}"
        )
        console.print(
            f"🧭 Réponse {how} (mode {reply['mode']}, confiance {reply.get('confidence', 0):.2f})",
            markup=False,
            highlight=False,
        )
    if reply.get("linked_entities"):
        linked = ", ".join(f"{e['name']} ({e['kind']}, « {e['matched']} »)" for e in reply["linked_entities"])
        console.print(f"🔗 Applications nommées : {linked}", markup=False, highlight=False)
    t = reply["timings"]
    retrieval = t.get("total_ms", 0) - t.get("generate_ms", 0)
    line = f"⏱  récupération {retrieval:.0f} ms"
    if t.get("generate_ms"):
        line += (
            f", génération {t['generate_ms'] / 1000:.1f} s ({reply['model']}, "
            f"{reply['tokens']['prompt']} + {reply['tokens']['completion']} tokens)"
        )
    console.print(line)
    if verbose or retrieve_only:
        table = Table("rang", "extrait", "section", "score", "BM25", "dense", "similarité")
        for c in reply["chunks"]:
            table.add_row(
                str(c["rank"]),
                f"{c['entity_name']} [{c['entity_id']}]",
                c["section"],
                f"{c['score']:.4f}",
                str(c["bm25_rank"] or "-"),
                str(c["dense_rank"] or "-"),
                f"{c['dense_similarity']:.3f}",
            )
        console.print(table)
        for note in reply.get("notes", []):
            console.print(f"  [dim]{note}[/]")


def rag_stats(
    collection: Annotated[str, typer.Option(help="a collection (default: every collection)")] = "",
    as_json: Annotated[bool, typer.Option("--json", help="print as JSON")] = False,
) -> None:
    """What a collection holds: catalog version, applications, chunks per section, embedder, store."""
    client = GatewayClient()
    stats = (
        [run_or_fail(lambda: client.get(f"/rag/{collection}/stats"))]
        if collection
        else run_or_fail(lambda: client.get("/rag"))["collections"]
    )
    if as_json:
        console.print_json(json.dumps(stats, ensure_ascii=False))
        return
    if not stats:
        console.print("aucune collection : indexez un catalogue avec `dyag index_rag CATALOGUE`")
        return
    for s in stats:
        console.print(f"\n📊 Collection {s['collection']}")
        console.print(
            f"  Catalogue : {s['catalog']} (version "
            f"{s['catalog_version']}){' — suivi' if s.get('follows_catalog') else ''}"
        )
        console.print(f"  Applications : {s['entities']}")
        console.print(
            f"  Extraits : {s['chunks']} (" + ", ".join(f"{k}: {v}" for k, v in sorted(s["sections"].items())) + ")"
        )
        console.print(f"  Embeddings : {s['embedder']} ({s['dimension']} dimensions)")
        console.print(f"  Stockage : {s['store']}")
        console.print(f"  Indexée le : {s['indexed_at']}")
