"""Reports: the guide's JSON fields, Markdown, and a self-contained HTML page checked in headless Chromium."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest
from test_evaluation_support import (
    ACTORS_GEOVAL,
    CATALOG,
    EMPTY_SITES_ARCHIPEL,
    EVENTS_GEOVAL,
    SITES_GEOVAL,
    STATUS_GEOVAL,
    UNKNOWN_ZORGLUB,
)

from dyag_core.evaluation import (
    CHART_IDS,
    GUIDE_FIELDS,
    EvaluationRun,
    Response,
    Target,
    evaluate,
    render_html,
    render_markdown,
)

CASES = [STATUS_GEOVAL, ACTORS_GEOVAL, SITES_GEOVAL, EVENTS_GEOVAL, EMPTY_SITES_ARCHIPEL, UNKNOWN_ZORGLUB]
CHROMIUM = shutil.which("chromium") or ("/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None)
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]


def _run(name: str, approach: str, answers: list[str], latency: float) -> EvaluationRun:
    responses = [Response(a, latency + 10 * i, 300, 60) for i, a in enumerate(answers)]
    return evaluate(
        CASES,
        responses,
        target=Target(name, approach, "ollama:qwen2.5"),
        catalog=CATALOG,
        prices={"ollama:*": 0},
        test_set="test.jsonl",
    )


@pytest.fixture(scope="module")
def runs() -> list[EvaluationRun]:
    fine_tuned = _run(
        "fine-tuned",
        "fine_tuned",
        [
            "GEOVAL est abandonnée.",
            "DGALN/DHUP et CEREMA.",
            "https://www.geoval.gouv.fr",
            "Le 3 avril 2019.",
            "https://archipel.example.gouv.fr",
            "ZORGLUB est en production.",
        ],
        400.0,
    )
    rag = _run(
        "rag",
        "rag",
        [
            "GEOVAL est en production.",
            "DGALN/DHUP, CEREMA et IGN.",
            "https://geoval.example.gouv.fr/",
            "Le 03/04/2019.",
            "Je ne sais pas.",
            "Je ne connais pas ZORGLUB.",
        ],
        1500.0,
    )
    return [fine_tuned, rag]


def test_json_has_the_guide_fields_at_the_top(runs) -> None:
    data = json.loads(runs[0].to_json())
    assert list(data)[: len(GUIDE_FIELDS)] == list(GUIDE_FIELDS)
    # fine-tuned: only "Le 3 avril 2019." is correct -> 1/6; latencies 400..450 -> mean 425.
    assert data["accuracy"] == pytest.approx(1 / 6)
    assert data["average_generation_time_ms"] == pytest.approx(425.0)
    for key in ("precision", "recall", "f1_score"):
        assert 0.0 <= data[key] <= 1.0
    assert len(data["errors"]) == 5
    for err in data["errors"]:
        assert {"question", "expected", "got", "reason"} <= set(err) and err["reason"]
    assert data["errors"][0]["got"] == "GEOVAL est abandonnée." and "hallucination" in data["errors"][0]["reason"]
    assert data["hallucination_rate"] == pytest.approx(4 / 6)  # wrong status, invented URL ×2, invented answer
    assert data["by_type"]["status"]["accuracy"] == 0.0 and data["by_entity"]["1"]["name"] == "GEOVAL"
    assert data["results"][0]["hallucinations"][0]["kind"] == "wrong_status"
    assert EvaluationRun.from_dict(data).to_dict() == data


def test_the_guide_scripts_run_on_the_json(runs, capsys) -> None:
    """The guide's step 6.2 and 6.3 snippets, as written, read our files."""
    baseline, finetuned = (json.loads(r.to_json()) for r in runs)
    for metric in ["accuracy", "precision", "recall", "f1_score"]:
        b_val, f_val = baseline.get(metric, 0), finetuned.get(metric, 0)
        print(f"{metric.capitalize():<25} {b_val:>11.1%} {f_val:>11.1%} {f_val - b_val:>+7.1%}")
    b_time, f_time = baseline.get("average_generation_time_ms", 0), finetuned.get("average_generation_time_ms", 0)
    print(
        f"Baseline: {b_time:.0f}ms\nFine-tuned: {f_time:.0f}ms\nAmélioration: {(b_time - f_time) / b_time * 100:+.1f}%"
    )
    for i, err in enumerate(baseline.get("errors", [])[:5], 1):
        print(
            f"{i}. Question: {err['question']}\n   Attendu: {err['expected'][:100]}...\n"
            f"   Obtenu: {err['got'][:100]}...\n   Raison: {err.get('reason', 'N/A')}"
        )
    out = capsys.readouterr().out
    assert "Accuracy                        16.7%      100.0%  +83.3%" in out
    assert (
        "Baseline: 425ms" in out and "Fine-tuned: 1525ms" in out and "Amélioration: -258.8%" in out
    )  # (425 - 1525) / 425


