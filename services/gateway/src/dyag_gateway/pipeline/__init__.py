"""The whole workflow as one pipeline (the guide's steps 1 to 7), run by the gateway.

    model.py     the state machine: statuses, the `Step` record, which steps start, block or end a pipeline (pure)
    settings.py  DYAG_* settings, the request (POST /pipelines) and its parameters resolved for the trainer's device
    steps.py     one class per step (submit/collect or call), in a registry keyed by step name
    runner.py    the loop: start ready steps, watch their jobs, resume after a restart, cancel
    views.py     what GET /pipelines and GET /pipelines/{id} show
    service.py   the facade the routes use: create, read, list, cancel, reports

A pipeline is a job of the gateway (kind "pipeline.run") whose record lives in the JetStream KV bucket "pipelines";
each step is a job of the service that owns it (or one RPC), linked to the pipeline by its correlation id.
"""

from dyag_gateway.pipeline.model import (
    BLOCKED,
    BUILD,
    CANCELLED,
    EXPORT,
    EXPORT_TARGETS,
    FAILED,
    FINE_TUNED_TARGETS,
    INDEX,
    INGEST,
    INTERRUPTED,
    PENDING,
    PIPELINE_KIND,
    PIPELINE_SERVICE,
    RAG_TARGETS,
    REPORT,
    RUNNING,
    SKIPPED,
    SPECS,
    SUCCEEDED,
    TARGET_LABELS,
    TARGETS,
    TRAIN,
    VALIDATE,
    Step,
    StepSpec,
    block_unreachable,
    by_name,
    end_step,
    eval_step,
    failed_step,
    failure_message,
    new_step,
    outcome,
    overall_fraction,
    ready_steps,
    start_step,
    to_resume,
)
from dyag_gateway.pipeline.runner import PipelineFailed, PipelineRunner  # noqa: E402 - after the registry is filled
from dyag_gateway.pipeline.service import Pipelines, trainer_device
from dyag_gateway.pipeline.settings import (
    DEVICE_DEFAULTS,
    PipelineRequest,
    PipelineSettings,
    resolve_params,
    training_config,
)
from dyag_gateway.pipeline.steps import STEPS, plan_steps
from dyag_gateway.pipeline.views import summary_view, view

__all__ = [
    "BLOCKED",
    "BUILD",
    "CANCELLED",
    "DEVICE_DEFAULTS",
    "EXPORT",
    "EXPORT_TARGETS",
    "FAILED",
    "INDEX",
    "INGEST",
    "INTERRUPTED",
    "PENDING",
    "PIPELINE_KIND",
    "PIPELINE_SERVICE",
    "FINE_TUNED_TARGETS",
    "RAG_TARGETS",
    "REPORT",
    "RUNNING",
    "SKIPPED",
    "SPECS",
    "STEPS",
    "SUCCEEDED",
    "TARGETS",
    "TARGET_LABELS",
    "TRAIN",
    "VALIDATE",
    "PipelineFailed",
    "PipelineRequest",
    "PipelineRunner",
    "PipelineSettings",
    "Pipelines",
    "Step",
    "StepSpec",
    "block_unreachable",
    "by_name",
    "end_step",
    "eval_step",
    "failed_step",
    "failure_message",
    "new_step",
    "outcome",
    "overall_fraction",
    "plan_steps",
    "ready_steps",
    "resolve_params",
    "start_step",
    "summary_view",
    "to_resume",
    "trainer_device",
    "training_config",
    "view",
]
