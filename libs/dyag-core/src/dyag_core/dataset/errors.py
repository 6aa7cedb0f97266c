"""The dataset's errors: a stable code plus a message that says what to change."""

from __future__ import annotations

from dyag_core.errors import DyagError


class DatasetError(DyagError):
    """The dataset cannot be built (or read back) as asked.

    Codes: unknown_question_type, no_usable_field, too_many_questions, bad_config,
    unknown_format, missing_manifest, manifest_mismatch, bad_dataset.
    """
