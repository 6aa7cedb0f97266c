"""The LoRA training configuration: one validated schema, with the guide's Annex A presets.

Like axolotl's single config file, everything a run depends on is here, so a run is described (and
reproduced) by one JSON object. Every preset value can be overridden; what was not given is taken from
the preset chosen by the dataset's size (`preset="auto"`), and `resolve()` says where each value came from.

Annex A (LoRA local), by dataset size:

    | preset | examples   | r  | lora_alpha | lora_dropout | learning_rate | epochs |
    | small  | < 500      | 8  | 16         | 0.1          | 3e-4          | 8      |
    | medium | 500-2000   | 16 | 32         | 0.05         | 2e-4          | 4      |
    | large  | > 2000     | 32 | 64         | 0.01         | 1e-4          | 2      |

The guide's LoRA table gives no epoch counts; they follow its OpenAI table (5-10, 3-5, 1-3), taking the
middle of each range rounded up, as the cost estimate of dyag_core.validation does.

The `knowledge` preset is not the guide's: it is for teaching the catalog's facts, not a style. Published
knowledge-injection results agree that a fact sticks only after many exposures, under several phrasings, and
that a short run moves wording, not facts. So its epochs are sized by exposures per fact: one epoch shows
each fact once per phrasing of it in the training split (the examples sharing one answer), and the run
lasts until every fact has been seen EXPOSURES_PER_FACT times. The dataset side of the preset (every
phrasing each question type has) is dataset-builder's `variations`, which the pipeline raises with it.
LoRA goes on every linear layer (facts live in the MLPs more than in the attention), at a higher rate.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

from dyag_core.errors import DyagError

SMALL_DATASET, LARGE_DATASET = 500, 2000
PRESET_NAMES = ("small", "medium", "large", "knowledge")
EXPOSURES_PER_FACT = 30  # the knowledge preset: times each fact is seen over the run, all its phrasings together
MAX_KNOWLEDGE_EPOCHS = 100
PRECISIONS = ("auto", "bf16", "fp16", "fp32")
SCHEDULERS = ("cosine", "linear", "constant")
TRACKERS = ("none", "wandb", "mlflow")
# The guide's step 5.3: LoRA on the attention projections.
DEFAULT_TARGET_MODULES = ("q_proj", "k_proj", "v_proj", "o_proj")


class TrainingInputError(DyagError):
    """A training request that cannot run as given: bad configuration or unusable dataset.

    Codes: invalid_config, unknown_base_model, empty_dataset, malformed_dataset, examples_too_long.
    """


@dataclass(frozen=True, slots=True)
class Preset:
    name: str
    r: int
    lora_alpha: int
    lora_dropout: float
    learning_rate: float
    epochs: int


PRESETS: dict[str, Preset] = {
    "small": Preset("small", r=8, lora_alpha=16, lora_dropout=0.1, learning_rate=3e-4, epochs=8),
    "medium": Preset("medium", r=16, lora_alpha=32, lora_dropout=0.05, learning_rate=2e-4, epochs=4),
    "large": Preset("large", r=32, lora_alpha=64, lora_dropout=0.01, learning_rate=1e-4, epochs=2),
    # epochs here: with one phrasing per fact; resolve() divides by the phrasings the training split has.
    "knowledge": Preset(
        "knowledge", r=32, lora_alpha=64, lora_dropout=0.0, learning_rate=1e-3, epochs=EXPOSURES_PER_FACT
    ),
}
KNOWLEDGE_TARGET_MODULES = ("all-linear",)
PRESET_FIELDS = ("r", "lora_alpha", "lora_dropout", "learning_rate", "epochs")


def preset_for_size(n_examples: int) -> Preset:
    """Annex A's band for a dataset of this many training examples."""
    if n_examples < SMALL_DATASET:
        return PRESETS["small"]
    if n_examples <= LARGE_DATASET:
        return PRESETS["medium"]
    return PRESETS["large"]


