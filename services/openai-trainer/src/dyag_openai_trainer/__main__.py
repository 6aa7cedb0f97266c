"""python -m dyag_openai_trainer: serve HostedTrainerService (and "train.openai" jobs) over gRPC."""

from __future__ import annotations

from dyag.v1 import hosted_pb2_grpc
from dyag_core.hosted import Scrubber
from dyag_openai_trainer.provider import Provider, install_secret_filter
from dyag_openai_trainer.service import HostedTrainerServicer
from dyag_openai_trainer.settings import OpenAITrainerSettings
from dyag_openai_trainer.store import HostedStore
from dyag_openai_trainer.trainer import TRAIN, HostedTrainer
from dyag_runtime.server import Runtime, run


def main() -> None:
    settings = OpenAITrainerSettings()

    async def setup(rt: Runtime) -> None:
        scrubber = Scrubber([settings.openai_api_key.get_secret_value()])
        install_secret_filter(scrubber)
        store = HostedStore(settings.database("hosted.db"))
        provider = Provider(settings, scrubber)
        trainer = HostedTrainer(rt, settings, store, provider, scrubber)
        rt.on_shutdown.append(trainer.peers.close)
        rt.add_servicer(
            hosted_pb2_grpc.add_HostedTrainerServiceServicer_to_server,
            HostedTrainerServicer(rt, settings, store, provider, trainer),
            "dyag.v1.HostedTrainerService",
        )
        rt.handlers[TRAIN] = trainer.handle  # a coroutine function: the worker awaits it on its loop
        rt.on_shutdown.append(provider.close)

    run(settings, setup)


if __name__ == "__main__":
    main()
