"""The export itself, step by step, in a work folder (no RPC, no bus: the job handler and the tests drive it).

    check   the adapter files, the adapter against its base, the architecture, the disk space: before writing
    merge   base + LoRA adapter -> merged/ (peft merge_and_unload, safetensors, the tokenizer beside it)
    convert merged/ -> model-f16.gguf (llama.cpp's convert_hf_to_gguf.py)
    quantize model-f16.gguf -> model-q8_0.gguf, model-q4_K_M.gguf (llama.cpp's quantizer)
    adapter adapter -> adapter-f16.gguf (convert_lora_to_gguf.py); in adapter mode, the base model's GGUF too
    template the Ollama TEMPLATE derived from the tokenizer's chat template, checked; the Modelfile
    parity  each GGUF against the HF model: the reference answers teacher-forced (KL divergence, top-1 agreement,
            perplexity ratio), the tokenizer, the chat template, the adapter; a few greedy answers (see
            dyag_core.export.parity)

A step whose output is already in the work folder (a job resumed after a restart) is not done again.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dyag_core.evaluation.model import EvalCase
from dyag_core.export import (
    DTYPE_BYTES,
    MODES,
    AdapterCheck,
    ConversionChecks,
    ExportError,
    Fidelity,
    ModelfileSpec,
    OllamaTemplate,
    ParityReport,
    check_adapter_matches_base,
    check_architecture,
    check_free_space,
    create_command,
    derive_ollama_template,
    first_difference,
    greedy_answers,
    human_bytes,
    parameter_count,
    parity_report,
    render_messages,
    space_needed,
)
from dyag_core.export.modelfile import DEFAULT_SYSTEM_PROMPT, DEFAULT_TEMPERATURE, DEFAULT_TOP_P
from dyag_core.export.parity import DEFAULT_MAX_ACCURACY_DROP, DEFAULT_THRESHOLD

# Texts a fixed tokenizer.json must cut exactly as before (accents, emoji, CJK, spaces, tabs, special tokens).
TOKENIZER_SAMPLES = (
    "Quel est le domaine de l'application INSPECTA ? Réponds « en une phrase ».",
    "  deux espaces, une\ttabulation\net des lignes\n\n😀 ñ 中文 Ω ß €",
    "<|im_start|>system\nTu es un assistant expert.<|im_end|>\n"
    "<|im_start|>user\nBonjour<|im_end|>\n<|im_start|>assistant\n",
    "https://example.org/app?id=42&x=y — 3,14 % — 1er avril 2019",
)
ADAPTER_CONFIG = "adapter_config.json"
ADAPTER_WEIGHTS = "adapter_model.safetensors"
MAX_HEADER = 100 * 1024 * 1024


def free_bytes(folder: Path) -> int:
    """Free space of the disk that holds `folder` (the default; tests inject their own)."""
    folder = Path(folder)
    while not folder.exists():
        folder = folder.parent
    return shutil.disk_usage(folder).free


# ---------------------------------------------------------------- reading the inputs (headers only)


def safetensors_header(path: Path, *, what: str = "file", code: str = "adapter_corrupt") -> dict[str, dict[str, Any]]:
    """{tensor: {"dtype", "shape", "data_offsets"}} of a safetensors file, checked against the file's size:
    a truncated or damaged file is refused with what is wrong."""
    try:
        size = path.stat().st_size
        with open(path, "rb") as f:
            head = f.read(8)
            if len(head) < 8:
                raise ExportError(
                    code, f"{what} {path.name} is damaged: {size} bytes, too short for a safetensors header"
                )
            length = int.from_bytes(head, "little")
            if length <= 1 or length > min(size - 8, MAX_HEADER):
                raise ExportError(
                    code,
                    f"{what} {path.name} is damaged: not a safetensors "
                    f"file (header length {length}, file {size} bytes)",
                )
            raw = f.read(length)
    except OSError as exc:
        raise ExportError(code, f"cannot read {what} {path.name}: {exc.strerror or exc}") from None
    try:
        header = json.loads(raw)
    except ValueError as exc:
        raise ExportError(code, f"{what} {path.name} is damaged: its safetensors header is not JSON ({exc})") from None
    if not isinstance(header, dict):
        raise ExportError(code, f"{what} {path.name} is damaged: its safetensors header is not a table of tensors")
    data = size - 8 - length
    tensors = {k: v for k, v in header.items() if k != "__metadata__"}
    for name, info in tensors.items():
        try:
            begin, end = info["data_offsets"]
            n = 1
            for dim in info["shape"]:
                n *= int(dim)
            expected = n * DTYPE_BYTES.get(info["dtype"], 0)
        except (KeyError, TypeError, ValueError):
            raise ExportError(
                code, f"{what} {path.name} is damaged: tensor {name} has no valid dtype, shape and offsets"
            ) from None
        if end > data or begin > end or (expected and end - begin != expected):
            raise ExportError(
                code,
                f"{what} {path.name} is damaged or truncated: tensor {name} needs bytes {begin}-{end} of "
                f"{data} ({size} bytes in the file)",
            )
    return tensors


def model_weight_files(folder: Path) -> list[Path]:
    index = folder / "model.safetensors.index.json"
    if index.is_file():
        names = sorted(set(json.loads(index.read_text())["weight_map"].values()))
        return [folder / n for n in names]
    files = sorted(folder.glob("*.safetensors"))
    if not files:
        raise ExportError(
            "unsupported_model",
            f"{folder} has no safetensors weights (model.safetensors): save the model with "
            "save_pretrained(safe_serialization=True)",
        )
    return files


def model_shapes(folder: Path) -> tuple[dict[str, list[int]], int]:
    """Every weight's shape in a HF model folder, and the bytes the weights take."""
    shapes: dict[str, list[int]] = {}
    total = 0
    for path in model_weight_files(folder):
        for name, info in safetensors_header(path, what="model weights", code="unsupported_model").items():
            shapes[name] = list(info["shape"])
            total += info["data_offsets"][1] - info["data_offsets"][0]
    return shapes, total


