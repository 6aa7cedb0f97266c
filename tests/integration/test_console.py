"""The web console (/ui) driven in headless Chromium against the real stack.

- a wrong key gets a clear message, and nothing else happens until a key the gateway accepts is entered;
- upload the sample catalog and start a tiny pipeline from the Start page, then see its steps change status on the
  pipeline page without reloading it (the live SSE stream, read with fetch and the key), and its comparison's charts;
- two evaluation runs side by side: charts, decision table;
- ask a question and see an answer that cites the records and fields it states, and the time it took;
- HTML in catalog content is shown as text (records, the diff of two versions), never run;
- every page renders without a console error (an HTTP error or a CSP violation is a console error too);
- the loss curve grows with the training's progress (fed as a training job's progress feeds it);
- with a 1,000-application catalog, 100 pipelines and 100 evaluation runs, lists show pages of 50 and the first paint
  comes in under a second (performance timing, measured in the browser).

Chromium is the system's (/usr/bin/chromium, or DYAG_CHROMIUM), driven by Playwright's sync API (the `playwright`
package; no browser download). Not pytest-playwright's fixtures: its Playwright lives for the whole session, and a
running sync Playwright keeps an event loop on the main thread, so the other modules' asyncio.run() would fail; here it
lives for this module only. Screenshots go to docs/img/console-*.png with DYAG_SCREENSHOTS=1 (the README shows them),
else to a temporary folder.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import pytest

from tests.integration.conftest import RunningStack

pytestmark = [pytest.mark.integration, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("DYAG_CHROMIUM", "/usr/bin/chromium")
CATALOG = "console_sample"
XSS = "console_escaping"
BIG = "console_synthetic_1000"
SCRIPT = "<script>window.__xss = 1</script>"
IMG = '<img src="x" onerror="window.__xss = 2">'
STATE: dict = {}


@pytest.fixture(scope="module")
def chromium():
    sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright (tests/requirements.txt)")
    if not (Path(CHROMIUM).exists() or shutil.which(CHROMIUM)):
        pytest.skip(f"no Chromium at {CHROMIUM} (set DYAG_CHROMIUM)")
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True)
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def shots(tmp_path_factory) -> Path:
    if os.environ.get("DYAG_SCREENSHOTS") == "1":
        return REPO / "docs" / "img"
    return tmp_path_factory.mktemp("console-screenshots")


@pytest.fixture(scope="module")
def key(running_stack: RunningStack) -> str:
    return running_stack.http.headers["x-api-key"]


@pytest.fixture(scope="module")
def base(running_stack: RunningStack) -> str:
    return str(running_stack.http.base_url).rstrip("/")


class Console:
    """One browser tab on the console; every console error and page error is kept (the tests assert there is none)."""

    def __init__(self, page, base: str, shots: Path):
        self.page, self.base, self.shots = page, base, shots
        self.errors: list[str] = []
        page.on("console", lambda m: self.errors.append(f"{m.type}: {m.text}") if m.type == "error" else None)
        page.on("pageerror", lambda e: self.errors.append(f"pageerror: {e}"))

    def login(self, key: str) -> None:
        self.page.goto(f"{self.base}/ui/")
        self.page.wait_for_selector("#api-key")
        self.page.fill("#api-key", key)
        self.page.click("#use-key")
        self.page.wait_for_selector("body[data-ready='home']")

    def go(self, route: str, ready: str, timeout: float = 30_000) -> None:
        """Another page of the console, without reloading the document (the hash router)."""
        self.page.evaluate(
            """(r) => {
              delete document.body.dataset.ready;
              if (location.hash === r) window.dispatchEvent(new HashChangeEvent('hashchange'));
              else location.hash = r;
            }""",
            route,
        )
        self.page.wait_for_selector(f"body[data-ready='{ready}']", timeout=timeout)

    def banner(self) -> str:
        return self.page.inner_text("#banner")

    def shot(self, name: str, selector: str | None = None, full_page: bool = False, max_height: int = 0) -> None:
        path = self.shots / f"console-{name}.png"
        if selector and max_height:
            box = self.page.locator(selector).first.bounding_box()
            box["height"] = min(box["height"], max_height)
            self.page.screenshot(path=str(path), clip=box, full_page=True)
        elif selector:
            self.page.locator(selector).first.screenshot(path=str(path))
        else:
            self.page.screenshot(path=str(path), full_page=full_page)


@pytest.fixture()
def ui(chromium, base, shots):
    context = chromium.new_context(viewport={"width": 1360, "height": 900}, accept_downloads=True)
    page = context.new_page()
    page.set_default_timeout(30_000)
    console = Console(page, base, shots)
    yield console
    context.close()
    assert console.errors == [], console.errors


def wait_pipeline(rs: RunningStack, pipeline_id: str, timeout: float = 300) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pipeline = rs.http.get(f"/pipelines/{pipeline_id}").json()
        if pipeline["status"] in ("succeeded", "failed", "cancelled"):
            return pipeline
        time.sleep(0.5)
    raise AssertionError(f"pipeline {pipeline_id} did not end in {timeout} s")


# --- the key -------------------------------------------------------------------------------------------------------
def test_a_wrong_key_gets_a_clear_message(ui, key):
    ui.page.goto(f"{ui.base}/")  # / redirects to the console
    ui.page.wait_for_selector("#api-key")
    assert ui.page.url.endswith("/ui/")
    ui.page.fill("#api-key", "not-the-key")
    ui.page.click("#use-key")
    message = ui.page.locator("#gate-message.error-text")
    message.wait_for()
    text = message.inner_text()
    assert "refused this key" in text and "invalid_api_key" in text, text
    assert ui.page.locator("#nav").is_hidden()  # nothing else until a key is accepted
    assert ui.page.evaluate("sessionStorage.getItem('dyag.apiKey')") is None
    ui.shot("key", ".gate")
    ui.page.fill("#api-key", key)
    ui.page.click("#use-key")
    ui.page.wait_for_selector("body[data-ready='home']")
    assert ui.page.evaluate("sessionStorage.getItem('dyag.apiKey')") == key  # kept for the browser session
    ui.page.reload()  # the same session: no key asked again
    ui.page.wait_for_selector("body[data-ready='home']")
    assert "serving" in ui.page.inner_text(".health")


# --- upload, start, follow live, the comparison -------------------------------------------------------------------
def test_upload_the_sample_and_follow_a_tiny_pipeline_live(ui, key, running_stack, sample_catalog_path):
    ui.login(key)
    ui.go("#/start", "start")
    ui.page.set_input_files("#catalog-file", str(sample_catalog_path))
    ui.page.fill("#catalog-name", CATALOG)
    ui.page.click("#upload")
    ui.page.wait_for_selector("#upload-result a")
    assert CATALOG in ui.page.inner_text("#upload-result") and "45" in ui.page.inner_text("#upload-result")
    # A tiny configuration: no training, grounded answers and RAG (its model: the fake Ollama) on 6 questions.
    ui.page.fill("#opt-name", "console tiny")
    ui.page.fill("#opt-num-questions", "120")
    ui.page.fill("#opt-max-eval", "6")
    ui.page.fill("#opt-rag-llm", "ollama:applications-ia")
    for target, wanted in (("base", False), ("fine_tuned", False), ("rag", True), ("grounded", True)):
        ui.page.set_checked(f"input[name=targets][value={target}]", wanted)
    ui.page.set_checked("input[name=skip][value=train]", True)
    ui.page.set_checked("#opt-skip-similarity", True)
    preview = ui.page.text_content("#cli-preview")  # the same run from a terminal
    assert preview.startswith(f"dyag run {CATALOG} ") and "--skip train" in preview, preview
    assert "--targets rag,grounded" in preview and "--num-questions 120" in preview, preview
    ui.shot("start", full_page=True)
    # Every data-status change of a step, as the page makes it; and a mark that a reload would wipe.
    ui.page.evaluate(
        """() => {
          window.__seen = {};
          window.__sameDocument = 'yes';
          new MutationObserver((records) => {
            for (const r of records) {
              const el = r.target;
              if (!el.dataset || !el.dataset.step || !el.dataset.status) continue;
              const seen = (window.__seen[el.dataset.step] ||= []);
              if (seen[seen.length - 1] !== el.dataset.status) seen.push(el.dataset.status);
            }
          }).observe(document.body, { subtree: true, attributes: true, attributeFilter: ['data-status'] });
        }"""
    )
    ui.page.click("#start-pipeline")
    ui.page.wait_for_function("() => location.hash.startsWith('#/pipelines/pipeline-')")
    pipeline_id = ui.page.evaluate("() => decodeURIComponent(location.hash.split('/')[2])")
    ui.page.wait_for_selector("#timeline li.step")
    ui.page.wait_for_function(
        "() => ['succeeded', 'failed', 'cancelled'].includes(document.querySelector('.page')?.dataset.status)",
        timeout=300_000,
    )
    record = running_stack.http.get(f"/pipelines/{pipeline_id}").json()
    assert record["status"] == "succeeded", record.get("error")
    seen = ui.page.evaluate("window.__seen")
    assert ui.page.evaluate("window.__sameDocument") == "yes"  # never reloaded
    assert ui.page.evaluate("performance.getEntriesByType('navigation').length") == 1
    changed = {step: statuses for step, statuses in seen.items() if len(statuses) >= 2}
    assert changed, f"no step changed status on the page: {seen}"
    assert seen["report"][-1] == "succeeded" and seen["build"][-1] == "succeeded", seen
    shown = {
        li.get_attribute("data-step"): li.get_attribute("data-status")
        for li in ui.page.locator("#timeline li.step").all()
    }
    assert shown == {s["name"]: s["status"] for s in record["steps"]}
    # The comparison, at the end: its table, charts drawn, the decision table.
    ui.page.wait_for_selector("#comparison-card figure.chart[data-chart='drawn']")
    ui.page.wait_for_function(
        "() => document.querySelectorAll('#comparison-card figure.chart[data-chart]').length >= 4"
    )
    assert_charts_drawn(ui.page, "#comparison-card")
    assert "Accuracy" in ui.page.inner_text("#comparison-card .comparison-table")
    assert "this catalog" in ui.page.inner_text("#comparison-card .decision-table")
    ui.page.locator("#timeline li.step[data-step='build'] summary").click()
    ui.page.wait_for_selector("#timeline li.step[data-step='build'] .job-panel pre.logs:not(:text('…'))")
    ui.page.evaluate("window.scrollTo(0, 0)")
    ui.shot("pipeline")
    ui.shot("comparison", "#comparison-card")
    STATE["pipeline"] = record
    STATE["steps"] = seen


def assert_charts_drawn(page, scope: str, at_least: int = 4) -> None:
    """Each chart's canvas has pixels drawn on it (not a blank canvas)."""
    drawn = page.evaluate(
        """(scope) => [...document.querySelectorAll(scope + ' figure.chart canvas')].map((c) => {
            const data = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
            let inked = 0;
            for (let i = 3; i < data.length; i += 4) if (data[i] > 0) inked += 1;
            return { w: c.width, h: c.height, inked };
        })""",
        scope,
    )
    assert len(drawn) >= at_least, drawn
    assert all(c["w"] > 100 and c["h"] > 100 and c["inked"] > 500 for c in drawn), drawn


