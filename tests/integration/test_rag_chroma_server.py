"""ChromaDB in server mode (a real `chroma run` process, HttpClient via CHROMA_URL) works as well as the
embedded store (PersistentClient): same chunks, same rankings, same incremental re-indexing."""

from __future__ import annotations

import dataclasses
import shutil
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from dyag_cli.stack import free_port
from dyag_core.catalog import Catalog, load_catalog_file
from dyag_rag_service.engine import RagEngine
from dyag_rag_service.settings import RagSettings

pytestmark = pytest.mark.integration

QUESTIONS = [
    "Quel est le statut de GEOVAL ?",
    "Qui sont les acteurs d'hydroscpe ?",
    "Quelle est la différence entre l'application EOLIA et BILAN-GES ?",
    "Liste les applications du domaine biodiversité",
    "Quelle application suit les collisions entre la faune et les véhicules ?",
]


@pytest.fixture(scope="module")
def chroma_server(tmp_path_factory):
    """`chroma run` on a free loopback port, with its data in a temporary folder."""
    port = free_port()
    path = tmp_path_factory.mktemp("chroma-server")
    script = Path(sys.executable).with_name("chroma")
    command = [str(script)] if script.exists() else [shutil.which("chroma") or "chroma"]
    log = open(path / "server.log", "wb")
    process = subprocess.Popen(
        [*command, "run", "--path", str(path / "data"), "--host", "127.0.0.1", "--port", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
        env={"ANONYMIZED_TELEMETRY": "False", "PATH": "/usr/bin:/bin"},
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"{url}/api/v2/heartbeat", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise AssertionError(
                f"chroma run did not start: {(path / 'server.log').read_text(errors='replace')[-2000:]}"
            )
        time.sleep(0.2)
    try:
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


def test_server_mode_works_as_well_as_embedded(tmp_path, chroma_server, llm_fakes, sample_catalog_path):
    catalog = load_catalog_file(sample_catalog_path)
    embedded = RagEngine(RagSettings(data_dir=tmp_path / "embedded", rag_embedding_cache=llm_fakes.embedding_cache))
    server = RagEngine(
        RagSettings(
            data_dir=tmp_path / "server", chroma_url=chroma_server, rag_embedding_cache=llm_fakes.embedding_cache
        )
    )
    assert embedded.store.where.startswith("embedded (") and server.store.where == f"server ({chroma_server})"

    reports = [
        e.indexer.sync("applications_ia", catalog, "applications_ia", catalog.version) for e in (embedded, server)
    ]
    assert reports[0].chunks == reports[1].chunks and reports[1].entities == 45
    assert reports[1].chunks_embedded == reports[1].chunks
    assert server.store.get("applications_ia").count() == reports[1].chunks

    for question in QUESTIONS:
        a = embedded.query("applications_ia", question, retrieve_only=True, dense="always")
        b = server.query("applications_ia", question, retrieve_only=True, dense="always")
        assert [c["id"] for c in a["chunks"]] == [c["id"] for c in b["chunks"]], question
        assert [round(c["dense_similarity"], 3) for c in a["chunks"]] == [
            round(c["dense_similarity"], 3) for c in b["chunks"]
        ]
        assert any(c["dense_rank"] for c in b["chunks"])
    assert server.query("applications_ia", QUESTIONS[0], retrieve_only=True)["chunks"][0]["entity_name"] == "GEOVAL"

    # Incremental re-indexing against the server: one changed fact, one chunk embedded again.
    entities = [dataclasses.replace(e, status="En fin de vie") if e.name == "GEOVAL" else e for e in catalog.entities]
    changed = Catalog(
        tuple(entities), catalog.source_format, catalog.source_fields, catalog.field_fill, catalog.collection_key
    )
    report = server.indexer.sync("applications_ia", changed, "applications_ia", changed.version)
    assert report.changed == ["1503"] and report.added == [] and report.removed == [] and report.unchanged == 44
    assert report.chunks_embedded == 1 and report.chunks_deleted == 1 and report.previous_version == catalog.version

    # Another replica on the same server sees the new version (its caches follow the collection's generation).
    replica = RagEngine(RagSettings(data_dir=tmp_path / "replica", chroma_url=chroma_server, rag_embedding_cache="off"))
    overview = next(
        c
        for c in replica.query("applications_ia", "Statut de GEOVAL ?", retrieve_only=True)["chunks"]
        if c["section"] == "overview"
    )
    assert "Statut : En fin de vie" in overview["text"]
    server.query("applications_ia", "Statut de GEOVAL ?", retrieve_only=True)  # the first engine reloads too
    assert server.retriever.cache.load(server.store.get("applications_ia")).catalog_version == changed.version

    # The other way round: the replica changes the collection; the first engine, whose caches hold the previous
    # generation, answers from the new one at its next query (no event, no restart: the generation in Chroma).
    again = Catalog(
        tuple(dataclasses.replace(e, status="Abandonnée") if e.name == "GEOVAL" else e for e in changed.entities),
        catalog.source_format,
        catalog.source_fields,
        catalog.field_fill,
        catalog.collection_key,
    )
    before = server.retriever.cache.load(server.store.get("applications_ia")).generation
    assert replica.indexer.sync("applications_ia", again, "applications_ia", again.version).changed == ["1503"]
    overview = next(
        c
        for c in server.query("applications_ia", "Statut de GEOVAL ?", retrieve_only=True)["chunks"]
        if c["section"] == "overview"
    )
    assert "Statut : Abandonnée" in overview["text"]
    loaded = server.retriever.cache.load(server.store.get("applications_ia"))
    assert loaded.generation > before and loaded.catalog_version == again.version
