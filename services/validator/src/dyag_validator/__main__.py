"""python -m dyag_validator: serve ValidatorService over gRPC, and validate every built dataset."""

from __future__ import annotations

from dyag.v1 import events_pb2, validation_pb2_grpc
from dyag_runtime.server import Runtime, run
from dyag_validator.service import ValidateBuiltDatasets, Validator, ValidatorServicer
from dyag_validator.settings import ValidatorSettings


def main() -> None:
    settings = ValidatorSettings()

    async def setup(rt: Runtime) -> None:
        validator = Validator(rt, settings)
        rt.on_shutdown.append(validator.peers.close)
        rt.add_servicer(
            validation_pb2_grpc.add_ValidatorServiceServicer_to_server,
            ValidatorServicer(validator),
            "dyag.v1.ValidatorService",
        )
        if settings.validate_built_datasets:
            await rt.subscribe(
                "dataset.built",
                events_pb2.DatasetBuilt,
                ValidateBuiltDatasets(rt, validator),
                consumer="validator-on-dataset-built",
            )

    run(settings, setup)


if __name__ == "__main__":
    main()
