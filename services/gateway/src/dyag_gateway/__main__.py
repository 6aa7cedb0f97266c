"""python -m dyag_gateway: serve the HTTP API with uvicorn."""

from __future__ import annotations

import uvicorn

from dyag_gateway.app import create_app
from dyag_gateway.settings import GatewaySettings
from dyag_runtime.logs import configure_logging


def main() -> None:
    settings = GatewaySettings()
    configure_logging("gateway", settings.log_level, settings.log_json)
    uvicorn.run(create_app(settings), host=settings.host, port=settings.port, log_config=None, access_log=False)


if __name__ == "__main__":
    main()
