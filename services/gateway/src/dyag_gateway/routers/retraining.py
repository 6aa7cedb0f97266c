"""Retraining: a catalog's policy, its champion (aliases, promotion log, rollback), its lineage, and questions
answered by whatever is its champion now."""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastapi import APIRouter, Depends, Request
from pydantic import Field

from dyag_gateway.auth import caller, require_scope
from dyag_gateway.errors import ApiError
from dyag_gateway.params import Body, CatalogName, Count, JsonObject

if TYPE_CHECKING:
    from dyag_gateway.retraining import Retraining

router = APIRouter(prefix="/catalogs", tags=["retraining"])


def _retraining(request: Request) -> Retraining:
    retraining = getattr(request.app.state, "retraining", None)
    if retraining is None:
        raise ApiError(
            503,
            "retraining_unavailable",
            "retraining needs NATS (its records live in its KV store), which "
            "the gateway could not reach at start-up; see /readyz",
        )
    return retraining


class TargetBody(Body):
    kind: str = Field(description="lora | export | hosted | rag | grounded | hybrid | gguf")
    id: str = Field(description="the model (lora-…), export or hosted model id, or the RAG collection")
    catalog_version: str = ""
    details: JsonObject = Field(default_factory=dict, description="rag_mode, llm, model_id of a hybrid…")


class ThresholdsBody(Body):
    min_absolute: float = Field(0.0, description="accuracy points better than the champion on changed facts (0.05)")
    min_relative: float = Field(0.0, description="a fraction of the champion's accuracy on changed facts (0.1)")
    min_accuracy: float = Field(0.0, description="the challenger's accuracy on every question must reach it; 0: none")


class PolicyBody(Body):
    """A catalog's retraining policy; what is left out takes its default."""

    trigger: str = Field("on_change", max_length=20, description="on_change | schedule | manual")
    schedule: str = Field("", max_length=200, description="with trigger=schedule: a cron expression ('0 3 * * *')")
    debounce_s: float = Field(60.0, description="a change waits this long for the next ones (0 to a week)")
    min_changed_entities: Count = Field(1, description="fewer added, changed and removed applications start nothing")
    approaches: list[str] = Field(["rag", "lora"], max_length=10, description="rag | grounded | lora | hosted | hybrid")
    training: JsonObject = Field(default_factory=dict, description="TrainingConfig options of the LoRA challenger")
    replay_fraction: float = Field(0.2, description="unchanged examples replayed beside the changed ones (0 to 10)")
    max_training_steps: Count = Field(0, description="the training's budget in optimizer steps; 0: the preset's")
    max_eval_questions: Count = Field(0, description="0: the whole test split")
    thresholds: ThresholdsBody = Field(default_factory=ThresholdsBody)


class ChampionBody(Body):
    target: TargetBody
    reason: str = Field("", max_length=1000)


class RollbackBody(Body):
    to: str = Field(
        "",
        description="a promotion log entry's number, or an earlier champion's label or id; "
        "empty: the previous champion",
    )
    reason: str = Field("", max_length=1000)


class AskBody(Body):
    question: str = Field(min_length=1, max_length=2000)


@router.get("/{name}/retraining", summary="A catalog's retraining policy, its trigger state and its champion")
async def get_policy(name: CatalogName, request: Request) -> dict:
    return await _retraining(request).view(name)


@router.put(
    "/{name}/retraining",
    dependencies=[Depends(require_scope("admin"))],
    summary="Set a catalog's retraining policy: trigger (on_change | schedule | manual), debounce, approaches, "
    "training settings and budget, thresholds",
)
async def set_policy(name: CatalogName, body: PolicyBody, request: Request) -> dict:
    # Only what was given: the rest takes dyag_core.retraining.RetrainingPolicy's defaults, which it also validates.
    return await _retraining(request).set_policy(name, body.model_dump(exclude_unset=True))


@router.delete(
    "/{name}/retraining",
    dependencies=[Depends(require_scope("admin"))],
    summary="Stop retraining a catalog (its champion keeps answering)",
)
async def remove_policy(name: CatalogName, request: Request) -> dict:
    return await _retraining(request).remove_policy(name)


@router.post(
    "/{name}/retrain",
    status_code=202,
    dependencies=[Depends(require_scope("write"))],
    summary="Start a retraining now (what changed since the champion, or the current version)",
)
async def retrain(name: CatalogName, request: Request) -> dict:
    return await _retraining(request).retrain(name, by=caller(request))


@router.get(
    "/{name}/champion",
    summary="A catalog's aliases (champion, challenger, previous), rejected candidates "
    "and its promotion log, newest first",
)
async def get_champion(name: CatalogName, request: Request) -> dict:
    return await _retraining(request).champion(name)


@router.post(
    "/{name}/champion",
    dependencies=[Depends(require_scope("admin"))],
    summary="Make a target the champion by hand (logged, with who asked)",
)
async def set_champion(name: CatalogName, body: ChampionBody, request: Request) -> dict:
    return await _retraining(request).set_champion(name, body.target.model_dump(), body.reason, by=caller(request))


@router.post(
    "/{name}/champion/rollback",
    dependencies=[Depends(require_scope("admin"))],
    summary="Restore an earlier champion in one call (the previous one by default)",
)
async def rollback(name: CatalogName, body: RollbackBody, request: Request) -> dict:
    return await _retraining(request).rollback(name, body.to, body.reason, by=caller(request))


@router.get("/{name}/lineage", summary="catalog version → dataset → job → model → evaluation → promotion, as a graph")
async def get_lineage(name: CatalogName, request: Request) -> dict:
    return await _retraining(request).lineage(name)


@router.post(
    "/{name}/ask",
    dependencies=[Depends(require_scope("read"))],
    summary="Answer a question with the catalog's champion, citing its sources",
)
async def ask(name: CatalogName, body: AskBody, request: Request) -> dict:
    return await _retraining(request).ask(name, body.question)
