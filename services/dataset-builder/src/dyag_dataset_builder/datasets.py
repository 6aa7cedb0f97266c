"""DatasetService and the "dataset.build" job: catalog version in, split dataset files out."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import json
import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from dyag.v1 import dataset_pb2, dataset_pb2_grpc, events_pb2
from dyag_core.catalog import diff_catalogs, validate_catalog_name
from dyag_core.dataset import (
    DatasetError,
    Example,
    GenerationConfig,
    Split,
    changed_fact_phrasings,
    check_replay_fraction,
    fact_key,
    fit_to_catalog,
    focus_train,
    generate,
    plan_size,
    regenerate_changed,
    split_examples,
    split_warnings,
    with_paraphrases,
    write_dataset,
    write_manifest,
)
from dyag_core.errors import DyagError
from dyag_dataset_builder.catalog_store import CatalogStore
from dyag_runtime.contracts import job_result_dict
from dyag_runtime.database import Store
from dyag_runtime.events import emit_from_thread
from dyag_runtime.jobs import JobContext, record_to_proto
from dyag_runtime.server import Runtime

log = logging.getLogger(__name__)

BUILD = "dataset.build"
SPLITS = ("train", "validation", "test")
EXTRA_FORMATS = ("alpaca", "sharegpt", "prompt-completion")
_MEDIA = {"alpaca": "application/json"}

MIGRATIONS = (
    """CREATE TABLE IF NOT EXISTS datasets (
    id TEXT PRIMARY KEY,
    catalog TEXT NOT NULL,
    catalog_version TEXT NOT NULL,
    created_at DOUBLE PRECISION NOT NULL,
    body TEXT NOT NULL   -- the Dataset message as JSON
)""",
    "CREATE INDEX IF NOT EXISTS datasets_catalog ON datasets (catalog, catalog_version, created_at)",
)


class DatasetNotFound(DyagError):
    def __init__(self, dataset_id: str):
        super().__init__("dataset_not_found", f"dataset {dataset_id!r} not found")


class DatasetStore(Store):
    """The index of built datasets, in the service's database. A dataset's id names its content (dataset_id_for): a
    put of an id already there replaces its row (two replicas building one dataset leave one)."""

    component = "datasets"
    migrations = MIGRATIONS
    tables = ("datasets",)

    def put(self, dataset: dict[str, Any]) -> None:
        self.db.run(
            "INSERT INTO datasets (id, catalog, catalog_version, created_at, body) VALUES (?,?,?,?,?)"
            " ON CONFLICT (id) DO UPDATE SET catalog = excluded.catalog, catalog_version = excluded.catalog_version,"
            " created_at = excluded.created_at, body = excluded.body",
            (
                dataset["id"],
                dataset["catalog"],
                dataset["catalog_version"],
                datetime.now(UTC).timestamp(),
                json.dumps(dataset),
            ),
        )

    def get(self, dataset_id: str) -> dict[str, Any]:
        row = self.db.one("SELECT body FROM datasets WHERE id = ?", (dataset_id,))
        if row is None:
            raise DatasetNotFound(dataset_id)
        return json.loads(row[0])

    def latest_for(self, catalog: str, catalog_version: str) -> dict[str, Any] | None:
        row = self.db.one(
            "SELECT body FROM datasets WHERE catalog = ? AND catalog_version = ? ORDER BY created_at DESC LIMIT 1",
            (catalog, catalog_version),
        )
        return json.loads(row[0]) if row else None

    def list(self, catalog: str = "") -> list[dict[str, Any]]:
        query = "SELECT body FROM datasets" + (" WHERE catalog = ?" if catalog else "") + " ORDER BY created_at DESC"
        return [json.loads(r[0]) for r in self.db.all(query, (catalog,) if catalog else ())]


def config_from(params: dict[str, Any]) -> GenerationConfig:
    types = [t for t in params.get("question_types", []) if t]
    kwargs: dict[str, Any] = {
        "num_questions": int(params.get("num_questions") or 0) or None,
        "question_types": "all" if not types or types == ["all"] else tuple(types),
        "add_negatives": bool(params.get("add_negatives", True)),
        "seed": int(params.get("seed", 42)),
    }
    if params.get("variations"):
        kwargs["variations"] = int(params["variations"])
    if params.get("max_entities"):
        kwargs["max_entities"] = int(params["max_entities"])
    if params.get("system_prompt"):
        kwargs["system_prompt"] = params["system_prompt"]
    return GenerationConfig(**kwargs)


def dataset_id_for(catalog_version: str, params: dict[str, Any]) -> str:
    """The same catalog version and parameters always name the same dataset."""
    keys = (
        "num_questions",
        "question_types",
        "variations",
        "add_negatives",
        "seed",
        "split_strategy",
        "split_ratios",
        "formats",
        "system_prompt",
        "base_dataset_id",
        "max_entities",
    )
    values = {k: params.get(k) for k in keys}
    if params.get("focus_entity_ids"):  # only when set: the ids of datasets built without them stay what they were
        values |= {"focus_entity_ids": sorted(params["focus_entity_ids"]), "replay_fraction": params["replay_fraction"]}
    canonical = json.dumps([catalog_version, values], sort_keys=True)
    return "ds-" + hashlib.sha256(canonical.encode()).hexdigest()[:16]


class DatasetBuilder:
    """The job handler. Runs in a worker thread; reports progress between the steps."""

    def __init__(self, rt: Runtime, catalogs: CatalogStore, datasets: DatasetStore, loop: asyncio.AbstractEventLoop):
        self.rt, self.catalogs, self.datasets, self.loop = rt, catalogs, datasets, loop

    def __call__(self, ctx: JobContext) -> dict[str, Any]:
        params = ctx.params
        ctx.progress(0.02, "loading the catalog")
        row = self.catalogs.get(validate_catalog_name(params["catalog"]), params.get("catalog_version", ""))
        catalog = self.catalogs.catalog(row)
        config = config_from(params)
        plan = plan_size(catalog, config)
        if params.get("sizing"):
            ctx.log(f"sized to the catalog: {params['sizing']}")
        ctx.log(f"plan: {plan.describe()}")

        base_id = params.get("base_dataset_id", "")
        changed_ids: list[str] = []
        phrasings: tuple[Example, ...] = ()  # every phrasing of the facts the base's catalog version did not state
        if base_id:
            examples, regenerated, changed_ids, phrasings = self._regenerate(ctx, base_id, catalog, config)
        else:
            ctx.progress(0.05, "generating questions")
            examples = generate(
                catalog, config, on_progress=lambda f: ctx.progress(0.05 + 0.6 * f, "generating questions")
            )
            regenerated = len(examples)
        ctx.log(f"{len(examples)} examples ({regenerated} generated anew)")

        ctx.progress(0.7, "splitting")
        ratios = tuple(params.get("split_ratios") or (0.8, 0.1, 0.1))
        split = split_examples(
            examples, strategy=params.get("split_strategy") or "paraphrase", ratios=ratios, seed=config.seed
        )
        warnings = split_warnings(examples, split)
        focus_ids = list(params.get("focus_entity_ids") or [])
        if focus_ids:
            facts = frozenset(fact_key(e) for e in phrasings if set(e.provenance.entity_ids) & set(focus_ids))
            if facts:
                tested = len(split.test)
                split, added = with_paraphrases(split, (e for e in phrasings if fact_key(e) in facts))
                examples = (*examples, *added)
                ctx.log(
                    f"{len(facts)} changed facts: {len(added)} more phrasings of them, "
                    f"{len(split.test) - tested} held out in test"
                )
            split, focus_warnings = self._focus(
                ctx, split, focus_ids, float(params.get("replay_fraction") or 0), config, facts
            )
            warnings += focus_warnings
        for warning in warnings:
            ctx.log(warning, "warning")

        ctx.progress(0.8, "writing files")
        files = self._write_files(ctx, examples, split, params.get("formats", []))
        dataset_id = dataset_id_for(row.version, params)
        dataset = {
            "id": dataset_id,
            "catalog": row.name,
            "catalog_version": row.version,
            "split_counts": {name: len(getattr(split, name)) for name in SPLITS} | {"all": len(examples)},
            "type_counts": _type_counts(examples),
            "files": files,
            "plan": _plan_dict(plan),
            "created_at": datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
            "base_dataset_id": base_id,
            "regenerated_examples": regenerated,
            "changed_entity_ids": changed_ids,
            "focus_entity_ids": focus_ids,
            "replay_fraction": float(params.get("replay_fraction") or 0) if focus_ids else 0.0,
            "warnings": warnings,
            "params": params,  # kept for rebuilds (not part of the Dataset message)
        }
        self.datasets.put(dataset)
        message = dataset_message(dataset)
        event = events_pb2.DatasetBuilt(
            dataset_id=dataset_id,
            catalog=row.name,
            catalog_version=row.version,
            split_counts=message.split_counts,
            files=message.files,
            base_dataset_id=base_id,
        )
        emit_from_thread(
            self.rt.bus,
            self.loop,
            "dataset.built",
            event,
            subject=dataset_id,
            correlation_id=ctx.correlation_id,
            timeout=30,
        )
        return job_result_dict(
            dataset_pb2.DatasetBuildResult(
                dataset_id=dataset_id,
                split_counts=dataset["split_counts"],
                type_counts=dataset["type_counts"],
                warnings=warnings,
                sizing=params.get("sizing", ""),
                changed_entity_ids=changed_ids,
                regenerated_examples=regenerated,
            )
        )

    def _focus(
        self, ctx: JobContext, split: Split, focus_ids: list[str], replay_fraction: float, config, facts: frozenset
    ):
        """A challenger's train split: the examples about the focus entities (their changed facts when known) and a
        replay of the others."""
        ctx.progress(0.75, "selecting the focus entities' examples")
        selection = focus_train(split.train, focus_ids, replay_fraction, config.seed, facts)
        ctx.log(f"focus on {len(focus_ids)} entities, replay fraction {replay_fraction:g}: {selection.describe()}")
        if not selection.train:
            raise DatasetError(
                "empty_focus",
                f"the train split has no example about {', '.join(focus_ids)}: nothing to train a challenger on",
            )
        warnings = []
        if selection.missing:
            warnings.append(f"train: no example about {', '.join(selection.missing)} (focus_entity_ids)")
        return dataclasses.replace(split, train=selection.train), warnings

    def _regenerate(
        self, ctx: JobContext, base_id: str, catalog, config
    ) -> tuple[tuple[Example, ...], int, list[str], tuple[Example, ...]]:
        base = self.datasets.get(base_id)
        ctx.progress(0.05, f"comparing with the catalog version of {base_id}")
        old_catalog = self.catalogs.catalog(self.catalogs.get(base["catalog"], base["catalog_version"]))
        diff = diff_catalogs(old_catalog, catalog)
        examples_file = next(f for f in base["files"] if f["format"] == "examples")
        old_examples = [
            Example.from_dict(json.loads(line))
            for line in self.rt.artifacts.get_bytes(examples_file["artifact"]["digest"]).splitlines()
        ]
        ctx.log(f"catalog changes since {base_id}: +{len(diff.added)} ~{len(diff.changed)} -{len(diff.removed)}")
        ctx.progress(0.1, "regenerating the changed entities")
        examples = regenerate_changed(old_examples, catalog, diff, config)
        # regenerate_changed returns the kept examples themselves, then the new ones. Not by id: an example id is a
        # hash of type, template and entities, so a changed entity's regenerated examples keep their ids.
        kept = {id(e) for e in old_examples}
        regenerated = sum(1 for e in examples if id(e) not in kept)
        changed_ids = sorted({*diff.added, *diff.changed})
        return examples, regenerated, changed_ids, changed_fact_phrasings(old_catalog, catalog, config, changed_ids)

    def _write_files(self, ctx: JobContext, examples, split, formats) -> list[dict[str, Any]]:
        out = ctx.workdir / "files"
        out.mkdir(parents=True, exist_ok=True)
        files: list[dict[str, Any]] = []

        def store(path: Path, split_name: str, fmt: str, media: str = "application/jsonl") -> None:
            artifact = ctx.add_artifact(self.rt.artifacts.put_file(path, path.name, media))
            files.append({"split": split_name, "format": fmt, "artifact": artifact.to_dict()})

        groups = {"all": examples, **{name: getattr(split, name) for name in SPLITS}}
        for split_name, group in groups.items():
            stem = "finetuning_dataset" if split_name == "all" else split_name
            write_dataset(group, out / f"{stem}.jsonl", "openai")
            store(out / f"{stem}.jsonl", split_name, "openai")
            write_manifest(group, out / f"{stem}.jsonl")
            store(out / f"{stem}.jsonl.manifest.jsonl", split_name, "manifest")
            for fmt in (f for f in formats if f in EXTRA_FORMATS):
                suffix = ".json" if fmt == "alpaca" else ".jsonl"
                path = out / f"{stem}.{fmt}{suffix}"
                write_dataset(group, path, fmt)
                store(path, split_name, fmt, _MEDIA.get(fmt, "application/jsonl"))
        write_dataset(split.test, out / "test.eval.jsonl", "eval")
        store(out / "test.eval.jsonl", "test", "eval")
        # Every example with its provenance: what incremental rebuilds start from.
        (out / "examples.jsonl").write_text(
            "".join(json.dumps(e.to_dict(), ensure_ascii=False) + "\n" for e in examples), encoding="utf-8"
        )
        store(out / "examples.jsonl", "all", "examples")
        return files


def _type_counts(examples) -> dict[str, int]:
    counts: dict[str, int] = {}
    for example in examples:
        counts[example.qtype] = counts.get(example.qtype, 0) + 1
    return counts


def _plan_dict(plan) -> dict[str, Any]:
    return {
        "entities": plan.entities,
        "question_types": len(plan.question_types),
        "variations": plan.variations,
        "max_examples": plan.total,
        "per_type": dict(plan.per_type),
        "formula": plan.formula,
    }


def dataset_message(dataset: dict[str, Any]) -> dataset_pb2.Dataset:
    from google.protobuf import json_format

    return json_format.ParseDict(dataset, dataset_pb2.Dataset(), ignore_unknown_fields=True)


def _focus_params(catalog, row, focus_ids: list[str], replay_fraction: float) -> dict[str, Any]:
    """focus_entity_ids and replay_fraction, checked: each id must name an entity of the catalog version."""
    focus_ids = list(dict.fromkeys(i.strip() for i in focus_ids if i.strip()))
    known = {entity.id for entity in catalog.entities}
    unknown = [i for i in focus_ids if i not in known]
    if not focus_ids:
        raise DyagError("invalid_request", "focus_entity_ids holds only blank ids: name entities of the catalog")
    if unknown:
        raise DyagError(
            "invalid_request",
            f"focus_entity_ids: {', '.join(map(repr, unknown))} {'names' if len(unknown) == 1 else 'name'} no entity "
            f"of catalog {row.name!r} version {row.version} ({len(known)} entities; ids as in the catalog's 'id')",
        )
    try:
        fraction = check_replay_fraction(replay_fraction)
    except DatasetError as exc:
        raise DyagError("invalid_request", exc.message) from None
    return {"focus_entity_ids": focus_ids, "replay_fraction": fraction}


class DatasetServicer(dataset_pb2_grpc.DatasetServiceServicer):
    def __init__(self, rt: Runtime, catalogs: CatalogStore, datasets: DatasetStore):
        self.rt, self.catalogs, self.datasets = rt, catalogs, datasets

    async def BuildDataset(self, request, context):
        name = validate_catalog_name(request.catalog)
        row = self.catalogs.get(name, request.catalog_version)  # fail now, not in the job, on an unknown catalog
        params = {
            "catalog": name,
            "catalog_version": row.version,
            "num_questions": request.num_questions,
            "question_types": list(request.question_types),
            "variations": request.variations,
            "add_negatives": request.add_negatives,
            "seed": request.seed or 42,
            "split_strategy": request.split_strategy or "paraphrase",
            "split_ratios": list(request.split_ratios),
            "formats": list(request.formats),
            "system_prompt": request.system_prompt,
            "base_dataset_id": request.base_dataset_id,
        }
        if request.base_dataset_id:
            self.datasets.get(request.base_dataset_id)
        # Validate the parameters against the catalog before queueing: bad input is refused at once.
        catalog = await asyncio.to_thread(self.catalogs.catalog, row)
        if request.focus_entity_ids:
            params |= _focus_params(catalog, row, list(request.focus_entity_ids), request.replay_fraction)
        elif request.replay_fraction:
            raise DyagError("invalid_request", "replay_fraction goes with focus_entity_ids (the entities to train on)")
        # Sized to what this catalog allows, before the dataset's id is derived from the params.
        if request.fit_to_catalog:
            fitted, params["sizing"] = await asyncio.to_thread(fit_to_catalog, catalog, config_from(params))
            params.update(
                num_questions=fitted.num_questions or 0,
                variations=fitted.variations,
                max_entities=fitted.max_entities or 0,
            )
        await asyncio.to_thread(lambda: plan_size(catalog, config_from(params), check=True))
        if params["split_strategy"] not in ("paraphrase", "entity"):
            raise DyagError(
                "invalid_split_strategy",
                f"unknown split strategy {params['split_strategy']!r}: use 'paraphrase' or 'entity'",
            )
        record = await self.rt.jobs.submit(BUILD, params, request.correlation_id)
        return record_to_proto(record)

    async def Plan(self, request, context):
        row = self.catalogs.get(validate_catalog_name(request.catalog), request.catalog_version)
        catalog = await asyncio.to_thread(self.catalogs.catalog, row)
        params = {
            "question_types": list(request.question_types),
            "variations": request.variations,
            "add_negatives": request.add_negatives,
        }
        plan = await asyncio.to_thread(plan_size, catalog, config_from(params))
        return dataset_pb2.DatasetPlan(**_plan_dict(plan))

    async def GetDataset(self, request, context):
        return dataset_message(self.datasets.get(request.id))

    async def ListDatasets(self, request, context):
        return dataset_pb2.ListDatasetsResponse(
            datasets=[dataset_message(d) for d in self.datasets.list(request.catalog)]
        )

    async def ReadFile(self, request, context):
        dataset = self.datasets.get(request.dataset_id)
        match = next(
            (f for f in dataset["files"] if f["split"] == request.split and f["format"] == request.format), None
        )
        if match is None:
            available = ", ".join(f"{f['split']}/{f['format']}" for f in dataset["files"])
            raise DyagError(
                "file_not_found",
                f"dataset {request.dataset_id} has no {request.split}/{request.format} file; it has {available}",
            )
        data = await asyncio.to_thread(self.rt.artifacts.get_bytes, match["artifact"]["digest"])
        for start in range(0, len(data), 1 << 20):
            yield dataset_pb2.FileChunk(data=data[start : start + (1 << 20)])


class RebuildOnCatalogUpdate:
    """catalog.updated -> rebuild, incrementally, the latest dataset of the previous catalog version.

    This is where retraining starts: the new dataset's dataset.built event is what trainers follow.
    """

    def __init__(self, rt: Runtime, datasets: DatasetStore):
        self.rt, self.datasets = rt, datasets

    async def __call__(self, envelope) -> None:
        event = envelope.data
        if not event.previous_version:
            return
        base = self.datasets.latest_for(event.name, event.previous_version)
        if base is None or "params" not in base:
            return
        params = dict(base["params"], catalog_version=event.version, base_dataset_id=base["id"])
        params.pop("focus_entity_ids", None)  # the rebuild is the whole dataset, even after a challenger's
        params.pop("replay_fraction", None)
        record = await self.rt.jobs.submit(BUILD, params, envelope.correlation_id or envelope.id)
        log.info(
            "rebuilding after a catalog update",
            extra={"catalog": event.name, "base": base["id"], "job_id": record["id"]},
        )
