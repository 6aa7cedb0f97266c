from __future__ import annotations

from pathlib import Path

from pydantic import AliasChoices, Field

from dyag_core.export import DEFAULT_MAX_ACCURACY_DROP, DEFAULT_THRESHOLD
from dyag_runtime.settings import ServiceSettings


class ExporterSettings(ServiceSettings):
    service_name: str = "model-exporter"
    # An export holds a model in memory and writes GBs: one at a time per replica.
    job_concurrency: int = 1
    # The folder holding llama.cpp's convert_hf_to_gguf.py and convert_lora_to_gguf.py (from the pinned
    # llama-cpp-python source package). Unset: <venv>/share/dyag/llama.cpp, where bootstrap.py puts them.
    llama_cpp_dir: Path | None = None
    # The parity gate: the test split's reference answers read teacher-forced (up to this many tokens: the HF model's
    # log-probabilities take tokens x vocabulary x 4 bytes on disk while it runs, 200 MB for SmolLM2), the probes
    # answered greedily (information), their answer length, and the fact accuracy the GGUF may lose.
    parity_scored_tokens: int = 1024
    parity_probes: int = 8
    parity_max_tokens: int = 48
    parity_threshold: float = DEFAULT_THRESHOLD
    parity_max_accuracy_drop: float = DEFAULT_MAX_ACCURACY_DROP
    # Threads llama.cpp uses for the GGUF side (0: its default, the cores of this machine).
    llama_threads: int = 0
    # The Ollama server that `ollama create` goes to; unset: OLLAMA_HOST; neither: an export bundle with the command.
    ollama_host: str = Field("", validation_alias=AliasChoices("DYAG_EXPORTER_OLLAMA_HOST", "OLLAMA_HOST"))
    ollama_timeout_s: float = 600.0
    # Hub model ids as base models (GPU nodes with hub access). None: only where CUDA is available.
    allow_hub_models: bool | None = None
