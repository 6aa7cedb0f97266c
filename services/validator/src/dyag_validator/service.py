"""ValidatorService: validate and clean datasets; validates every built dataset (dataset.built)."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import tempfile
from pathlib import Path
from typing import Any

from google.protobuf import json_format, struct_pb2

from dyag.v1 import events_pb2, validation_pb2, validation_pb2_grpc
from dyag_core.catalog import Catalog
from dyag_core.errors import DyagError
from dyag_core.validation import clean, redact, validate_dataset
from dyag_runtime.peers import Peers, dataset_files
from dyag_runtime.server import Runtime
from dyag_validator.settings import ValidatorSettings

log = logging.getLogger(__name__)


class Validator:
    """Turns requests into files on disk, runs dyag_core.validation, and shapes the replies."""

    def __init__(self, rt: Runtime, settings: ValidatorSettings):
        self.rt, self.settings = rt, settings
        self.peers = Peers(settings)

    async def catalog(self, name: str, version: str) -> Catalog | None:
        return await self.peers.load_catalog(name, version, self.rt.artifacts) if name else None

    def materialise(self, source: validation_pb2.DatasetSource, folder: Path) -> tuple[Path, Path | None]:
        """The dataset (and its manifest) as files, whether sent inline or as artifacts."""
        name = Path(source.filename or "dataset.jsonl").name
        path = folder / name
        if source.WhichOneof("source") == "artifact":
            self.rt.artifacts.fetch(source.artifact.digest, path)
        elif source.WhichOneof("source") == "content":
            path.write_bytes(source.content)
        else:
            raise DyagError("missing_dataset", "send the dataset's content or an artifact reference")
        manifest = folder / (name + ".manifest.jsonl")
        if source.WhichOneof("manifest") == "manifest_artifact":
            self.rt.artifacts.fetch(source.manifest_artifact.digest, manifest)
        elif source.WhichOneof("manifest") == "manifest_content":
            manifest.write_bytes(source.manifest_content)
        else:
            manifest = None
        return path, manifest

    async def validate(self, request: validation_pb2.ValidateRequest) -> validation_pb2.ValidationResult:
        catalog = await self.catalog(request.catalog, request.catalog_version)
        with tempfile.TemporaryDirectory(prefix="dyag-validate-") as tmp:
            path, manifest = await asyncio.to_thread(self.materialise, request.dataset, Path(tmp))
            report = await asyncio.to_thread(
                validate_dataset,
                path,
                catalog=catalog,
                model=request.model or self.settings.default_model,
                manifest=manifest,
                bound_for_hosted_api=request.bound_for_hosted_api,
                allow_pii=request.allow_pii,
                split=dict(request.split_counts) or None,
                epochs=request.epochs or None,
            )
        report = dataclasses.replace(report, source=request.dataset.filename or path.name)  # not the temp folder
        body = struct_pb2.Struct()
        body.update(json.loads(json.dumps(report.to_dict(), default=str)))
        return validation_pb2.ValidationResult(
            verdict=report.verdict, blocking=report.blocking, report=body, text=report.render()
        )

    async def clean(self, request: validation_pb2.CleanRequest) -> validation_pb2.CleanResult:
        catalog = await self.catalog(request.catalog, "")
        with tempfile.TemporaryDirectory(prefix="dyag-clean-") as tmp:
            path, _ = await asyncio.to_thread(self.materialise, request.dataset, Path(tmp))
            notes: list[str] = []
            kept = dropped = redacted = 0
            if request.drop_duplicates or request.drop_near_duplicates:
                out = Path(tmp) / "deduplicated.jsonl"
                result = await asyncio.to_thread(clean, path, out, near=request.drop_near_duplicates)
                path, kept, dropped = out, result.kept, len(result.removed_lines)
                notes.append(f"{dropped} line(s) dropped (duplicates or broken): {result.removed_lines[:20]}")
            if request.redact_pii:
                out = Path(tmp) / "redacted.jsonl"
                result = await asyncio.to_thread(redact, path, out, catalog=catalog)
                path, redacted = out, len(result.lines_changed)
                notes.append(f"personal data redacted on {redacted} line(s)")
            content = path.read_bytes()
        kept = kept or content.count(b"\n")
        return validation_pb2.CleanResult(content=content, kept=kept, dropped=dropped, redacted=redacted, notes=notes)


class ValidatorServicer(validation_pb2_grpc.ValidatorServiceServicer):
    def __init__(self, validator: Validator):
        self.validator = validator

    async def Validate(self, request, context):
        return await self.validator.validate(request)

    async def Clean(self, request, context):
        return await self.validator.clean(request)


class ValidateBuiltDatasets:
    """dataset.built -> validate its train split against its catalog -> dataset.validated."""

    def __init__(self, rt: Runtime, validator: Validator):
        self.rt, self.validator = rt, validator

    async def __call__(self, envelope) -> None:
        event: events_pb2.DatasetBuilt = envelope.data
        files = dataset_files(event)
        train, manifest = files.get(("train", "openai")), files.get(("train", "manifest"))
        if train is None:
            return
        request = validation_pb2.ValidateRequest(
            dataset=validation_pb2.DatasetSource(artifact=train, filename="train.jsonl", manifest_artifact=manifest),
            catalog=event.catalog,
            catalog_version=event.catalog_version,
            split_counts={k: v for k, v in event.split_counts.items() if k != "all"},
        )
        result = await self.validator.validate(request)
        summary = _summary(json_format.MessageToDict(result.report))
        body = struct_pb2.Struct()
        body.update(summary)
        await self.rt.bus.emit(
            "dataset.validated",
            events_pb2.DatasetValidated(
                dataset_id=event.dataset_id, verdict=result.verdict, blocking=result.blocking, summary=body
            ),
            subject=event.dataset_id,
            correlation_id=envelope.correlation_id,
        )


def _summary(report: dict[str, Any]) -> dict[str, Any]:
    keep = (
        "lines",
        "examples",
        "invalid_lines",
        "issue_counts",
        "type_counts",
        "tokens",
        "checklist",
        "cost",
        "verdict",
    )
    summary = {k: v for k, v in report.items() if k in keep}
    if report.get("coverage"):
        summary["coverage"] = {k: v for k, v in report["coverage"].items() if not isinstance(v, list)}
    return summary
