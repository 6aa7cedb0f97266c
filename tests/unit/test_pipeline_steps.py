"""The pipeline's parameters and state machine (dyag_gateway.pipeline: model, settings, steps, views), without the
stack."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from dyag_gateway import pipeline as P

CATALOG = {"name": "applications_ia", "version": "v1", "entity_count": 45}


def params(device: str = "cpu", **body) -> dict:
    body.setdefault("catalog", "applications_ia")
    return P.resolve_params(P.PipelineRequest(**body), device=device, device_source="asked", catalog=CATALOG)


def steps_of(device: str = "cpu", **body) -> list[dict]:
    return P.plan_steps(
        params(device, **body), {"status": P.SUCCEEDED, "started_at": 1.0, "ended_at": 1.5, "seconds": 0.5}
    )


def names(steps: list[dict], status: str | None = None) -> list[str]:
    return [s["name"] for s in steps if status is None or s["status"] == status]


def finish(steps: list[dict], *done: str, status: str = P.SUCCEEDED) -> None:
    index = P.by_name(steps)
    for name in done:
        P.start_step(index[name], 10.0)
        P.end_step(index[name], status, 12.0, error="boom" if status == P.FAILED else "")


# --- parameters ------------------------------------------------------------------------------------------------


def test_defaults_follow_the_device():
    cpu, cuda = params("cpu"), params("cuda")
    assert (
        cpu["num_questions"] == cuda["num_questions"] == 1000
    )  # fewer would leave most question types out of the test split
    assert cpu["max_steps"] > 0 and cuda["max_steps"] == 0  # whole epochs on a GPU
    assert cpu["max_eval_questions"] > 0 and cuda["max_eval_questions"] == 0  # every test question on a GPU
    assert cpu["targets"] == ["base", "fine_tuned", "rag"] and cpu["rag_collection"] == "applications_ia"
    assert cpu["device"] == "cpu" and cpu["catalog_version"] == "v1" and "catalog_content" not in cpu


def test_a_short_cpu_budget_gets_a_higher_learning_rate_unless_one_is_given():
    assert params("cpu")["training_config"] == {"learning_rate": P.DEVICE_DEFAULTS["cpu"]["learning_rate"]}
    assert params("cpu", training_config={"learning_rate": 0.0003})["training_config"] == {"learning_rate": 0.0003}
    assert params("cpu", max_steps=0)["training_config"] == {}  # whole epochs: the preset's rate
    assert params("cuda")["training_config"] == {}


def test_given_values_win_over_the_device_defaults():
    p = params("cuda", num_questions=50, max_steps=3, max_eval_questions=7, max_parallel=1, rag_collection="other")
    assert (p["num_questions"], p["max_steps"], p["max_eval_questions"], p["max_parallel"], p["rag_collection"]) == (
        50,
        3,
        7,
        1,
        "other",
    )


def test_the_base_target_answers_with_the_cpu_model_on_a_cpu_and_with_the_trained_models_base_on_a_gpu():
    assert params("cpu")["base_llm"] == "gguf:qwen2.5-0.5b"  # one engine (llama.cpp) for base and RAG's fallback
    assert params("cuda")["base_llm"] == ""  # the fine-tuning's own base model, through gpu-lora-trainer
    assert params("cpu", base_llm="")["base_llm"] == ""  # asked: the base model on a CPU too
    assert params("cuda", base_llm="ollama:qwen2.5")["base_llm"] == "ollama:qwen2.5"


def test_training_config_carries_the_budget_and_the_overrides():
    config = P.training_config(
        params("cpu", epochs=2, max_steps=5, preset="small", training_config={"learning_rate": 0.001})
    )
    assert config == {
        "learning_rate": 0.001,
        "base_model": "default",
        "preset": "small",
        "seed": 42,
        "epochs": 2,
        "max_steps": 5,
    }
    assert "max_steps" not in P.training_config(params("cuda"))


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"catalog": "a", "num_questions": -1}, "num_questions"),
        ({"catalog": "a", "num_questions": 0}, "num_questions"),
        ({"catalog": "a", "max_eval_questions": -3}, "max_eval_questions"),
        ({"catalog": "a", "max_steps": -1}, "max_steps"),
        ({"catalog": "a", "epochs": 0}, "epochs"),
        ({"catalog": "a", "targets": ["base", "gpt5"]}, "targets"),
        ({"catalog": "a", "skip": ["everything"]}, "skip"),
        ({"catalog": "a", "device": "tpu"}, "device"),
        ({"catalog": "a", "unknown_option": 1}, "unknown_option"),
        ({}, "give a catalog"),
        ({"catalog_content": "[]", "catalog_base64": "W10="}, "not both"),
        ({"catalog_content": "[]", "catalog_version": "v1"}, "catalog_version"),
        ({"catalog": "a", "skip": ["train"]}, "model_id"),
        ({"catalog": "a", "model_id": "lora-1"}, "skip=[train]"),
        ({"catalog": "a", "skip": ["train"], "model_id": "ds-1"}, "lora-"),
        ({"catalog": "a", "targets": []}, "targets is empty"),
        ({"catalog": "a", "base_llm": "openai:gpt-4o"}, "base_llm must be gguf:NAME or ollama:NAME"),
        ({"catalog": "a", "base_llm": "gguf:"}, "names no model"),
        ({"catalog": "a", "export": ["q8_0", "q3_K_S"]}, "unknown quantization 'q3_K_S'; choose among"),
        ({"catalog": "a", "targets": ["gguf"]}, "the gguf target evaluates the pipeline's export"),
        ({"catalog": "a", "export": ["q8_0"], "skip": ["train"], "targets": ["rag"]}, "export exports the fine-tuned"),
    ],
)
def test_bad_parameters_are_refused_by_name(body, expected):
    with pytest.raises(ValidationError) as caught:
        P.PipelineRequest(**body)
    assert expected in str(caught.value)


def test_duplicates_in_lists_are_dropped():
    request = P.PipelineRequest(
        catalog="a", targets=["rag", "rag", "base"], skip=["index", "index"], model_id="", rag_collection="c"
    )
    assert request.targets == ["rag", "base"] and request.skip == ["index"]


def test_export_is_off_by_default_and_takes_levels_in_their_canonical_spelling():
    assert params("cpu")["export"] == params("cuda")["export"] == []
    assert P.PipelineRequest(catalog="a", export=["Q8_0"]).export == ["q8_0"]
    assert P.PipelineRequest(catalog="a", export=["q8_0,f16", "q8_0"]).export == ["q8_0", "f16"]  # as the CLI sends
    assert P.PipelineRequest(catalog="a", export=["", " "]).export == []
    # With an export, the default targets add the exported GGUF; targets given are kept as they are.
    assert params(export=["q8_0"])["targets"] == ["base", "fine_tuned", "rag", "gguf"]
    assert params(export=["q8_0"], targets=["fine_tuned"])["targets"] == ["fine_tuned"]
    assert params(export=["q8_0"], skip=["evaluate"])["targets"] == []
    # An existing model can be exported instead of a trained one.
    assert params(export=["q8_0"], skip=["train"], model_id="lora-1", targets=["gguf"])["targets"] == ["gguf"]


def test_an_export_needs_model_exporter():
    from dyag_gateway.pipeline.service import needed_services

    assert "model-exporter" not in needed_services(P.PipelineRequest(catalog="a"))
    assert {"model-exporter", "gpu-lora-trainer"} <= needed_services(
        P.PipelineRequest(catalog="a", export=["q8_0"], skip=["train"], model_id="lora-1", targets=["rag"])
    )


# --- the plan ----------------------------------------------------------------------------------------------------


def test_the_plan_has_the_guide_s_seven_steps():
    steps = steps_of()
    assert names(steps) == [
        "ingest",
        "build",
        "validate",
        "train",
        "index",
        "evaluate_base",
        "evaluate_fine_tuned",
        "evaluate_rag",
        "report",
    ]
    assert [s["number"] for s in steps] == [1, 2, 3, 4, 5, 6, 6, 6, 7]
    index = P.by_name(steps)
    assert index["ingest"]["status"] == P.SUCCEEDED  # done when the pipeline is created
    assert index["evaluate_fine_tuned"]["depends_on"] == ["build", "train"]
    assert index["evaluate_rag"]["depends_on"] == ["build", "index"]
    assert index["report"]["depends_on"] == ["evaluate_base", "evaluate_fine_tuned", "evaluate_rag"]
    assert {s["service"] for s in steps} == {
        "dataset-builder",
        "validator",
        "gpu-lora-trainer",
        "rag-service",
        "evaluator",
    }


def test_skipping_steps():
    steps = steps_of(skip=["validate", "evaluate"])
    index = P.by_name(steps)
    assert index["validate"]["status"] == P.SKIPPED and index["report"]["status"] == P.SKIPPED
    assert not [n for n in names(steps) if n.startswith("evaluate_")]
    assert index["index"]["status"] == P.SKIPPED  # no RAG target: nothing to index for
    finish(steps, "build")
    assert P.ready_steps(steps, 2) == ["train"]  # a skipped step counts as done


def test_an_existing_model_replaces_the_training():
    steps = steps_of(skip=["train"], model_id="lora-abc", targets=["fine_tuned"])
    index = P.by_name(steps)
    assert index["train"]["status"] == P.SKIPPED and index["train"]["result"] == {"model_id": "lora-abc"}
    assert names(steps) == ["ingest", "build", "validate", "train", "index", "evaluate_fine_tuned", "report"]
    finish(steps, "build", "validate")
    assert P.ready_steps(steps, 2) == ["evaluate_fine_tuned"]


def test_an_export_comes_after_the_training_and_the_gguf_target_after_the_export():
    steps = steps_of(export=["q8_0"])
    assert names(steps) == [
        "ingest",
        "build",
        "validate",
        "train",
        "export",
        "index",
        "evaluate_base",
        "evaluate_fine_tuned",
        "evaluate_rag",
        "evaluate_gguf",
        "report",
    ]
    index = P.by_name(steps)
    assert (index["export"]["number"], index["export"]["service"], index["export"]["kind"]) == (
        4,
        "model-exporter",
        "export.gguf",
    )
    assert index["export"]["depends_on"] == ["train"] and index["evaluate_gguf"]["depends_on"] == ["build", "export"]
    assert "evaluate_gguf" in index["report"]["depends_on"]
    assert P.SPECS["export"].optional and P.SPECS["evaluate_gguf"].optional and P.SPECS["report"].partial
    # On a CPU, once the training has ended, the export takes a heavy slot first (the gguf target waits for it).
    finish(steps, "build", "validate", "index", "train")
    assert P.ready_steps(steps, 2, train_alone=True) == ["export", "evaluate_rag"]
    # An export of an existing model (skip train) waits for nothing but that model.
    given = steps_of(export=["q8_0"], skip=["train"], model_id="lora-1", targets=["gguf"])
    finish(given, "build", "validate")
    assert P.ready_steps(given, 2) == ["export"]


# --- the state machine -------------------------------------------------------------------------------------------


def test_order_of_a_whole_run():
    steps = steps_of()
    assert P.ready_steps(steps, 2) == ["build", "index"]  # indexing needs only the catalog: it runs beside the dataset
    P.start_step(P.by_name(steps)["index"], 1.0)
    finish(steps, "build")
    # The evaluations wait until the training (the longest step) has started, though the dataset is there.
    assert P.ready_steps(steps, 2) == ["validate"]
    finish(steps, "validate")
    assert P.ready_steps(steps, 2) == ["train"]
    P.start_step(P.by_name(steps)["train"], 2.0)
    assert P.ready_steps(steps, 3) == []  # the training loads its model: nothing else starts yet
    P.by_name(steps)["train"]["progress"]["fraction"] = 0.1  # its first training step
    assert P.ready_steps(steps, 2) == []  # two heavy steps run: train and index
    assert P.ready_steps(steps, 3) == ["evaluate_base"]  # RAG's evaluation needs the index
    finish(steps, "index")
    assert P.ready_steps(steps, 2) == ["evaluate_rag"]
    assert P.ready_steps(steps, 4) == ["evaluate_rag", "evaluate_base"]
    finish(steps, "train", "evaluate_base", "evaluate_rag")
    assert P.ready_steps(steps, 2) == ["evaluate_fine_tuned"]
    assert P.outcome(steps) is None
    finish(steps, "evaluate_fine_tuned")
    assert P.ready_steps(steps, 2) == ["report"]
    finish(steps, "report")
    assert P.outcome(steps) == P.SUCCEEDED
    assert P.overall_fraction(steps) == 1.0


def test_on_a_cpu_the_training_runs_alone():
    steps = steps_of()
    index = P.by_name(steps)
    assert P.ready_steps(steps, 2, train_alone=True) == ["build", "index"]
    P.start_step(index["index"], 1.0)
    finish(steps, "build", "validate")
    assert P.ready_steps(steps, 2, train_alone=True) == []  # the training waits for the index to end
    finish(steps, "index")
    assert P.ready_steps(steps, 2, train_alone=True) == ["train"]  # and starts alone
    P.start_step(index["train"], 2.0)
    index["train"]["progress"]["fraction"] = 0.5
    assert P.ready_steps(steps, 2, train_alone=True) == []
    assert P.ready_steps(steps, 2, train_alone=False) == ["evaluate_rag"]
    finish(steps, "train")
    # Then two at a time, RAG's first (the longest; its model runs in another process than the other two).
    assert P.ready_steps(steps, 2, train_alone=True) == ["evaluate_rag", "evaluate_base"]


def test_a_failure_stops_new_steps_and_keeps_what_is_done():
    steps = steps_of()
    index = P.by_name(steps)
    finish(steps, "build", "validate")
    P.start_step(index["index"], 1.0)
    P.start_step(index["train"], 2.0)
    index["train"]["job_id"] = "gpu-lora-trainer-1"
    P.end_step(index["train"], P.FAILED, 5.0, error="examples_too_long: example 3 has 300 tokens")
    assert P.ready_steps(steps, 4) == []  # evaluate_base could run, but nothing starts after a failure
    assert P.block_unreachable(steps, 6.0) == ["evaluate_fine_tuned", "report"]  # they need the failed training
    assert P.outcome(steps) is None  # index still runs
    finish(steps, "index")
    assert P.block_unreachable(steps, 7.0) == ["evaluate_base", "evaluate_rag"]
    assert P.outcome(steps) == P.FAILED
    assert P.failed_step(steps) == "train"
    message = P.failure_message(steps)
    assert message.startswith("step 4 train (fine-tune (LoRA), job gpu-lora-trainer-1) failed: examples_too_long")
    assert [index[n]["status"] for n in ("build", "validate", "index")] == [P.SUCCEEDED] * 3
    assert "train failed" in index["evaluate_fine_tuned"]["note"]


def test_a_failed_export_blocks_the_gguf_target_only_and_the_report_compares_the_others():
    steps = steps_of(export=["q8_0"])
    index = P.by_name(steps)
    finish(steps, "build", "validate", "index", "train")
    P.start_step(index["export"], 20.0)
    index["export"]["job_id"] = "model-exporter-1"
    P.end_step(index["export"], P.FAILED, 30.0, error="parity gate failed for q8_0: mean_kld 0.4 > 0.05")
    assert P.block_unreachable(steps, 31.0) == ["evaluate_gguf"]  # it needs the export; the others go on
    assert "export failed" in index["evaluate_gguf"]["note"]
    assert P.ready_steps(steps, 2) == ["evaluate_rag", "evaluate_base"]
    assert P.outcome(steps) is None
    finish(steps, "evaluate_rag", "evaluate_base", "evaluate_fine_tuned")
    assert P.ready_steps(steps, 2) == ["report"]  # without the GGUF's evaluation
    finish(steps, "report")
    # The pipeline still ends failed, naming the export and the exporter's reason (the failed measure).
    assert P.outcome(steps) == P.FAILED and P.failed_step(steps) == "export"
    assert P.failure_message(steps) == (
        "step 4 export (export the model (GGUF), job model-exporter-1) failed: "
        "parity gate failed for q8_0: mean_kld 0.4 > 0.05"
    )


def test_a_failed_training_still_stops_everything_with_an_export_asked():
    steps = steps_of(export=["q8_0"])
    finish(steps, "build", "validate", "index")
    finish(steps, "train", status=P.FAILED)
    P.block_unreachable(steps, 20.0)
    index = P.by_name(steps)
    assert index["export"]["status"] == index["report"]["status"] == P.BLOCKED
    assert P.ready_steps(steps, 4) == [] and P.outcome(steps) == P.FAILED and P.failed_step(steps) == "train"


def test_a_cancelled_step_ends_the_pipeline_cancelled():
    steps = steps_of(skip=["evaluate"])
    finish(steps, "build", "validate")
    finish(steps, "train", status=P.CANCELLED)
    P.block_unreachable(steps, 9.0)
    assert P.outcome(steps) == P.CANCELLED


def test_resume_re_attaches_to_the_running_steps():
    steps = steps_of()
    index = P.by_name(steps)
    finish(steps, "build", "validate")
    P.start_step(index["train"], 3.0)
    index["train"]["job_id"] = "gpu-lora-trainer-9"
    P.start_step(index["index"], 3.0)
    assert P.to_resume(steps) == ["train", "index"]


def test_step_timings_and_progress():
    step = P.new_step("train")
    P.start_step(step, 100.0)
    step["progress"]["fraction"] = 0.5
    assert P.overall_fraction([step]) == 0.5
    P.end_step(step, P.SUCCEEDED, 130.5, result={"model_id": "lora-1"})
    assert (step["seconds"], step["result"], step["progress"]["fraction"]) == (30.5, {"model_id": "lora-1"}, 1.0)


# --- the view -----------------------------------------------------------------------------------------------------


def record(**extra) -> dict:
    p = params()
    p["ingest"] = {"status": P.SUCCEEDED, "started_at": 1000.0, "ended_at": 1000.2, "seconds": 0.2, "result": CATALOG}
    base = {
        "id": "pipeline-1",
        "status": "queued",
        "params": p,
        "created_at": 1000.0,
        "updated_at": 1000.0,
        "correlation_id": "c1",
        "attempts": 0,
        "heartbeat_at": 0.0,
        "result": {},
        "logs": [],
    }
    return base | extra


def test_a_new_pipeline_shows_its_plan():
    v = P.view(record(), now=1010.0)
    assert v["status"] == "queued" and v["elapsed_s"] == 10.0
    assert [s["status"] for s in v["steps"]][:2] == [P.SUCCEEDED, P.PENDING]
    assert v["steps"][0]["started_at"] == "1970-01-01T00:16:40.000Z" and v["report"] is None


def test_a_running_pipeline_whose_gateway_stopped_is_stalled():
    assert P.view(record(status="running", heartbeat_at=1000.0), now=1100.0, stale_after=30)["stalled"] is True
    assert P.view(record(status="running", heartbeat_at=1090.0), now=1100.0, stale_after=30)["stalled"] is False


def test_the_report_links():
    v = P.view(record(status="succeeded", updated_at=1200.0, result={"report": {"recommended": "rag"}}), now=5000.0)
    assert v["elapsed_s"] == 200.0
    assert v["report"]["links"] == {
        "html": "/pipelines/pipeline-1/report.html",
        "md": "/pipelines/pipeline-1/report.md",
        "json": "/pipelines/pipeline-1/report.json",
    }
    assert P.summary_view(record())["steps"]["build"] == P.PENDING


def test_a_pipeline_that_failed_at_its_export_still_links_its_report():
    steps = steps_of(export=["q8_0"])
    finish(steps, "build", "validate", "index", "train", "evaluate_base", "evaluate_fine_tuned", "evaluate_rag")
    finish(steps, "export", status=P.FAILED)
    P.block_unreachable(steps, 20.0)
    P.end_step(P.by_name(steps)["report"], P.SUCCEEDED, 21.0, result={"recommended": "rag", "warnings": ["gguf"]})
    v = P.view(record(status="failed", steps=steps, error="step 4 export …", updated_at=1100.0), now=2000.0)
    assert v["failed_step"] == "export" and v["report"]["recommended"] == "rag"
    assert v["report"]["links"]["html"] == "/pipelines/pipeline-1/report.html"


def test_a_pipeline_that_ended_shows_no_step_running():
    steps = steps_of()
    index = P.by_name(steps)
    finish(steps, "build", "validate")
    P.start_step(index["train"], 1000.0)
    index["train"]["job_id"] = "gpu-lora-trainer-3"
    gave_up = record(
        status="failed", error="interrupted 10 times (service restarts); giving up", steps=steps, updated_at=1100.0
    )
    shown = {s["name"]: s for s in P.view(gave_up, now=2000.0)["steps"]}
    assert shown["train"]["status"] == "interrupted" and "gpu-lora-trainer-3" in shown["train"]["note"]
    assert shown["report"]["status"] == P.BLOCKED and shown["build"]["status"] == P.SUCCEEDED
    assert P.by_name(steps)["train"]["status"] == P.RUNNING  # the record itself is untouched


def test_every_step_is_one_registered_class():
    """The registry: each step name has its spec and the class that runs it; a new class is a new step."""
    from dyag_gateway.pipeline import steps as S

    assert set(P.SPECS) == set(S.STEPS)
    assert [s["name"] for s in P.plan_steps({"targets": ["base", "rag"]})] == [
        "ingest",
        "build",
        "validate",
        "train",
        "index",
        "evaluate_base",
        "evaluate_rag",
        "report",
    ]
    for name, kind in S.STEPS.items():
        assert isinstance(kind, S.JobStep) == bool(P.SPECS[name].kind), name  # a job step names its job kind

    @S.register
    class Audit(S.CallStep):  # what a newcomer writes to add a step
        specs = (P.StepSpec("audit", 8, "audit the run", "gateway", "", (P.REPORT,), False, 1),)

    try:
        planned = [s["name"] for s in P.plan_steps({"targets": ["rag"]})]
        assert planned[-1] == "audit" and P.by_name(P.plan_steps({}))["audit"]["depends_on"] == ["report"]
    finally:  # leave the registry as it was
        S._KINDS.remove(S.STEPS.pop("audit"))
        del P.SPECS["audit"]