def test_two_runs_side_by_side_with_charts_and_the_decision_table(ui, key):
    pipeline = STATE.get("pipeline") or pytest.skip("needs the pipeline of the previous test")
    runs = pipeline["report"]["run_ids"]
    assert len(runs) == 2
    ui.login(key)
    ui.go("#/evaluations", "evaluations")
    for run in runs:
        ui.page.set_checked(f"input[aria-label='select {run}']", True)
    ui.page.click("#compare-runs")
    ui.page.wait_for_selector("body[data-ready='evaluations'] #side-by-side .comparison-table")
    ui.page.wait_for_function("() => document.querySelectorAll('#side-by-side figure.chart[data-chart]').length >= 4")
    assert_charts_drawn(ui.page, "#side-by-side")
    header = ui.page.inner_text("#side-by-side .comparison-table thead")
    assert all(name in header for name in pipeline["report"]["names"]), header
    assert "grounded" in ui.page.inner_text("#side-by-side .decision-table")
    assert ui.page.locator("#side-by-side table.questions tbody tr").count() >= 6
    ui.shot("evaluations", "#side-by-side", max_height=1100)


# --- ask -----------------------------------------------------------------------------------------------------------
def test_ask_a_question_and_see_an_answer_with_its_citations(ui, key, running_stack):
    STATE.get("pipeline") or pytest.skip("needs the pipeline's RAG collection")
    ui.login(key)
    ui.go(f"#/ask?catalog={CATALOG}", "ask")
    assert "no champion" in ui.page.inner_text("#champion-note")
    ui.page.select_option("#ask-mode", "grounded")
    ui.page.fill("#question", "Quel est le statut de FLORAMAP ?")
    ui.page.click("#ask-button")
    answer = ui.page.locator("#answers .qa").first
    answer.locator(".citation").first.wait_for()
    assert "FLORAMAP" in answer.locator(".answer").inner_text()
    citations = [c.inner_text() for c in answer.locator(".citation:not(.source)").all()]
    assert any("FLORAMAP" in c and "status" in c for c in citations), citations
    assert "ms in the browser" in answer.locator(".timing").inner_text()
    # With a champion (the grounded answers, set by hand), the catalog's ask route answers.
    reply = running_stack.http.post(
        f"/catalogs/{CATALOG}/champion", json={"target": {"kind": "grounded", "id": CATALOG}, "reason": "console test"}
    )
    assert reply.status_code == 200, reply.text
    ui.go(f"#/ask?catalog={CATALOG}", "ask")
    assert "champion: grounded" in ui.page.inner_text("#champion-note")
    assert ui.page.input_value("#ask-mode") == "champion"
    ui.page.fill("#question", "Qui gère 6Tzen ?")
    ui.page.keyboard.press("Control+Enter")
    first = ui.page.locator("#answers .qa").first
    first.locator(".citation").first.wait_for()
    assert "6Tzen" in first.locator(".answer").inner_text()
    assert "the champion" in first.locator(".timing").inner_text()
    assert first.locator(".citation[data-field]:not([data-field=''])").count() >= 1  # the champion's record and field
    # The records' own answer names each field it states.
    ui.page.select_option("#ask-mode", "grounded")
    ui.page.fill("#question", "Qui gère 6Tzen et où le trouver ?")
    ui.page.click("#ask-button")
    ui.page.wait_for_function("() => document.querySelectorAll('#answers .qa').length === 2")
    latest = ui.page.locator("#answers .qa").first
    latest.locator(".citation").first.wait_for()
    fields = {c.get_attribute("data-field") for c in latest.locator(".citation:not(.source)").all()}
    assert {"sites", "actors"} <= fields, fields
    ui.shot("ask", "main")


