"""`dyag run`'s request, live display and comparison table (dyag_cli.pipeline), without a gateway."""

from __future__ import annotations

import base64

import pytest
from rich.console import Console

from dyag_cli import pipeline as cli
from dyag_cli.client import CliError
from dyag_gateway import pipeline as P


def test_a_catalog_file_is_sent_as_its_bytes(tmp_path):
    path = tmp_path / "apps.csv"
    path.write_bytes("nom;statut\nÉCO;En production\n".encode("latin-1"))  # not UTF-8: sent exactly as it is
    body = cli.request_body(str(path), name="", version="", num_questions=None, targets=["rag"], skip=[])
    assert base64.b64decode(body["catalog_base64"]) == path.read_bytes()
    assert body["catalog_filename"] == "apps.csv" and body["catalog"] == "" and body["targets"] == ["rag"]
    assert "num_questions" not in body and "skip" not in body  # unset: the gateway's defaults


def test_the_default_is_the_sample_catalog_named_applications_ia():
    body = cli.request_body(None, name="", version="")
    assert body["catalog"] == "applications_ia" and body["catalog_filename"] == "applicationsIA_mini_normalized.json"


def test_a_stored_catalog_is_named_and_a_missing_file_is_an_error(tmp_path):
    assert cli.request_body("applications_ia", name="", version="v1") == {
        "catalog": "applications_ia",
        "catalog_version": "v1",
    }
    with pytest.raises(CliError, match="no such catalog file"):
        cli.request_body(str(tmp_path / "missing.json"), name="", version="")
    path = tmp_path / "c.json"
    path.write_text("[]")
    with pytest.raises(CliError, match="--version"):
        cli.request_body(str(path), name="", version="v1")


def pipeline_view() -> dict:
    params = P.resolve_params(
        P.PipelineRequest(catalog="applications_ia"),
        device="cpu",
        device_source="asked",
        catalog={"name": "applications_ia", "version": "v1", "entity_count": 45},
    )
    steps = P.plan_steps(
        params,
        {
            "status": P.SUCCEEDED,
            "started_at": 1.0,
            "ended_at": 1.1,
            "seconds": 0.1,
            "result": {"name": "applications_ia", "version": "v1", "entity_count": 45},
        },
    )
    index = P.by_name(steps)
    summaries = {
        "base": {
            "accuracy": 0.1,
            "precision": 0.2,
            "recall": 0.1,
            "f1_score": 0.15,
            "average_generation_time_ms": 4000.0,
            "questions": 30,
        },
        "fine_tuned": {
            "accuracy": 0.2,
            "precision": 0.4,
            "recall": 0.1,
            "f1_score": 0.2,
            "average_generation_time_ms": 3000.0,
            "questions": 30,
        },
        "rag": {
            "accuracy": 0.3,
            "precision": 0.3,
            "recall": 0.2,
            "f1_score": 0.25,
            "average_generation_time_ms": 8000.0,
            "questions": 30,
        },
    }
    for name in ("build", "validate", "index", "evaluate_base", "evaluate_rag"):
        P.start_step(index[name], 2.0)
        P.end_step(index[name], P.SUCCEEDED, 3.0)
    index["evaluate_base"]["result"]["summary"] = summaries["base"]
    index["evaluate_rag"]["result"]["summary"] = summaries["rag"]
    P.start_step(index["train"], 2.0)
    index["train"]["progress"] = {
        "fraction": 0.5,
        "step": "training: step 8/16, loss 2.9",
        "eta_seconds": 60.0,
        "metrics": {},
    }
    record = {
        "id": "pipeline-1",
        "status": "running",
        "params": params,
        "steps": steps,
        "created_at": 1.0,
        "updated_at": 2.0,
        "heartbeat_at": 2.0,
        "correlation_id": "c",
    }
    return P.view(record, now=10.0)


