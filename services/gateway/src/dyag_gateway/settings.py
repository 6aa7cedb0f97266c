"""Gateway settings (DYAG_* environment variables)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from dyag_runtime.settings import SERVICES


class GatewaySettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="DYAG_", env_file=".env", extra="ignore")

    host: str = "127.0.0.1"
    port: int = 8000
    # Keys accepted on every route that changes state, comma-separated. `dyag up` makes one.
    api_keys: str = ""
    nats_url: str = Field("nats://127.0.0.1:4222", validation_alias="NATS_URL")
    max_upload_bytes: int = 50 * 1024 * 1024
    grpc_timeout_s: float = 60.0
    grpc_max_message_bytes: int = 64 * 1024 * 1024
    log_level: str = "INFO"
    log_json: bool = True
    # The services this deployment runs (comma-separated); their addresses default to
    # service_host:<the service's port>; override one with DYAG_SERVICE_ADDRS='{"rag-service": "rag:50056"}'.
    services: str = ",".join(SERVICES)
    service_host: str = "127.0.0.1"
    service_addrs: dict[str, str] = {}

    def deployed(self) -> list[str]:
        names = [s.strip() for s in self.services.split(",") if s.strip()]
        unknown = [n for n in names if n not in SERVICES]
        if unknown:
            raise ValueError(f"DYAG_SERVICES names unknown service(s) {unknown}; known: {list(SERVICES)}")
        return names

    def keys(self) -> set[str]:
        return {k.strip() for k in self.api_keys.split(",") if k.strip()}

    def address_of(self, service: str) -> str:
        return self.service_addrs.get(service) or f"{self.service_host}:{SERVICES[service][1]}"
