from __future__ import annotations

from dyag_runtime.settings import ServiceSettings


class TrainerSettings(ServiceSettings):
    service_name: str = "gpu-lora-trainer"
    # One training per GPU per replica: the work queue hands a replica one job at a time.
    job_concurrency: int = 1
    # Hub model ids as base models (GPU nodes with hub access). None: only where CUDA is available.
    allow_hub_models: bool | None = None
    max_upload_bytes: int = 50 * 1024 * 1024
    # Generate: the most conversations in one call, and the default answer length.
    generate_max_batch: int = 64
    generate_max_tokens: int = 128
    # Inference precision on CPU (fp32 keeps greedy answers identical to training's evaluation).
    generate_dtype: str = "auto"
