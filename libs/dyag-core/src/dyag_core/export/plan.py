"""What an export will write, checked before anything is written: quantization levels, the model's
architecture, the adapter against its base model, and the disk space the outputs need.

Pure: the service reads the files (config.json, safetensors headers) and hands their contents here.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import PurePath
from typing import Any

from dyag_core.errors import DyagError


class ExportError(DyagError):
    """An export that cannot run as asked. Codes: unknown_quantization, unsupported_architecture,
    adapter_missing, adapter_corrupt, adapter_base_mismatch, disk_full, llama_cpp_missing, conversion_failed,
    parity_failed, no_probes, ollama_failed, invalid_request."""


@dataclass(frozen=True, slots=True)
class Quantization:
    name: str  # as users write it: f16, q8_0, q4_K_M
    bits_per_weight: float  # for the size estimate (llama.cpp's figures; K-quants mix types)
    llama_ftype: int  # llama.cpp's LLAMA_FTYPE_MOSTLY_* value
    description: str


QUANTIZATIONS: dict[str, Quantization] = {
    q.name: q
    for q in (
        Quantization("f16", 16.0, 1, "16-bit floats, written by llama.cpp's converter: the reference"),
        Quantization("q8_0", 8.5, 7, "8-bit blocks: nearly lossless, half the size of f16"),
        Quantization("q4_K_M", 4.9, 15, "4-bit K-quant (medium): a quarter of f16, the usual Ollama default"),
    )
}
DEFAULT_QUANTIZATION = "q8_0"
MODES = ("merged", "adapter")
# Bytes per element of the safetensors dtypes.
DTYPE_BYTES = {
    "F64": 8,
    "F32": 4,
    "F16": 2,
    "BF16": 2,
    "I64": 8,
    "I32": 4,
    "I16": 2,
    "I8": 1,
    "U8": 1,
    "BOOL": 1,
    "F8_E4M3": 1,
    "F8_E5M2": 1,
}


def parse_quantizations(values: Iterable[str]) -> tuple[str, ...]:
    """The levels asked, in the canonical spelling, without duplicates; unknown ones are refused with the list."""
    by_lower = {name.lower(): name for name in QUANTIZATIONS}
    out: list[str] = []
    for raw in values:
        for value in str(raw).split(","):
            value = value.strip()
            if not value:
                continue
            name = by_lower.get(value.lower())
            if name is None:
                raise ExportError(
                    "unknown_quantization", f"unknown quantization {value!r}; choose among {', '.join(QUANTIZATIONS)}"
                )
            if name not in out:
                out.append(name)
    return tuple(out) or (DEFAULT_QUANTIZATION,)


def check_architecture(
    config: Mapping[str, Any], supported: Sequence[str], source: str = "llama.cpp's converter"
) -> str:
    """The model's architecture (config.json "architectures"), if the converter supports it."""
    architectures = config.get("architectures") or []
    arch = architectures[0] if architectures else ""
    if not arch:
        model_type = config.get("model_type") or "unknown"
        raise ExportError(
            "unsupported_architecture",
            "the model's config.json names no architecture (model_type "
            f"{model_type!r}); {source} supports: {', '.join(sorted(supported))}",
        )
    if arch not in supported:
        raise ExportError(
            "unsupported_architecture",
            f"architecture {arch!r} is not supported by {source}, so it cannot become a GGUF for Ollama; "
            f"supported architectures ({len(supported)}): {', '.join(sorted(supported))}",
            {"architecture": arch, "supported": sorted(supported)},
        )
    return arch


# ---------------------------------------------------------------- the adapter against its base


def _model_name(path_or_id: str) -> str:
    return PurePath(str(path_or_id).rstrip("/")).name.lower()


def _base_weight_name(lora_key: str) -> tuple[str, str] | None:
    """'base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight'
    -> ('model.layers.0.self_attn.q_proj.weight', 'A')."""
    for part in ("lora_A", "lora_B"):
        marker = f".{part}."
        if marker in lora_key:
            module = lora_key.split(marker)[0]
            if module.startswith("base_model.model."):
                module = module[len("base_model.model.") :]
            return module + ".weight", part[-1]
    return None


