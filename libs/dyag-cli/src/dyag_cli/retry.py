"""Waiting through a restart: the supervisor's backoff between restarts of a crashed process, and the followers'
wait while the gateway (or a service behind it) comes back."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass


class CliError(Exception):
    """An error to show the user as is, then exit non-zero."""


class GatewayUnavailable(CliError):
    """The gateway, or a service behind it, cannot answer now (stopped, restarting, its connection cut): a command
    that follows a job or a pipeline waits for it; any other command fails with this message."""

    def __init__(self, message: str, notice: str = "the gateway is restarting; waiting…"):
        super().__init__(message)
        self.notice = notice


@dataclass(frozen=True)
class Backoff:
    """Exponential delays: base, 2·base, 4·base… never above cap."""

    base: float = 1.0
    cap: float = 60.0

    def delay(self, attempt: int) -> float:
        """The delay before try number `attempt` (0: the first)."""
        return min(self.cap, self.base * 2 ** min(max(attempt, 0), 32))


class Waiter:
    """How a follower lives through an outage of the gateway: the first failure is tried again at once (a stream the
    gateway closed, a connection dropped), then one notice line, retries with backoff (`wait` sleeps before each), and
    after `limit_s` without an answer the outage becomes the follower's error. `recovered` ends an outage: the next one
    gets its own notice."""

    def __init__(
        self,
        notice: Callable[[str], None] = lambda _: None,
        *,
        limit_s: float = 300.0,
        backoff: Backoff = Backoff(0.5, 8.0),
        hint: str = "",
        sleep: Callable[[float], None] | None = None,
        clock: Callable[[], float] | None = None,
    ):
        self.notice, self.limit_s, self.backoff, self.hint = notice, limit_s, backoff, hint
        self.sleep, self.clock = sleep or time.sleep, clock or time.monotonic
        self.since: float | None = None
        self.attempt = 0
        self.told = False

    def wait(self, exc: GatewayUnavailable) -> None:
        """After a failed try: say so once, sleep before the next one; raise CliError once the limit has passed."""
        now = self.clock()
        if self.since is None:  # a new outage: tried again at once, and said only when that fails too
            self.since, self.attempt, self.told = now, 0, False
            return
        if not self.told:
            self.notice(exc.notice)  # the notice of the failure that lasts: the gateway's, or a service's (503)
            self.told = True
        waited = now - self.since
        if waited >= self.limit_s:
            hint = f"; {self.hint}" if self.hint else ""
            raise CliError(f"{exc} (no answer for {waited:.0f} s){hint}") from None
        self.sleep(min(self.backoff.delay(self.attempt), self.limit_s - waited))
        self.attempt += 1

    def recovered(self) -> None:
        self.since = None
        self.attempt = 0
