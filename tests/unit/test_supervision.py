"""Supervision without processes: the supervisor's backoff and restarts (a fake stack and clock), and how a command
that follows a job or a pipeline waits through a gateway restart (httpx.MockTransport: it fails, then recovers)."""

from __future__ import annotations

import json
import signal
import stat

import httpx
import pytest
from typer.testing import CliRunner

from dyag_cli import client as client_module
from dyag_cli import pipeline as cli_pipeline
from dyag_cli.client import CliError, GatewayClient, GatewayUnavailable, Waiter
from dyag_cli.main import app
from dyag_cli.retry import Backoff
from dyag_cli.stack import Stack, StackConfig
from dyag_cli.supervisor import Supervisor, describe_exit


# --- backoff --------------------------------------------------------------------------------------------------------
def test_backoff_doubles_from_its_base_up_to_its_cap():
    assert [Backoff(1.0, 60.0).delay(n) for n in range(8)] == [1, 2, 4, 8, 16, 32, 60, 60]
    assert Backoff(0.5, 8.0).delay(100) == 8.0 and Backoff(1.0, 60.0).delay(-1) == 1.0


# --- the supervisor -------------------------------------------------------------------------------------------------
class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class FakeStack:
    """Processes as records; `die` ends one with an exit code, `restart` gives it a new pid."""

    def __init__(self, *names: str) -> None:
        self.state: dict = {"processes": {n: {"pid": 100 + i} for i, n in enumerate(names)}}
        self.running = set(names)
        self.codes: dict[str, int | None] = {}
        self.next_pid = 500
        self.saves = 0
        self.fail_restarts = 0
        self.missing_started: list[str] = []

    def processes(self) -> dict[str, dict]:
        return self.state["processes"]

    def alive(self, name: str) -> bool:
        return name in self.running

    def exit_code(self, name: str) -> int | None:
        return self.codes.get(name)

    def die(self, name: str, code: int | None = -9) -> None:
        self.running.discard(name)
        self.codes[name] = code

    def restart(self, name: str) -> None:
        if self.fail_restarts:
            self.fail_restarts -= 1
            raise OSError("no such file: python")
        self.next_pid += 1
        record = self.processes()[name]
        record.update(pid=self.next_pid, restarts=record.get("restarts", 0) + 1)
        self.running.add(name)
        self.codes.pop(name, None)

    def start_missing(self, on_step) -> list[str]:
        for name in self.processes():
            self.restart(name)
        self.missing_started = list(self.processes())
        return list(self.processes())

    def save(self) -> None:
        self.saves += 1


def supervisor(stack: FakeStack, clock: Clock, lines: list[str], **kw) -> Supervisor:
    return Supervisor(stack, backoff=Backoff(1.0, 60.0), stable_s=30.0, log=lines.append, clock=clock, **kw)


def test_a_crashed_process_is_restarted_after_the_backoff_and_counted():
    stack, clock, lines = FakeStack("nats", "evaluator", "gateway"), Clock(), []
    sup = supervisor(stack, clock, lines)
    assert sup.tick() == [] and stack.saves == 0  # all up: nothing to do, nothing written
    stack.die("evaluator", -signal.SIGKILL)
    assert sup.tick() == []  # noticed, not yet restarted
    record = stack.processes()["evaluator"]
    assert record["last_exit"] == -9 and record["pid"] == 101
    assert lines[-1] == "evaluator (pid 101) was killed by SIGKILL; restarting it in 1 s"
    clock.now += 0.5
    assert sup.tick() == []
    clock.now += 0.5
    assert sup.tick() == ["evaluator"]
    assert record["pid"] == 501 and record["restarts"] == 1
    assert lines[-1] == "restarted evaluator: pid 101 → 501 (restart 1)"
    assert stack.saves == 2  # the exit, then the restart: each in the state at once
    assert {"nats", "gateway"} <= stack.running and stack.processes()["nats"]["pid"] == 100  # the others untouched


