"""Exporting a fine-tuned model (the guide's step 5.4), the pure part: what an export will write and whether
it may (quantization levels, architecture, adapter against base, disk space), the Ollama TEMPLATE derived
from the tokenizer's chat template (with an evaluator of the Go template subset it uses), the Modelfile and
the /api/create request, and the parity gate's scoring.

No torch, llama.cpp or HTTP here: the model-exporter service does the work; this is what it and its tests agree on.
"""

from dyag_core.export.gotemplate import GoTemplateError
from dyag_core.export.gotemplate import render as render_go_template
from dyag_core.export.modelfile import (
    DEFAULT_SYSTEM_PROMPT,
    DEFAULT_TEMPERATURE,
    DEFAULT_TOP_P,
    ModelfileSpec,
    check_model_name,
    create_command,
    parse_modelfile,
)
from dyag_core.export.parity import (
    DEFAULT_MAX_ACCURACY_DROP,
    DEFAULT_THRESHOLD,
    LEVEL_LIMITS,
    AdapterCheck,
    ConversionChecks,
    Fidelity,
    FidelityLimits,
    GreedyAnswers,
    ParityReport,
    choose_probes,
    first_difference,
    greedy_answers,
    limits_for,
    parity_report,
    same_answer,
)
from dyag_core.export.plan import (
    DEFAULT_QUANTIZATION,
    DTYPE_BYTES,
    MODES,
    QUANTIZATIONS,
    ExportError,
    Quantization,
    SpaceNeeded,
    check_adapter_matches_base,
    check_architecture,
    check_free_space,
    gguf_bytes,
    human_bytes,
    parameter_count,
    parse_quantizations,
    space_needed,
)
from dyag_core.export.template import OllamaTemplate, TemplateError, derive_ollama_template, render_messages

__all__ = [
    "DEFAULT_MAX_ACCURACY_DROP",
    "DEFAULT_QUANTIZATION",
    "DEFAULT_SYSTEM_PROMPT",
    "DEFAULT_TEMPERATURE",
    "DEFAULT_THRESHOLD",
    "DEFAULT_TOP_P",
    "DTYPE_BYTES",
    "LEVEL_LIMITS",
    "MODES",
    "QUANTIZATIONS",
    "AdapterCheck",
    "ConversionChecks",
    "ExportError",
    "Fidelity",
    "FidelityLimits",
    "GoTemplateError",
    "GreedyAnswers",
    "ModelfileSpec",
    "OllamaTemplate",
    "ParityReport",
    "Quantization",
    "SpaceNeeded",
    "TemplateError",
    "check_adapter_matches_base",
    "check_architecture",
    "check_free_space",
    "check_model_name",
    "choose_probes",
    "create_command",
    "derive_ollama_template",
    "first_difference",
    "gguf_bytes",
    "greedy_answers",
    "human_bytes",
    "limits_for",
    "parameter_count",
    "parity_report",
    "parse_modelfile",
    "parse_quantizations",
    "render_go_template",
    "render_messages",
    "same_answer",
    "space_needed",
]
