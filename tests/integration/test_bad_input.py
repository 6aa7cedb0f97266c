"""Malformed input everywhere the gateway takes some, against the real stack: each one gets a 4xx in the project's
error shape whose message names the problem, never a 5xx nor a hung request, and the catalogs stored before are
untouched (the same version lists). Deep nesting, huge numbers, NaN and Infinity, invalid UTF-8 and lone
surrogates, CSVs that expand, a JSONL of a million lines, path-like names wherever a name is accepted."""

from __future__ import annotations

import json
import time
from collections.abc import Callable

import httpx
import pytest

pytestmark = pytest.mark.integration

NAME = "bad-input"  # the catalog stored before every case
LIMIT = 2_000_000  # DYAG_MAX_UPLOAD_BYTES of the test stack
ANSWER_WITHIN_S = 60.0  # "not hung": every answer, a million lines included, comes well within this


def upload(rs, content: bytes, filename: str = "catalog.json", name: str | bytes = NAME, **form) -> httpx.Response:
    files: dict = {"file": (filename, content), "name": (None, name)}
    files.update({k: (None, v) for k, v in form.items()})
    return rs.http.post("/catalogs", files=files)


def raw_json(rs, path: str, text: str | bytes, method: str = "POST") -> httpx.Response:
    """A body as given (JSON that json.dumps would not write: NaN, 10**5000, a nesting of 100,000, bad UTF-8)."""
    return rs.http.request(method, path, content=text, headers={"Content-Type": "application/json"})


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


def versions(rs) -> dict[str, list[str]]:
    """Every stored catalog's versions, newest first."""
    names = [c["name"] for c in rs.http.get("/catalogs").json()["catalogs"]]
    return {n: [v["version"] for v in rs.http.get(f"/catalogs/{n}/versions").json()["versions"]] for n in names}


@pytest.fixture(scope="module")
def stored(running_stack, sample_catalog_bytes) -> dict:
    reply = upload(running_stack, sample_catalog_bytes, "applicationsIA_mini_normalized.json")
    assert reply.status_code in (200, 201), reply.text
    return reply.json()


@pytest.fixture
def untouched(running_stack, stored):
    """The catalogs stored before a case have the same versions after it."""
    before = versions(running_stack)
    assert before[NAME][0] == stored["version"]
    yield
    after = versions(running_stack)
    assert {n: after.get(n) for n in before} == before


def refused(reply: httpx.Response, status: int | tuple[int, ...], *words: str, code: str = "") -> dict:
    statuses = status if isinstance(status, tuple) else (status,)
    assert reply.status_code in statuses, (reply.status_code, reply.text[:500])
    error = reply.json()["error"]
    assert isinstance(error["code"], str) and error["code"] and isinstance(error["message"], str), error
    assert not code or error["code"] == code, error
    for word in words:
        assert word.lower() in error["message"].lower(), error
    return error


def timed(call: Callable[[], httpx.Response]) -> httpx.Response:
    started = time.monotonic()
    reply = call()
    assert time.monotonic() - started < ANSWER_WITHIN_S, f"{reply.request.method} {reply.request.url} took too long"
    return reply


CSV_HEADER = "id,nom,desc\n"
QUESTION = {"question": "Quel est le statut de 6Tzen ?"}

