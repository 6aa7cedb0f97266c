"""The guide's Python client for the RAG baseline (step 7.1):

    from dyag.rag_query import RAGQuerySystem
    rag = RAGQuerySystem(collection_name='applications_ia')
    result = rag.query("Quel est le statut de 8-SINP ?", n_chunks=5)
    result['answer'], result['sources'], result['chunks'], result['timings'], result['tokens']

It talks to the gateway (DYAG_URL, else the stack `dyag up` started) with the API key `dyag up` wrote
(DYAG_API_KEY, else ~/.dyag/api-key). The answering model is the service's, unless `model` is given or
LLM_PROVIDER (and LLM_MODEL) are set, as the guide does before its Ollama comparison.
"""

from __future__ import annotations

import os
from typing import Any

from dyag_cli.client import CliError, GatewayClient


class RAGQueryError(RuntimeError):
    """The gateway or the rag-service refused the question; the message says why."""


class RAGQuerySystem:
    def __init__(
        self,
        collection_name: str = "applications_ia",
        *,
        model: str | None = None,
        url: str | None = None,
        api_key: str | None = None,
        timeout: float = 900.0,
    ):
        self.collection_name = collection_name
        self.model = model if model is not None else _model_from_environment()
        self._client = GatewayClient(url, api_key, timeout=timeout)

    def query(self, question: str, n_chunks: int = 5, **options: Any) -> dict[str, Any]:
        """{answer, sources, chunks (with scores), timings, tokens, model, linked_entities, abstained, …}."""
        body = {"question": question, "n_chunks": n_chunks, "model": options.pop("model", self.model or ""), **options}
        return self._call("POST", f"/rag/{self.collection_name}/query", json=body)

    def retrieve(self, question: str, n_chunks: int = 5) -> list[dict[str, Any]]:
        """The chunks only, without asking a model."""
        return self.query(question, n_chunks=n_chunks, retrieve_only=True)["chunks"]

    def stats(self) -> dict[str, Any]:
        return self._call("GET", f"/rag/{self.collection_name}/stats")

    def _call(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        try:
            return self._client.request(method, path, **kwargs)
        except CliError as exc:
            raise RAGQueryError(str(exc)) from None


def _model_from_environment() -> str:
    provider = os.environ.get("LLM_PROVIDER", "").strip()
    if not provider:
        return ""
    return f"{provider}:{os.environ.get('LLM_MODEL', '').strip() or 'default'}"