# --- HTML in catalog content ----------------------------------------------------------------------------------------
def planted(description: str, status: str) -> bytes:
    apps = [
        {
            "id": 1,
            "name": "XSS-APP",
            "long name": SCRIPT,
            "description": description,
            "status": status,
            "domains": [{"domain": IMG}],
        },
        {"id": 2, "name": "PLAIN", "long name": "A plain application", "description": "Nothing to see.", "status": "x"},
    ]
    return json.dumps(apps).encode()


def test_html_in_catalog_content_is_shown_as_text(ui, key, running_stack):
    for description, status in ((f"First {IMG} version", "En production"), (f"Second {IMG} {SCRIPT}", "Abandonnée")):
        reply = running_stack.http.post(
            "/catalogs", files={"file": ("xss.json", planted(description, status))}, data={"name": XSS}
        )
        assert reply.status_code in (200, 201), reply.text
    ui.login(key)
    ui.go(f"#/catalogs/{XSS}", "catalogs")
    ui.page.wait_for_selector("table.records tbody tr")
    records = ui.page.inner_text("table.records")
    assert SCRIPT in records and IMG in records  # the text itself, shown
    ui.page.locator("table.records summary").first.click()
    assert IMG in ui.page.inner_text("table.records .record")  # the domains field, nested
    ui.page.click("#compare-versions")
    ui.page.wait_for_selector("#diff .change[data-kind='changed']")
    changed = ui.page.locator("#diff .change[data-kind='changed']").first
    fields = [f.inner_text() for f in changed.locator("tr.diff-field-changed td:first-child").all()]
    assert "description" in fields and "status" in fields, fields
    assert f"Second {IMG} {SCRIPT}" in changed.inner_text()
    assert ui.page.evaluate("window.__xss") is None  # nothing ran
    assert ui.page.locator("img[src='x']").count() == 0 and ui.page.locator("#view script").count() == 0
    ui.shot("catalog", "#diff")


