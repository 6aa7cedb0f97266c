from __future__ import annotations

from dyag_runtime.settings import ServiceSettings


class ValidatorSettings(ServiceSettings):
    service_name: str = "validator"
    # Validate the train split of every dataset the platform builds, and publish dataset.validated.
    validate_built_datasets: bool = True
    default_model: str = "gpt-4o-mini-2024-07-18"