def test_markdown_report(runs) -> None:
    one = render_markdown(runs[1])
    assert one.startswith("# Évaluation : rag")
    assert "| Accuracy | 100.0 % (6/6) |" in one and "## Erreurs (étape 6.3 du guide) : 0" in one
    both = render_markdown(runs)
    for heading in (
        "## Comparaison (étape 6.2 du guide)",
        "## RAG vs fine-tuning vs hybride",
        "## Tableau de décision (étape 7.2 du guide)",
        "**Recommandation : RAG",
        "## Évaluation : fine-tuned",
    ):
        assert heading in both
    assert "Raison : hallucination : « abandonnee »" in both


class _Assets(HTMLParser):
    """Every tag that could fetch something, and every attribute value."""

    def __init__(self) -> None:
        super().__init__()
        self.fetching: list[str] = []
        self.values: list[str] = []
        self.figures: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        self.values += [v for v in values.values() if v]
        if tag in ("link", "img", "iframe", "object", "embed", "source", "audio", "video", "track", "image", "use") or (
            tag == "script" and "src" in values
        ):
            self.fetching.append(tag)
        if tag == "figure" and values.get("data-chart"):
            self.figures.append(values["data-chart"] or "")


def test_html_is_self_contained_with_the_three_charts(runs) -> None:
    page = render_html(runs)
    parser = _Assets()
    parser.feed(page)
    assert parser.fetching == []
    assert not [v for v in parser.values if re.search(r"https?:|//|^www\.", v)], "an attribute points outside the page"
    styles = " ".join(re.findall(r"<style>(.*?)</style>", page, re.S))
    assert "url(" not in styles and "@import" not in styles
    assert "default-src 'none'" in page  # the page forbids itself any load
    assert parser.figures == list(CHART_IDS) == ["chart-accuracy-by-type", "chart-latency", "chart-hallucination"]
    for chart in CHART_IDS:
        svg = re.search(rf'<figure id="{chart}" data-chart="{chart}"><svg .*?</svg>', page, re.S)
        assert svg and '<rect class="bar"' in svg.group(0), chart
    assert 'id="recommendation"' in page and "Tableau de décision (étape 7.2 du guide)" in page


def _chromium(args: list[str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    assert CHROMIUM
    command = [CHROMIUM, *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile'}", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=180, check=False)


def _self_check(dom: str) -> dict[str, str]:
    html_tag = re.search(r"<html[^>]*>", dom)
    assert html_tag, dom[:500]
    return dict(re.findall(r'data-([a-z-]+)="([^"]*)"', html_tag.group(0)))


@pytest.mark.skipif(
    CHROMIUM is None,
    reason="no chromium binary (Debian: apt-get install -y chromium): "
    "the HTML report is not rendered in a real browser here",
)
def test_html_renders_in_headless_chromium(runs, tmp_path) -> None:
    page = tmp_path / "report.html"
    page.write_text(render_html(runs), encoding="utf-8")
    done = _chromium(["--virtual-time-budget=5000", "--dump-dom", page.as_uri()], tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    check = _self_check(done.stdout)
    # The page's own script ran after load: the three charts hold shapes, nothing was fetched, nothing failed.
    assert check == {"charts-drawn": "3", "resources-loaded": "0", "resource-errors": "0", "self-check": "done"}, check
    for chart in CHART_IDS:
        assert f'id="{chart}-svg"' in done.stdout
    shot = tmp_path / "report.png"
    done = _chromium(["--hide-scrollbars", "--window-size=1280,2600", f"--screenshot={shot}", page.as_uri()], tmp_path)
    assert done.returncode == 0 and shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 20_000
    # The check can fail: the same page with an external image and a missing local one reports both.
    broken = tmp_path / "broken.html"
    broken.write_text(
        render_html(runs).replace("<main>", '<main><img src="https://cdn.example.com/x.png"><img src="missing.png">'),
        encoding="utf-8",
    )
    done = _chromium(["--virtual-time-budget=5000", "--dump-dom", broken.as_uri()], tmp_path)
    assert int(_self_check(done.stdout)["resource-errors"]) >= 2
