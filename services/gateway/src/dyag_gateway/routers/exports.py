"""Exports (the guide's step 5.4): a fine-tuned model as GGUF files and an Ollama model, checked by a parity gate."""

from __future__ import annotations

from typing import Annotated

import grpc
from fastapi import APIRouter, Depends, Path, Request
from fastapi.responses import JSONResponse, PlainTextResponse, StreamingResponse
from pydantic import Field

from dyag.v1 import export_pb2
from dyag_gateway.auth import require_scope
from dyag_gateway.convert import to_json
from dyag_gateway.params import Body, Filter, Id, Label, Limit

router = APIRouter(prefix="/exports", tags=["Exports (GGUF, Ollama)"])


class ProbeBody(Body):
    question: str
    expected_answer: str = ""
    key_facts: list[str] = Field(default_factory=list)
    id: str = ""
    type: str = ""
    negative: bool = False


class ExportBody(Body):
    model_id: str = Field("", description="a LoRA model of the registry (lora-…): its base model, adapter and lineage")
    base_model: str = Field(
        "", description="without model_id: 'default' or a local HF folder (a merged model, or the adapter's base)"
    )
    adapter_dir: str = Field("", description="without model_id: a local LoRA adapter folder to merge into base_model")
    quantizations: list[str] = Field(default_factory=list, description="f16, q8_0, q4_K_M (default: q8_0)")
    ollama_name: str = Field(
        "", description="create this Ollama model (on the exporter's OLLAMA_HOST; else the bundle has the command)"
    )
    ollama_quantization: str = Field("", description="the GGUF the Modelfile uses (default: the first quantization)")
    mode: str = Field(
        "", description="merged (default: FROM the merged GGUF) or adapter (FROM the base GGUF + ADAPTER)"
    )
    system_prompt: str = Field("", description="the Modelfile's SYSTEM (default: the guide's)")
    temperature: float | None = Field(None, ge=0, le=2, description="PARAMETER temperature (default 0.7)")
    top_p: float | None = Field(None, ge=0, le=1, description="PARAMETER top_p (default 0.9)")
    probe_count: int = Field(
        0, ge=0, le=200, description="test-split probes answered greedily, as information (0: the service's default)"
    )
    probes: list[ProbeBody] = Field(
        default_factory=list, description="explicit parity probes, instead of the test split"
    )
    parity_threshold: float | None = Field(None, ge=0, le=1, description="least greedy answer agreement (unset: none)")
    name: Label = Field("", description="a label for the export")


@router.post(
    "",
    status_code=202,
    dependencies=[Depends(require_scope("write"))],
    summary="Export a model (a job): merge, GGUF with llama.cpp, "
    "quantize, Ollama Modelfile, parity gate, ollama create",
)
async def export(body: ExportBody, request: Request) -> JSONResponse:
    message = export_pb2.ExportRequest(
        model_id=body.model_id,
        base_model=body.base_model,
        adapter_dir=body.adapter_dir,
        quantizations=body.quantizations,
        ollama_name=body.ollama_name,
        ollama_quantization=body.ollama_quantization,
        mode=body.mode,
        system_prompt=body.system_prompt,
        probe_count=body.probe_count,
        name=body.name,
        correlation_id=request.headers.get("x-correlation-id", ""),
        probes=[export_pb2.ExportProbe(**p.model_dump()) for p in body.probes],
    )
    for key in ("temperature", "top_p", "parity_threshold"):
        if getattr(body, key) is not None:
            setattr(message, key, getattr(body, key))
    job = await request.app.state.backends.exporter().Export(message)
    return JSONResponse(to_json(job), status_code=202)


@router.get("", summary="Exports, newest first: files, quantization, parity results, lineage")
async def list_exports(request: Request, model_id: Filter = "", limit: Limit = 100) -> dict:
    reply = await request.app.state.backends.exporter().ListExports(
        export_pb2.ListExportsRequest(model_id=model_id, limit=limit)
    )
    return {"exports": [to_json(e) for e in reply.exports]}


@router.get("/{export_id}", summary="One export: its files (sha256, size), parity gate, Ollama model, lineage")
async def get_export(export_id: Id, request: Request) -> dict:
    return to_json(await request.app.state.backends.exporter().GetExport(export_pb2.GetExportRequest(id=export_id)))


@router.get("/{export_id}/modelfile", response_class=PlainTextResponse, summary="The export's Ollama Modelfile")
async def modelfile(export_id: Id, request: Request) -> PlainTextResponse:
    export = await request.app.state.backends.exporter().GetExport(export_pb2.GetExportRequest(id=export_id))
    return PlainTextResponse(export.ollama.modelfile)


@router.get("/{export_id}/files/{name:path}", summary="Download one file of an export (a GGUF, the Modelfile…)")
async def download(
    export_id: Id, name: Annotated[str, Path(min_length=1, max_length=400)], request: Request
) -> StreamingResponse:
    call = request.app.state.backends.exporter().ReadFile(
        export_pb2.ReadExportFileRequest(export_id=export_id, name=name)
    )
    first = await call.read()  # an unknown export or file fails here, before the response starts

    async def chunks():
        message = first
        while message is not grpc.aio.EOF:
            yield message.data
            message = await call.read()

    filename = name.rsplit("/", 1)[-1]
    return StreamingResponse(
        chunks(),
        media_type="application/octet-stream",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )
