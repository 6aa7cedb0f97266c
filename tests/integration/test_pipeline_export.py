"""`dyag run --export q8_0` through the real stack: the pipeline trains a LoRA model, model-exporter exports it as a
pipeline step (merge, GGUF, q8_0, its parity gate, which an honest q8_0 passes), and the evaluator answers the test
questions with that GGUF through llama.cpp (the gguf target), fetched from the artifact store by digest, beside the
fine-tuned model through transformers; the comparison has both.

Kept small: ten applications, 120 questions, 2 training steps, 3 test questions per target, 24-token answers.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.slow]
pytest.importorskip(
    "ik_llama_cpp",
    reason="ik-llama-cpp-python is not installed: pip install 'dyag-model-exporter[llama]' (bootstrap.py does)",
)

NAME = "export_pipeline"  # a catalog (and collection) of its own
CATALOG = Path(__file__).resolve().parents[2] / "examples" / "catalogs" / "ten-applications.json"


def test_dyag_run_export_compares_the_exported_gguf_with_the_fine_tuned_model(running_stack, tmp_path):
    rs = running_stack
    key = (rs.stack.config.home / "api-key").read_text().strip()
    env = {**os.environ, "DYAG_URL": rs.stack.config.gateway_url, "DYAG_API_KEY": key, "COLUMNS": "220"}
    out = tmp_path / "evaluation"
    argv = [
        *(sys.executable, "-m", "dyag_cli.main", "run", str(CATALOG), "--name", NAME, "--no-start"),
        *("--out", str(out), "--export", "q8_0", "--targets", "fine_tuned,gguf"),
        *("--num-questions", "120", "--max-steps", "2", "--max-eval-questions", "3", "--eval-max-tokens", "24"),
        "--no-similarity",
    ]
    began = time.monotonic()
    cli = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=840)
    output = cli.stdout + cli.stderr
    pipeline_id = next((w for w in output.split() if w.startswith("pipeline-")), "")
    assert pipeline_id, output[-4000:]
    final = rs.http.get(f"/pipelines/{pipeline_id}").json()
    steps = {s["name"]: s for s in final["steps"]}
    assert cli.returncode == 0, (output[-4000:], {n: (s["status"], s["error"]) for n, s in steps.items()})
    assert final["status"] == "succeeded", final["error"]
    print(
        f"\ndyag run --export q8_0: {time.monotonic() - began:.0f} s; "
        + ", ".join(f"{n} {s['seconds']} s" for n, s in steps.items() if s["seconds"] is not None)
    )

    # The export: a job of model-exporter in the pipeline, after the training, on the trained model.
    order = "ingest build validate train export index evaluate_fine_tuned evaluate_gguf report"
    assert list(steps) == order.split() and steps["index"]["status"] == "skipped"  # no RAG target
    export_step, model_id = steps["export"], steps["train"]["result"]["model_id"]
    assert export_step["status"] == "succeeded" and export_step["job_id"].startswith("model-exporter-")
    job = rs.http.get(f"/jobs/{export_step['job_id']}").json()
    assert job["kind"] == "export.gguf" and job["correlation_id"] == final["correlation_id"]
    result = export_step["result"]
    export = rs.http.get(f"/exports/{result['export_id']}").json()
    assert export["model_id"] == model_id and export["status"] == "succeeded" and export["quantizations"] == ["q8_0"]
    assert export["dataset_id"] == steps["build"]["result"]["dataset_id"]
    assert export["timings"]["probes_from"].startswith("the test split of dataset")
    # The parity gate of an honest q8_0 passes: its KL divergence from the HF model, teacher-forced, is small.
    [parity] = result["parity"]
    assert parity["quantization"] == "q8_0" and parity["passed"] is True and parity["failed"] == [], parity
    assert parity["scored_tokens"] > 0 and parity["mean_kld"] < 0.05 and parity["top1_agreement"] > 0.9, parity
    gguf = result["gguf"]
    stored = next(f for f in export["files"] if f["name"] == "model-q8_0.gguf")
    assert gguf["name"] == "model-q8_0.gguf" and gguf["digest"] == stored["artifact"]["digest"]
    assert {f["name"] for f in result["files"]} >= {"model-q8_0.gguf", "Modelfile", "parity.json"}

    # The gguf target: that file, from the artifact store by digest, answered by llama.cpp in the evaluator.
    evaluated = steps["evaluate_gguf"]
    assert evaluated["status"] == "succeeded" and evaluated["result"]["summary"]["questions"] == 3
    run = rs.http.get(f"/evaluations/{evaluated['result']['run_id']}").json()
    assert run["target"]["kind"] == "gguf" and run["target"]["artifact_digest"] == gguf["digest"], run["target"]
    assert run["approach"] == "fine_tuned" and run["model"] == f"gguf:{result['export_id']}/model-q8_0.gguf"
    assert run["target"]["model"] == f"{result['export_id']}/model-q8_0.gguf"
    copy = rs.stack.config.home / "data" / "evaluator" / "gguf" / f"{stored['sha256']}.gguf"
    assert hashlib.sha256(copy.read_bytes()).hexdigest() == stored["sha256"]  # its own copy, not the exporter's bundle
    fine_tuned = steps["evaluate_fine_tuned"]["result"]
    assert fine_tuned["summary"]["questions"] == 3 and fine_tuned["model"] == f"local:{model_id}"
    print(
        f"parity q8_0: mean KLD {parity['mean_kld']}, top-1 {parity['top1_agreement']}, {parity['scored_tokens']} "
        f"tokens; GGUF {gguf['size'] / 1e6:.0f} MB; accuracy fine-tuned {fine_tuned['summary']['accuracy']:.1%} "
        f"({fine_tuned['summary']['average_generation_time_ms']:.0f} ms), GGUF "
        f"{evaluated['result']['summary']['accuracy']:.1%} "
        f"({evaluated['result']['summary']['average_generation_time_ms']:.0f} ms)"
    )

    # The comparison has both, and dyag run printed it with the export's line.
    report = steps["report"]["result"]
    assert report["run_ids"] == [fine_tuned["run_id"], evaluated["result"]["run_id"]] and report["notes"] == []
    assert report["names"] == ["fine-tuned (LoRA)", "exported GGUF (llama.cpp)"]
    for words in (
        "4. export the model (GGUF)",
        f"{result['export_id']}: model-q8_0.gguf",
        "parity q8_0 passed",
        "GGUF",
        "Fine-tuned",
        "Accuracy",
        f"GGUF : gguf:{result['export_id']}/model-q8_0.gguf",
    ):
        assert words in output, (words, output[-4000:])
    assert "exported gguf" in (out / "comparison.html").read_text(encoding="utf-8").lower()
