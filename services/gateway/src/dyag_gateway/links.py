"""OpenAPI links: where the ids a route returns can be used next (a catalog's name from GET /catalogs goes to
GET /catalogs/{name}/profile, a job's id from POST /datasets to GET /jobs/{job_id}…). Clients and generators read
them from /openapi.json; a stateful fuzzer (schemathesis) follows them to reach routes with ids that exist.

They are added to the schema FastAPI generates, in one table here, so that routers stay as they are."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

_CATALOG = (
    ("get", "/catalogs/{name}"),
    ("get", "/catalogs/{name}/versions"),
    ("get", "/catalogs/{name}/profile"),
    ("get", "/catalogs/{name}/source"),
    ("get", "/catalogs/{name}/retraining"),  # not PUT: a policy on a real catalog starts a retraining
    ("get", "/catalogs/{name}/champion"),
    ("get", "/catalogs/{name}/lineage"),
    ("post", "/catalogs/{name}/ask"),
)
_JOB = (("get", "/jobs/{job_id}"), ("get", "/jobs/{job_id}/logs"), ("post", "/jobs/{job_id}/cancel"))
_DATASET = (("get", "/datasets/{dataset_id}"), ("post", "/datasets/{dataset_id}/validate"))
_PIPELINE = (("get", "/pipelines/{pipeline_id}"), ("post", "/pipelines/{pipeline_id}/cancel"))
_MODEL = (("get", "/models/{model_id}"),)  # not chat: a generation on a CPU takes its time
_EXPORT = (("get", "/exports/{export_id}"), ("get", "/exports/{export_id}/modelfile"))
_RUN = (("get", "/evaluations/{run_id}"),)
_COLLECTION = (("get", "/rag/{collection}/stats"), ("post", "/rag/{collection}/query"))

# (method, path, status): [(JSON pointer into its body, the parameter it fills, the operations that take it)]
LINKS: dict[tuple[str, str, str], list[tuple[str, str, tuple[tuple[str, str], ...]]]] = {
    ("get", "/catalogs", "200"): [("/catalogs/0/name", "name", _CATALOG)],
    ("post", "/catalogs", "201"): [("/name", "name", _CATALOG)],
    ("get", "/jobs", "200"): [("/jobs/0/id", "job_id", _JOB)],
    ("post", "/datasets", "202"): [("/id", "job_id", _JOB)],
    ("get", "/datasets", "200"): [("/datasets/0/id", "dataset_id", _DATASET)],
    ("get", "/pipelines", "200"): [("/pipelines/0/id", "pipeline_id", _PIPELINE)],
    ("post", "/pipelines", "202"): [("/id", "pipeline_id", _PIPELINE)],
    ("get", "/models", "200"): [("/models/0/id", "model_id", _MODEL)],
    ("get", "/hosted/models", "200"): [("/models/0/id", "model_id", (("get", "/hosted/models/{model_id}"),))],
    ("get", "/exports", "200"): [("/exports/0/id", "export_id", _EXPORT)],
    ("get", "/evaluations", "200"): [("/evaluations/0/id", "run_id", _RUN)],
    ("get", "/rag", "200"): [("/collections/0/name", "collection", _COLLECTION)],
}


def add_links(schema: dict[str, Any]) -> dict[str, Any]:
    """Each LINKS entry as the producer's response `links`, by operationId; an operation this deployment's schema
    lacks is left out."""
    paths = schema.get("paths", {})

    def operation_id(method: str, path: str) -> str | None:
        return paths.get(path, {}).get(method, {}).get("operationId")

    for (method, path, status), entries in LINKS.items():
        operation = paths.get(path, {}).get(method)
        if operation is None:
            continue
        response = operation.setdefault("responses", {}).setdefault(status, {"description": "Successful Response"})
        links = response.setdefault("links", {})
        for pointer, parameter, targets in entries:
            for target_method, target_path in targets:
                target = operation_id(target_method, target_path)
                if target is not None:
                    links[target] = {"operationId": target, "parameters": {parameter: f"$response.body#{pointer}"}}
    return schema


def install(app: FastAPI) -> None:
    """app.openapi() with the links, generated once as FastAPI does."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            add_links(generate())
        assert app.openapi_schema is not None
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
