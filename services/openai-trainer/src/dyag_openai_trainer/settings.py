"""Settings of openai-trainer (DYAG_* environment variables; the key and base URL also as the guide's OPENAI_*)."""

from __future__ import annotations

from pydantic import AliasChoices, Field, SecretStr

from dyag_core.validation.cost import DEFAULT_PRICES
from dyag_runtime.settings import ServiceSettings

# The guide's step 4.5 questions and system prompt.
SMOKE_QUESTIONS = [
    "Qu'est-ce que l'application 6tzen ?",
    "Quel est le statut de 8-SINP ?",
    "Liste les applications du domaine biodiversité",
]
SMOKE_SYSTEM_PROMPT = "Tu es un assistant expert en applications SI."


class OpenAITrainerSettings(ServiceSettings):
    service_name: str = "openai-trainer"
    # Remote jobs run for hours: the worker follows several at once (each mostly waits).
    job_concurrency: int = 4

    # --- the provider: OpenAI, Azure OpenAI or any server that speaks the fine-tuning API -------------
    openai_base_url: str = Field(
        "https://api.openai.com/v1", validation_alias=AliasChoices("DYAG_OPENAI_BASE_URL", "OPENAI_BASE_URL")
    )
    # Only from the environment (or a .env file); never logged, never in events, records or model cards.
    openai_api_key: SecretStr = Field(
        SecretStr(""), validation_alias=AliasChoices("DYAG_OPENAI_API_KEY", "OPENAI_API_KEY")
    )
    openai_organization: str = Field("", validation_alias=AliasChoices("DYAG_OPENAI_ORGANIZATION", "OPENAI_ORG_ID"))
    openai_project: str = Field("", validation_alias=AliasChoices("DYAG_OPENAI_PROJECT", "OPENAI_PROJECT_ID"))
    # Azure OpenAI's classic endpoint (https://<resource>.openai.azure.com with ?api-version=): set the version,
    # and the base URL is the resource's endpoint. Azure's v1 endpoint (…/openai/v1/) needs no version.
    openai_api_version: str = Field("", validation_alias=AliasChoices("DYAG_OPENAI_API_VERSION", "OPENAI_API_VERSION"))
    openai_request_timeout_s: float = 120.0
    openai_upload_timeout_s: float = 1800.0  # files.create of a large dataset
    # Tag remote jobs with metadata {"dyag_plan": <key>}, so a restarted service finds a job it created
    # but had not yet recorded. Turn off for a provider that refuses metadata.
    openai_send_metadata: bool = True

    # --- defaults and gates ----------------------------------------------------------------------------
    openai_default_model: str = "gpt-4o-mini-2024-07-18"
    # USD per 1M training tokens (the providers' list prices change: override with JSON,
    # e.g. DYAG_OPENAI_PRICES='{"gpt-4o-mini-2024-07-18": 3.0}'; a model without a price needs ignore_budget).
    openai_prices: dict[str, float] = Field(default_factory=lambda: dict(DEFAULT_PRICES))
    # A job whose estimated cost is above this is refused (unless the request sets ignore_budget).
    openai_budget_usd: float = 20.0
    openai_max_dataset_bytes: int = 512 * 1024 * 1024

    # --- monitoring and retries ------------------------------------------------------------------------
    openai_poll_interval_s: float = 15.0  # first poll interval; it backs off while nothing changes
    openai_poll_max_interval_s: float = 120.0
    openai_poll_backoff: float = 1.5
    openai_checkpoints_every_polls: int = 10
    openai_retry_base_s: float = 1.0
    openai_retry_cap_s: float = 60.0
    openai_retry_max_attempts: int = 8
    openai_max_retry_after_s: float = 600.0

    # --- smoke test (the guide's step 4.5) ---------------------------------------------------------------
    openai_smoke_questions: list[str] = Field(default_factory=lambda: list(SMOKE_QUESTIONS))
    openai_smoke_system_prompt: str = SMOKE_SYSTEM_PROMPT
    openai_smoke_max_tokens: int = 200
