"""The fine-tuning provider: the real `openai` client (3.x, over httpx2) pointed at any base URL, with
Dyag's retry policy around every call, and secrets kept out of whatever it says."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import openai

from dyag_core.errors import DyagError
from dyag_core.hosted import (
    PERMANENT,
    RETRY,
    ProviderRefusal,
    RetryPolicy,
    Scrubber,
    classify,
    next_step_for,
    parse_retry_after,
)
from dyag_core.hosted.plan import provider_identity
from dyag_openai_trainer.settings import OpenAITrainerSettings

log = logging.getLogger(__name__)

OnRetry = Callable[[str, int, "int | None", float, str], None]


class NotConfigured(DyagError):
    def __init__(self) -> None:
        super().__init__(
            "hosted_not_configured",
            "no API key for the fine-tuning provider: set DYAG_OPENAI_API_KEY (or OPENAI_API_KEY) in openai-trainer's "
            "environment, and DYAG_OPENAI_BASE_URL for a provider other than OpenAI",
        )


class SecretFilter(logging.Filter):
    """Masks secrets in every log record that reaches a handler (message, extras, traceback)."""

    def __init__(self, scrubber: Scrubber):
        super().__init__()
        self.scrubber = scrubber

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            record.msg = self.scrubber.text(record.getMessage())
            record.args = None
        except Exception:  # a record that cannot be formatted is left for the handler to report
            return True
        for key, value in list(record.__dict__.items()):
            if key not in ("msg", "args", "exc_info", "exc_text") and isinstance(value, (str, dict, list)):
                record.__dict__[key] = self.scrubber.data(value)
        if record.exc_info:
            record.__dict__["exception"] = self.scrubber.text(logging.Formatter().formatException(record.exc_info))
            record.exc_info, record.exc_text = None, None
        return True


def install_secret_filter(scrubber: Scrubber) -> None:
    for handler in logging.getLogger().handlers:
        handler.addFilter(SecretFilter(scrubber))
    for noisy in ("openai", "httpx2", "httpcore2", "httpx", "httpcore"):
        logging.getLogger(noisy).setLevel("WARNING")


class Provider:
    def __init__(self, settings: OpenAITrainerSettings, scrubber: Scrubber):
        self.settings = settings
        self.scrubber = scrubber
        self.base_url = settings.openai_base_url.rstrip("/")
        self.identity = provider_identity(self.base_url)
        self.policy = RetryPolicy(
            base_s=settings.openai_retry_base_s,
            cap_s=settings.openai_retry_cap_s,
            max_attempts=settings.openai_retry_max_attempts,
            max_retry_after_s=settings.openai_max_retry_after_s,
        )
        self._client: openai.AsyncOpenAI | None = None

    @property
    def configured(self) -> bool:
        return bool(self.settings.openai_api_key.get_secret_value())

    @property
    def client(self) -> openai.AsyncOpenAI:
        if not self.configured:
            raise NotConfigured()
        if self._client is None:
            s = self.settings
            common: dict[str, Any] = {
                "api_key": s.openai_api_key.get_secret_value(),
                "max_retries": 0,  # Dyag's policy retries (backoff, jitter, Retry-After, cancel-aware)
                "timeout": s.openai_request_timeout_s,
            }
            if s.openai_api_version:  # Azure OpenAI's classic endpoint: deployments and ?api-version=
                self._client = openai.AsyncAzureOpenAI(
                    azure_endpoint=self.base_url, api_version=s.openai_api_version, **common
                )
            else:
                self._client = openai.AsyncOpenAI(
                    base_url=self.base_url,
                    organization=s.openai_organization or None,
                    project=s.openai_project or None,
                    **common,
                )
        return self._client

    async def close(self) -> None:
        if self._client is not None:
            await self._client.close()

    async def call(
        self,
        what: str,
        fn: Callable[..., Awaitable[Any]],
        *args: Any,
        on_retry: OnRetry | None = None,
        check: Callable[[], None] | None = None,
        **kwargs: Any,
    ) -> Any:
        """fn(*args, **kwargs), retried on 429, 5xx and timeouts; a permanent refusal raises ProviderRefusal.
        `check` is called while waiting to retry (it raises to stop, e.g. on a cancel request)."""
        attempt = 0
        while True:
            attempt += 1
            retry_after: float | None = None
            try:
                return await fn(*args, **kwargs)
            except openai.APIStatusError as exc:
                status, message, code = exc.status_code, _provider_message(exc), str(exc.code or "")
                retry_after = parse_retry_after(dict(exc.response.headers))
            except openai.APITimeoutError:
                status, message, code = (
                    None,
                    f"no answer within {self.settings.openai_request_timeout_s:g} s",
                    "timeout",
                )
            except openai.APIConnectionError as exc:
                status, message, code = None, f"cannot connect: {exc.__cause__ or exc}", "connection_error"
            message = self.scrubber.text(message)
            verdict = classify(status, message, code)
            if self.policy.should_retry(attempt, verdict):
                delay = self.policy.delay(attempt, retry_after)
                if on_retry:
                    on_retry(what, attempt, status, delay, message)
                log.warning(
                    "provider call failed; retrying",
                    extra={
                        "call": what,
                        "attempt": attempt,
                        "status": status,
                        "delay_s": round(delay, 2),
                        "error": message,
                    },
                )
                await pause(delay, check)
                continue
            raise self.refusal(what, status, message, code, verdict, attempt)

    def refusal(
        self, what: str, status: int | None, message: str, code: str, verdict: str, attempts: int
    ) -> ProviderRefusal:
        shown = f"HTTP {status}" if status is not None else (code or "no answer")
        message = message.rstrip(". ")
        advice = next_step_for(status, message, code)
        if verdict == PERMANENT:
            text = f"the provider at {self.identity} refused {what} ({shown}): {message}. What to do next: {advice}"
            code_name = "provider_refused"
        elif verdict == RETRY:
            text = (
                f"the provider at {self.identity} kept failing {what} ({shown} "
                f"after {attempts} attempts): {message}. What to do next: {advice}"
            )
            code_name = "provider_unavailable"
        else:
            text = f"the provider at {self.identity} rejected {what} ({shown}): {message}. What to do next: {advice}"
            code_name = "provider_rejected"
        return ProviderRefusal(
            self.scrubber.text(text), status=status, provider_message=message, next_step=advice, code=code_name
        )


def _provider_message(exc: openai.APIStatusError) -> str:
    body = exc.body
    if isinstance(body, dict):
        message = body.get("message") or body.get("error") or ""
        if isinstance(message, dict):
            message = message.get("message", "")
        if message:
            return str(message)[:500]
    try:
        return (exc.response.text or exc.message)[:500]
    except Exception:
        return str(exc.message)[:500]


async def pause(seconds: float, check: Callable[[], None] | None = None) -> None:
    """Sleep in short slices, calling `check` (which raises on a cancel request) between them."""
    loop = asyncio.get_running_loop()
    end = loop.time() + seconds
    while (left := end - loop.time()) > 0:
        if check:
            check()
        await asyncio.sleep(min(left, 0.2))
    if check:
        check()