def test_the_delay_doubles_while_it_keeps_crashing_and_starts_over_once_it_stayed_up():
    stack, clock, lines = FakeStack("gateway"), Clock(), []
    sup = supervisor(stack, clock, lines)
    delays = []
    for _ in range(4):
        stack.die("gateway", 1)
        sup.tick()
        start = clock.now
        while not sup.tick():
            clock.now += 0.25
        delays.append(clock.now - start)
    assert delays == [1.0, 2.0, 4.0, 8.0]
    assert stack.processes()["gateway"]["restarts"] == 4 and stack.processes()["gateway"]["last_exit"] == 1
    clock.now += 30.0
    sup.tick()  # up for `stable_s`: forgiven
    stack.die("gateway", 0)
    sup.tick()
    assert lines[-1].endswith("exited with code 0; restarting it in 1 s")  # unless-stopped: a clean exit too


def test_a_restart_that_fails_is_tried_again_later():
    stack, clock, lines = FakeStack("rag-service"), Clock(), []
    sup = supervisor(stack, clock, lines)
    stack.die("rag-service")
    stack.fail_restarts = 1
    sup.tick()
    clock.now += 1.0
    assert sup.tick() == []
    assert lines[-1] == "could not start rag-service again (no such file: python); next try in 2 s"
    clock.now += 2.0
    assert sup.tick() == ["rag-service"] and stack.alive("rag-service")


def test_a_pass_starts_what_is_down_at_once_and_the_whole_stack_when_nothing_runs():
    stack, clock, lines = FakeStack("nats", "validator", "gateway"), Clock(), []
    sup = supervisor(stack, clock, lines)
    stack.die("validator", None)  # adopted: how it ended is unknown
    sup.run_pass()  # what `dyag up` asks for (SIGUSR1): no waiting for the backoff
    record = stack.state["supervisor"]
    assert record["started"] == ["validator"] and record["passes"] == 1 and record["error"] is None
    assert stack.processes()["validator"]["last_exit"] is None
    assert "exit code unknown" in lines[0]
    for name in list(stack.running):
        stack.die(name)
    sup.run_pass()
    assert stack.missing_started == ["nats", "validator", "gateway"]
    assert stack.state["supervisor"]["passes"] == 2 and not sup.stopping


def test_a_first_pass_that_cannot_start_the_stack_says_why_and_ends_the_supervisor():
    stack, clock, lines = FakeStack(), Clock(), []

    def refuse(on_step):
        raise RuntimeError("ports already in use for gateway (port 8000)")

    stack.start_missing = refuse
    sup = supervisor(stack, clock, lines)
    sup.run_pass()
    assert stack.state["supervisor"]["error"] == "ports already in use for gateway (port 8000)"
    assert sup.stopping


def test_exits_are_described_for_the_log():
    assert describe_exit(-15) == "was killed by SIGTERM"
    assert describe_exit(3) == "exited with code 3"


# --- the stack's state ----------------------------------------------------------------------------------------------
def test_the_state_is_written_atomically_for_its_owner_only_with_the_config_the_supervisor_needs(tmp_path):
    config = StackConfig(home=tmp_path, gateway_port=8123, services=["validator"], extra_env={"A": "1"})
    stack = Stack(config)
    stack.state = {"processes": {}, "config": config.as_dict()}
    stack.save()
    assert stat.S_IMODE(config.state_file.stat().st_mode) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["stack.json"]  # no temporary file left
    again = StackConfig.from_dict(json.loads(config.state_file.read_text())["config"])
    assert again == config
    assert Stack(config).supervisor_pid() is None


# --- followers: a fake gateway that fails, then recovers ------------------------------------------------------------
def sse(*jobs: dict, end: bool = False) -> bytes:
    text = "".join(f"event: job\ndata: {json.dumps(j)}\n\n" for j in jobs)
    if end:
        text += f"event: end\ndata: {json.dumps({'id': jobs[-1]['id'], 'status': jobs[-1]['status']})}\n\n"
    return text.encode()


class CutStream(httpx.SyncByteStream):
    """A response body that stops in the middle: the gateway was killed."""

    def __init__(self, first: bytes):
        self.first = first

    def __iter__(self):
        yield self.first
        raise httpx.RemoteProtocolError("peer closed connection without sending complete message body")