# --- every page ----------------------------------------------------------------------------------------------------
def test_every_page_renders_without_a_console_error(ui, key, running_stack):
    pipeline = STATE.get("pipeline") or pytest.skip("needs the pipeline of the earlier test")
    steps = {s["name"]: s for s in pipeline["steps"]}
    dataset = steps["build"]["result"]["dataset_id"]
    job = steps["build"]["job_id"]
    ui.login(key)
    pages = [
        ("#/", "home"),
        ("#/start", "start"),
        ("#/pipelines", "pipelines"),
        (f"#/pipelines/{pipeline['id']}", "pipelines"),
        ("#/catalogs", "catalogs"),
        (f"#/catalogs/{CATALOG}", "catalogs"),
        ("#/datasets", "datasets"),
        (f"#/datasets/{dataset}", "datasets"),
        (f"#/models?catalog={CATALOG}", "models"),
        ("#/evaluations", "evaluations"),
        ("#/ask", "ask"),
        ("#/jobs", "jobs"),
        (f"#/jobs/{job}", "jobs"),
    ]
    for route, ready in pages:
        ui.go(route, ready)
        assert ui.banner() == "", (route, ui.banner())
        assert ui.page.locator("main .error-text").count() == 0, (route, ui.page.inner_text("main"))
        assert ui.errors == [], (route, ui.errors)
    ui.go("#/", "home")
    ui.shot("home")
    # The dataset: counts, the validator's checklist, examples with their provenance.
    ui.go(f"#/datasets/{dataset}", "datasets")
    ui.page.click("#run-validator")
    ui.page.wait_for_selector("#validator table.checklist")
    assert "verdict" in ui.page.inner_text("#validator")
    example = ui.page.locator("#examples .example").first
    tags = example.locator(".tags").inner_text()
    assert "type " in tags and "field " in tags and "template " in tags, tags
    assert ui.page.locator("#examples .example").count() <= 50
    ui.shot("dataset", full_page=False)
    # Models: the champion set by the ask test, and its lineage drawn.
    ui.go(f"#/models?catalog={CATALOG}", "models")
    assert "grounded" in ui.page.inner_text("[data-alias='champion']")
    assert ui.page.locator(".graph svg g.node").count() >= 2
    ui.shot("models", "main")
    assert ui.errors == []


