"""A catalog's lineage as a graph: catalog version → dataset → training job → model → evaluation → promotion, from
the champion book's decisions and the records of the pipelines that led to them."""

from __future__ import annotations

from typing import Any

from dyag_core.retraining import ChampionBook


def graph(catalog: str, book: ChampionBook, pipelines: dict[str, dict[str, Any]]) -> dict[str, Any]:
    nodes: dict[str, dict[str, Any]] = {}
    edges: list[dict[str, str]] = []

    def node(node_id: str, kind: str, **attrs: Any) -> str:
        nodes.setdefault(
            node_id, {"id": node_id, "kind": kind} | {k: v for k, v in attrs.items() if v not in (None, "")}
        )
        return node_id

    def edge(source: str, target: str, kind: str) -> None:
        if source and target and {"from": source, "to": target, "kind": kind} not in edges:
            edges.append({"from": source, "to": target, "kind": kind})

    for pipeline_id, record in pipelines.items():
        steps = {s["name"]: s for s in record.get("steps") or ()}
        params = record.get("params") or {}
        version = node(
            f"catalog:{catalog}@{params.get('catalog_version', '')}",
            "catalog_version",
            version=params.get("catalog_version"),
        )
        dataset = (steps.get("build") or {}).get("result", {}).get("dataset_id", "")
        if dataset:
            node(f"dataset:{dataset}", "dataset", job=steps["build"].get("job_id"))
            edge(version, f"dataset:{dataset}", "built from")
        train = steps.get("train") or {}
        model = (train.get("result") or {}).get("model_id", "")
        if model and train.get("job_id"):
            job = node(f"job:{train['job_id']}", "training_job", pipeline=pipeline_id)
            edge(f"dataset:{dataset}" if dataset else "", job, "trained on")
            node(f"lora:{model}", "model")
            edge(job, f"lora:{model}", "produced")
        for name, step in steps.items():
            run_id = (step.get("result") or {}).get("run_id", "")
            if name.startswith("evaluate_") and run_id:
                run = node(
                    f"evaluation:{run_id}",
                    "evaluation",
                    step=name,
                    accuracy=((step.get("result") or {}).get("summary") or {}).get("accuracy"),
                )
                if dataset:
                    edge(f"dataset:{dataset}", run, "test set of")
                if name == "evaluate_fine_tuned" and model:
                    edge(f"lora:{model}", run, "evaluated by")
    for entry in book.log:
        target = node(entry.target.label, entry.target.kind, catalog_version=entry.target.catalog_version)
        if entry.target.catalog_version:
            edge(
                node(
                    f"catalog:{catalog}@{entry.target.catalog_version}",
                    "catalog_version",
                    version=entry.target.catalog_version,
                ),
                target,
                "made from",
            )
        decision = node(f"decision:{entry.seq}", entry.action, at=entry.at, by=entry.by, reason=entry.reason)
        edge(target, decision, entry.action)
        for run_id in entry.evidence.get("evaluation_run_ids") or ():
            edge(node(f"evaluation:{run_id}", "evaluation"), decision, "evidence for")
        if entry.replaced:
            edge(decision, node(entry.replaced.label, entry.replaced.kind), "replaced")
    champion = book.champion
    return {
        "catalog": catalog,
        "champion": champion.label if champion else None,
        "nodes": list(nodes.values()),
        "edges": edges,
    }
