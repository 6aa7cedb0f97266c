"""python -m dyag_runtime.healthcheck [host:port]: exit 0 when the service's gRPC health check says SERVING, else 1.

For container HEALTHCHECKs. Without an address it checks 127.0.0.1 on the port this process's settings give
(DYAG_GRPC_PORT, else the registry port of DYAG_SERVICE_NAME), the same rule the service itself listens by.
"""

from __future__ import annotations

import sys

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc


def check(address: str, service: str = "", timeout: float = 3.0) -> bool:
    try:
        with grpc.insecure_channel(address) as channel:
            reply = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=service), timeout=timeout
            )
    except grpc.RpcError:
        return False
    return reply.status == health_pb2.HealthCheckResponse.SERVING


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args:
        address = args[0]
    else:
        from dyag_runtime.settings import ServiceSettings

        address = f"127.0.0.1:{ServiceSettings().port()}"
    return 0 if check(address) else 1


if __name__ == "__main__":
    sys.exit(main())
