"""Local LoRA fine-tuning (the guide's step 5): train (a job), the model registry, and chat with a model."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from pydantic import Field

from dyag.v1 import training_pb2
from dyag_gateway.auth import require_scope
from dyag_gateway.convert import to_json
from dyag_gateway.errors import ApiError
from dyag_gateway.params import Body, Filter, Id, JsonObject, Label, Limit
from dyag_runtime.contracts import lora_config_message

router = APIRouter(tags=["LoRA fine-tuning"])


class TrainBody(Body):
    dataset_id: str = Field("", description="a dataset built by dataset-builder (its train and validation splits)")
    train: str = Field("", description="or the train file's content (OpenAI chat JSONL)")
    validation: str = Field("", description="with train: the validation file's content, if any")
    filename: str = Field("", description="with train: its file name, for the lineage")
    name: Label = Field("", description="a name for the model")
    base_model: str = Field(
        "", description="'default' (SmolLM2-135M-Instruct, offline), a local HF folder, or a hub id on GPU nodes"
    )
    preset: str = Field("", description="small | medium | large | auto (by the dataset's size, the guide's Annex A)")
    epochs: int | None = Field(None, ge=1, le=100)
    init_model_id: str = Field(
        "",
        description="continue training this registered model (lora-…): its adapter is the starting point and its "
        "LoRA shape (r, alpha, dropout, modules) the run's; the base model must be its own (unset: taken from it)",
    )
    config: JsonObject = Field(
        default_factory=dict,
        description="any TrainingConfig option: r, lora_alpha, lora_dropout, "
        "learning_rate, max_steps, batch_size, max_seq_len, packing, seed, precision, eval_steps, checkpoint_steps…",
    )


class ChatMessageBody(Body):
    role: str = Field(pattern="^(system|user|assistant)$")
    content: str


class ChatBody(Body):
    question: str = Field("", description="one question (or give messages, or conversations for a batch)")
    system: str = Field("", description="with question: a system prompt")
    messages: list[ChatMessageBody] = Field(default_factory=list)
    conversations: list[list[ChatMessageBody]] = Field(
        default_factory=list, description="a batch, answered in one call"
    )
    max_tokens: int = Field(0, ge=0, le=2048, description="0: the service's default (128)")
    temperature: float = Field(0.0, ge=0, le=2, description="0: greedy")


@router.post(
    "/train",
    status_code=202,
    dependencies=[Depends(require_scope("write"))],
    summary="Fine-tune a local model with LoRA on a dataset (a job): checkpoints, eval loss, adapter, model card",
)
async def train(body: TrainBody, request: Request) -> JSONResponse:
    if bool(body.dataset_id) == bool(body.train):  # a blank file reaches the job, which says it is empty
        raise ApiError(
            422, "invalid_request", "give either dataset_id (a built dataset) or train (the file's content), not both"
        )
    limit = request.app.state.settings.max_upload_bytes
    size = len(body.train.encode()) + len(body.validation.encode())
    if size > limit:
        raise ApiError(
            413,
            "too_large",
            f"the dataset has {size} bytes; this gateway accepts {limit} (DYAG_MAX_UPLOAD_BYTES): build it "
            "with dataset-builder and pass its dataset_id instead",
        )
    config = dict(body.config)
    for key in ("base_model", "preset", "epochs"):
        value = getattr(body, key)
        if value not in ("", None):
            config[key] = value
    data = training_pb2.LoraTrainingData(filename=body.filename)
    if body.dataset_id:
        data.dataset_id = body.dataset_id
    else:
        data.train_content = body.train.encode()
        data.validation_content = body.validation.encode()
    job = await request.app.state.backends.trainer().Train(
        training_pb2.LoraTrainRequest(
            data=data,
            config=lora_config_message(config),
            name=body.name,
            correlation_id=request.headers.get("x-correlation-id", ""),
            init_model_id=body.init_model_id,
        )
    )
    return JSONResponse(to_json(job), status_code=202)


@router.get("/models", summary="LoRA models in the registry, newest first, with their lineage and metrics")
async def list_models(request: Request, base_model: Filter = "", dataset_id: Filter = "", limit: Limit = 100) -> dict:
    reply = await request.app.state.backends.trainer().ListModels(
        training_pb2.ListLoraModelsRequest(base_model=base_model, dataset_id=dataset_id, limit=limit)
    )
    return {"models": [to_json(m) for m in reply.models]}


@router.get(
    "/models/{model_id}", summary="One LoRA model: base model, adapter artifacts, hyperparameters, metrics, lineage"
)
async def get_model(model_id: Id, request: Request) -> dict:
    return to_json(await request.app.state.backends.trainer().GetModel(training_pb2.GetLoraModelRequest(id=model_id)))


@router.post(
    "/models/{model_id}/chat",
    dependencies=[Depends(require_scope("read"))],
    summary="Ask a fine-tuned model (base + adapter), or a base model ('default'), one question or a batch",
)
async def chat(model_id: Id, body: ChatBody, request: Request) -> dict:
    conversations = [[m.model_dump() for m in c] for c in body.conversations]
    if body.messages:
        conversations.append([m.model_dump() for m in body.messages])
    if body.question.strip():
        conversations.append(
            ([{"role": "system", "content": body.system}] if body.system else [])
            + [{"role": "user", "content": body.question}]
        )
    if not conversations:
        raise ApiError(422, "invalid_request", "give a question, messages, or conversations")
    request_kwargs: dict[str, Any] = {"max_tokens": body.max_tokens, "temperature": body.temperature}
    if model_id.startswith("lora-"):
        request_kwargs["model_id"] = model_id
    else:
        request_kwargs["base_model"] = model_id
    reply = await request.app.state.backends.trainer().Generate(
        training_pb2.GenerateRequest(
            conversations=[
                training_pb2.Conversation(messages=[training_pb2.ChatMessage(**m) for m in c]) for c in conversations
            ],
            **request_kwargs,
        ),
        timeout=request.app.state.settings.grpc_timeout_s * 10,
    )
    answers = [g.text for g in reply.generations]
    return {
        "model": reply.model,
        "answer": answers[-1],
        "answers": answers,
        "latency_ms": reply.latency_ms,
        "generations": [to_json(g) for g in reply.generations],
    }
