"""HostedTrainerService: start a training (a job), and read the model registry."""

from __future__ import annotations

import asyncio
from typing import Any

from google.protobuf import json_format

from dyag.v1 import hosted_pb2, hosted_pb2_grpc
from dyag_core.errors import DyagError
from dyag_core.hosted import resolve_hyperparameters
from dyag_openai_trainer.provider import NotConfigured, Provider
from dyag_openai_trainer.settings import OpenAITrainerSettings
from dyag_openai_trainer.store import HostedStore
from dyag_openai_trainer.trainer import TRAIN, HostedTrainer
from dyag_runtime.jobs import record_to_proto
from dyag_runtime.server import Runtime

MAX_SUFFIX = 64


def model_message(model: dict[str, Any]) -> hosted_pb2.HostedModel:
    return json_format.ParseDict(model, hosted_pb2.HostedModel(), ignore_unknown_fields=True)


class HostedTrainerServicer(hosted_pb2_grpc.HostedTrainerServiceServicer):
    def __init__(
        self,
        rt: Runtime,
        settings: OpenAITrainerSettings,
        store: HostedStore,
        provider: Provider,
        trainer: HostedTrainer,
    ):
        self.rt, self.settings, self.store, self.provider, self.trainer = rt, settings, store, provider, trainer

    async def Train(self, request: hosted_pb2.TrainRequest, context) -> Any:
        if not self.provider.configured:
            raise NotConfigured()
        base_model = request.base_model.strip() or self.settings.openai_default_model
        if len(request.suffix) > MAX_SUFFIX:
            raise DyagError(
                "invalid_suffix",
                f"the suffix has {len(request.suffix)} characters; the API accepts at most {MAX_SUFFIX}",
            )
        given = request.hyperparameters
        # The values given are checked now (the preset fills the others once the dataset's size is known).
        resolve_hyperparameters(
            1000,
            n_epochs=given.n_epochs or None,
            batch_size=given.batch_size or None,
            learning_rate_multiplier=given.learning_rate_multiplier or None,
        )
        gates = request.gates
        if gates.budget_usd < 0:
            raise DyagError("invalid_budget", "budget_usd must be 0 (the service's budget) or a positive amount in USD")
        params: dict[str, Any] = {
            "base_model": base_model,
            "hyperparameters": {
                "n_epochs": given.n_epochs,
                "batch_size": given.batch_size,
                "learning_rate_multiplier": given.learning_rate_multiplier,
            },
            "suffix": request.suffix,
            "seed": request.seed if request.HasField("seed") else None,
            "gates": {
                "allow_pii": gates.allow_pii,
                "redact_pii": gates.redact_pii,
                "ignore_format_errors": gates.ignore_format_errors,
                "ignore_budget": gates.ignore_budget,
                "budget_usd": gates.budget_usd,
            },
        }
        which = request.WhichOneof("dataset")
        if which == "dataset_id":
            await self._check_dataset(request.dataset_id)
            params["dataset_id"] = request.dataset_id
        elif which == "uploaded":
            params["uploaded"] = await asyncio.to_thread(self._store_uploaded, request.uploaded)
        else:
            raise DyagError(
                "missing_dataset",
                "name a dataset built by dataset-builder (dataset_id) or send its train file (uploaded)",
            )
        record = await self.rt.jobs.submit(TRAIN, params, request.correlation_id)
        return record_to_proto(record)

    async def _check_dataset(self, dataset_id: str) -> None:
        await self.trainer.peers.dataset(dataset_id)

    def _store_uploaded(self, uploaded: hosted_pb2.UploadedDataset) -> dict[str, Any]:
        limit = self.settings.openai_max_dataset_bytes
        if not uploaded.train.strip():
            raise DyagError("missing_dataset", "the uploaded dataset has no train content")
        for name, data in (("train", uploaded.train), ("validation", uploaded.validation)):
            if len(data) > limit:
                raise DyagError(
                    "too_large",
                    f"the {name} file has {len(data)} bytes; the limit is {limit} (DYAG_OPENAI_MAX_DATASET_BYTES)",
                )
        train = self.rt.artifacts.put_bytes(uploaded.train, "train.jsonl", "application/jsonl")
        validation = (
            self.rt.artifacts.put_bytes(uploaded.validation, "validation.jsonl", "application/jsonl")
            if uploaded.validation.strip()
            else None
        )
        return {
            "name": uploaded.name,
            "catalog": uploaded.catalog,
            "catalog_version": uploaded.catalog_version,
            "train_digest": train.digest,
            "validation_digest": validation.digest if validation else "",
        }

    async def GetModel(self, request, context) -> Any:
        return model_message(self.store.model(request.id))

    async def ListModels(self, request, context) -> Any:
        return hosted_pb2.ListModelsResponse(
            models=[model_message(m) for m in self.store.models(request.base_model, request.dataset_id)]
        )