def check_adapter_matches_base(
    adapter_config: Mapping[str, Any],
    adapter_shapes: Mapping[str, Sequence[int]],
    base_name: str,
    base_shapes: Mapping[str, Sequence[int]],
) -> None:
    """An adapter applies to the base model it was trained on: the same model (by name) and, for every
    module it adapts, the same weight shape. Anything else: adapter_base_mismatch, naming what differs."""
    problems: list[str] = []
    trained_on = str(adapter_config.get("base_model_name_or_path") or "")
    if trained_on and _model_name(trained_on) != _model_name(base_name):
        problems.append(
            f"it was trained on {PurePath(trained_on).name!r} (adapter_config.json base_model_name_or_path), "
            f"not on {PurePath(base_name).name!r}"
        )
    shape_problems: list[str] = []
    for key, shape in sorted(adapter_shapes.items()):
        target = _base_weight_name(key)
        if target is None:
            continue
        weight, side = target
        base = base_shapes.get(weight)
        if base is None:
            shape_problems.append(f"the base model has no {weight} for the adapter's {key}")
            continue
        if len(base) != 2 or len(shape) != 2:
            continue
        # lora_A: [r, in_features], lora_B: [out_features, r]; the base weight is [out_features, in_features].
        if (side == "A" and shape[1] != base[1]) or (side == "B" and shape[0] != base[0]):
            expected = f"in_features {base[1]}" if side == "A" else f"out_features {base[0]}"
            shape_problems.append(
                f"{key} has shape {list(shape)} but the base model's {weight} is {list(base)} ({expected})"
            )
    if shape_problems:
        more = f" (and {len(shape_problems) - 3} more)" if len(shape_problems) > 3 else ""
        problems.append("its weights do not fit the base model: " + "; ".join(shape_problems[:3]) + more)
    if not any(_base_weight_name(k) for k in adapter_shapes):
        problems.append("it holds no LoRA weights (no lora_A / lora_B tensors)")
    if problems:
        raise ExportError(
            "adapter_base_mismatch",
            f"the LoRA adapter does not belong to the base model {PurePath(base_name).name!r}: "
            + "; ".join(problems)
            + ". Export it with the base model it was trained on.",
            {"adapter_base": trained_on, "base_model": base_name},
        )


# ---------------------------------------------------------------- sizes and disk space


def parameter_count(shapes: Mapping[str, Sequence[int]]) -> int:
    total = 0
    for shape in shapes.values():
        n = 1
        for dim in shape:
            n *= int(dim)
        total += n
    return total


def gguf_bytes(parameters: int, quantization: str) -> int:
    """An upper estimate of a GGUF's size: the weights at the level's bits per weight, plus the vocabulary
    and metadata (a few MB) — K-quants fall back to larger types for rows they cannot split."""
    q = QUANTIZATIONS[quantization]
    return int(parameters * q.bits_per_weight / 8 * 1.08) + 32 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class SpaceNeeded:
    total: int
    parts: tuple[tuple[str, int], ...]

    def describe(self) -> str:
        return ", ".join(f"{name} {human_bytes(size)}" for name, size in self.parts)


def space_needed(
    *,
    base_parameters: int,
    merged_bytes: int,
    quantizations: Sequence[str],
    adapter_parameters: int,
    base_gguf: Sequence[str] = (),
    copies: int = 2,
) -> SpaceNeeded:
    """Bytes an export writes: the merged folder, the f16 GGUF (always: the quantizer's input), each quantized
    GGUF, the adapter GGUF, the base model's GGUF at the `base_gguf` levels (adapter mode); times `copies` (the
    export folder and the artifact store when both are on this disk)."""
    parts: list[tuple[str, int]] = []
    if merged_bytes:
        parts.append(("merged safetensors", merged_bytes))
    for q in dict.fromkeys(["f16", *quantizations]):
        parts.append((f"GGUF {q}", gguf_bytes(base_parameters, q)))
    for q in dict.fromkeys(base_gguf):
        parts.append((f"base GGUF {q}", gguf_bytes(base_parameters, q)))
    if adapter_parameters:
        parts.append(("adapter GGUF", adapter_parameters * 2 + 1024 * 1024))
    total = sum(size for _, size in parts) * max(copies, 1)
    return SpaceNeeded(total, tuple(parts))


def check_free_space(needed: SpaceNeeded, free: int, folder: str, copies: int = 2) -> None:
    if free < needed.total:
        raise ExportError(
            "disk_full",
            f"not enough disk space for the export: it needs about {human_bytes(needed.total)} "
            f"({needed.describe()}{', written twice: export folder and artifact store' if copies > 1 else ''}) "
            f"but {folder} has {human_bytes(free)} free; free some space "
            "or point DYAG_DATA_DIR elsewhere. Nothing was written.",
            {"needed_bytes": needed.total, "free_bytes": free},
        )


def human_bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if abs(n) < 1024 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TB"  # pragma: no cover
