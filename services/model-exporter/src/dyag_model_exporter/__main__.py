"""python -m dyag_model_exporter: serve ExporterService (GGUF exports, the Ollama Modelfile, the parity gate) over
gRPC."""

from __future__ import annotations

import asyncio
import os

# OpenMP threads that wait passively: on a machine whose cores other work also uses, torch's default (spin-waiting)
# made a forward pass of the default model ~7x slower than this (measured: bench/RESULTS.md, model-exporter).
# Set before torch is imported; an explicit OMP_WAIT_POLICY wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from dyag.v1 import export_pb2_grpc
from dyag_model_exporter.service import EXPORT, ExporterServicer, ExportJob, ExportRegistry
from dyag_model_exporter.settings import ExporterSettings
from dyag_runtime.server import Runtime, run


def main() -> None:
    settings = ExporterSettings()

    async def setup(rt: Runtime) -> None:
        registry = ExportRegistry(settings.database("exports.db"))
        rt.add_servicer(
            export_pb2_grpc.add_ExporterServiceServicer_to_server,
            ExporterServicer(rt, settings, registry),
            "dyag.v1.ExporterService",
        )
        rt.handlers[EXPORT] = ExportJob(rt, settings, registry, asyncio.get_running_loop())

    run(settings, setup)


if __name__ == "__main__":
    main()
