"""Validation: check a dataset file or a built dataset, and clean it (the guide's step 3)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response
from starlette.datastructures import UploadFile

from dyag.v1 import validation_pb2
from dyag_core import nesting
from dyag_gateway.auth import require_scope
from dyag_gateway.convert import to_json
from dyag_gateway.errors import ApiError
from dyag_gateway.params import INT32_MAX, Id
from dyag_gateway.routers.catalogs import read_limited

router = APIRouter(tags=["validation"])

_FORM_DOC = {
    "requestBody": {
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {
                        "file": {
                            "type": "string",
                            "format": "binary",
                            "description": "the dataset (OpenAI chat JSONL, Alpaca, ShareGPT…)",
                        },
                        "manifest": {
                            "type": "string",
                            "format": "binary",
                            "description": "its provenance sidecar, if any",
                        },
                        "catalog": {"type": "string", "description": "coverage against this catalog"},
                        "model": {"type": "string", "description": "target model (tokenizer, limits, price)"},
                        "bound_for_hosted_api": {"type": "boolean"},
                        "allow_pii": {"type": "boolean"},
                        "epochs": {"type": "integer"},
                        "split_counts": {
                            "type": "string",
                            "description": 'JSON, e.g. {"train": 800, "validation": 100, "test": 100}',
                        },
                    },
                }
            }
        }
    }
}


def _flag(value) -> bool:
    return str(value or "").lower() in ("1", "true", "yes", "on")


MAX_EPOCHS = 1000


def _epochs(value) -> int:
    text = str(value or "0").strip()
    if not (text.isascii() and text.isdigit() and len(text) <= 4 and int(text) <= MAX_EPOCHS):
        raise ApiError(
            422, "invalid_epochs", f"epochs must be a whole number from 0 to {MAX_EPOCHS}, not {str(value)[:40]!r}"
        )
    return int(text)


def _split_counts(value) -> dict[str, int]:
    example = '{"train": 800, "validation": 100, "test": 100}'
    try:
        counts = nesting.loads(str(value or "{}"))
    except ValueError as exc:  # not JSON, or nested past the limit
        raise ApiError(422, "invalid_split_counts", f"split_counts must be JSON like {example}: {exc}") from None
    if not isinstance(counts, dict) or not all(
        type(v) is int and 0 <= v <= INT32_MAX and len(k) <= 100 for k, v in counts.items()
    ):
        raise ApiError(
            422,
            "invalid_split_counts",
            f"split_counts must map split names to whole numbers from 0 to {INT32_MAX:,}, like {example}",
        )
    return counts


async def _source_from_form(request: Request) -> tuple[validation_pb2.DatasetSource, dict]:
    limit = request.app.state.settings.max_upload_bytes
    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        raise ApiError(415, "multipart_expected", "send the dataset as the multipart field 'file'")
    form = await request.form(max_part_size=limit + 1)
    upload = form.get("file")
    if not isinstance(upload, UploadFile):
        raise ApiError(422, "missing_file", "send the dataset as the multipart field 'file'")
    source = validation_pb2.DatasetSource(
        content=await read_limited(upload, limit), filename=upload.filename or "dataset.jsonl"
    )
    manifest = form.get("manifest")
    if isinstance(manifest, UploadFile):
        source.manifest_content = await read_limited(manifest, limit)
    return source, dict(form)


@router.post(
    "/validate",
    dependencies=[Depends(require_scope("write"))],
    openapi_extra=_FORM_DOC,
    summary="Check a dataset file: format by line, tokens, duplicates, coverage, PII, cost, checklist",
)
async def validate_file(request: Request) -> dict:
    source, form = await _source_from_form(request)
    epochs = _epochs(form.get("epochs"))
    split_counts = _split_counts(form.get("split_counts"))
    result = await request.app.state.backends.validator().Validate(
        validation_pb2.ValidateRequest(
            dataset=source,
            split_counts=split_counts,
            catalog=str(form.get("catalog") or ""),
            catalog_version=str(form.get("catalog_version") or ""),
            model=str(form.get("model") or ""),
            bound_for_hosted_api=_flag(form.get("bound_for_hosted_api")),
            allow_pii=_flag(form.get("allow_pii")),
            epochs=epochs,
            correlation_id=request.headers.get("x-correlation-id", ""),
        ),
        timeout=request.app.state.settings.grpc_timeout_s * 5,
    )
    return to_json(result)


@router.post(
    "/datasets/{dataset_id}/validate",
    dependencies=[Depends(require_scope("write"))],
    summary="Check a built dataset's split against its catalog",
)
async def validate_dataset(
    dataset_id: Id,
    request: Request,
    split: str = Query("train", max_length=40),
    model: str = Query("", max_length=200),
    bound_for_hosted_api: bool = False,
) -> dict:
    backends = request.app.state.backends
    dataset = await backends.dataset(dataset_id)
    result = await backends.validate_split(
        dataset,
        split,
        model=model,
        bound_for_hosted_api=bound_for_hosted_api,
        timeout_s=request.app.state.settings.grpc_timeout_s * 5,
    )
    return to_json(result)


@router.post(
    "/clean",
    dependencies=[Depends(require_scope("write"))],
    openapi_extra=_FORM_DOC,
    summary="A cleaned copy of a dataset: duplicates dropped and/or personal data redacted",
)
async def clean_file(
    request: Request,
    duplicates: bool = True,
    near_duplicates: bool = False,
    redact_pii: bool = False,
    catalog: str = Query("", max_length=200),
) -> Response:
    source, _ = await _source_from_form(request)
    result = await request.app.state.backends.validator().Clean(
        validation_pb2.CleanRequest(
            dataset=source,
            drop_duplicates=duplicates,
            drop_near_duplicates=near_duplicates,
            redact_pii=redact_pii,
            catalog=catalog,
        ),
        timeout=request.app.state.settings.grpc_timeout_s * 5,
    )
    headers = {
        "X-Dyag-Kept": str(result.kept),
        "X-Dyag-Dropped": str(result.dropped),
        "X-Dyag-Redacted": str(result.redacted),
    }
    return Response(result.content, media_type="application/jsonl", headers=headers)
