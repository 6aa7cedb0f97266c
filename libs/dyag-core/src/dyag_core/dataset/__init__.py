"""Dataset: grounded French question/answer examples from a catalog, their formats and splits."""

from dyag_core.dataset.errors import DatasetError
from dyag_core.dataset.focus import FocusSelection, check_replay_fraction, focus_train, with_paraphrases
from dyag_core.dataset.formats import (
    FORMATS,
    MANIFEST_SUFFIX,
    manifest_path,
    read_dataset,
    read_manifest,
    read_openai_jsonl,
    to_record,
    write_dataset,
    write_manifest,
)
from dyag_core.dataset.generate import (
    CATALOG_WIDE_TYPES,
    POSITIVE_TYPES,
    DatasetPlan,
    GenerationConfig,
    changed_fact_phrasings,
    every_phrasing,
    fake_names,
    fit_to_catalog,
    generate,
    plan_size,
    regenerate_changed,
)
from dyag_core.dataset.model import DEFAULT_SYSTEM_PROMPT, NEGATIVE_TYPES, QUESTION_TYPES, Example, Provenance
from dyag_core.dataset.split import STRATEGIES, Split, check_leakage, fact_key, split_examples, split_warnings

__all__ = [
    "CATALOG_WIDE_TYPES",
    "DEFAULT_SYSTEM_PROMPT",
    "FORMATS",
    "MANIFEST_SUFFIX",
    "NEGATIVE_TYPES",
    "POSITIVE_TYPES",
    "QUESTION_TYPES",
    "STRATEGIES",
    "DatasetError",
    "DatasetPlan",
    "Example",
    "FocusSelection",
    "GenerationConfig",
    "Provenance",
    "Split",
    "check_leakage",
    "changed_fact_phrasings",
    "check_replay_fraction",
    "every_phrasing",
    "fact_key",
    "fake_names",
    "fit_to_catalog",
    "focus_train",
    "generate",
    "manifest_path",
    "plan_size",
    "read_dataset",
    "read_manifest",
    "read_openai_jsonl",
    "regenerate_changed",
    "split_examples",
    "split_warnings",
    "to_record",
    "with_paraphrases",
    "write_dataset",
    "write_manifest",
]
