"""`dyag up`'s supervisor on a real stack of its own (a private NATS, dataset-builder, the gateway, in a temporary
DYAG_HOME; not the shared running_stack, since this test kills processes): a service killed with SIGKILL comes back by
itself, `dyag up` starts only what is down, a command following a job waits through a gateway killed under it, and
after `dyag down` nothing comes back."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import time

import httpx
import pytest

from dyag_cli.stack import Stack, StackConfig, _pid_alive, free_port, port_open
from tests.integration.test_jobs import big_catalog

pytestmark = [pytest.mark.integration, pytest.mark.slow]

NOTICE = "the gateway is restarting; waiting…"


@pytest.fixture
def supervised(tmp_path):
    config = StackConfig(
        home=tmp_path / "home",
        gateway_port=free_port(),
        grpc_ports={"dataset-builder": free_port()},
        services=["dataset-builder"],
        start_nats_always=True,
    )
    stack = Stack(config)
    try:
        assert stack.up(timeout=120) == ["supervisor", "nats", "dataset-builder", "gateway"]
        yield stack
    finally:
        Stack(config).down()


def dyag(stack: Stack, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "dyag_cli.main", *args],
        env=cli_env(stack),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def cli_env(stack: Stack) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DYAG_URL", "DYAG_API_KEY")}
    return {**env, "DYAG_HOME": str(stack.config.home), "COLUMNS": "250"}


def pids(stack: Stack) -> dict[str, int]:
    stack.reload()
    return {name: info["pid"] for name, info in stack.processes().items()}


def wait_until(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := predicate():
            return value
        time.sleep(0.1)
    raise AssertionError(f"{what}: not within {timeout} s")


def restarted(stack: Stack, name: str, old_pid: int, timeout: float = 20) -> dict:
    def new_record():
        stack.reload()
        record = stack.processes()[name]
        return record if record["pid"] != old_pid and stack.alive(name) else None

    return wait_until(new_record, timeout, f"{name} restarted")


def test_the_supervisor_keeps_the_stack_up_and_dyag_up_starts_only_what_is_down(supervised):
    stack = supervised
    home = stack.config.home
    first = pids(stack)
    supervisor = stack.supervisor_pid()
    assert supervisor and set(first) == {"nats", "dataset-builder", "gateway"}
    assert stat.S_IMODE(stack.config.state_file.stat().st_mode) == 0o600

    # kill -9 of a service: the supervisor starts it again after 1 s, counts and logs it.
    os.kill(first["dataset-builder"], signal.SIGKILL)
    record = restarted(stack, "dataset-builder", first["dataset-builder"], timeout=15)
    assert record["restarts"] == 1 and record["last_exit"] == -signal.SIGKILL
    log = (home / "logs" / "supervisor.log").read_text()
    assert f"dataset-builder (pid {first['dataset-builder']}) was killed by SIGKILL; restarting it in 1 s" in log
    assert f"restarted dataset-builder: pid {first['dataset-builder']} → {record['pid']} (restart 1)" in log
    stack.wait_ready(60)

    # `dyag up` on the running stack: nothing started, nothing restarted.
    before = pids(stack)
    up = dyag(stack, "up")
    assert up.returncode == 0, up.stdout + up.stderr
    assert "already running: nothing started, nothing restarted" in up.stdout
    assert pids(stack) == before and stack.supervisor_pid() == supervisor
    status = dyag(stack, "status")
    row = next(line for line in status.stdout.splitlines() if "dataset-builder" in line)
    assert str(before["dataset-builder"]) in row and "running" in row and "SIGKILL" in row
    assert "supervisor" in status.stdout and str(supervisor) in status.stdout

    # Without its supervisor (killed too), a crashed service stays down until `dyag up`, which starts only those two.
    os.kill(supervisor, signal.SIGKILL)
    wait_until(lambda: not _pid_alive(supervisor), 10, "the supervisor gone")
    os.kill(before["dataset-builder"], signal.SIGKILL)
    wait_until(lambda: not _pid_alive(before["dataset-builder"]), 10, "dataset-builder gone")
    up = dyag(stack, "up")
    assert up.returncode == 0, up.stdout + up.stderr
    assert "started: supervisor, dataset-builder; left running as they were: nats, gateway" in up.stdout
    after = pids(stack)
    assert after["nats"] == before["nats"] and after["gateway"] == before["gateway"]
    assert after["dataset-builder"] != before["dataset-builder"]
    record = stack.processes()["dataset-builder"]
    assert record["restarts"] == 2 and record["last_exit"] is None  # it was not that supervisor's child
    supervisor = stack.supervisor_pid()
    assert supervisor and "exit code unknown" in (home / "logs" / "supervisor.log").read_text()

    # kill -9 of the gateway while `dyag jobs watch` follows a job: one notice, then it finishes normally. The
    # builder is paused (SIGSTOP) so that the job is still running whatever the timing.
    key = (home / "api-key").read_text().strip()
    http = httpx.Client(base_url=stack.config.gateway_url, headers={"X-API-Key": key}, timeout=60)
    reply = http.post("/catalogs", files={"file": ("c.json", big_catalog(3000))}, data={"name": "big"})
    assert reply.status_code in (200, 201), reply.text
    job = http.post("/datasets", json={"catalog": "big"}).json()
    wait_until(lambda: http.get(f"/jobs/{job['id']}").json()["status"] == "running", 60, "the build running")
    builder = after["dataset-builder"]
    os.kill(builder, signal.SIGSTOP)
    follower = subprocess.Popen(
        [sys.executable, "-m", "dyag_cli.main", "jobs", "watch", job["id"]],
        env=cli_env(stack),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        time.sleep(3)  # it has started and waits on the gateway
        assert follower.poll() is None
        os.kill(after["gateway"], signal.SIGKILL)
        gateway = restarted(stack, "gateway", after["gateway"], timeout=20)
        wait_until(lambda: port_open("127.0.0.1", stack.config.gateway_port), 60, "the new gateway listening")
        os.kill(builder, signal.SIGCONT)
        output, _ = follower.communicate(timeout=180)
    finally:
        os.kill(builder, signal.SIGCONT)
        if follower.poll() is None:
            follower.kill()
    assert follower.returncode == 0, output
    assert output.count(NOTICE) == 1 and "Traceback" not in output, output
    assert "100%" in output
    assert gateway["restarts"] == 1 and http.get(f"/jobs/{job['id']}").json()["status"] == "succeeded"
    http.close()

    # `dyag down`: the supervisor first, so that nothing comes back.
    last = pids(stack)
    down = dyag(stack, "down")
    assert down.returncode == 0, down.stdout + down.stderr
    assert "stopped: supervisor, gateway, dataset-builder, nats" in down.stdout
    time.sleep(3)  # longer than the first restart's delay
    assert not any(_pid_alive(pid) for pid in [*last.values(), supervisor])
    assert pids(stack) == {} and not port_open("127.0.0.1", stack.config.gateway_port)
    assert (
        (home / "logs" / "supervisor.log").read_text().rstrip().endswith("stopped (its processes are left as they are)")
    )
