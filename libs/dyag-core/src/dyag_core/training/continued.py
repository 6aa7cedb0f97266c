"""A run that continues an existing adapter (event-triggered retraining: the challenger starts from the champion).

The adapter's weights are the starting point, so its shape is the run's: r, lora_alpha, lora_dropout and the target
modules are the initial model's whatever the configuration asked, and what was asked otherwise is said, not applied.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from dyag_core.training.config import ResolvedConfig

# The LoRA shape an adapter carries: a continued run cannot change it.
ADAPTER_SHAPE = ("r", "lora_alpha", "lora_dropout", "target_modules")


def continued_config(
    config: ResolvedConfig, initial: Mapping[str, Any], asked: Mapping[str, Any], initial_id: str
) -> tuple[ResolvedConfig, list[str]]:
    """`config` with the initial adapter's shape (`initial`: its hyperparameters, as the registry keeps them), and a
    note for each value `asked` (the options the run's configuration set) that the adapter overrides."""
    values: dict[str, Any] = {}
    notes: list[str] = []
    sources = dict(config.sources)
    for name in ADAPTER_SHAPE:
        if initial.get(name) is None:
            continue  # an initial model recorded without it: the run's own value stands
        value = _shape_value(name, initial[name])
        values[name] = value
        sources[name] = f"initial model {initial_id}"
        if name in asked and asked[name] is not None and not _same(name, _shape_value(name, asked[name]), value):
            notes.append(
                f"{name}={_show(_shape_value(name, asked[name]))} asked, but a run that continues {initial_id} keeps "
                f"its adapter's {name}={_show(value)}"
            )
    return dataclasses.replace(config, **values, sources=sources), notes


def _shape_value(name: str, value: Any) -> Any:
    if name == "target_modules":
        return tuple(str(m) for m in ([value] if isinstance(value, str) else value))
    if name == "lora_dropout":
        return float(value)
    return int(value)


def _same(name: str, a: Any, b: Any) -> bool:
    if name == "target_modules":
        return set(a) == set(b)
    return abs(a - b) < 1e-12 if isinstance(a, float) else a == b


def _show(value: Any) -> str:
    return ",".join(value) if isinstance(value, tuple) else f"{value:g}" if isinstance(value, float) else str(value)
