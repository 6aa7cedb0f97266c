"""Schemathesis against the live gateway: every operation of /openapi.json, in every phase (examples, coverage,
fuzzing, stateful through the schema's links), with two checks: no 5xx (not_a_server_error) and every 4xx/5xx body
in the project's error shape {"error": {"code", "message"}} (error_shape). Shared by tests/integration/test_fuzz.py
(a bounded run) and bench/bench_fuzz.py (a longer one), which report the same figures.

    report = run(gateway_url, api_key, max_examples=5, seed=1)
    report.failures  # [] when the gateway held
"""

from __future__ import annotations

import json
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import schemathesis
from schemathesis.config import SchemathesisConfig
from schemathesis.engine import Status, events, from_schema

# GET /jobs/events takes no input and streams every job event for as long as the client listens: nothing to fuzz,
# and a request that never ends on its own.
EXCLUDED_PATHS = ("/jobs/events",)


@schemathesis.check
def error_shape(ctx, response, case) -> bool | None:
    """A 4xx or 5xx answer is {"error": {"code": "...", "message": "..."}}, both non-empty strings."""
    if response.status_code < 400:
        return None
    try:
        body = json.loads(response.content)
    except ValueError:
        raise AssertionError(f"a {response.status_code} whose body is not JSON: {response.content[:200]!r}") from None
    error = body.get("error") if isinstance(body, dict) else None
    if not (
        isinstance(error, dict)
        and isinstance(error.get("code"), str)
        and error["code"]
        and isinstance(error.get("message"), str)
        and error["message"]
    ):
        raise AssertionError(f'a {response.status_code} without {{"error": {{"code", "message"}}}}: {body!r:.300}')
    return True


@dataclass
class Failure:
    check: str
    operation: str
    status: int | None
    message: str
    request: str  # method and URL, to replay it


@dataclass
class Report:
    seconds: float = 0.0
    operations: int = 0  # operations of the schema that were tested
    selected: int = 0
    requests: int = 0
    statuses: Counter = field(default_factory=Counter)  # status code -> responses
    by_phase: Counter = field(default_factory=Counter)  # phase -> requests
    scenarios: Counter = field(default_factory=Counter)  # phase -> scenarios
    links: int = 0  # links the schema declares (dyag_gateway.links)
    transitions: int = 0  # links the stateful phase could follow: declared and inferred by schemathesis
    links_followed: set[str] = field(default_factory=set)  # those it followed at least once
    failures: list[Failure] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  # the run's own errors (a check that crashed, a fatal error)
    network_errors: int = 0  # requests that got no answer (a timeout, a reset connection)

    def five_xx(self) -> int:
        return sum(n for status, n in self.statuses.items() if status >= 500)

    def summary(self) -> str:
        statuses = ", ".join(f"{s}: {n}" for s, n in sorted(self.statuses.items()))
        return (
            f"{self.operations}/{self.selected} operations, {self.requests} requests in {self.seconds:.0f} s "
            f"({', '.join(f'{p}: {n}' for p, n in self.by_phase.items())}); statuses {statuses}; "
            f"{len(self.links_followed)}/{self.transitions} links followed ({self.links} declared); "
            f"{len(self.failures)} failures, {self.network_errors} network errors, "
            f"{len(self.errors)} errors"
        )


class _Counting:
    """The run being counted: the engine calls hooks from its worker thread, one run at a time here."""

    report: Report | None = None
    phase = "?"


_counting = _Counting()


@schemathesis.hook
def after_call(context, case, response) -> None:
    report = _counting.report
    if report is not None:
        report.requests += 1
        report.statuses[response.status_code] += 1
        report.by_phase[_counting.phase] += 1


