"""Gateway settings (DYAG_* environment variables)."""

from __future__ import annotations

from dyag_runtime.settings import SERVICES, PlatformSettings


class GatewaySettings(PlatformSettings):
    host: str = "127.0.0.1"
    port: int = 8000
    # Keys accepted on every route that changes state, comma-separated. `dyag up` makes one.
    api_keys: str = ""
    max_upload_bytes: int = 50 * 1024 * 1024
    grpc_timeout_s: float = 60.0
    # The services this deployment runs (comma-separated).
    services: str = ",".join(SERVICES)

    def deployed(self) -> list[str]:
        names = [s.strip() for s in self.services.split(",") if s.strip()]
        unknown = [n for n in names if n not in SERVICES]
        if unknown:
            raise ValueError(f"DYAG_SERVICES names unknown service(s) {unknown}; known: {list(SERVICES)}")
        return names

    def keys(self) -> set[str]:
        return {k.strip() for k in self.api_keys.split(",") if k.strip()}