@dataclass(frozen=True)
class TrainingConfig:
    """What a LoRA run is asked to do. `None` means: take it from the preset (or the platform's default)."""

    base_model: str = "default"
    preset: str = "auto"  # auto | small | medium | large | knowledge
    # LoRA (preset values unless given)
    r: int | None = None
    lora_alpha: int | None = None
    lora_dropout: float | None = None
    target_modules: tuple[str, ...] = DEFAULT_TARGET_MODULES  # or ("all-linear",)
    # Optimisation
    learning_rate: float | None = None
    epochs: int | None = None
    max_steps: int = 0  # > 0: stop after this many optimizer steps (overrides epochs)
    batch_size: int | None = (
        None  # per optimizer step: packed rows (None: ~1,024 tokens) when packing, else examples (None: 8)
    )
    warmup_ratio: float = 0.05
    lr_scheduler: str = "cosine"
    weight_decay: float = 0.0
    max_grad_norm: float = 1.0
    seed: int = 42
    # Data
    max_seq_len: int = 1024  # the longest example allowed (a longer one is reported, never cut); the packed row length
    packing: bool = True
    # Hardware
    precision: str = "auto"  # auto: bf16 where the hardware has it (CPU included), fp16 on older GPUs, else fp32
    load_in_4bit: bool | None = None  # None: QLoRA on CUDA, never on CPU
    use_unsloth: bool | None = None  # None: when CUDA and the gpu extra are there
    # Evaluation, checkpoints, logging
    eval_steps: int = 0  # 0: at the end of each epoch
    checkpoint_steps: int = 50
    logging_steps: int = 1
    tracking: str = "none"  # none | wandb | mlflow (only when that tool is configured on the service)
    run_name: str = ""

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> TrainingConfig:
        """Build from JSON (a request, a job's params), refusing unknown keys and wrong types by name."""
        data = dict(data or {})
        known = {f.name: f for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - set(known))
        if unknown:
            raise TrainingInputError(
                "invalid_config", f"unknown training option(s): {', '.join(unknown)}; known: {', '.join(known)}"
            )
        kwargs: dict[str, Any] = {}
        for name, value in data.items():
            if value is None:
                continue
            kwargs[name] = _coerce(name, value, cls.__dataclass_fields__[name].default)
        config = cls(**kwargs)
        config.validate()
        return config

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["target_modules"] = list(self.target_modules)
        return data

    def validate(self) -> None:
        problems: list[str] = []
        if not self.base_model.strip():
            problems.append("base_model is empty")
        if self.preset not in ("auto", *PRESET_NAMES):
            problems.append(f"preset must be auto, small, medium, large or knowledge, not {self.preset!r}")
        if self.precision not in PRECISIONS:
            problems.append(f"precision must be one of {', '.join(PRECISIONS)}, not {self.precision!r}")
        if self.lr_scheduler not in SCHEDULERS:
            problems.append(f"lr_scheduler must be one of {', '.join(SCHEDULERS)}, not {self.lr_scheduler!r}")
        if self.tracking not in TRACKERS:
            problems.append(f"tracking must be one of {', '.join(TRACKERS)}, not {self.tracking!r}")
        positive = {"r": self.r, "lora_alpha": self.lora_alpha, "epochs": self.epochs, "batch_size": self.batch_size}
        problems += [f"{k} must be at least 1, not {v}" for k, v in positive.items() if v is not None and v < 1]
        if self.learning_rate is not None and not (0 < self.learning_rate < 1):
            problems.append(f"learning_rate must be between 0 and 1, not {self.learning_rate}")
        if self.lora_dropout is not None and not (0 <= self.lora_dropout < 1):
            problems.append(f"lora_dropout must be in [0, 1), not {self.lora_dropout}")
        if not (0 <= self.warmup_ratio < 1):
            problems.append(f"warmup_ratio must be in [0, 1), not {self.warmup_ratio}")
        if not (16 <= self.max_seq_len <= 131072):
            problems.append(f"max_seq_len must be between 16 and 131072 tokens, not {self.max_seq_len}")
        for name in ("max_steps", "eval_steps"):
            if getattr(self, name) < 0:
                problems.append(f"{name} must be 0 or more, not {getattr(self, name)}")
        if self.checkpoint_steps < 1 or self.logging_steps < 1:
            problems.append("checkpoint_steps and logging_steps must be at least 1")
        if not self.target_modules or not all(isinstance(m, str) and m for m in self.target_modules):
            problems.append("target_modules must name at least one module (e.g. q_proj, v_proj, or all-linear)")
        if self.weight_decay < 0 or self.max_grad_norm < 0:
            problems.append("weight_decay and max_grad_norm must not be negative")
        if problems:
            raise TrainingInputError("invalid_config", "invalid training configuration: " + "; ".join(problems))

    def resolve(self, n_train_examples: int, n_facts: int | None = None) -> ResolvedConfig:
        """Every value filled in: given values win, then the preset (auto: by the dataset's size). `n_facts`: the
        distinct facts the training split teaches (`count_facts`), which sizes the knowledge preset's epochs."""
        preset = preset_for_size(n_train_examples) if self.preset == "auto" else PRESETS[self.preset]
        values = self.to_dict()
        sources: dict[str, str] = {}
        for name in PRESET_FIELDS:
            if values[name] is None:
                values[name] = getattr(preset, name)
                sources[name] = f"preset {preset.name}"
            else:
                sources[name] = "given"
        reason = _reason(self.preset, preset, n_train_examples)
        if preset.name == "knowledge":
            phrasings = n_train_examples / max(n_facts or n_train_examples, 1)
            if self.epochs is None:
                values["epochs"] = min(
                    MAX_KNOWLEDGE_EPOCHS, max(1, math.ceil(EXPOSURES_PER_FACT / max(phrasings, 1.0)))
                )
                sources["epochs"] = f"preset knowledge: {EXPOSURES_PER_FACT} exposures per fact"
            if tuple(self.target_modules) == DEFAULT_TARGET_MODULES:
                values["target_modules"] = KNOWLEDGE_TARGET_MODULES
                sources["target_modules"] = "preset knowledge"
            reason = (
                f"preset knowledge: {n_facts or n_train_examples} facts, {phrasings:.1f} phrasings each in "
                f"{n_train_examples} training examples; {values['epochs']} epochs show each fact "
                f"{values['epochs'] * phrasings:.0f} times"
            )
        if values["batch_size"] is None:
            values["batch_size"] = 0 if self.packing else 8  # 0: as many packed rows as make ~1,024 tokens
            sources["batch_size"] = "default"
        values["preset"] = preset.name
        values["target_modules"] = tuple(values["target_modules"])
        return ResolvedConfig(**values, preset_reason=reason, sources=sources)


