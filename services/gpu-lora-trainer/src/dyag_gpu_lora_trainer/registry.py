"""The model registry: every LoRA model this service trained, in its own database (SQLite or PostgreSQL)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from dyag_core.errors import DyagError
from dyag_runtime.database import Database
from dyag_runtime.registry import Registry


class ModelNotFound(DyagError):
    def __init__(self, model_id: str):
        super().__init__("model_not_found", f"model {model_id!r} not found")


class ModelRegistry(Registry):
    def __init__(self, db: Database | Path):
        super().__init__(db, "models", ("base_model", "dataset_id"), not_found=ModelNotFound)

    def list(self, base_model: str = "", dataset_id: str = "", limit: int = 100) -> list[dict[str, Any]]:  # type: ignore[override]
        return super().list(limit, base_model=base_model, dataset_id=dataset_id)
