"""The gateway: FastAPI in front of the gRPC services, with API keys, job streams and readiness."""
