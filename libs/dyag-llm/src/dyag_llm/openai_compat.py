"""Any OpenAI-compatible chat server (OpenAI, vLLM, llama.cpp's server, LM Studio…), as a ChatModel.

    open_chat_model("openai:gpt-4o-mini")   # OPENAI_BASE_URL (default https://api.openai.com/v1), OPENAI_API_KEY

Rate limits (429) and server errors (5xx) are retried with a short back-off, honouring Retry-After.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import httpx

from dyag_llm.base import ChatModel, ChatResult, LLMError, Messages

RETRIES = 3
BATCH_CONCURRENCY = 4


class OpenAICompatibleChatModel:
    def __init__(
        self, model: str, base_url: str = "https://api.openai.com/v1", api_key: str = "", timeout: float = 120.0
    ):
        if not model:
            raise LLMError("invalid_model", "name the model, e.g. openai:gpt-4o-mini")
        self.model = model
        self.name = f"openai:{model}"
        self.base_url = base_url.rstrip("/")
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._http = httpx.Client(base_url=self.base_url, headers=headers, timeout=httpx.Timeout(timeout, connect=10.0))

    def chat(self, messages: Messages, *, max_tokens: int = 256, temperature: float = 0.0) -> ChatResult:
        body = {"model": self.model, "messages": messages, "max_tokens": max_tokens, "temperature": temperature}
        start = time.perf_counter()
        for attempt in range(RETRIES + 1):
            try:
                reply = self._http.post("/chat/completions", json=body)
            except httpx.TimeoutException:
                raise LLMError("unavailable", f"{self.base_url} did not answer in time (model {self.model})") from None
            except httpx.HTTPError as exc:
                raise LLMError(
                    "unavailable",
                    f"cannot reach the OpenAI-compatible server at {self.base_url} ({exc}); check OPENAI_BASE_URL",
                ) from None
            if (reply.status_code == 429 or reply.status_code >= 500) and attempt < RETRIES:
                time.sleep(_retry_after(reply, attempt))
                continue
            break
        if reply.status_code in (401, 403):
            raise LLMError(
                "llm_unauthorized",
                f"{self.base_url} refused the API key (HTTP {reply.status_code}): set OPENAI_API_KEY",
            )
        if reply.status_code == 404:
            raise LLMError(
                "model_not_found",
                f"{self.base_url} has no model {self.model!r} (or no /chat/completions): {_error_text(reply)}",
            )
        if reply.status_code == 429:
            raise LLMError("llm_rate_limited", f"{self.base_url} is rate-limiting this key: {_error_text(reply)}")
        if reply.status_code >= 400:
            raise LLMError("llm_error", f"{self.base_url} answered HTTP {reply.status_code}: {_error_text(reply)}")
        try:
            data = reply.json()
            text = data["choices"][0]["message"]["content"] or ""
        except (ValueError, KeyError, IndexError, TypeError):
            raise LLMError(
                "llm_error", f"{self.base_url} sent a reply that is not a chat completion: {reply.text[:200]}"
            ) from None
        usage = data.get("usage") or {}
        return ChatResult(
            text=text.strip(),
            model=self.name,
            prompt_tokens=int(usage.get("prompt_tokens") or 0),
            completion_tokens=int(usage.get("completion_tokens") or 0),
            latency_ms=(time.perf_counter() - start) * 1000,
        )

    def chat_batch(self, batch: list[Messages], *, max_tokens: int = 256, temperature: float = 0.0) -> list[ChatResult]:
        return run_batch(self, batch, max_tokens=max_tokens, temperature=temperature)

    def close(self) -> None:
        self._http.close()


def run_batch(model: ChatModel, batch: list[Messages], *, max_tokens: int, temperature: float) -> list[ChatResult]:
    """A remote server answers several requests at once: a few in flight, results in order."""
    if len(batch) <= 1:
        return [model.chat(m, max_tokens=max_tokens, temperature=temperature) for m in batch]
    with ThreadPoolExecutor(max_workers=min(BATCH_CONCURRENCY, len(batch))) as pool:
        return list(pool.map(lambda m: model.chat(m, max_tokens=max_tokens, temperature=temperature), batch))


def _retry_after(reply: httpx.Response, attempt: int) -> float:
    try:
        return min(float(reply.headers.get("retry-after", "")), 30.0)
    except ValueError:
        return min(0.5 * 2**attempt, 8.0)


def _error_text(reply: httpx.Response) -> str:
    try:
        error = reply.json().get("error")
        if isinstance(error, dict):
            return str(error.get("message") or error)[:300]
        return str(error or reply.text)[:300]
    except ValueError:
        return reply.text[:300]