def test_the_live_display_has_one_line_per_step():
    console = Console(width=200, record=True)
    console.print(cli.render(pipeline_view()))
    text = console.export_text()
    for words in (
        "pipeline-1",
        "1. ingest the catalog",
        "4. fine-tune (LoRA)",
        "training: step 8/16",
        "7. compare and report",
        "accuracy 10.0% on 30 questions",
    ):
        assert words in text, text


def test_the_comparison_table_has_the_guide_s_metrics_with_deltas():
    console = Console(width=200, record=True)
    console.print(cli.comparison_table(pipeline_view()))
    text = console.export_text()
    for words in ("Accuracy", "Precision", "Recall", "F1_score", "Base", "RAG", "+20.0 pts", "4000 ms", "-100.0 %"):
        assert words in text, text
    assert "Fine-tuned" not in text  # not evaluated yet


def test_the_models_line_says_which_model_answered_for_each_target():
    view = pipeline_view()
    P.by_name(view["steps"])["evaluate_base"]["result"]["model"] = "gguf:qwen2.5-0.5b"
    line = cli.models_line(view)
    assert line == "Modèles — Base : gguf:qwen2.5-0.5b · RAG : les fiches du catalogue (sinon le modèle de RAG)"


def test_a_built_dataset_s_warnings_are_shown_under_its_step():
    from dyag_cli.pipeline import step_detail

    step = {
        "name": "build",
        "status": "succeeded",
        "result": {
            "dataset_id": "ds-1",
            "split_counts": {"train": 353, "validation": 7, "test": 40},
            "warnings": ["test: no question of type status [x]; …"],
        },
    }
    detail = step_detail(step)
    assert (
        detail.startswith("ds-1: 353 train / 7 validation / 40 test")
        and "⚠ test: no question of type status \\[x]" in detail
    )


def test_dyag_run_export_checks_its_levels_before_anything_starts():
    assert cli.export_levels("") == [] and cli.export_levels(" , ") == []
    assert cli.export_levels("Q8_0") == ["q8_0"] and cli.export_levels("q8_0, f16,q8_0") == ["q8_0", "f16"]
    with pytest.raises(CliError, match="--export: unknown quantization 'q5_0'; choose among f16, q8_0, q4_K_M"):
        cli.export_levels("q8_0,q5_0")
    body = cli.request_body(None, name="", version="", export=["q8_0"], targets=[])
    assert body["export"] == ["q8_0"] and "targets" not in body  # the gateway's defaults, with the GGUF target
    assert "export" not in cli.request_body(None, name="", version="", export=[])


def test_dyag_run_export_is_refused_by_name_without_a_gateway(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from dyag_cli.main import app

    monkeypatch.setenv("DYAG_URL", "http://127.0.0.1:9")  # nothing listens: the refusal comes first
    out = CliRunner().invoke(app, ["run", "--export", "q8_0,q3"])
    assert out.exit_code != 0 and "unknown quantization 'q3'" in out.output, out.output


def test_the_export_step_shows_its_gguf_and_each_level_s_parity_verdict():
    from dyag_cli.pipeline import step_detail

    result = {
        "export_id": "exp-1",
        "gguf": {"name": "model-q8_0.gguf", "size": 145_000_000},
        "parity": [
            {"quantization": "q8_0", "passed": True, "mean_kld": 0.0012, "top1_agreement": 0.99},
            {"quantization": "q4_K_M", "passed": False, "failed": ["mean_kld", "top1_agreement"]},
        ],
    }
    detail = step_detail({"name": "export", "status": "succeeded", "result": result})
    assert detail.startswith("exp-1: model-q8_0.gguf (145 MB); parity q8_0 passed [dim](KL 0.0012, top-1 99.0%)[/]")
    assert "parity q4_K_M failed (mean_kld, top1_agreement)" in detail
    failed = step_detail({"name": "export", "status": "failed", "result": result, "error": "parity gate failed [x]"})
    assert failed == "exp-1 (kept, marked failed): [red]parity gate failed \\[x][/]"
    assert cli.TARGET_NAMES["gguf"] == "GGUF"
