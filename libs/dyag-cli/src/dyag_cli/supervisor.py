"""The stack's supervisor: `dyag up` starts it, detached, beside NATS, the services and the gateway
(`python -m dyag_cli.supervisor --home DYAG_HOME`).

Like compose's `restart: unless-stopped`: a process of the stack that exits without `dyag down` asking is started
again with the same command and settings, after 1 s, 2 s, 4 s… (at most `--max-backoff`; back to 1 s once it has
stayed up `--stable` seconds). Each exit and restart is a line of DYAG_HOME/logs/supervisor.log, and the stack's state
(stack.json) keeps, per process, its restarts and last exit code. `dyag down` stops the supervisor first, so an
intended stop is never undone. SIGUSR1 (what `dyag up` sends to a running supervisor) starts what is down at once.

While it runs, the supervisor is the one writer of stack.json. The processes it starts are its children, so it knows
how each one ended; one it adopted (already running when it started) ends with an unknown exit code.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import os
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from dyag_cli.retry import Backoff


class Supervised(Protocol):
    """What the supervisor needs of the stack (dyag_cli.stack.Stack; a fake in the unit tests)."""

    state: dict

    def processes(self) -> dict[str, dict]: ...
    def alive(self, name: str) -> bool: ...
    def exit_code(self, name: str) -> int | None: ...
    def restart(self, name: str) -> None: ...
    def start_missing(self, on_step: Callable[[str], None]) -> list[str]: ...
    def save(self) -> None: ...


def describe_exit(code: int | None) -> str:
    if code is None:
        return "exited (exit code unknown: it was running before this supervisor started)"
    if code < 0:
        with contextlib.suppress(ValueError):
            return f"was killed by {signal.Signals(-code).name}"
        return f"was killed by signal {-code}"
    return f"exited with code {code}"


class Supervisor:
    def __init__(
        self,
        stack: Supervised,
        *,
        backoff: Backoff = Backoff(1.0, 60.0),
        stable_s: float = 60.0,
        log: Callable[[str], None] = print,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.stack, self.backoff, self.stable_s, self.log, self.clock = stack, backoff, stable_s, log, clock
        self.failures: dict[str, int] = {}  # exits in a row, each without `stable_s` of uptime before it
        self.up_since: dict[str, float] = {}
        self.due: dict[str, float] = {}  # when a process that exited is started again
        self.passes = 0
        self.stopping = False
        self.pass_requested = True  # the first pass: start what is down (the whole stack on a fresh start)

    # --- one look at every process ----------------------------------------------------------------------------------
    def tick(self, *, now_for_all: bool = False) -> list[str]:
        """Notice the processes that exited, restart those whose delay has passed (all of them with `now_for_all`);
        returns the ones it started."""
        now = self.clock()
        started, changed = [], False
        for name in list(self.stack.processes()):
            info = self.stack.processes()[name]
            if self.stack.alive(name):
                if self.failures.get(name) and now - self.up_since.get(name, now) >= self.stable_s:
                    self.failures[name] = 0  # it stayed up: the next crash waits the shortest delay again
                continue
            if name not in self.due:
                code = self.stack.exit_code(name)
                info.update(last_exit=code, last_exit_at=time.time())
                delay = 0.0 if now_for_all else self.backoff.delay(self.failures.get(name, 0))
                self.due[name] = now + delay
                when = f"in {delay:g} s" if delay else "now"
                self.log(f"{name} (pid {info.get('pid')}) {describe_exit(code)}; restarting it {when}")
                changed = True
            if now_for_all or now >= self.due[name]:
                if self._restart(name, now):
                    started.append(name)
                changed = True
        if changed:
            self.stack.save()
        return started

    def _restart(self, name: str, now: float) -> bool:
        old = self.stack.processes()[name].get("pid")
        self.failures[name] = self.failures.get(name, 0) + 1
        try:
            self.stack.restart(name)
        except Exception as exc:  # noqa: BLE001 - a spawn that fails is retried later, never the supervisor's end
            delay = self.backoff.delay(self.failures[name])
            self.due[name] = now + delay
            self.log(f"could not start {name} again ({exc}); next try in {delay:g} s")
            return False
        info = self.stack.processes()[name]  # Stack.restart counted it, in the write that gave the new pid
        self.due.pop(name, None)
        self.up_since[name] = now
        self.log(f"restarted {name}: pid {old} → {info['pid']} (restart {info['restarts']})")
        return True

    # --- a pass: start what is down now (the first one, and each `dyag up`) ------------------------------------------
    def run_pass(self) -> None:
        self.pass_requested = False
        record = self.stack.state.setdefault("supervisor", {})
        error = None
        try:
            if not any(self.stack.alive(n) for n in self.stack.processes()):
                self.log("starting the stack")
                started = self.stack.start_missing(lambda step: self.log(step))
            else:
                started = self.tick(now_for_all=True)
        except Exception as exc:  # noqa: BLE001 - said to `dyag up` through the state, then the supervisor ends
            started, error = [], str(exc)
            self.log(f"could not start the stack: {error}")
        self.passes += 1
        record = self.stack.state.setdefault("supervisor", record)
        record.update(pid=os.getpid(), passes=self.passes, started=started, error=error)
        self.stack.state["supervisor"] = record
        if started:
            self.log(f"started: {', '.join(started)}")
        self.stack.save()
        if error and not any(self.stack.alive(n) for n in self.stack.processes()):
            self.stopping = True

    def run(self, poll_s: float = 0.5) -> None:
        self.stack.state["supervisor"] = {"pid": os.getpid(), "started_at": time.time(), "passes": 0}
        self.log(f"supervising {self.stack.state.get('config', {}).get('home', '')} (pid {os.getpid()})")
        while not self.stopping:
            try:
                if self.pass_requested:
                    self.run_pass()
                else:
                    self.tick()
            except Exception as exc:  # noqa: BLE001 - a full disk, a vanished file: said, and the watch goes on
                self.log(f"error while supervising: {type(exc).__name__}: {exc}")
            if not self.stopping:
                time.sleep(poll_s)
        self.log("stopped (its processes are left as they are)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dyag_cli.supervisor", description=__doc__.split("\n\n")[0])
    parser.add_argument("--home", required=True, help="the stack's DYAG_HOME")
    parser.add_argument("--backoff", type=float, default=1.0, help="first delay before a restart, in seconds")
    parser.add_argument("--max-backoff", type=float, default=60.0, help="the longest delay, in seconds")
    parser.add_argument("--stable", type=float, default=60.0, help="uptime after which the delay starts over")
    args = parser.parse_args(argv)

    from dyag_cli.stack import Stack, StackConfig, supervisor_lock_path  # late: `--help` needs no runtime import

    home = Path(args.home)
    lock = open(supervisor_lock_path(home), "a")  # noqa: SIM115 - held for the process's whole life
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        print(f"another supervisor runs for {home}", file=sys.stderr)
        return 1
    stack = Stack(StackConfig(home=home))
    stack.config = StackConfig.from_dict({**stack.state.get("config", {}), "home": str(home)})

    def log(message: str) -> None:
        print(f"{time.strftime('%Y-%m-%d %H:%M:%S')} {message}", flush=True)

    supervisor = Supervisor(stack, backoff=Backoff(args.backoff, args.max_backoff), stable_s=args.stable, log=log)

    def stop(*_) -> None:
        supervisor.stopping = True

    def start_now(*_) -> None:
        supervisor.pass_requested = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGUSR1, start_now)
    supervisor.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