def test_the_loss_curve_grows_with_the_training_s_progress(ui, key):
    """The curve a pipeline or job page draws while a training runs, fed as the job's progress feeds it (no training
    here: a LoRA run takes minutes on this CPU): a point per logging step, eval loss only where an evaluation ran."""
    ui.login(key)
    drawn = ui.page.evaluate(
        """async () => {
          const { lossCurve } = await import('/ui/js/jobpanel.js');
          const curve = lossCurve();
          document.querySelector('#view').append(curve.box);
          const progress = [
            { step: 1, total_steps: 4, loss: 3.2 },
            { step: 2, total_steps: 4, loss: 2.9, eval_loss: 3.0 },
            { step: 3, total_steps: 4, loss: 2.5, eval_loss: 3.0 },
            { step: 4, total_steps: 4, loss: 2.1, eval_loss: 2.4 },
          ];
          for (const metrics of progress) curve.feed(metrics);
          await new Promise((resolve) => setTimeout(resolve, 300));
          const chart = curve.box.chart;
          return { steps: chart.data.labels, loss: chart.data.datasets[0].data, evalLoss: chart.data.datasets[1].data };
        }"""
    )
    assert drawn == {"steps": [1, 2, 3, 4], "loss": [3.2, 2.9, 2.5, 2.1], "evalLoss": [None, 3.0, None, 2.4]}, drawn
    assert_charts_drawn(ui.page, "#view", at_least=1)


