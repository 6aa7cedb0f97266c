"""LoRA training, the pure part: the validated configuration with the guide's presets, and input checks.

No torch here: the gpu-lora-trainer service runs the training; this is what it (and its tests) agree on.
"""

from dyag_core.training.config import (
    DEFAULT_TARGET_MODULES,
    LARGE_DATASET,
    PRECISIONS,
    PRESET_NAMES,
    PRESETS,
    SMALL_DATASET,
    Preset,
    ResolvedConfig,
    TrainingConfig,
    TrainingInputError,
    preset_for_size,
)
from dyag_core.training.continued import ADAPTER_SHAPE, continued_config
from dyag_core.training.inputs import ChatExample, check_examples, check_lengths, count_facts, parse_chat_jsonl

__all__ = [
    "ADAPTER_SHAPE",
    "DEFAULT_TARGET_MODULES",
    "LARGE_DATASET",
    "PRECISIONS",
    "PRESET_NAMES",
    "PRESETS",
    "SMALL_DATASET",
    "ChatExample",
    "Preset",
    "ResolvedConfig",
    "TrainingConfig",
    "TrainingInputError",
    "check_examples",
    "check_lengths",
    "continued_config",
    "count_facts",
    "parse_chat_jsonl",
    "preset_for_size",
]
