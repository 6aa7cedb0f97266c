"""Answering with a catalog's champion, whatever its kind, with the sources it answered from.

The champion is read from the store on every question, so a promotion or a rollback takes effect on the next
question, without a restart."""

from __future__ import annotations

import time
from typing import Any

from google.protobuf import json_format

from dyag.v1 import rag_pb2, training_pb2
from dyag_core.dataset.model import DEFAULT_SYSTEM_PROMPT
from dyag_core.retraining import ModelRef
from dyag_gateway.errors import ApiError
from dyag_runtime.peers import Peers

ANSWERABLE = ("rag", "grounded", "lora", "hybrid")


async def ask(
    peers: Peers, catalog: str, champion: ModelRef | None, question: str, *, timeout: float
) -> dict[str, Any]:
    """The champion's answer: {answer, champion, sources, citations, model, seconds}. `citations`: the (record,
    field) pairs a grounded or RAG answer states; a fine-tuned model cites nothing (its sources: the retrieval, for a
    hybrid)."""
    if champion is None:
        raise ApiError(
            409,
            "no_champion",
            f"catalog {catalog} has no champion yet: run a retraining (POST "
            f"/catalogs/{catalog}/retrain) or set one (POST /catalogs/{catalog}/champion)",
        )
    if champion.kind not in ANSWERABLE:
        raise ApiError(
            501,
            "unsupported_champion",
            f"the champion of {catalog} is {champion.label}; answering "
            f"with a {champion.kind} target is not served here yet ({', '.join(ANSWERABLE)} are)",
        )
    began = time.monotonic()
    if champion.kind in ("rag", "grounded"):
        mode = "grounded" if champion.kind == "grounded" else champion.details.get("rag_mode", "auto")
        reply = await peers.call(
            "rag-service",
            f"the question to {champion.label}",
            lambda: peers.rag().Query(
                rag_pb2.QueryRequest(
                    collection=champion.id, question=question, mode=mode, model=champion.details.get("llm", "")
                ),
                timeout=timeout,
            ),
        )
        sources = [json_format.MessageToDict(s, preserving_proto_field_name=True) for s in reply.sources]
        citations = [json_format.MessageToDict(c, preserving_proto_field_name=True) for c in reply.citations]
        answer, model = reply.answer, reply.model or mode
    else:
        context, citations = "", []
        if champion.kind == "hybrid":  # RAG's retrieval as context, the LoRA model answers
            retrieved = await peers.call(
                "rag-service",
                "the retrieval",
                lambda: peers.rag().Query(
                    rag_pb2.QueryRequest(
                        collection=champion.details.get("collection", catalog), question=question, retrieve_only=True
                    ),
                    timeout=timeout,
                ),
            )
            context = "\n\n".join(c.text for c in retrieved.chunks)
            sources = [json_format.MessageToDict(s, preserving_proto_field_name=True) for s in retrieved.sources]
        else:
            sources = []
        model_id = champion.details.get("model_id", champion.id) if champion.kind == "hybrid" else champion.id
        content = f"Contexte :\n{context}\n\nQuestion : {question}" if context else question
        conversation = training_pb2.Conversation(
            messages=[
                training_pb2.ChatMessage(role="system", content=DEFAULT_SYSTEM_PROMPT),  # the dataset's
                training_pb2.ChatMessage(role="user", content=content),
            ]
        )
        generate = training_pb2.GenerateRequest(model_id=model_id, conversations=[conversation])
        reply = await peers.call(
            "gpu-lora-trainer",
            f"the question to {champion.label}",
            lambda: peers.trainer().Generate(generate, timeout=timeout),
            "model_not_found",
        )
        answer, model = (reply.generations[0].text if reply.generations else ""), reply.model
    return {
        "catalog": catalog,
        "question": question,
        "answer": answer.strip(),
        "champion": champion.to_dict(),
        "model": model,
        "sources": sources,
        "citations": citations,
        "seconds": round(time.monotonic() - began, 3),
    }