def job(status: str, fraction: float) -> dict:
    return {"id": "dataset-builder-1", "status": status, "progress": {"fraction": fraction, "step": status}}


def scripted(replies: list) -> httpx.MockTransport:
    """Each request gets the next reply: an exception is raised, a Response returned."""
    seen: list[str] = []

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request.url.path)
        reply = replies.pop(0)
        if isinstance(reply, BaseException):
            raise reply
        return reply

    transport = httpx.MockTransport(handle)
    transport.seen = seen  # type: ignore[attr-defined]
    return transport


def gateway(transport: httpx.MockTransport) -> GatewayClient:
    client = GatewayClient("http://gateway.test", api_key="k")
    client.http = httpx.Client(base_url=client.url, transport=transport, headers={"X-API-Key": "k"})
    return client


def waiter(notices: list[str], sleeps: list[float], limit_s: float = 300.0) -> Waiter:
    clock = Clock()

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        clock.now += seconds

    return Waiter(notices.append, limit_s=limit_s, sleep=sleep, clock=clock, hint="dyag jobs watch dataset-builder-1")


def unavailable_json(message: str) -> dict:
    return {"error": {"code": "unavailable", "message": message}}


def test_a_job_s_follower_waits_through_a_gateway_restart_and_carries_on():
    transport = scripted(
        [
            httpx.Response(200, content=sse(job("running", 0.2)), headers={"content-type": "text/event-stream"}),
            httpx.Response(200, stream=CutStream(sse(job("running", 0.4)))),  # killed while streaming
            httpx.ConnectError("connection refused"),  # down
            httpx.ConnectError("connection refused"),
            httpx.Response(503, json=unavailable_json("a service behind the gateway is unavailable: dataset-builder")),
            httpx.ReadTimeout("timed out"),
            httpx.Response(200, content=sse(job("running", 0.8), job("succeeded", 1.0), end=True)),
        ]
    )
    notices, sleeps = [], []
    seen = [
        j["progress"]["fraction"] for j in gateway(transport).watch_job("dataset-builder-1", waiter(notices, sleeps))
    ]
    assert seen == [0.2, 0.4, 0.8, 1.0]
    # The first stream ended before the job did: opened again at once, nothing said. The second was cut, and the
    # gateway refused the next try: one notice, then retries with backoff (refused, 503, a timeout) until it answers.
    assert notices == ["the gateway is restarting; waiting…"]
    assert sleeps == [0.5, 1.0, 2.0, 4.0]
    assert transport.seen == ["/jobs/dataset-builder-1/events"] * 7


def test_a_follower_gives_up_after_its_limit_with_what_to_do_next():
    transport = scripted([httpx.ConnectError("connection refused")] * 20)
    notices, sleeps = [], []
    with pytest.raises(CliError) as caught:
        list(gateway(transport).watch_job("dataset-builder-1", waiter(notices, sleeps, limit_s=10.0)))
    assert "does not answer" in str(caught.value) and "no answer for 10 s" in str(caught.value)
    assert str(caught.value).endswith("; dyag jobs watch dataset-builder-1")
    assert notices == ["the gateway is restarting; waiting…"] and sum(sleeps) == 10.0


def test_a_refusal_is_not_waited_for():
    transport = scripted([httpx.Response(404, json={"error": {"code": "not_found", "message": "no job x"}})])
    with pytest.raises(CliError, match=r"no job x \[not_found, HTTP 404\]") as caught:
        list(gateway(transport).watch_job("x", waiter([], [])))
    assert not isinstance(caught.value, GatewayUnavailable)


def test_a_cut_connection_is_an_error_to_show_never_a_traceback():
    transport = scripted([httpx.RemoteProtocolError("Server disconnected without sending a response.")])
    with pytest.raises(GatewayUnavailable, match="cut the connection .GET /catalogs: RemoteProtocolError"):
        gateway(transport).get("/catalogs")


