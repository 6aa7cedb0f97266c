"""An evaluation run's record as the servicer and the job both write it: its fields when the run is asked for
(`run_record`), its reports' file names and media types, and the time stamps."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from dyag_evaluator.targets import TargetSpec

REPORTS = {
    "json": ("results.json", "application/json"),
    "md": ("report.md", "text/markdown; charset=utf-8"),
    "html": ("report.html", "text/html; charset=utf-8"),
}


def now_rfc3339() -> str:
    """Now, as the run records write their times (UTC, to the second)."""
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def run_record(run_id: str, params: dict[str, Any], correlation_id: str) -> dict[str, Any]:
    """A new run's record (EvaluationRun's fields), from its job's parameters."""
    target, test_set, catalog = params["target"], params["test_set"], params.get("catalog") or {}
    spec = TargetSpec.from_dict(target)
    return {
        "id": run_id,
        "name": params["name"],
        "status": "queued",
        "target": target,
        "approach": spec.approach or spec.default_approach(),
        "model": spec.model_spec(),
        "test_set": test_set.get("filename", ""),
        "dataset_id": test_set.get("dataset_id", ""),
        "catalog": catalog.get("name", ""),
        "catalog_version": catalog.get("version", ""),
        "artifacts": [],
        "error": "",
        "created_at": now_rfc3339(),
        "finished_at": "",
        "correlation_id": correlation_id,
        "labels": dict(params.get("labels") or {}),
        "params": params,
    }
