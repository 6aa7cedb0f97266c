"""Training that continues a registered model (LoraTrainRequest.init_model_id): which base model it must run on.

An adapter only means something on the base model it was trained on. The check compares names without loading or
converting anything, so that a mismatch is refused by the Train RPC at once: the default model's aliases are one
model, a shipped GGUF is its name, a folder is its resolved path, anything else (a hub id) is itself.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from dyag_core.errors import DyagError


class BaseModelMismatch(DyagError):
    def __init__(self, model: dict[str, Any], asked: str):
        super().__init__(
            "base_model_mismatch",
            f"model {model['id']} was trained on base model {model['base_model']!r} "
            f"({model.get('base_model_resolved') or '-'}); this run asks for base model {asked!r}: a run that "
            "continues an adapter must use the base model it was trained on (leave base_model unset to take it)",
        )


def base_model_key(name: str) -> str:
    """What a base model name designates, without loading it."""
    from dyag_llm.gguf import SHIPPED
    from dyag_llm.local import DEFAULT_MODEL, is_default_model

    name = (name or DEFAULT_MODEL).strip()
    if is_default_model(name):
        return DEFAULT_MODEL
    if name in SHIPPED:
        return name
    path = Path(name).expanduser()
    if path.is_absolute() or name.startswith((".", "~")) or path.is_dir():
        return str(path.resolve())
    return name


def continued_base_model(config: dict[str, Any], initial: dict[str, Any]) -> dict[str, Any]:
    """The run's options with the initial model's base model when they name none; a different one is refused."""
    asked = config.get("base_model")
    if not asked:
        return config | {"base_model": initial["base_model"]}
    key = base_model_key(asked)
    known = {base_model_key(initial["base_model"])}
    if initial.get("base_model_resolved"):
        known.add(base_model_key(initial["base_model_resolved"]))
    if key not in known:
        raise BaseModelMismatch(initial, asked)
    return config