def test_a_finished_training_s_page_draws_its_whole_loss_curve(ui, key, running_stack):
    """A run that ended before its page was opened: the curve comes from its model's record (loss_history), a point
    per logging step and the validation loss where it was measured. A real 3-step LoRA run on six examples."""
    rs = running_stack
    system = "Tu es un assistant expert en applications du système d'information français."

    def line(question: str, answer: str) -> str:
        messages = [["system", system], ["user", question], ["assistant", answer]]
        return json.dumps({"messages": [{"role": r, "content": c} for r, c in messages]}, ensure_ascii=False) + "\n"

    train = "".join(line(f"Quel est le statut de l'application A{i} ?", f"A{i} est en production.") for i in range(6))
    config = {"max_steps": 3, "batch_size": 2, "packing": False, "max_seq_len": 128, "eval_steps": 2}
    reply = rs.http.post(
        "/train",
        json={"train": train, "validation": line("Où en est A1 ?", "A1 est en production."), "config": config},
    )
    assert reply.status_code == 202, reply.text
    job = rs.wait_job(reply.json()["id"], timeout=600)
    assert job["status"] == "succeeded", job["error"]
    history = rs.http.get(f"/models/{job['result']['model_id']}").json()["loss_history"]
    assert [p["step"] for p in history if "loss" in p] == [1, 2, 3], history
    assert [p["step"] for p in history if "eval_loss" in p] == [2, 3], history
    ui.login(key)
    ui.go(f"#/jobs/{job['id']}", "jobs")
    ui.page.wait_for_function(
        "() => { const c = document.querySelector('.loss-curve'); return c && !c.hidden && c.chart"
        " && c.chart.data.labels.length === 3; }"
    )
    drawn = ui.page.evaluate(
        """() => { const chart = document.querySelector('.loss-curve').chart;
                 return { steps: chart.data.labels, evalLoss: chart.data.datasets[1].data.map((v) => v !== null) }; }"""
    )
    assert drawn == {"steps": [1, 2, 3], "evalLoss": [False, True, True]}, drawn
    assert_charts_drawn(ui.page, "#view", at_least=1)
    assert ui.errors == []