def config(
    gateway_url: str,
    api_key: str,
    *,
    max_examples: int,
    seed: int,
    phases: tuple[str, ...] = ("examples", "coverage", "fuzzing", "stateful"),
    stateful_examples: int | None = None,
    max_steps: int | None = None,
    request_timeout: float = 30.0,
    max_time: float | None = None,
) -> SchemathesisConfig:
    data: dict[str, Any] = {
        "base-url": gateway_url,
        "headers": {"X-API-Key": api_key},
        "seed": seed,
        "workers": 1,
        "request-timeout": request_timeout,
        "max-stream-events": 5,
        "suppress-health-check": ["all"],
        "generation": {"max-examples": max_examples, "no-shrink": True, "deterministic": True},
        "checks": {"enabled": False, "not_a_server_error": {"enabled": True}, "error_shape": {"enabled": True}},
        "phases": {name: {"enabled": name in phases} for name in ("examples", "coverage", "fuzzing", "stateful")},
        "warnings": False,
    }
    # The stateful phase follows the links the schema declares; schemathesis' own guesses (ids matched by name)
    # mostly start from POSTs that random data rarely gets past, and leave the declared ones unvisited.
    data["phases"]["stateful"]["inference"] = {"algorithms": []}
    if stateful_examples:
        data["phases"]["stateful"]["generation"] = {"max-examples": stateful_examples}
    if max_steps:
        data["phases"]["stateful"]["max-steps"] = max_steps
    if max_time:
        data["max-time"] = max_time
    return SchemathesisConfig.from_dict(data)


def run(gateway_url: str, api_key: str, **options: Any) -> Report:
    """One schemathesis run against the gateway; the figures and every failure, never an exception for a finding."""
    cfg = config(gateway_url, api_key, **options)
    schema = schemathesis.openapi.from_url(f"{gateway_url}/openapi.json", config=cfg, headers={"X-API-Key": api_key})
    for path in EXCLUDED_PATHS:
        schema = schema.exclude(path=path)
    report = Report()
    report.links = sum(
        len(response.get("links", {}))
        for item in schema.raw_schema.get("paths", {}).values()
        for operation in item.values()
        if isinstance(operation, dict)
        for response in operation.get("responses", {}).values()
    )
    tested: set[str] = set()
    started = time.monotonic()
    _counting.report = report
    try:
        for event in from_schema(schema).execute():
            if isinstance(event, events.PhaseStarted):
                _counting.phase = event.phase.name.value
                if event.payload is not None:
                    report.transitions = max(report.transitions, event.payload.transitions_total)
            elif isinstance(event, events.ScenarioFinished):
                _record(report, event, tested)
            elif isinstance(event, events.NonFatalError):
                report.errors.append(f"{event.label}: {event.info.message}")
            elif isinstance(event, events.FatalError):
                report.errors.append(f"fatal: {event.exception!r}")
            elif isinstance(event, events.EngineFinished):
                break
    finally:
        _counting.report = None
    report.seconds = time.monotonic() - started
    report.selected = sum(1 for _ in schema.get_all_operations())
    report.operations = len(tested)
    return report


def _record(report: Report, event: events.ScenarioFinished, tested: set[str]) -> None:
    recorder = event.recorder
    report.scenarios[event.phase.value] += 1
    if event.status != Status.SKIP:
        for node in recorder.cases.values():
            tested.add(f"{node.value.operation.method.upper()} {node.value.operation.path}")
            if node.transition is not None and node.is_transition_applied:
                report.links_followed.add(node.transition.id)
    for interaction in recorder.interactions.values():
        if interaction.response is None:
            report.network_errors += 1
    for case_id, checks in recorder.checks.items():
        for check in checks:
            if check.status != Status.FAILURE or check.failure_info is None:
                continue
            interaction = recorder.interactions.get(case_id)
            response = interaction.response if interaction else None
            case = recorder.cases[case_id].value
            failure = check.failure_info.failure
            report.failures.append(
                Failure(
                    check=check.name,
                    operation=f"{case.operation.method.upper()} {case.operation.path}",
                    status=response.status_code if response is not None else None,
                    message=f"{failure.title}: {failure.message}"[:500],
                    request=f"{interaction.request.method} {interaction.request.uri}" if interaction else "",
                )
            )