def test_the_pipeline_display_waits_through_a_gateway_restart():
    def pipeline(status: str) -> httpx.Response:
        return httpx.Response(200, json={"id": "pipeline-1", "status": status, "params": {}, "steps": []})

    transport = scripted(
        [
            pipeline("running"),
            httpx.ConnectError("connection refused"),
            httpx.ConnectError("connection refused"),
            httpx.Response(502, text="Bad Gateway"),
            pipeline("running"),
            httpx.RemoteProtocolError("Server disconnected without sending a response."),
            httpx.Response(503, json=unavailable_json("a service behind the gateway is unavailable: evaluator")),
            pipeline("succeeded"),
        ]
    )
    notices, sleeps = [], []
    final = cli_pipeline.follow(gateway(transport), "pipeline-1", poll=0, waiter=waiter(notices, sleeps))
    assert final["status"] == "succeeded"
    assert notices == ["the gateway is restarting; waiting…", "a service behind the gateway is restarting; waiting…"]
    assert sleeps == [0.5, 1.0, 0.5]


# --- the commands: one notice line, never a traceback; Ctrl-C stops following ----------------------------------------
@pytest.fixture
def fake_gateway(monkeypatch):
    """The CLI's httpx clients all talk to a scripted transport."""
    replies: list = []
    real = httpx.Client

    def client(*args, **kwargs):
        return real(*args, transport=scripted(replies), **kwargs)

    monkeypatch.setattr(client_module.httpx, "Client", client)
    monkeypatch.setattr("dyag_cli.retry.time.sleep", lambda _: None)
    monkeypatch.setenv("DYAG_URL", "http://gateway.test")
    monkeypatch.setenv("DYAG_API_KEY", "k")
    monkeypatch.setenv("COLUMNS", "200")
    return replies


def test_dyag_jobs_watch_prints_one_notice_and_finishes(fake_gateway):
    fake_gateway += [
        httpx.Response(200, stream=CutStream(sse(job("running", 0.5)))),
        httpx.RemoteProtocolError("Server disconnected without sending a response."),
        httpx.Response(503, json=unavailable_json("dataset-builder is unavailable")),
        httpx.Response(200, content=sse(job("succeeded", 1.0), end=True)),
    ]
    result = CliRunner().invoke(app, ["jobs", "watch", "dataset-builder-1"])
    assert result.exit_code == 0, result.output
    assert result.output.count("the gateway is restarting; waiting…") == 1
    assert "Traceback" not in result.output and result.exception is None


def test_dyag_jobs_watch_gives_up_with_one_line(fake_gateway, monkeypatch):
    monkeypatch.setenv("DYAG_FOLLOW_WAIT_S", "0")
    fake_gateway += [httpx.ConnectError("connection refused")] * 2
    result = CliRunner().invoke(app, ["jobs", "watch", "dataset-builder-1"])
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit)
    assert "the job goes on: dyag jobs watch dataset-builder-1" in result.output


def test_ctrl_c_stops_following_and_says_how_to_find_the_job_again(fake_gateway):
    fake_gateway += [KeyboardInterrupt()]
    result = CliRunner().invoke(app, ["jobs", "watch", "dataset-builder-1"])
    assert result.exit_code == 130
    assert "stopped following; the job goes on: dyag jobs watch dataset-builder-1" in result.output


def test_a_post_sent_again_through_a_gateway_restart_keeps_its_idempotency_key():
    keys: list[str] = []
    replies: list = [
        httpx.ReadError("connection reset"),  # the gateway died with the request: it may have been created
        httpx.ConnectError("connection refused"),
        httpx.Response(202, json={"id": "pipeline-1", "status": "queued"}),
    ]

    def handle(request: httpx.Request) -> httpx.Response:
        keys.append(request.headers["idempotency-key"])
        reply = replies.pop(0)
        if isinstance(reply, BaseException):
            raise reply
        return reply

    client = gateway(httpx.MockTransport(handle))
    notices, sleeps = [], []
    created = client.post_idempotent("/pipelines", waiter(notices, sleeps), json={"catalog": "c"})
    assert created["id"] == "pipeline-1"
    assert len(keys) == 3 and len(set(keys)) == 1 and len(keys[0]) == 32  # one key, sent each time
    assert len(notices) == 1  # one line while the gateway is away