@dataclass(frozen=True)
class ResolvedConfig:
    base_model: str
    preset: str
    r: int
    lora_alpha: int
    lora_dropout: float
    target_modules: tuple[str, ...]
    learning_rate: float
    epochs: int
    max_steps: int
    batch_size: int
    warmup_ratio: float
    lr_scheduler: str
    weight_decay: float
    max_grad_norm: float
    seed: int
    max_seq_len: int
    packing: bool
    precision: str
    load_in_4bit: bool | None
    use_unsloth: bool | None
    eval_steps: int
    checkpoint_steps: int
    logging_steps: int
    tracking: str
    run_name: str
    preset_reason: str = ""
    sources: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["target_modules"] = list(self.target_modules)
        return data

    def hyperparameters(self) -> dict[str, Any]:
        """What a model card lists."""
        keys = (
            "preset",
            "r",
            "lora_alpha",
            "lora_dropout",
            "target_modules",
            "learning_rate",
            "epochs",
            "max_steps",
            "batch_size",
            "warmup_ratio",
            "lr_scheduler",
            "weight_decay",
            "max_grad_norm",
            "seed",
            "max_seq_len",
            "packing",
        )
        data = self.to_dict()
        return {k: data[k] for k in keys}

    def total_steps(self, sequences_per_epoch: int) -> int:
        """Optimizer steps of the run: max_steps, else epochs over the (packed) sequences."""
        if self.max_steps:
            return self.max_steps
        return max(1, math.ceil(sequences_per_epoch / max(self.batch_size, 1))) * self.epochs


def _reason(asked: str, preset: Preset, n: int) -> str:
    if asked != "auto":
        return f"preset {preset.name} (asked)"
    band = (
        f"< {SMALL_DATASET}"
        if preset.name == "small"
        else f"{SMALL_DATASET}-{LARGE_DATASET}"
        if preset.name == "medium"
        else f"> {LARGE_DATASET}"
    )
    return f"preset {preset.name}: {n} training examples ({band}, the guide's Annex A)"


def _coerce(name: str, value: Any, default: Any) -> Any:
    """JSON values to the field's type (protobuf Structs carry every number as a float)."""
    try:
        if name == "target_modules":
            if isinstance(value, str):
                value = [v.strip() for v in value.split(",") if v.strip()]
            if not isinstance(value, (list, tuple)):
                raise TypeError
            return tuple(str(v) for v in value)
        if name in ("load_in_4bit", "use_unsloth", "packing"):
            if isinstance(value, str):
                return value.strip().lower() in ("1", "true", "yes", "on")
            if not isinstance(value, (bool, int, float)):
                raise TypeError
            return bool(value)
        if name in (
            "r",
            "lora_alpha",
            "epochs",
            "max_steps",
            "batch_size",
            "seed",
            "max_seq_len",
            "eval_steps",
            "checkpoint_steps",
            "logging_steps",
        ):
            if isinstance(value, bool) or float(value) != int(float(value)):
                raise TypeError
            return int(float(value))
        if name in ("lora_dropout", "learning_rate", "warmup_ratio", "weight_decay", "max_grad_norm"):
            if isinstance(value, bool):
                raise TypeError
            number = float(value)
            if not math.isfinite(number):
                raise TypeError
            return number
        if not isinstance(value, str):
            raise TypeError
        return value.strip()
    except (TypeError, ValueError):
        kind = type(default).__name__ if default is not None else "number"
        raise TrainingInputError(
            "invalid_config", f"training option {name} has a bad value {value!r} (expected {kind})"
        ) from None
