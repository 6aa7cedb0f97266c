"""The evaluation's errors: a stable code plus a message that names the problem and what to change."""

from __future__ import annotations

from dyag_core.errors import DyagError


class EvaluationError(DyagError):
    """The evaluation cannot run (or a report cannot be read back) as asked.

    Codes: unknown_format, empty_test_set, bad_test_set, length_mismatch, bad_embedder, bad_results, no_runs,
    invalid_thresholds (the promotion gate's, gate.py).
    (Reading a test set's provenance manifest may also raise the dataset's missing_manifest / manifest_mismatch.)
    """
