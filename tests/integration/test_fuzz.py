"""Schemathesis against the live gateway, bounded: every operation of /openapi.json (but GET /jobs/events, which
takes no input and never ends), in every phase (examples, coverage, fuzzing, and stateful through the schema's
links), a few examples each, a fixed seed. No 5xx, and every 4xx body in the error shape. The longer run is
bench/bench_fuzz.py, with the same harness (tests/fuzzing.py)."""

from __future__ import annotations

import time

import pytest

from tests import fuzzing

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SEED = 20261207
MAX_EXAMPLES = 8  # per operation, in the fuzzing phase (the coverage phase sends every boundary case it derives)
STATEFUL_EXAMPLES = 100  # scenarios of the stateful phase, each a chain of calls through the links
CATALOG = "fuzz-seed"
TERMINAL = ("succeeded", "failed", "cancelled")


def _open_work(rs) -> tuple[set[str], set[str]]:
    jobs = {
        j["id"] for j in rs.http.get("/jobs", params={"limit": 10_000}).json()["jobs"] if j["status"] not in TERMINAL
    }
    pipelines = {p["id"] for p in rs.http.get("/pipelines", params={"limit": 10_000}).json()["pipelines"]}
    return jobs, pipelines


def _policies(rs) -> set[str]:
    names = [c["name"] for c in rs.http.get("/catalogs").json()["catalogs"]]
    return {n for n in names if rs.http.get(f"/catalogs/{n}/retraining").json().get("policy")}


@pytest.fixture(scope="module")
def seeded(running_stack, sample_catalog_bytes):
    """Something for the links to lead to: a catalog and a dataset built from it (a job)."""
    rs = running_stack
    reply = rs.http.post("/catalogs", files={"file": ("c.json", sample_catalog_bytes)}, data={"name": CATALOG})
    assert reply.status_code in (200, 201), reply.text
    job = rs.http.post("/datasets", json={"catalog": CATALOG, "num_questions": 50})
    assert job.status_code == 202, job.text
    rs.wait_job(job.json()["id"])


def test_schemathesis_finds_no_server_error_and_every_error_has_the_shape(running_stack, seeded):
    rs = running_stack
    jobs_before, pipelines_before = _open_work(rs)
    policies_before = _policies(rs)
    key = rs.http.headers["X-API-Key"]
    try:
        report = fuzzing.run(
            rs.stack.config.gateway_url,
            key,
            max_examples=MAX_EXAMPLES,
            stateful_examples=STATEFUL_EXAMPLES,
            seed=SEED,
        )
    finally:
        _clean_up(rs, jobs_before, pipelines_before, policies_before)
    print(report.summary())
    failures = "\n".join(f"{f.check} {f.operation} -> {f.status}: {f.message} ({f.request})" for f in report.failures)
    assert not report.failures, failures
    assert report.five_xx() == 0 and not report.errors, (report.statuses, report.errors)
    assert report.operations == report.selected > 50, report.summary()
    assert report.requests > 1000 and report.by_phase["stateful"] > 0, report.summary()
    assert report.links_followed, report.summary()


def _clean_up(rs, jobs_before: set[str], pipelines_before: set[str], policies_before: set[str]) -> None:
    """What the run started is stopped (a fuzzed export or training would run on for minutes beside the next tests),
    and the retraining policies it set are removed."""
    for name in _policies(rs) - policies_before:
        rs.http.delete(f"/catalogs/{name}/retraining")
    for pipeline in rs.http.get("/pipelines", params={"limit": 10_000}).json()["pipelines"]:
        if pipeline["id"] not in pipelines_before and pipeline["status"] not in TERMINAL:
            rs.http.post(f"/pipelines/{pipeline['id']}/cancel")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        running = _open_work(rs)[0] - jobs_before
        if not running:
            return
        for job_id in running:
            rs.http.post(f"/jobs/{job_id}/cancel")
        time.sleep(1)
