"""Gateway settings (DYAG_* environment variables)."""

from __future__ import annotations

from pathlib import Path

from dyag_runtime.settings import SERVICES, PlatformSettings


class GatewaySettings(PlatformSettings):
    host: str = "127.0.0.1"
    port: int = 8000
    # Bootstrap keys, comma-separated: admin keys that live in the settings only (other keys: POST /keys).
    api_keys: str = ""
    # A file holding more bootstrap keys, one a line (`dyag up` points it at DYAG_HOME/api-key, so that the key is
    # in no process's environment nor in stack.json).
    api_keys_file: str = ""
    # Requests a minute per key, on each gateway replica (a token bucket in the process; 0: no limit).
    rate_limit_per_min: int = 600
    # Seconds a replica keeps what it read of a key in the KV store: a revocation reaches every replica within it.
    key_cache_s: float = 3.0
    # /docs, /redoc and /openapi.json: served without a key, or not at all (DYAG_DOCS=off).
    docs: bool = True
    max_upload_bytes: int = 50 * 1024 * 1024
    grpc_timeout_s: float = 60.0
    # NATS not answering yet at start-up (a cluster still forming) is waited for this long; then the gateway serves
    # without it (/readyz says so) and pipelines are off until it restarts.
    nats_wait_s: float = 30.0
    # The services this deployment runs (comma-separated).
    services: str = ",".join(SERVICES)

    def deployed(self) -> list[str]:
        names = [s.strip() for s in self.services.split(",") if s.strip()]
        unknown = [n for n in names if n not in SERVICES]
        if unknown:
            raise ValueError(f"DYAG_SERVICES names unknown service(s) {unknown}; known: {list(SERVICES)}")
        return names

    def keys(self) -> set[str]:
        keys = {k.strip() for k in self.api_keys.split(",") if k.strip()}
        if self.api_keys_file:
            try:
                lines = Path(self.api_keys_file).read_text(encoding="utf-8").splitlines()
            except OSError as exc:
                raise ValueError(f"DYAG_API_KEYS_FILE {self.api_keys_file} cannot be read: {exc}") from exc
            keys |= {line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")}
        return keys