def read_adapter(adapter_dir: Path) -> tuple[dict[str, Any], dict[str, list[int]]]:
    """adapter_config.json and the adapter's weight shapes; a missing or damaged file is refused by name."""
    if not adapter_dir.is_dir():
        raise ExportError("adapter_missing", f"no LoRA adapter folder at {adapter_dir}")
    missing = [name for name in (ADAPTER_CONFIG, ADAPTER_WEIGHTS) if not (adapter_dir / name).is_file()]
    if missing:
        hint = (
            " (adapter_model.bin, the pickle format, is not accepted: save with safe_serialization=True)"
            if (adapter_dir / "adapter_model.bin").exists()
            else ""
        )
        raise ExportError(
            "adapter_missing", f"the LoRA adapter in {adapter_dir} has no {' and no '.join(missing)}{hint}"
        )
    try:
        config = json.loads((adapter_dir / ADAPTER_CONFIG).read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise ExportError("adapter_corrupt", f"{ADAPTER_CONFIG} of the adapter is not valid JSON: {exc}") from None
    if not isinstance(config, dict) or str(config.get("peft_type", "LORA")).upper() != "LORA":
        kind = config.get("peft_type") if isinstance(config, dict) else type(config).__name__
        raise ExportError("adapter_corrupt", f"{ADAPTER_CONFIG} does not describe a LoRA adapter (peft_type {kind!r})")
    shapes = {
        name: list(info["shape"])
        for name, info in safetensors_header(adapter_dir / ADAPTER_WEIGHTS, what="adapter weights").items()
    }
    return config, shapes


# ---------------------------------------------------------------- the export


@dataclass
class ExportInputs:
    base_model: str  # as asked ("default", a folder)
    base_path: Path  # the resolved HF folder
    adapter_dir: Path | None = None  # None: base_path is already the (merged) model to export
    lineage: dict[str, Any] = field(default_factory=dict)


@dataclass
class ExportOptions:
    quantizations: tuple[str, ...] = ("q8_0",)
    mode: str = "merged"
    ollama_name: str = "dyag-model"
    ollama_quantization: str = ""
    system_prompt: str = DEFAULT_SYSTEM_PROMPT
    temperature: float = DEFAULT_TEMPERATURE
    top_p: float = DEFAULT_TOP_P
    probes: Sequence[EvalCase] = ()  # the test split, in choose_probes' order
    greedy_probes: int = 8  # the first probes, answered greedily by both models (information)
    scored_tokens: int = 1024  # reference-answer tokens read teacher-forced (the gate's measures)
    parity_threshold: float = DEFAULT_THRESHOLD
    max_accuracy_drop: float = DEFAULT_MAX_ACCURACY_DROP
    max_tokens: int = 48

    def modelfile_quantization(self) -> str:
        return self.ollama_quantization or self.quantizations[0]


@dataclass
class ExportFileInfo:
    name: str  # relative to the export folder
    kind: str
    quantization: str = ""


@dataclass
class ExportOutcome:
    folder: Path
    architecture: str
    files: list[ExportFileInfo]
    parity: list[ParityReport]
    template: OllamaTemplate
    modelfile: ModelfileSpec
    command: str
    timings: dict[str, float]
    adapter_sha256: str = ""

    @property
    def passed(self) -> bool:
        return all(p.passed for p in self.parity)

    def failure(self) -> str:
        failed = [p for p in self.parity if not p.passed]
        return "; ".join(f"parity gate failed for {p.quantization}: {p.reason}" for p in failed)


Progress = Callable[[float, str], None]


class Exporter:
    def __init__(
        self,
        workdir: Path,
        *,
        llama: Any = None,
        progress: Progress = lambda f, s: None,
        log: Callable[[str], None] = print,
        should_stop: Callable[[], None] = lambda: None,
        free_space: Callable[[Path], int] = free_bytes,
        copies: int = 2,
        threads: int = 0,
        supported: Callable[[], Sequence[str]] | None = None,
    ):
        self.workdir = Path(workdir)
        self._llama = llama
        self.progress, self.log, self.should_stop = progress, log, should_stop
        self.free_space, self.copies, self.threads = free_space, copies, threads
        self._supported = supported
        self.timings: dict[str, float] = {}

    @property
    def llama(self):
        if self._llama is None:
            from dyag_model_exporter.llama import find_llama_cpp

            self._llama = find_llama_cpp()
        return self._llama

    def _timed(self, name: str, began: float) -> None:
        self.timings[name] = round(self.timings.get(name, 0.0) + time.monotonic() - began, 2)

    # --- check, before anything is written ---------------------------------------------------
    def supported_architectures(self) -> Sequence[str]:
        if self._supported is not None:
            return self._supported()
        from dyag_model_exporter.llama import supported_architectures

        return supported_architectures(self.llama)

    def check(self, inputs: ExportInputs, options: ExportOptions) -> dict[str, Any]:
        """Everything that can be refused without writing: ExportError naming the problem."""
        if options.mode not in MODES:
            raise ExportError("invalid_request", f"unknown mode {options.mode!r}; choose {' or '.join(MODES)}")
        if options.modelfile_quantization() not in options.quantizations:
            raise ExportError(
                "invalid_request",
                f"the Modelfile's GGUF {options.modelfile_quantization()} is not among the quantizations asked "
                f"({', '.join(options.quantizations)})",
            )
        if options.mode == "adapter" and inputs.adapter_dir is None:
            raise ExportError("invalid_request", "adapter mode needs a LoRA adapter: this model is already merged")
        config_path = inputs.base_path / "config.json"
        if not config_path.is_file():
            raise ExportError(
                "unsupported_model", f"{inputs.base_path} has no config.json: not a HuggingFace model folder"
            )
        config = json.loads(config_path.read_text(encoding="utf-8"))
        base_shapes, base_bytes = model_shapes(inputs.base_path)
        adapter_parameters = 0
        if inputs.adapter_dir is not None:
            adapter_config, adapter_shapes = read_adapter(inputs.adapter_dir)
            check_adapter_matches_base(adapter_config, adapter_shapes, str(inputs.base_path), base_shapes)
            adapter_parameters = parameter_count(adapter_shapes)
        architecture = self._architecture(config)
        parameters = parameter_count(base_shapes)
        needed = space_needed(
            base_parameters=parameters,
            merged_bytes=base_bytes if inputs.adapter_dir else 0,
            quantizations=options.quantizations,
            adapter_parameters=adapter_parameters,
            base_gguf=["f16", options.modelfile_quantization()] if options.mode == "adapter" else [],
            copies=self.copies,
        )
        free = self.free_space(self.workdir)
        check_free_space(needed, free, str(self.workdir), self.copies)
        self.log(
            f"{architecture}, {parameters / 1e6:.1f} M parameters; the export needs about {human_bytes(needed.total)}, "
            f"{human_bytes(free)} free"
        )
        if not options.probes:
            raise ExportError(
                "no_probes",
                "the parity gate has no probe: give probes, or export a model trained on a dataset with a test split",
            )
        return {"architecture": architecture, "parameters": parameters, "needed_bytes": needed.total, "config": config}

    def _architecture(self, config: dict[str, Any]) -> str:
        architectures = config.get("architectures") or []
        if architectures and self._supported is None:
            from dyag_model_exporter.llama import registered_architectures

            if architectures[0] in registered_architectures(self.llama):  # fast: no converter run
                return architectures[0]
        return check_architecture(config, self.supported_architectures())

    # --- the steps ---------------------------------------------------------------------------
    def merge(self, inputs: ExportInputs, config: dict[str, Any]) -> Path:
        """base + adapter -> merged/ (HF safetensors, with the base's tokenizer); the base folder itself when there is
        no adapter."""
        if inputs.adapter_dir is None:
            return inputs.base_path
        out = self.workdir / "merged"
        if (out / ".done").is_file():
            self.log("merged model already in the work folder (resumed job)")
            return out
        import torch
        from peft import PeftModel
        from transformers import AutoModelForCausalLM

        from dyag_llm.local import load_tokenizer

        began = time.monotonic()
        dtype_name = str(config.get("dtype") or config.get("torch_dtype") or "float32")
        save_dtype = {"float16": torch.float16, "bfloat16": torch.bfloat16}.get(dtype_name, torch.float32)
        model = AutoModelForCausalLM.from_pretrained(str(inputs.base_path), dtype=torch.float32, local_files_only=True)
        try:
            model = PeftModel.from_pretrained(model, str(inputs.adapter_dir)).merge_and_unload()
        except Exception as exc:
            raise ExportError(
                "adapter_corrupt",
                f"peft could not load the LoRA adapter into the base model: {type(exc).__name__}: {exc}",
            ) from None
        model = model.to(save_dtype)
        tmp = self.workdir / "merged.part"
        shutil.rmtree(tmp, ignore_errors=True)
        model.save_pretrained(tmp, safe_serialization=True)
        load_tokenizer(str(inputs.base_path)).save_pretrained(tmp)
        for extra in ("generation_config.json",):
            if (inputs.base_path / extra).is_file() and not (tmp / extra).is_file():
                shutil.copy2(inputs.base_path / extra, tmp / extra)
        self._fix_tokenizer(tmp)
        (tmp / ".done").write_text("merged\n")
        shutil.rmtree(out, ignore_errors=True)
        os.replace(tmp, out)
        del model
        self._timed("merge", began)
        self.log(
            "merged the adapter into the base model "
            f"({str(save_dtype).removeprefix('torch.')}) in {self.timings['merge']:.1f} s"
        )
        return out

    def _fix_tokenizer(self, folder: Path) -> bool:
        """Rewrite a byte-level BPE tokenizer.json that llama.cpp's converter would misread (see
        llama.gguf_ready_tokenizer), after checking that it cuts text into exactly the same tokens."""
        from dyag_model_exporter.llama import gguf_ready_tokenizer, same_tokenization

        path = folder / "tokenizer.json"
        if not path.is_file():
            return False
        original = json.loads(path.read_text(encoding="utf-8"))
        fixed = gguf_ready_tokenizer(original)
        if fixed is None:
            return False
        if not same_tokenization(original, fixed, TOKENIZER_SAMPLES):
            self.log(
                "tokenizer.json has byte_fallback with a byte-level pre-tokenizer, "
                "but removing it would change the tokens: kept as is",
                "warning",
            )
            return False
        if path.is_symlink():  # a view's link to a folder that is not ours: replaced, never written through
            path.unlink()
        path.write_text(json.dumps(fixed, ensure_ascii=False), encoding="utf-8")
        self.log(
            "tokenizer.json: byte_fallback dropped (a byte-level BPE never falls back; llama.cpp's converter "
            "would read it as a SentencePiece vocabulary and break the GGUF's tokenizer); the tokens are the same"
        )
        return True

    def gguf_source(self, model_dir: Path, name: str) -> Path:
        """The folder llama.cpp's converter reads: model_dir, or a view of it (links) with a fixed tokenizer.json."""
        from dyag_model_exporter.llama import gguf_ready_tokenizer

        path = model_dir / "tokenizer.json"
        if not path.is_file() or gguf_ready_tokenizer(json.loads(path.read_text(encoding="utf-8"))) is None:
            return model_dir
        view = self.workdir / f"{name}.gguf-source"
        shutil.rmtree(view, ignore_errors=True)
        view.mkdir(parents=True)
        for item in model_dir.iterdir():
            if item.name != ".done":
                (view / item.name).symlink_to(item.resolve())
        return view if self._fix_tokenizer(view) else model_dir

    def convert(self, model_dir: Path, prefix: str = "model") -> Path:
        from dyag_model_exporter.llama import convert_hf

        out = self.workdir / f"{prefix}-f16.gguf"
        if out.is_file():
            return out
        began = time.monotonic()
        convert_hf(
            self.llama,
            self.gguf_source(model_dir, prefix),
            out,
            outtype="f16",
            log=self.log,
            should_stop=self.should_stop,
        )
        self._timed(f"convert{'' if prefix == 'model' else '_' + prefix}", began)
        return out

    def quantize(self, f16: Path, quantization: str, prefix: str = "model") -> Path:
        from dyag_model_exporter.llama import quantize_in_child

        if quantization == "f16":
            return f16
        out = self.workdir / f"{prefix}-{quantization}.gguf"
        if out.is_file():
            return out
        began = time.monotonic()
        quantize_in_child(f16, out, quantization, threads=self.threads, log=self.log, should_stop=self.should_stop)
        self._timed(f"quantize_{quantization}{'' if prefix == 'model' else '_' + prefix}", began)
        self.log(f"{out.name}: {human_bytes(out.stat().st_size)} in {time.monotonic() - began:.1f} s")
        return out

    def convert_adapter(self, inputs: ExportInputs) -> Path:
        from dyag_model_exporter.llama import convert_lora

        out = self.workdir / "adapter-f16.gguf"
        if out.is_file():
            return out
        began = time.monotonic()
        assert inputs.adapter_dir is not None
        convert_lora(
            self.llama,
            inputs.adapter_dir,
            inputs.base_path,
            out,
            outtype="f16",
            log=self.log,
            should_stop=self.should_stop,
        )
        self._timed("convert_adapter", began)
        return out

    def template(self, model_dir: Path) -> tuple[Any, OllamaTemplate]:
        from dyag_llm.local import load_tokenizer, render_chat

        tokenizer = load_tokenizer(str(model_dir))
        specials = list(
            dict.fromkeys([*tokenizer.all_special_tokens, *getattr(tokenizer, "added_tokens_encoder", {}).keys()])
        )
        derived = derive_ollama_template(
            lambda m, g: render_chat(tokenizer, m, add_generation_prompt=g),
            special_tokens=specials,
            eos_token=tokenizer.eos_token,
        )
        return tokenizer, derived

    def parity(
        self,
        model_dir: Path,
        tokenizer: Any,
        template: OllamaTemplate,
        ggufs: list[tuple[str, Path, Path | None]],
        options: ExportOptions,
        on_level: Callable[[int], None] = lambda i: None,
        base_dir: Path | None = None,
    ) -> list[ParityReport]:
        """Each GGUF (label, file, LoRA GGUF or None) against the HF model in model_dir: the reference answers read
        teacher-forced by both (KL divergence, top-1 agreement, perplexity), the tokenizer, the chat template, the
        adapter (against the base model in base_dir, when one was merged), and a few greedy answers."""
        import numpy as np

        from dyag_llm.fidelity import compare_logprobs
        from dyag_llm.local import encode_prompt, render_chat
        from dyag_model_exporter.llama import answer_in_child, gguf_metadata

        probes = list(options.probes)
        greedy_probes = probes[: max(options.greedy_probes, 1)]
        conversations = [self._conversation(options, p.question) for p in greedy_probes]
        sequences = self._reference_sequences(tokenizer, probes, options)
        if not sequences:
            raise ExportError("no_probes", "the parity gate has no probe with a reference answer to read")
        scratch = self.workdir / "parity"
        scratch.mkdir(parents=True, exist_ok=True)
        began = time.monotonic()
        hf_answers, reference = self._hf_side(
            model_dir, tokenizer, conversations, sequences, scratch / "hf.npy", options.max_tokens
        )
        base_reference = adapter_kld = None
        if base_dir is not None:
            _, base_reference = self._hf_side(base_dir, tokenizer, [], sequences, scratch / "base.npy", 0)
            ref, ref_base = np.load(reference, mmap_mode="r"), np.load(base_reference, mmap_mode="r")
            targets = [t for s in sequences for t in s["tokens"][s["first"] :]]
            klds = [
                sum(compare_logprobs(ref[i : i + 256], ref_base[i : i + 256], targets[i : i + 256]).kld)
                for i in range(0, len(targets), 256)
            ]
            adapter_kld = sum(klds) / len(targets)
        self._timed("parity_hf", began)
        scored = sum(len(s["tokens"]) - s["first"] for s in sequences)
        self.log(
            f"HF model (transformers, fp32): {len(sequences)} reference answers ({scored} tokens) read teacher-forced"
            f"{' with the base model too' if base_dir else ''}, {len(greedy_probes)} probes answered greedily, in "
            f"{self.timings['parity_hf']:.1f} s"
        )
        jinja_prompts = [render_chat(tokenizer, c, add_generation_prompt=True) for c in conversations]
        go_prompts = [render_messages(template.template, c) for c in conversations]
        bad = [i for i, (a, b) in enumerate(zip(jinja_prompts, go_prompts, strict=True)) if a != b]
        if bad:
            raise ExportError(
                "unsupported_chat_template",
                f"the derived Ollama template renders probe {bad[0] + 1} differently from the "
                f"tokenizer's chat template: {go_prompts[bad[0]]!r} vs {jinja_prompts[bad[0]]!r}",
            )
        hf_tokens = [encode_prompt(tokenizer, c) for c in conversations]
        reports: list[ParityReport] = []
        for i, (label, path, lora) in enumerate(ggufs):
            on_level(i)
            began = time.monotonic()
            result = answer_in_child(
                path,
                go_prompts,
                lora=lora,
                max_tokens=options.max_tokens,
                stop=template.stop,
                threads=self.threads,
                workdir=scratch,
                log=self.log,
                should_stop=self.should_stop,
                sequences=sequences,
                reference=reference,
                base=base_reference,
            )
            s = result["scored"]
            fidelity = Fidelity.of_tokens(
                [k for row in s["kld"] for k in row],
                [t for row in s["top1"] for t in row],
                [n for row in s["nll_reference"] for n in row],
                [n for row in s["nll_candidate"] for n in row],
            )
            carried = gguf_metadata(path).get("tokenizer.chat_template")
            verdict, detail = chat_template_check(tokenizer, carried, sequences)
            checks = ConversionChecks(
                conversations=len(sequences),
                same_tokens=sum(s["same_tokens"]),
                first_token_mismatch=s["first_mismatch"],
                chat_template=verdict,
                chat_template_detail=detail,
                adapter=AdapterCheck.of_sequences(
                    adapter_kld,
                    [sum(row) / len(row) for row in s["kld"]],
                    [sum(row) / len(row) for row in s["kld_base"]],
                )
                if adapter_kld is not None
                else None,
            )
            greedy = greedy_answers(
                greedy_probes,
                hf_answers,
                [str(a) for a in result["answers"]],
                [list(a) == list(b) for a, b in zip(result["tokens"], hf_tokens, strict=True)],
            )
            report = parity_report(
                label,
                fidelity,
                checks,
                greedy,
                threshold=options.parity_threshold,
                max_accuracy_drop=options.max_accuracy_drop,
            )
            self._timed(f"parity_{label}", began)
            reports.append(report)
            self.log(
                f"parity {label}: mean KLD {fidelity.mean_kld:.4f} (p99 {fidelity.p99_kld:.3f}), top-1 "
                f"{fidelity.top1_agreement:.1%}, perplexity ratio {fidelity.perplexity_ratio:.3f} over "
                f"{fidelity.tokens} tokens; tokenizer {checks.same_tokens}/{checks.conversations}, chat template "
                f"{checks.chat_template}"
                f"{', adapter ' + checks.adapter.verdict if checks.adapter else ''}; greedy agreement "
                f"{greedy.agreement:.0%} -> {'passed' if report.passed else 'FAILED: ' + report.reason}"
            )
        return reports

    @staticmethod
    def _conversation(options: ExportOptions, question: str, answer: str | None = None) -> list[dict[str, str]]:
        return (
            ([{"role": "system", "content": options.system_prompt}] if options.system_prompt else [])
            + [{"role": "user", "content": question}]
            + ([{"role": "assistant", "content": answer}] if answer is not None else [])
        )

    def _reference_sequences(self, tokenizer: Any, probes: Sequence[EvalCase], options: ExportOptions) -> list[dict]:
        """The probes' whole conversations (their reference answer included), in probe order, until the answers hold
        `options.scored_tokens` tokens: {"text", "tokens", "first" (the answer's first token)}."""
        from dyag_llm.local import encode_chat, render_chat

        sequences, total = [], 0
        for probe in probes:
            if total >= options.scored_tokens:
                break
            if not probe.expected_answer.strip():
                continue
            conversation = self._conversation(options, probe.question, probe.expected_answer)
            tokens, mask = encode_chat(tokenizer, conversation)
            if 1 not in mask or mask.index(1) == 0:
                continue
            first = mask.index(1)
            text = render_chat(tokenizer, conversation)
            sequences.append({"text": text, "tokens": tokens, "first": first, "messages": conversation})
            total += len(tokens) - first
        return sequences

    def _hf_side(
        self, model_dir: Path, tokenizer: Any, conversations: list, sequences: list[dict], out: Path, max_tokens: int
    ) -> tuple[list[str], Path]:
        """The HF model's greedy answers to `conversations`, and its log-probabilities at every reference answer token
        of `sequences`, written to `out` (.npy, float32, one row per token)."""
        import numpy as np
        import torch
        from transformers import AutoModelForCausalLM

        from dyag_llm.fidelity import log_softmax
        from dyag_llm.local import encode_prompt

        model = AutoModelForCausalLM.from_pretrained(str(model_dir), dtype=torch.float32, local_files_only=True).eval()
        answers = []
        for conversation in conversations:
            self.should_stop()
            answers.append(greedy_answer(model, tokenizer, encode_prompt(tokenizer, conversation), max_tokens))
        rows = sum(len(s["tokens"]) - s["first"] for s in sequences)
        table = np.lib.format.open_memmap(out, mode="w+", dtype=np.float32, shape=(rows, model.config.vocab_size))
        row = 0
        with torch.inference_mode():
            for sequence in sequences:
                self.should_stop()
                tokens, first = sequence["tokens"], sequence["first"]
                logits = model(input_ids=torch.tensor([tokens])).logits[0, first - 1 : len(tokens) - 1]
                table[row : row + len(logits)] = log_softmax(logits.float().numpy())[:, : table.shape[1]]
                row += len(logits)
        table.flush()
        del table, model
        return answers, out

    # --- everything ---------------------------------------------------------------------------
    def run(self, inputs: ExportInputs, options: ExportOptions) -> ExportOutcome:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.progress(0.01, "checking the model, the adapter and the disk space")
        plan = self.check(inputs, options)
        self.progress(
            0.05, "merging the adapter into the base model" if inputs.adapter_dir else "using the merged model as it is"
        )
        merged = self.merge(inputs, plan["config"])
        self.should_stop()
        self.progress(0.25, "converting to GGUF (llama.cpp convert_hf_to_gguf.py, f16)")
        f16 = self.convert(merged)
        files = (
            [
                ExportFileInfo(f.relative_to(self.workdir).as_posix(), "merged")
                for f in sorted(merged.rglob("*"))
                if f.is_file() and f.name != ".done"
            ]
            if inputs.adapter_dir
            else []
        )
        ggufs: dict[str, Path] = {}
        levels = list(dict.fromkeys(options.quantizations))
        for i, q in enumerate(levels):
            self.should_stop()
            self.progress(0.4 + 0.15 * i / max(len(levels), 1), f"quantizing to {q} (llama.cpp)")
            ggufs[q] = self.quantize(f16, q)
            files.append(ExportFileInfo(ggufs[q].name, "gguf", q))
        if "f16" not in levels:
            f16.unlink(missing_ok=True)  # only the quantizer's input
        adapter_gguf = base_gguf = None
        if inputs.adapter_dir is not None:
            self.progress(0.56, "converting the LoRA adapter to GGUF (convert_lora_to_gguf.py)")
            adapter_gguf = self.convert_adapter(inputs)
            files.append(ExportFileInfo(adapter_gguf.name, "adapter_gguf", "f16"))
        q_ollama = options.modelfile_quantization()
        if options.mode == "adapter":
            self.progress(0.6, f"converting the base model to GGUF ({q_ollama}) for Ollama's ADAPTER")
            base_f16 = self.convert(inputs.base_path, prefix="base")
            base_gguf = self.quantize(base_f16, q_ollama, prefix="base")
            if base_gguf != base_f16:
                base_f16.unlink(missing_ok=True)
            files.append(ExportFileInfo(base_gguf.name, "base_gguf", q_ollama))
        self.progress(0.65, "deriving the Ollama template from the tokenizer's chat template")
        tokenizer, template = self.template(merged)
        if options.mode == "adapter":
            assert base_gguf is not None and adapter_gguf is not None
            spec = ModelfileSpec(
                base_gguf.name,
                template.template,
                options.system_prompt,
                options.temperature,
                options.top_p,
                template.stop,
                adapter_file=adapter_gguf.name,
            )
        else:
            spec = ModelfileSpec(
                ggufs[q_ollama].name,
                template.template,
                options.system_prompt,
                options.temperature,
                options.top_p,
                template.stop,
            )
        (self.workdir / "Modelfile").write_text(spec.text(), encoding="utf-8")
        files.append(ExportFileInfo("Modelfile", "modelfile"))
        command = create_command(options.ollama_name)
        pairs: list[tuple[str, Path, Path | None]] = [(q, ggufs[q], None) for q in levels]
        if options.mode == "adapter":
            pairs.append((f"{q_ollama}+adapter", base_gguf, adapter_gguf))  # type: ignore[arg-type]
        self.progress(0.7, f"parity gate: {len(options.probes)} probes, HF model vs GGUF")
        reports = self.parity(
            merged,
            tokenizer,
            template,
            pairs,
            options,
            base_dir=inputs.base_path if inputs.adapter_dir is not None else None,
            on_level=lambda i: self.progress(0.75 + 0.2 * i / len(pairs), f"parity gate: {pairs[i][0]} (llama.cpp)"),
        )
        (self.workdir / "parity.json").write_text(
            json.dumps([r.to_dict() for r in reports], ensure_ascii=False, indent=2), encoding="utf-8"
        )
        files.append(ExportFileInfo("parity.json", "report"))
        (self.workdir / "README.md").write_text(bundle_readme(options, spec, command, reports), encoding="utf-8")
        files.append(ExportFileInfo("README.md", "report"))
        for scratch in [
            self.workdir / "parity",
            *self.workdir.glob("*.gguf-source"),
        ]:  # the bundle keeps only the outputs
            shutil.rmtree(scratch, ignore_errors=True)
        for partial in self.workdir.glob("*.part"):  # what a converter orphaned by a killed service left
            if partial.is_file():
                partial.unlink(missing_ok=True)
        (self.workdir / "merged" / ".done").unlink(missing_ok=True)
        return ExportOutcome(
            self.workdir, plan["architecture"], files, reports, template, spec, command, dict(self.timings)
        )


def chat_template_check(tokenizer: Any, gguf_template: Any, sequences: Sequence[dict]) -> tuple[str, str]:
    """(verdict, what differs): does the chat template a GGUF carries render the probe conversations as the HF
    tokenizer's does? same | differs | missing (the HF tokenizer has one, the GGUF none) | none (neither has one)."""
    hf_template = getattr(tokenizer, "chat_template", None)
    if not gguf_template:
        return ("missing", "is missing (the HF tokenizer has one)") if hf_template else ("none", "")
    if not hf_template:
        return "none", ""
    for number, sequence in enumerate(sequences, start=1):
        want = sequence["text"]
        try:
            got = tokenizer.apply_chat_template(
                sequence.get("messages") or [], chat_template=str(gguf_template), tokenize=False
            )
        except Exception as exc:  # noqa: BLE001 - a template that does not even render is a template that differs
            return "differs", f"does not render a conversation ({type(exc).__name__}: {exc})"
        if got != want:
            at = first_difference(got, want)
            return "differs", (
                f"renders conversation {number} otherwise from character {at}: {got[at : at + 40]!r} instead of "
                f"{want[at : at + 40]!r}"
            )
    return "same", ""


def greedy_answer(model: Any, tokenizer: Any, prompt: list[int], max_tokens: int) -> str:
    """The HF model's plain greedy answer to one prompt (no batch, no padding, no loop cut: llama.cpp's side of the gate
    decodes the same way), ended by the model's end-of-turn tokens."""
    import torch

    from dyag_llm.local import stop_token_ids

    stops = stop_token_ids(tokenizer, model.config)
    with torch.inference_mode():
        out = model.generate(
            input_ids=torch.tensor([prompt]),
            attention_mask=torch.ones(1, len(prompt), dtype=torch.long),
            max_new_tokens=max_tokens,
            do_sample=False,
            eos_token_id=stops,
            pad_token_id=stops[0],
        )
    reply: list[int] = []
    for token in out[0, len(prompt) :].tolist():
        if token in stops:
            break
        reply.append(token)
    return tokenizer.decode(reply, skip_special_tokens=True).strip()


def bundle_readme(options: ExportOptions, spec: ModelfileSpec, command: str, reports: Sequence[ParityReport]) -> str:
    rows = "\n".join(
        f"| {r.quantization} | {r.fidelity.mean_kld:.4f} (≤ {r.limits.max_mean_kld:g}) | "
        f"{r.fidelity.p99_kld:.3f} (≤ {r.limits.max_p99_kld:g}) | "
        f"{r.fidelity.top1_agreement:.1%} (≥ {r.limits.min_top1_agreement:.0%}) | "
        f"{r.fidelity.perplexity_ratio:.3f} (≤ {r.limits.max_perplexity_ratio:g}) | "
        f"{r.checks.same_tokens}/{r.checks.conversations} | {r.checks.chat_template} | "
        f"{r.checks.adapter.verdict if r.checks.adapter else '-'} | {r.agreement:.0%} | "
        f"{'passed' if r.passed else 'FAILED: ' + ', '.join(r.failed)} |"
        for r in reports
    )
    tokens = reports[0].fidelity.tokens if reports else 0
    adapter = f" with the LoRA adapter `{spec.adapter_file}`" if spec.adapter_file else ""
    return f"""# Ollama export bundle

Create the model (in this folder):

    {command}

then ask it:

    ollama run {options.ollama_name} "Qu'est-ce que l'application … ?"

`Modelfile` uses `{spec.model_file}`{adapter}; its TEMPLATE is derived
from the tokenizer's own chat template (checked to render the same prompts).

## Parity gate (HF model vs GGUF)

The test split's reference answers ({tokens} tokens) read teacher-forced by both models: KL divergence
KL(HF || GGUF), top-1 agreement and perplexity ratio, each against its level's limit; the GGUF's tokenizer and chat
template against the HF tokenizer's; the adapter (nearer the merged model than the base model). Greedy answer
agreement ({reports[0].greedy.probes if reports else 0} probes) is information.

| GGUF | mean KLD | p99 KLD | top-1 | perplexity ratio | same tokens | template | adapter | greedy | verdict |
|---|---|---|---|---|---|---|---|---|---|
{rows}

Details: `parity.json`.
"""
