"""What every step of a "train.openai" job shares: the services it works with, the job's log (scrubbed of
secrets), the provider's retries in that log, and the `training.progress` event."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from dyag.v1 import hosted_pb2
from dyag_core.hosted import Scrubber
from dyag_openai_trainer.provider import Provider
from dyag_openai_trainer.settings import OpenAITrainerSettings
from dyag_openai_trainer.store import HostedStore
from dyag_runtime.jobs import JobContext
from dyag_runtime.peers import Peers
from dyag_runtime.server import Runtime

log = logging.getLogger(__name__)

METRICS = ("train_loss", "valid_loss", "train_mean_token_accuracy", "valid_mean_token_accuracy", "full_valid_loss")


def now_rfc3339(ts: float | None = None) -> str:
    moment = datetime.fromtimestamp(ts, UTC) if ts else datetime.now(UTC)
    return moment.isoformat(timespec="seconds").replace("+00:00", "Z")


class Step:
    """One part of the job (gates, upload, monitor, register), with the services and helpers they all use."""

    def __init__(
        self,
        rt: Runtime,
        settings: OpenAITrainerSettings,
        store: HostedStore,
        provider: Provider,
        scrubber: Scrubber,
        peers: Peers,
    ):
        self.rt, self.settings, self.store, self.provider, self.scrubber = rt, settings, store, provider, scrubber
        self.peers = peers

    def log(self, ctx: JobContext, message: str, level: str = "info") -> None:
        ctx.log(self.scrubber.text(message), level)

    def retry_logger(self, ctx: JobContext):
        def on_retry(what: str, attempt: int, status: int | None, delay: float, message: str) -> None:
            shown = f"HTTP {status}" if status else "no answer"
            self.log(ctx, f"{what}: {shown} ({message}); retry {attempt} in {delay:.1f} s", "warning")

        return on_retry

    async def emit_progress(
        self,
        ctx: JobContext,
        remote_id: str,
        status: str,
        *,
        message: str = "",
        level: str = "info",
        event_id: str = "",
        created_at: str = "",
        **metrics: float,
    ) -> None:
        payload = hosted_pb2.TrainingProgress(
            job_id=ctx.job_id,
            remote_job_id=remote_id,
            status=status,
            message=self.scrubber.text(message or ""),
            level=level or "info",
            remote_event_id=event_id,
            created_at=created_at or now_rfc3339(),
            step=int(metrics.get("step", 0)),
            total_steps=int(metrics.get("total_steps", 0)),
        )
        for name in METRICS:
            if metrics.get(name) is not None:
                setattr(payload, name, float(metrics[name]))
        try:
            await self.rt.bus.emit("training.progress", payload, subject=ctx.job_id, correlation_id=ctx.correlation_id)
        except Exception as exc:  # the job record stays the truth; an event lost to a NATS hiccup is not fatal
            log.warning("could not publish training.progress", extra={"job_id": ctx.job_id, "error": str(exc)})
