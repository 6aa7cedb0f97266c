"""python -m dyag_gpu_lora_trainer: serve TrainerService (LoRA training jobs, models, generation) over gRPC."""

from __future__ import annotations

import asyncio

from dyag.v1 import training_pb2_grpc
from dyag_gpu_lora_trainer.registry import ModelRegistry
from dyag_gpu_lora_trainer.service import TRAIN, LoraTrainingJob, TrainerServicer
from dyag_gpu_lora_trainer.settings import TrainerSettings
from dyag_runtime.server import Runtime, run


def main() -> None:
    settings = TrainerSettings()

    async def setup(rt: Runtime) -> None:
        registry = ModelRegistry(settings.database("models.db"))
        rt.add_servicer(
            training_pb2_grpc.add_TrainerServiceServicer_to_server,
            TrainerServicer(rt, settings, registry),
            "dyag.v1.TrainerService",
        )
        rt.handlers[TRAIN] = LoraTrainingJob(rt, settings, registry, asyncio.get_running_loop())

    run(settings, setup)


if __name__ == "__main__":
    main()