# --- scale ---------------------------------------------------------------------------------------------------------
def test_pages_stay_usable_with_1000_applications_and_100_runs(chromium, base, key, running_stack, shots):
    rs = running_stack
    content = (REPO / "examples" / "catalogs" / "synthetic-1000.json").read_bytes()
    reply = rs.http.post("/catalogs", files={"file": ("synthetic-1000.json", content)}, data={"name": BIG})
    assert reply.status_code in (200, 201) and reply.json()["entity_count"] == 1000, reply.text
    # 100 pipelines (started, then cancelled: records, not work) and 100 evaluation runs (one question each).
    ids = []
    for i in range(100):
        body = {
            "catalog": BIG,
            "num_questions": 10,
            "skip": ["validate", "train", "index", "evaluate"],
            "name": f"bulk {i}",
        }
        started = rs.http.post("/pipelines", json=body)
        assert started.status_code == 202, started.text
        ids.append(started.json()["id"])
    for pipeline_id in ids:
        cancelled = rs.http.post(f"/pipelines/{pipeline_id}/cancel")
        assert cancelled.status_code in (200, 409), cancelled.text  # 409: it ended first
    question = json.dumps(
        {
            "question": "Quel est le statut de FLORAMAP ?",
            "expected_answer": "FLORAMAP est en production.",
            "type": "status",
        }
    )
    jobs = []
    for i in range(100):
        run = rs.http.post(
            "/evaluations",
            json={
                "target": "ollama:applications-ia",  # the fake Ollama: a run of its own, in milliseconds
                "test_set": question,
                "filename": "one.jsonl",
                "name": f"bulk run {i}",
                "skip_similarity": True,
            },
        )
        assert run.status_code == 202, run.text
        jobs.append(run.json()["id"])
    for job in jobs:
        rs.wait_job(job, timeout=120)
    for pipeline_id in ids:
        wait_pipeline(rs, pipeline_id, timeout=120)

    context = chromium.new_context(viewport={"width": 1360, "height": 900})
    # The key as the console keeps it once entered (about:blank, between two pages, has no storage).
    context.add_init_script(
        f"if (location.protocol === 'http:') sessionStorage.setItem('dyag.apiKey', {json.dumps(key)})"
    )
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    timings = {}
    try:
        for name, route, ready, rows in (
            ("catalog", f"#/catalogs/{BIG}", "catalogs", "table.records tbody tr"),
            ("home", "#/", "home", None),
            ("pipelines", "#/pipelines", "pipelines", "main table tbody tr"),
            ("evaluations", "#/evaluations", "evaluations", "table.runs tbody tr"),
            ("jobs", "#/jobs", "jobs", "main table tbody tr"),
        ):
            page.goto("about:blank")
            page.goto(f"{base}/ui/{route}")
            page.wait_for_selector(f"body[data-ready='{ready}']", timeout=30_000)
            measured = page.evaluate(
                """() => ({
                    first_paint: performance.getEntriesByName('first-paint')[0]?.startTime,
                    first_contentful_paint: performance.getEntriesByName('first-contentful-paint')[0]?.startTime,
                    ready: performance.getEntriesByType('mark')
                      .find((m) => m.name.startsWith('dyag:ready:'))?.startTime,
                })"""
            )
            timings[name] = {k: round(v) for k, v in measured.items() if v is not None}
            if rows:
                assert page.locator(rows).count() == 50, (name, page.locator(rows).count())
                assert page.locator(".pager button[data-page='next']").first.is_enabled(), name
            if name == "catalog":
                assert "1–50 of 1,000" in page.inner_text("#records .pager"), page.inner_text("#records .pager")
                page.screenshot(path=str(shots / "console-catalog-1000.png"))
                page.locator("#records .pager button[data-page='next']").click()
                page.wait_for_function(
                    "() => document.querySelector('#records .pager-text').textContent.includes('51–100')"
                )
        print("console timings (ms since navigation start):", json.dumps(timings))
        for name, t in timings.items():
            assert t["first_contentful_paint"] < 1000, (name, timings)
            assert t["ready"] < 3000, (name, timings)
        assert errors == [], errors
    finally:
        context.close()
    STATE["timings"] = timings
