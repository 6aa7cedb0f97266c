"""Settings shared by every service, read from DYAG_* environment variables (pydantic-settings)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

if TYPE_CHECKING:
    from dyag_runtime.database import Database

# Every service of the platform: its Python module and the loopback port `dyag up` gives it.
# Compose and Kubernetes override the addresses (DYAG_SERVICE_ADDRS in the gateway's settings).
SERVICES: dict[str, tuple[str, int]] = {
    "dataset-builder": ("dyag_dataset_builder", 50051),
    "validator": ("dyag_validator", 50052),
    "openai-trainer": ("dyag_openai_trainer", 50053),
    "gpu-lora-trainer": ("dyag_gpu_lora_trainer", 50054),
    "model-exporter": ("dyag_model_exporter", 50055),
    "rag-service": ("dyag_rag_service", 50056),
    "evaluator": ("dyag_evaluator", 50057),
}
DEFAULT_PORTS = {name: port for name, (_, port) in SERVICES.items()}
# gRPC service config of every client channel (see channel_options). Retrying UNAVAILABLE is safe: reads and ingests
# are idempotent, and job submissions carry an idempotency key (dyag_runtime.idempotency).
CHANNEL_SERVICE_CONFIG = json.dumps(
    {
        "loadBalancingConfig": [{"round_robin": {}}],
        "methodConfig": [
            {
                "name": [{}],
                "retryPolicy": {
                    "maxAttempts": 4,
                    "initialBackoff": "0.2s",
                    "maxBackoff": "2s",
                    "backoffMultiplier": 2,
                    "retryableStatusCodes": ["UNAVAILABLE"],
                },
            }
        ],
    }
)


def target_hosts(target: str) -> list[str]:
    """The hosts a gRPC target names: "h:p", "ipv4:h1:p,h2:p", "ipv6:[::1]:p", "dns:///h:p" or "dns://server/h:p"."""
    scheme, _, rest = target.partition(":")
    if scheme not in ("ipv4", "ipv6", "dns"):
        rest = target
    elif scheme == "dns" and rest.startswith("//"):
        rest = rest[2:].split("/", 1)[-1]  # dns://[resolver]/host:port
    return [address.rsplit(":", 1)[0] for address in rest.split(",") if address]


class PlatformSettings(BaseSettings):
    """What the gateway and every service share: NATS, logs, where the other services are."""

    model_config = SettingsConfigDict(env_prefix="DYAG_", env_file=".env", extra="ignore")

    # One server, or a cluster's servers separated by commas (the client fails over between them).
    nats_url: str = Field("nats://127.0.0.1:4222", validation_alias="NATS_URL")
    # How many servers keep each stream and KV bucket: 1 for one server, 3 for a 3-node cluster (R3, which survives
    # the loss of one node). Streams created smaller are raised to it at start-up.
    nats_replicas: int = Field(1, ge=1, le=5)
    log_level: str = "INFO"
    log_json: bool = True
    # Service addresses default to service_host:<the service's port>; override one with
    # DYAG_SERVICE_ADDRS='{"rag-service": "rag:50056"}'. A value is any gRPC target: replicas behind one name
    # ("dns:///rag-headless:50056") or listed ("ipv4:10.0.0.1:50056,10.0.0.2:50056") are called in turn.
    service_host: str = "127.0.0.1"
    service_addrs: dict[str, str] = {}
    grpc_max_message_bytes: int = 64 * 1024 * 1024  # catalogs and datasets travel in one message

    def grpc_options(self) -> list[tuple[str, int]]:
        limit = self.grpc_max_message_bytes
        return [("grpc.max_receive_message_length", limit), ("grpc.max_send_message_length", limit)]

    def channel_options(self) -> list[tuple[str, int | str]]:
        """A client channel's: round robin over every address its target resolves to (the service's replicas), a
        call that found a replica gone (UNAVAILABLE) retried on another, and a restarted replica found again within
        seconds."""
        return [
            *self.grpc_options(),
            ("grpc.service_config", CHANNEL_SERVICE_CONFIG),
            ("grpc.initial_reconnect_backoff_ms", 500),
            ("grpc.max_reconnect_backoff_ms", 5000),
        ]

    def address_of(self, service: str) -> str:
        return self.service_addrs.get(service) or f"{self.service_host}:{SERVICES[service][1]}"


class ServiceSettings(PlatformSettings):
    service_name: str = "dyag"
    grpc_host: str = "127.0.0.1"
    grpc_port: int = 0  # 0: the service's default port
    data_dir: Path = Path(".dyag")
    # A local folder by default; "s3://bucket/prefix" for an S3-compatible store (endpoint below).
    artifact_store: str = ""
    s3_endpoint_url: str | None = None
    # Registries and indexes: SQLite files in data_dir by default; "postgresql://user:password@host:5432/dbname" for
    # one PostgreSQL database that every replica shares (each service in its own schema). A database that is not
    # reachable yet is waited for database_wait_s seconds at start-up.
    database_url: SecretStr = SecretStr("")
    database_wait_s: float = 30.0
    metrics_port: int = 0  # 0: no Prometheus endpoint
    grpc_max_connection_age_s: float = Field(300.0, gt=0)  # see server_options
    # Jobs: a worker that stops heart-beating for job_ack_wait_s loses its job to a restart.
    job_ack_wait_s: float = 30.0
    job_heartbeat_s: float = 5.0
    job_max_attempts: int = 3
    job_concurrency: int = 1

    def server_options(self) -> list[tuple[str, int]]:
        """The gRPC server's: a client connection is asked to move (GOAWAY, calls in flight finish) after
        grpc_max_connection_age_s, so clients resolve the service's replicas again and new ones get calls."""
        return [*self.grpc_options(), ("grpc.max_connection_age_ms", int(self.grpc_max_connection_age_s * 1000))]

    def port(self) -> int:
        return self.grpc_port or DEFAULT_PORTS.get(self.service_name, 50050)

    def artifact_root(self) -> str:
        return self.artifact_store or str(self.data_dir / "artifacts")

    def database(self, file_name: str) -> Database:
        """The service's database: data_dir/file_name (SQLite), or its schema in database_url's PostgreSQL (which
        carries the rows of data_dir/file_name over the first time)."""
        from dyag_runtime.database import Database

        return Database(
            self.database_url.get_secret_value() or self.data_dir / file_name,
            schema=self.service_name.replace("-", "_"),
            wait_s=self.database_wait_s,
            sqlite_before=self.data_dir / file_name,
        )
