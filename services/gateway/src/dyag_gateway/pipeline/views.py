"""What the API shows of a pipeline: GET /pipelines/{id} (every step, its job, timings, artifacts, the report) and
one line of GET /pipelines."""

from __future__ import annotations

import copy
import time
from datetime import UTC, datetime
from typing import Any

from dyag_gateway.pipeline.model import (
    BLOCKED,
    CANCELLED,
    FAILED,
    INTERRUPTED,
    PENDING,
    REPORT,
    RUNNING,
    SUCCEEDED,
    failed_step,
)
from dyag_gateway.pipeline.steps import plan_steps

REPORT_KEYS = ("recommended", "recommendation", "names", "run_ids", "warnings")  # what a pipeline's result keeps


def rfc3339(epoch: float | None) -> str | None:
    if not epoch:
        return None
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def report_links(pipeline_id: str) -> dict[str, str]:
    return {fmt: f"/pipelines/{pipeline_id}/report.{fmt}" for fmt in ("html", "md", "json")}


def view(record: dict[str, Any], *, now: float | None = None, stale_after: float = 60.0) -> dict[str, Any]:
    """A pipeline as GET /pipelines/{id} shows it: each step (status, job, timings, artifacts) and the report."""
    now = now or time.time()
    params = dict(record.get("params") or {})
    steps = copy.deepcopy(record.get("steps") or plan_steps(params, params.get("ingest")))
    for s in steps:
        s["elapsed_s"] = round((s["ended_at"] or now) - s["started_at"], 1) if s["started_at"] else None
        for key in ("started_at", "job_started_at", "ended_at"):
            s[key] = rfc3339(s.get(key))
    status = record["status"]
    ended = status in (SUCCEEDED, FAILED, CANCELLED)
    if ended:  # a pipeline ended by its worker giving up (or cancelled before it started) leaves steps as they were
        for s in steps:
            if s["status"] == RUNNING:
                s.update(
                    status=INTERRUPTED,
                    note=s["note"]
                    or f"the pipeline ended ({status}) while this step ran; "
                    f"its job {s['job_id'] or '(none)'} may have gone on",
                )
            elif s["status"] == PENDING:
                s.update(status=BLOCKED, note=s["note"] or f"not run: the pipeline ended ({status})")
    result = record.get("result") or {}
    report = result.get("report") or record.get("report")
    report_step = next((s for s in steps if s["name"] == REPORT and s["status"] == SUCCEEDED), None)
    if not report and report_step:  # a pipeline that failed at an optional step (the export) compared the others
        report = {k: report_step["result"].get(k) for k in REPORT_KEYS}
    if report:
        report = {**report, "links": report_links(record["id"])}
    return {
        "id": record["id"],
        "name": params.get("name", ""),
        "status": status,
        "catalog": params.get("catalog"),
        "catalog_version": params.get("catalog_version"),
        "correlation_id": record.get("correlation_id", ""),
        "created_at": rfc3339(record.get("created_at")),
        "updated_at": rfc3339(record.get("updated_at")),
        "elapsed_s": round((record["updated_at"] if ended else now) - record["created_at"], 1),
        "attempts": record.get("attempts", 0),
        "cancel_requested": record.get("cancel_requested", False),
        # A running pipeline whose gateway stopped heart-beating: another gateway (or this one, restarted) resumes it.
        "stalled": status == RUNNING and now - float(record.get("heartbeat_at") or now) > stale_after,
        "error": record.get("error", ""),
        "failed_step": failed_step(steps),
        "progress": record.get("progress", {}),
        "params": {k: v for k, v in params.items() if k != "ingest"},  # step 1 shows it
        "steps": steps,
        "report": report,
        "logs": record.get("logs", [])[-20:],
    }


def summary_view(record: dict[str, Any], now: float | None = None) -> dict[str, Any]:
    """One line of GET /pipelines."""
    full = view(record, now=now)
    return {
        k: full[k]
        for k in (
            "id",
            "name",
            "status",
            "catalog",
            "catalog_version",
            "created_at",
            "updated_at",
            "elapsed_s",
            "error",
            "failed_step",
            "progress",
        )
    } | {
        "steps": {s["name"]: s["status"] for s in full["steps"]},
    }