# id: (request, expected status(es), words the message holds, expected code or "")
CASES: dict[str, tuple[Callable, int | tuple[int, ...], tuple[str, ...], str]] = {
    # --- deep nesting ---------------------------------------------------------------------------------------------
    "deep-catalog-100k": (
        lambda rs: upload(rs, nested(100_000).encode()),
        422,
        ("64 levels",),
        "too_deep",
    ),
    "deep-catalog-record": (
        lambda rs: upload(rs, json.dumps([{"id": 1, "nom": "A", "x": json.loads(nested(200))}]).encode()),
        422,
        ("64 levels",),
        "too_deep",
    ),
    "deep-catalog-jsonl-line": (
        lambda rs: upload(rs, b'{"id": 1, "nom": "A"}\n' + nested(100_000).encode(), "catalog.jsonl"),
        422,
        ("line 2", "64 levels"),
        "too_deep",
    ),
    "deep-roles-yaml": (
        lambda rs, sample=b'[{"id": 1, "nom": "A"}]': upload(rs, sample, roles=nested(100_000)),
        422,
        ("too deeply",),
        "bad_roles",
    ),
    "deep-body-100k": (
        lambda rs: raw_json(rs, "/datasets", '{"catalog": ' + nested(100_000) + "}"),
        400,
        ("nested too deeply",),
        "invalid_body",
    ),
    "deep-body-within-parser": (
        lambda rs: raw_json(rs, "/evaluations/compare", '{"results": [{"x": ' + nested(300) + "}]}"),
        422,
        ("64 levels",),
        "invalid_request",
    ),
    "deep-training-config": (
        lambda rs: raw_json(rs, "/train", '{"dataset_id": "x", "config": {"r": ' + nested(100) + "}}"),
        422,
        ("config", "64 levels"),
        "invalid_request",
    ),
    "deep-split-counts": (
        lambda rs: rs.http.post(
            "/validate", files={"file": ("t.jsonl", b"{}\n")}, data={"split_counts": nested(100_000)}
        ),
        422,
        ("split_counts",),
        "invalid_split_counts",
    ),
    # --- huge numbers ---------------------------------------------------------------------------------------------
    "float-1e400-body": (
        lambda rs: raw_json(rs, "/datasets", f'{{"catalog": "{NAME}", "seed": 1e400}}'),
        422,
        ("seed", "finite"),
        "invalid_request",
    ),
    "int-5000-digits-body": (
        lambda rs: raw_json(rs, "/datasets", f'{{"catalog": "{NAME}", "num_questions": 1{"0" * 5000}}}'),
        400,
        ("4300 digits",),
        "invalid_body",
    ),
    "int64-seed": (
        lambda rs: rs.http.post("/datasets", json={"catalog": NAME, "seed": 2**63}),
        422,
        ("seed", "2147483647"),
        "invalid_request",
    ),
    "huge-source-interval": (
        lambda rs: rs.http.put(f"/catalogs/{NAME}/source", json={"path": "/nowhere.json", "interval_s": -(2**52)}),
        422,
        ("interval_s",),
        "invalid_request",
    ),
    "huge-limit-models": (lambda rs: rs.http.get("/models", params={"limit": 707069239343268}), 422, ("limit",), ""),
    "huge-limit-jobs": (lambda rs: rs.http.get("/jobs", params={"limit": 10**30}), 422, ("limit",), ""),
    "huge-log-tail": (lambda rs: rs.http.get("/jobs/x/logs", params={"tail": 10**12}), 422, ("tail",), ""),
    "huge-training-option": (
        lambda rs: rs.http.post("/train", json={"dataset_id": "x", "config": {"max_steps": 10**12}}),
        422,
        ("max_steps", "out of range"),
        "invalid_config",
    ),
    "huge-epochs-form": (
        lambda rs: rs.http.post("/validate", files={"file": ("t.jsonl", b"{}\n")}, data={"epochs": "9" * 30}),
        422,
        ("epochs",),
        "invalid_epochs",
    ),
    "catalog-int-5000-digits": (
        lambda rs: upload(rs, b'[{"id": 1' + b"0" * 5000 + b', "nom": "A"}]'),
        422,
        ("5,001 digits",),
        "not_json",
    ),
    "catalog-1e400": (
        lambda rs: upload(rs, b'[{"id": 1e400, "nom": "A"}]'),
        422,
        ("1e400", "too large"),
        "not_json",
    ),
    # --- NaN and Infinity -----------------------------------------------------------------------------------------
    "nan-body": (
        lambda rs: raw_json(rs, "/datasets", f'{{"catalog": "{NAME}", "replay_fraction": NaN}}'),
        422,
        ("replay_fraction",),
        "invalid_request",
    ),
    "infinity-body": (
        lambda rs: raw_json(rs, "/datasets", f'{{"catalog": "{NAME}", "split_ratios": [Infinity, 0, 0]}}'),
        422,
        ("split_ratios",),
        "invalid_request",
    ),
    "nan-evaluation-cost": (
        lambda rs: raw_json(rs, "/evaluations", '{"target": "rag:x", "dataset_id": "x", "training_cost_usd": NaN}'),
        422,
        ("training_cost_usd", "finite"),
        "invalid_request",
    ),
    "nan-training-option": (
        lambda rs: raw_json(rs, "/train", '{"dataset_id": "x", "config": {"learning_rate": NaN}}'),
        422,
        ("learning_rate",),
        "invalid_config",
    ),
    "nan-catalog": (lambda rs: upload(rs, b'[{"id": NaN, "nom": "A"}]'), 422, ("NaN",), "not_json"),
    "infinity-catalog-jsonl": (
        lambda rs: upload(rs, b'{"id": -Infinity, "nom": "A"}\n', "catalog.jsonl"),
        422,
        ("line 1", "Infinity"),
        "not_json",
    ),
    # --- invalid UTF-8 and lone surrogates, in every field ----------------------------------------------------------
    "utf8-catalog-file": (
        lambda rs: upload(rs, b'[{"id": 1, "nom": "caf\xc3\x28 \x81"}]'),
        422,
        ("UTF-8",),
        "not_utf8",
    ),
    "utf8-catalog-name-form": (
        lambda rs: upload(rs, b'[{"id": 1, "nom": "A"}]', name=b"caf\xe9\xff"),
        422,
        ("invalid catalog name",),
        "invalid_name",
    ),
    "utf8-catalog-name-query": (
        lambda rs: rs.http.post("/catalogs?name=%FF%FE&filename=c.json", content=b'[{"id": 1, "nom": "A"}]'),
        422,
        ("invalid catalog name",),
        "invalid_name",
    ),
    "utf8-catalog-name-path": (
        lambda rs: rs.http.get("/catalogs/%FF%FE/profile"),
        422,
        ("invalid catalog name",),
        "invalid_name",
    ),
    "utf8-question": (
        lambda rs: raw_json(rs, f"/rag/{NAME}/query", b'{"question": "statut de 6Tzen \xff ?"}'),
        400,
        ("UTF-8", "0xff"),
        "invalid_body",
    ),
    "utf8-ask": (
        lambda rs: raw_json(rs, f"/catalogs/{NAME}/ask", b'{"question": "\xc3\x28"}'),
        400,
        ("UTF-8",),
        "invalid_body",
    ),
    "surrogate-question": (
        lambda rs: raw_json(rs, f"/rag/{NAME}/query", '{"question": "statut \\ud800 ?"}'),
        422,
        ("question", "surrogate"),
        "invalid_request",
    ),
    "surrogate-catalog-name": (
        lambda rs: raw_json(rs, "/datasets", '{"catalog": "\\udfff"}'),
        422,
        ("catalog", "surrogate"),
        "invalid_request",
    ),
    "surrogate-training-file": (
        lambda rs: raw_json(rs, "/hosted/jobs", '{"train": "{\\"messages\\": \\"\\ud800\\"}"}'),
        422,
        ("train", "surrogate"),
        "invalid_request",
    ),
    "surrogate-label-key": (
        lambda rs: raw_json(rs, "/evaluations", '{"target": "rag:x", "dataset_id": "x", "labels": {"\\ud800": "x"}}'),
        422,
        ("labels", "surrogate"),
        "invalid_request",
    ),
    # --- CSVs that expand -------------------------------------------------------------------------------------------
    "csv-huge-cell": (
        lambda rs: upload(rs, (CSV_HEADER + "1,A," + "x" * 1_500_000 + "\n").encode(), "catalog.csv"),
        422,
        ("line 2", "field limit"),
        "invalid_csv",
    ),
    "csv-huge-quoted-cell": (
        lambda rs: upload(rs, (CSV_HEADER + '1,A,"' + "x\n" * 700_000 + '"\n').encode(), "catalog.csv"),
        422,
        ("field limit",),
        "invalid_csv",
    ),
    "csv-too-wide": (
        lambda rs: upload(
            rs,
            (",".join(["id", "nom"] + [f"c{i}" for i in range(5000)]) + "\n1,A" + "," * 5000 + "\n").encode(),
            "catalog.csv",
        ),
        422,
        ("5,002 columns", "2,000"),
        "too_many_columns",
    ),
    # --- a JSONL of a million lines ---------------------------------------------------------------------------------
    "jsonl-million-over-limit": (
        lambda rs: upload(rs, b'{"id":1}\n' * 1_000_000, "catalog.jsonl"),
        413,
        ("upload limit",),
        "too_large",
    ),
    "jsonl-million-within-limit": (
        lambda rs: upload(rs, b"1\n" * 999_999, "catalog.jsonl"),
        422,
        ("are not objects", "and 999989 more"),
        "invalid_record",
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_malformed_input_is_refused_by_name_and_nothing_stored_changes(running_stack, untouched, case):
    call, status, words, code = CASES[case]
    refused(timed(lambda: call(running_stack)), status, *words, code=code)


# --- path-like names everywhere a name is accepted --------------------------------------------------------------------
PATH_LIKE = ["../x", "a/b", "%2e%2e", "a\x00b", "..", "x\\..\\y"]


def _in_path(name: str) -> str:
    """Every byte percent-encoded, dots too: the client would resolve a bare '..' before sending it."""
    return "".join(f"%{byte:02X}" for byte in name.encode())


NAME_ROUTES: dict[str, Callable] = {
    "catalog-upload-form": lambda rs, n: upload(rs, b'[{"id": 1, "nom": "A"}]', name=n),
    "catalog-upload-query": lambda rs, n: rs.http.post(
        f"/catalogs?name={_in_path(n)}&filename=c.json", content=b'[{"id": 1, "nom": "A"}]'
    ),
    "catalog-path": lambda rs, n: rs.http.get(f"/catalogs/{_in_path(n)}/profile"),
    "catalog-retraining": lambda rs, n: rs.http.put(f"/catalogs/{_in_path(n)}/retraining", json={}),
    "catalog-source": lambda rs, n: rs.http.put(f"/catalogs/{_in_path(n)}/source", json={"path": "/x.json"}),
    "collection-index": lambda rs, n: rs.http.post(f"/rag/{_in_path(n)}/index", json={"catalog": NAME}),
    "collection-query": lambda rs, n: rs.http.post(f"/rag/{_in_path(n)}/query", json=QUESTION),
    "collection-of-catalog": lambda rs, n: rs.http.post(f"/rag/{NAME}-copy/index", json={"catalog": n}),
    "dataset-catalog": lambda rs, n: rs.http.post("/datasets", json={"catalog": n}),
    "dataset-id": lambda rs, n: rs.http.get(f"/datasets/{_in_path(n)}"),
    "dataset-file": lambda rs, n: rs.http.get(f"/datasets/x/files/{_in_path(n)}/openai"),
    "model-name": lambda rs, n: rs.http.post("/train", json={"train": "{}\n", "name": n}),
    "model-id": lambda rs, n: rs.http.get(f"/models/{_in_path(n)}"),
    "hosted-model-id": lambda rs, n: rs.http.get(f"/hosted/models/{_in_path(n)}"),
    "export-name": lambda rs, n: rs.http.post("/exports", json={"model_id": "lora-x", "name": n}),
    "export-ollama-name": lambda rs, n: rs.http.post("/exports", json={"model_id": "lora-x", "ollama_name": n}),
    "export-id": lambda rs, n: rs.http.get(f"/exports/{_in_path(n)}"),
    "evaluation-name": lambda rs, n: rs.http.post(
        "/evaluations", json={"target": f"rag:{NAME}", "dataset_id": "x", "name": n}
    ),
    "pipeline-name": lambda rs, n: rs.http.post("/pipelines", json={"catalog": NAME, "name": n}),
    "pipeline-catalog": lambda rs, n: rs.http.post("/pipelines", json={"catalog": n}),
    "pipeline-id": lambda rs, n: rs.http.get(f"/pipelines/{_in_path(n)}"),
    "job-id": lambda rs, n: rs.http.get(f"/jobs/{_in_path(n)}"),
}


@pytest.mark.parametrize("route", list(NAME_ROUTES))
def test_path_like_names_are_refused_wherever_a_name_is_accepted(running_stack, untouched, route):
    for name in PATH_LIKE:
        reply = timed(lambda name=name: NAME_ROUTES[route](running_stack, name))
        # 422 (the name, refused by name) or 404 (an id that names nothing); never stored, never a 5xx
        error = refused(reply, (404, 422))
        if reply.status_code == 422:
            assert any(w in error["message"] for w in ("name", "path", "pattern", "catalog", "collection")), error
    assert not [p for p in running_stack.http.get("/pipelines").json()["pipelines"] if p["name"] in PATH_LIKE]


# --- within the limits: a normal answer, in bounded time -----------------------------------------------------------


def test_a_csv_that_expands_within_the_limit_is_read_in_bounded_time(running_stack, untouched):
    """1,000 columns x 1,900 rows of empty cells: 1.9 million cells in 1.9 MB, under every limit: stored as a new
    catalog (the stored ones untouched), in seconds."""
    columns = ["id", "nom"] + [f"c{i}" for i in range(998)]
    rows = "".join(f"{r},app-{r}" + "," * 998 + "\n" for r in range(1900))
    content = (",".join(columns) + "\n" + rows).encode()
    assert len(content) < LIMIT
    reply = timed(lambda: upload(running_stack, content, "wide.csv", name="bad-input-wide"))
    assert reply.status_code == 201, reply.text
    assert reply.json()["entity_count"] == 1900


def test_a_million_line_dataset_within_the_limit_is_validated(running_stack, untouched):
    """/validate reports on a JSONL of a million lines (each a bare number: an invalid line), never a 5xx."""
    reply = timed(lambda: running_stack.http.post("/validate", files={"file": ("t.jsonl", b"1\n" * 999_999)}))
    assert reply.status_code == 200, reply.text[:300]
    assert reply.json()["blocking"], reply.json()


def test_a_deeply_nested_dataset_file_is_reported_not_a_server_error(running_stack, untouched):
    reply = timed(lambda: running_stack.http.post("/validate", files={"file": ("t.json", nested(100_000).encode())}))
    assert reply.status_code == 200, reply.text[:300]
    assert reply.json()["blocking"], reply.json()


def test_a_manifest_that_is_not_utf8_is_named_in_the_report(running_stack, untouched):
    """The provenance manifest is optional: /validate reports on the dataset and names what is wrong with it."""
    files = {"file": ("t.jsonl", b"{}\n"), "manifest": ("t.jsonl.manifest.jsonl", b"\x89PNG\r\n\x1a\n")}
    reply = timed(lambda: running_stack.http.post("/validate", files=files))
    assert reply.status_code == 200, reply.text[:300]
    assert "t.jsonl.manifest.jsonl is not UTF-8: byte 0x89 at offset 0" in reply.text
