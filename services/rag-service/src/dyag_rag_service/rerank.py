"""Optional cross-encoder re-ranking, only with a model already on disk (DYAG_RAG_RERANKER=<folder>).

Nothing is downloaded: without a folder holding a sequence-classification model, or without transformers
and torch, re-ranking is skipped (said once in the log) and answers keep the fused order.
"""

from __future__ import annotations

import json
import logging
import threading
from pathlib import Path
from typing import Protocol

log = logging.getLogger(__name__)


class Reranker(Protocol):
    name: str

    def score(self, question: str, texts: list[str]) -> list[float]: ...


class CrossEncoderReranker:
    """A Hugging Face sequence-classification model that scores (question, passage) pairs."""

    def __init__(self, folder: Path, max_length: int = 512):
        import torch
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        self._torch = torch
        self.name = f"cross-encoder {folder.name}"
        self.tokenizer = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
        self.model = AutoModelForSequenceClassification.from_pretrained(str(folder), local_files_only=True).eval()
        self.max_length = max_length
        self._lock = threading.Lock()

    def score(self, question: str, texts: list[str]) -> list[float]:
        with self._lock, self._torch.inference_mode():
            batch = self.tokenizer(
                [question] * len(texts),
                texts,
                padding=True,
                truncation=True,
                max_length=self.max_length,
                return_tensors="pt",
            )
            logits = self.model(**batch).logits
            scores = logits[:, -1] if logits.shape[-1] > 1 else logits[:, 0]
            return [float(s) for s in scores]


def load_reranker(setting: str) -> Reranker | None:
    """The cross-encoder in `setting` (a folder), or None, with the reason logged, when there is none."""
    if not setting:
        log.info("no cross-encoder configured (DYAG_RAG_RERANKER): fused ranking only")
        return None
    folder = Path(setting).expanduser()
    if not (folder / "config.json").is_file():
        log.warning("cross-encoder folder not found; re-ranking skipped", extra={"folder": str(folder)})
        return None
    try:
        architectures = json.loads((folder / "config.json").read_text()).get("architectures") or []
    except (OSError, ValueError):
        architectures = []
    if not any(str(a).endswith("ForSequenceClassification") for a in architectures):
        log.warning(
            "not a cross-encoder (no *ForSequenceClassification architecture); re-ranking skipped",
            extra={"folder": str(folder)},
        )
        return None
    try:
        return CrossEncoderReranker(folder)
    except ImportError as exc:
        log.warning("re-ranking needs transformers and torch; skipped", extra={"error": str(exc)})
    except Exception as exc:  # a broken or incompatible model folder
        log.warning(
            "could not load the cross-encoder; re-ranking skipped", extra={"folder": str(folder), "error": str(exc)}
        )
    return None
