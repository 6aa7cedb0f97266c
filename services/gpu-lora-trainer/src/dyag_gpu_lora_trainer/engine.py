"""The LoRA trainer: trl's SFTTrainer on peft (or unsloth on CUDA), set up to be fast on a plain CPU.

What makes it fast, on top of the usual SFTTrainer:

- **Loss on the assistant's tokens only**, from the one chat-template function (dyag_llm.local.encode_chat);
  trl's fused LM head then projects only those positions onto the vocabulary (the LM head is a fifth of
  SmolLM2-135M's FLOPs per token).
- **Packing** (best-fit decreasing) of the short QA examples into rows of max_seq_len tokens, with position
  ids restarting per example: transformers builds a block-diagonal causal mask from them, so examples never
  see each other, and no compute goes to padding.
- **bf16 on CPU** (autocast) where the CPU has native bf16 (AVX512-BF16/AMX): about 2x the fp32 matmul rate;
  bench/bench_train.py shows the loss curve stays close to fp32's.
- No gradient checkpointing (a 135M model fits: recomputing the forward would cost a third more).

Checkpoints go to `workdir/checkpoints` every `checkpoint_steps`; a run started again on the same workdir
resumes from the last complete one (optimizer, scheduler, RNG and data position included).
"""

from __future__ import annotations

import importlib.util
import json
import logging
import math
import os
import platform
import re
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dyag_core.training import ChatExample, ResolvedConfig, TrainingInputError, check_lengths

log = logging.getLogger(__name__)

ProgressFn = Callable[[dict[str, Any]], None]
_CHECKPOINT = re.compile(r"^checkpoint-(\d+)$")


@dataclass
class Hardware:
    device: str  # cpu | cuda
    precision: str  # bf16 | fp16 | fp32
    use_unsloth: bool
    load_in_4bit: bool
    description: str
    notes: list[str] = field(default_factory=list)

    @property
    def backend(self) -> str:
        return "unsloth" if self.use_unsloth else "transformers+peft"

    @property
    def precision_label(self) -> str:
        return self.precision + (" + 4-bit base (QLoRA)" if self.load_in_4bit else "")


def cpu_has_bf16() -> bool:
    """Native bf16 matmul on this CPU (AVX512-BF16 or AMX); without it bf16 is emulated and slower than fp32."""
    import torch

    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except Exception:  # older torch builds
        return False


def unsloth_installed() -> bool:
    return importlib.util.find_spec("unsloth") is not None


def pick_hardware(config: ResolvedConfig, device: str | None = None) -> Hardware:
    """Device, precision and backend: unsloth + 4-bit on CUDA when installed, else transformers + peft."""
    import torch

    notes: list[str] = []
    cuda = torch.cuda.is_available() if device is None else device == "cuda"
    if cuda:
        name = torch.cuda.get_device_name(0)
        precision = config.precision
        if precision == "auto":
            precision = "bf16" if torch.cuda.is_bf16_supported() else "fp16"
        use_unsloth = config.use_unsloth if config.use_unsloth is not None else unsloth_installed()
        if use_unsloth and not unsloth_installed():
            notes.append("unsloth asked but not installed (the gpu extra): transformers + peft")
            use_unsloth = False
        load_in_4bit = config.load_in_4bit if config.load_in_4bit is not None else True
        if load_in_4bit and not use_unsloth and importlib.util.find_spec("bitsandbytes") is None:
            notes.append("4-bit asked but bitsandbytes is not installed: 16-bit LoRA")
            load_in_4bit = False
        return Hardware("cuda", precision, use_unsloth, load_in_4bit, f"cuda: {name}", notes)
    precision = config.precision
    bf16_native = cpu_has_bf16()
    if precision == "auto":
        precision = "bf16" if bf16_native else "fp32"
    if precision == "fp16":
        notes.append("fp16 is not used on CPU: bf16" + ("" if bf16_native else " (emulated: slow)") + " instead")
        precision = "bf16"
    if config.use_unsloth:
        notes.append("unsloth needs CUDA: transformers + peft on CPU")
    if config.load_in_4bit:
        notes.append("4-bit (QLoRA) needs CUDA: 16/32-bit LoRA on CPU")
    description = f"cpu: {platform.processor() or platform.machine()}, {torch.get_num_threads()} threads" + (
        ", native bf16" if bf16_native else ""
    )
    return Hardware("cpu", precision, False, False, description, notes)


# --- data ---------------------------------------------------------------------------------------------
def tokenize_examples(tokenizer: Any, examples: list[ChatExample], max_seq_len: int, name: str) -> dict[str, list]:
    """input_ids and assistant_masks for each example; any example longer than max_seq_len is refused by line."""
    from dyag_llm.local import encode_chat

    ids, masks = [], []
    for example in examples:
        i, m = encode_chat(tokenizer, example.messages)
        ids.append(i)
        masks.append(m)
    check_lengths(examples, [len(i) for i in ids], max_seq_len, name)
    empty = [e.line for e, m in zip(examples, masks, strict=True) if not any(m)]
    if empty:
        raise TrainingInputError(
            "malformed_dataset",
            f"the {name} dataset has examples with no assistant token after templating: lines {empty[:10]}",
        )
    return {"input_ids": ids, "assistant_masks": masks}


# --- the loss -----------------------------------------------------------------------------------------
def causal_parts(model: Any) -> tuple[Any, Any]:
    """(backbone, lm_head) of a causal LM, under its peft / unsloth wrappers."""
    causal = model.get_base_model() if hasattr(model, "get_base_model") else model
    return getattr(causal, causal.base_model_prefix), causal.get_output_embeddings()


def assistant_only_loss(model: Any, inputs: dict[str, Any]) -> Any:
    """Mean cross-entropy over the labelled (assistant) positions, projecting only those onto the vocabulary.

    The backbone runs on every token; the LM head (576 x 49,152 for SmolLM2: a fifth of the model's FLOPs
    per token) runs only where a label is. Pure torch, so it runs on CPU as on CUDA.
    """
    import torch.nn.functional as F

    labels = inputs["labels"]
    backbone, head = causal_parts(model)
    kwargs = {k: v for k, v in inputs.items() if k in ("input_ids", "attention_mask", "position_ids")}
    hidden = backbone(**kwargs, use_cache=False).last_hidden_state
    targets = labels[:, 1:]
    mask = targets != -100
    logits = head(hidden[:, :-1][mask])
    if logits.shape[0] == 0:
        return hidden.sum() * 0.0  # no label in this micro-batch: a differentiable zero
    return F.cross_entropy(logits.float(), targets[mask])


def trainer_class(loss: str = "assistant_only") -> type:
    """SFTTrainer with a pure-torch loss.

    trl 1.15's SFTTrainer computes its loss with a Triton kernel (trl.kernels, a fused LM head) that has no
    CPU path. "assistant_only" is ours (above); "full_logits" is transformers' own loss on the full logits
    (what SFTTrainer did before its fused head): the benchmark's baseline.
    """
    from trl import SFTTrainer

    class DyagSFTTrainer(SFTTrainer):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            # The loss is a per-micro-batch mean: let Trainer average it over gradient accumulation.
            self.model_accepts_loss_kwargs = False

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            if loss == "assistant_only":
                value = assistant_only_loss(model, inputs)
            else:
                value = model(**{k: v for k, v in inputs.items() if k != "num_items_in_batch"}, use_cache=False).loss
            return (value, None) if return_outputs else value

        def prediction_step(self, model, inputs, prediction_loss_only, ignore_keys=None):
            import torch

            inputs = self._prepare_inputs(inputs)
            with torch.no_grad(), self.compute_loss_context_manager():
                value = self.compute_loss(model, inputs)
            return value.detach(), None, None

    return DyagSFTTrainer


class PackedRowsCollator:
    """Packed rows stacked as a batch [rows, row length], not flattened into one sequence.

    trl's padding-free collator concatenates every row of a micro-batch into one sequence, so attention (a
    dense masked matrix on CPU, without a varlen flash kernel) costs the whole micro-batch's length per token;
    stacked rows cost one row's length. Position ids restart at each example, so transformers builds a
    block-diagonal causal mask per row (no attention across examples); a row shorter than the longest is
    padded at its end (its padding is a trailing pseudo-example nobody attends to, with no label). The first
    token of each example gets no label either: nothing is learnt across an example boundary.
    """

    def __init__(self, pad_token_id: int):
        self.pad_token_id = pad_token_id

    def __call__(self, examples: list[dict[str, Any]]) -> dict[str, Any]:
        import torch

        width = max(len(e["input_ids"]) for e in examples)
        ids, labels, positions = [], [], []
        for example in examples:
            n = len(example["input_ids"])
            pos: list[int] = []
            for length in example.get("seq_lengths") or [n]:
                pos.extend(range(length))
            pos.extend(range(width - n))
            row_labels = list(example.get("labels", example["input_ids"])) + [-100] * (width - n)
            row_labels = [-100 if p == 0 else label for p, label in zip(pos, row_labels, strict=True)]
            ids.append(list(example["input_ids"]) + [self.pad_token_id] * (width - n))
            labels.append(row_labels)
            positions.append(pos)
        return {"input_ids": torch.tensor(ids), "labels": torch.tensor(labels), "position_ids": torch.tensor(positions)}


MIN_ROW, TOKENS_PER_STEP = 256, 1024


def packing_plan(longest: int, max_seq_len: int, batch_size: int) -> tuple[int, int]:
    """(row length, rows per step): rows just long enough for the longest example (at least 256 tokens, a
    multiple of 64), about 1,024 tokens per step unless batch_size says how many rows."""
    row = min(max_seq_len, max(MIN_ROW, -(-longest // 64) * 64))
    return row, batch_size or max(1, round(TOKENS_PER_STEP / row))


class _PackingIsIsolated(logging.Filter):
    """trl warns that packing without a flash-attention kernel may let examples attend to each other. Not here:
    with position ids restarting per example and no KV cache (use_cache=False), transformers builds a
    block-diagonal causal mask for sdpa and eager (tests/unit/test_training_template.py checks it)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "Flash Attention variant" not in record.getMessage()


logging.getLogger("trl.trainer.sft_trainer").addFilter(_PackingIsIsolated())


# --- checkpoints ---------------------------------------------------------------------------------------
def last_complete_checkpoint(folder: Path) -> Path | None:
    """The newest checkpoint whose files were all written (a kill during a save leaves a partial one)."""
    if not folder.is_dir():
        return None
    found = sorted((int(m.group(1)), p) for p in folder.iterdir() if p.is_dir() and (m := _CHECKPOINT.match(p.name)))
    for _, path in reversed(found):
        needed = ("trainer_state.json", "optimizer.pt", "scheduler.pt", "adapter_model.safetensors")
        if all((path / n).is_file() and (path / n).stat().st_size > 0 for n in needed):
            try:
                json.loads((path / "trainer_state.json").read_text())
                return path
            except ValueError:
                pass
        shutil.rmtree(path, ignore_errors=True)  # partial: never resume from it
    return None


# --- the run ------------------------------------------------------------------------------------------
@dataclass
class RunResult:
    adapter_dir: Path
    metrics: dict[str, Any]
    log_history: list[dict[str, Any]]
    resumed_from_step: int
    hardware: Hardware


class ProgressCallbackFactory:
    """Builds the transformers callback lazily (transformers is imported only when a job runs)."""

    @staticmethod
    def make(on_progress: ProgressFn, should_stop: Callable[[], bool], on_eval: ProgressFn | None = None):
        from transformers import TrainerCallback

        class ProgressCallback(TrainerCallback):
            """step, epoch, loss, eval loss, learning rate, tokens/s and ETA at every logged step; stops on cancel."""

            def __init__(self):
                self.train_seconds = 0.0
                self.last = time.monotonic()
                self.tokens0 = 0
                self.step0 = 0
                self.last_eval: float | None = None
                self.last_train: dict[str, float] = {}
                self.cancelled = False
                self.step_rates: list[tuple[int, float]] = []  # (tokens, seconds) of each optimizer step
                self._tokens_before = 0

            def on_train_begin(self, args, state, control, **kwargs):
                self.last = time.monotonic()
                self.tokens0 = self._tokens_before = int(state.num_input_tokens_seen or 0)
                self.step0 = state.global_step

            def on_step_end(self, args, state, control, **kwargs):
                now = time.monotonic()
                self.train_seconds += now - self.last
                tokens = int(state.num_input_tokens_seen or 0)
                self.step_rates.append((tokens - self._tokens_before, now - self.last))
                self._tokens_before = tokens
                self.last = now
                if should_stop():
                    self.cancelled = True
                    control.should_training_stop = True
                    control.should_save = False
                    control.should_evaluate = False

            def _skip(self):  # time spent evaluating or saving is not training time
                self.last = time.monotonic()

            def on_evaluate(self, args, state, control, metrics=None, **kwargs):
                self._skip()
                if metrics and "eval_loss" in metrics:
                    self.last_eval = float(metrics["eval_loss"])
                    payload = self.snapshot(state) | {"eval_loss": self.last_eval}
                    on_progress(payload)
                    if on_eval:
                        on_eval(payload)

            def on_save(self, args, state, control, **kwargs):
                self._skip()

            def tokens_per_second(self, state) -> float:
                tokens = int(state.num_input_tokens_seen or 0) - self.tokens0
                return tokens / self.train_seconds if self.train_seconds > 0 else 0.0

            def snapshot(self, state) -> dict[str, Any]:
                done = state.global_step - self.step0
                per_step = self.train_seconds / done if done else 0.0
                data = {
                    "step": state.global_step,
                    "total_steps": state.max_steps,
                    "epoch": round(float(state.epoch or 0.0), 4),
                    "tokens_per_second": round(self.tokens_per_second(state), 1),
                    "eta_seconds": round(per_step * max(state.max_steps - state.global_step, 0), 1),
                    "tokens_seen": int(state.num_input_tokens_seen or 0),
                }
                data.update(self.last_train)
                if self.last_eval is not None:
                    data["eval_loss"] = self.last_eval
                return data

            def on_log(self, args, state, control, logs=None, **kwargs):
                logs = logs or {}
                if "loss" in logs:
                    self.last_train = {
                        "loss": round(float(logs["loss"]), 5),
                        "learning_rate": float(logs.get("learning_rate", 0.0)),
                    }
                    if "grad_norm" in logs:
                        self.last_train["grad_norm"] = round(float(logs["grad_norm"]), 4)
                    on_progress(self.snapshot(state))

        return ProgressCallback()


class LoraTrainer:
    """One LoRA run: config object in, adapter out (the TRL pattern: a config and a trainer class).

    `workdir` holds the checkpoints and survives restarts: `train()` on the same workdir resumes.
    """

    def __init__(
        self,
        config: ResolvedConfig,
        base_path: str,
        workdir: Path,
        *,
        on_progress: ProgressFn = lambda _: None,
        on_eval: ProgressFn | None = None,
        should_stop: Callable[[], bool] = lambda: False,
        log_fn: Callable[[str], None] = log.info,
        device: str | None = None,
        init_adapter: str | None = None,
    ):
        self.config, self.base_path, self.workdir = config, base_path, Path(workdir)
        # A continued run (LoraTrainRequest.init_model_id): the adapter folder whose weights it starts from.
        self.init_adapter = init_adapter
        self.on_progress, self.on_eval, self.should_stop, self.log = on_progress, on_eval, should_stop, log_fn
        self.hardware = pick_hardware(config, device)
        self.tokenizer: Any = None
        self.callback: Any = None

    # The tokenizer alone first: dataset checks (lengths) fail fast, before the model is loaded.
    def load_tokenizer(self) -> Any:
        if self.tokenizer is None:
            if self.hardware.use_unsloth:
                import unsloth  # noqa: F401  (must patch transformers before it is used)
            from dyag_llm.local import load_tokenizer

            self.tokenizer = load_tokenizer(self.base_path)
        return self.tokenizer

    def prepare(self, train: list[ChatExample], validation: list[ChatExample]) -> tuple[Any, Any, dict[str, int]]:
        from datasets import Dataset

        tokenizer = self.load_tokenizer()
        train_data = tokenize_examples(tokenizer, train, self.config.max_seq_len, "train")
        val_data = (
            tokenize_examples(tokenizer, validation, self.config.max_seq_len, "validation") if validation else None
        )
        stats = {
            "train_examples": len(train),
            "validation_examples": len(validation),
            "train_tokens": sum(len(i) for i in train_data["input_ids"]),
            "train_assistant_tokens": sum(sum(m) for m in train_data["assistant_masks"]),
            "longest_example_tokens": max(
                len(i) for i in train_data["input_ids"] + (val_data["input_ids"] if val_data else [])
            ),
        }
        return Dataset.from_dict(train_data), (Dataset.from_dict(val_data) if val_data else None), stats

    def _continue_from(self, model: Any) -> Any:
        """The base model with the initial adapter loaded trainable: its weights, r, alpha, dropout and modules."""
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, self.init_adapter, is_trainable=True)
        trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
        self.log(f"starting from the adapter in {self.init_adapter}: {trainable} trainable parameters")
        return model

    def _model(self) -> tuple[Any, Any]:
        """(model, peft_config): peft_config is None when the model already carries its LoRA (unsloth, or the
        initial adapter of a continued run)."""
        import torch

        cfg, hw = self.config, self.hardware
        target_modules: Any = list(cfg.target_modules)
        if target_modules == ["all-linear"]:
            target_modules = "all-linear"
        if hw.use_unsloth:
            from unsloth import FastLanguageModel

            model, tokenizer = FastLanguageModel.from_pretrained(
                model_name=self.base_path, max_seq_length=cfg.max_seq_len, dtype=None, load_in_4bit=hw.load_in_4bit
            )
            self.tokenizer = tokenizer if tokenizer.pad_token else self.tokenizer
            if self.init_adapter:
                # What unsloth's own loader does for an adapter folder (PeftModel trainable, then its patches), on
                # the run's base model rather than the one adapter_config.json names. Not run here: no CUDA.
                model = self._continue_from(model)
                return FastLanguageModel.patch_peft_model(model, use_gradient_checkpointing=False), None
            if target_modules == "all-linear":
                target_modules = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
            model = FastLanguageModel.get_peft_model(
                model,
                r=cfg.r,
                lora_alpha=cfg.lora_alpha,
                lora_dropout=cfg.lora_dropout,
                target_modules=target_modules,
                bias="none",
                random_state=cfg.seed,
                use_gradient_checkpointing=False,
            )
            return model, None
        from peft import LoraConfig
        from transformers import AutoModelForCausalLM

        kwargs: dict[str, Any] = {"local_files_only": Path(self.base_path).is_dir()}
        if hw.device == "cuda":
            dtype = torch.bfloat16 if hw.precision == "bf16" else torch.float16
            kwargs["dtype"] = dtype
            if hw.load_in_4bit:
                from transformers import BitsAndBytesConfig

                kwargs["quantization_config"] = BitsAndBytesConfig(
                    load_in_4bit=True,
                    bnb_4bit_quant_type="nf4",
                    bnb_4bit_compute_dtype=dtype,
                    bnb_4bit_use_double_quant=True,
                )
            kwargs["device_map"] = {"": 0}
        else:
            kwargs["dtype"] = torch.float32  # master weights; bf16 runs under autocast
        model = AutoModelForCausalLM.from_pretrained(self.base_path, attn_implementation="sdpa", **kwargs)
        if hw.load_in_4bit:
            from peft import prepare_model_for_kbit_training

            model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=False)
        if self.init_adapter:
            return self._continue_from(model), None
        peft_config = LoraConfig(
            r=cfg.r,
            lora_alpha=cfg.lora_alpha,
            lora_dropout=cfg.lora_dropout,
            target_modules=target_modules,
            bias="none",
            task_type="CAUSAL_LM",
        )
        return model, peft_config

    def _report_to(self) -> list[str]:
        tracking = self.config.tracking
        if tracking == "wandb":
            if importlib.util.find_spec("wandb") and (os.environ.get("WANDB_API_KEY") or os.environ.get("WANDB_MODE")):
                return ["wandb"]
            self.log(
                "W&B tracking asked but not configured on this service "
                "(wandb package, WANDB_API_KEY or WANDB_MODE): not tracked"
            )
        if tracking == "mlflow":
            if importlib.util.find_spec("mlflow") and os.environ.get("MLFLOW_TRACKING_URI"):
                return ["mlflow"]
            self.log(
                "MLflow tracking asked but not configured on this service "
                "(mlflow package, MLFLOW_TRACKING_URI): not tracked"
            )
        return []

    def sft_config(self, has_eval: bool, longest: int | None = None) -> Any:
        from trl import SFTConfig

        cfg, hw = self.config, self.hardware
        packing = cfg.packing
        row, rows = (
            packing_plan(longest or cfg.max_seq_len, cfg.max_seq_len, cfg.batch_size)
            if packing
            else (cfg.max_seq_len, cfg.batch_size)
        )
        self.packing = {"row_tokens": row, "rows_per_step": rows} if packing else {}
        eval_strategy = "no" if not has_eval else ("steps" if cfg.eval_steps else "epoch")
        return SFTConfig(
            output_dir=str(self.workdir / "checkpoints"),
            run_name=cfg.run_name or None,
            seed=cfg.seed,
            data_seed=cfg.seed,
            learning_rate=cfg.learning_rate,
            num_train_epochs=cfg.epochs,
            max_steps=cfg.max_steps or -1,
            per_device_train_batch_size=rows,
            gradient_accumulation_steps=1,
            per_device_eval_batch_size=rows,
            warmup_steps=cfg.warmup_ratio,  # a float below 1 is a ratio of the total steps
            lr_scheduler_type=cfg.lr_scheduler,
            weight_decay=cfg.weight_decay,
            max_grad_norm=cfg.max_grad_norm,
            bf16=hw.precision == "bf16",
            fp16=hw.precision == "fp16",
            use_cpu=hw.device == "cpu",
            gradient_checkpointing=False,
            max_length=row,
            packing=packing,
            packing_strategy="bfd",
            eval_packing=packing,
            completion_only_loss=False,
            assistant_only_loss=False,  # the labels come from our assistant masks (dyag_llm.local.encode_chat)
            eval_strategy=eval_strategy,
            eval_steps=cfg.eval_steps or None,
            save_strategy="steps",
            save_steps=cfg.checkpoint_steps,
            save_total_limit=2,
            logging_strategy="steps",
            logging_steps=cfg.logging_steps,
            logging_first_step=True,
            include_num_input_tokens_seen=True,
            report_to=self._report_to(),
            disable_tqdm=True,
            dataloader_num_workers=0,
            dataloader_pin_memory=hw.device == "cuda",
            dataset_num_proc=None,
            optim="adamw_torch",
            save_only_model=False,
            prediction_loss_only=True,
        )

    def train(self, train: list[ChatExample], validation: list[ChatExample]) -> RunResult:
        import torch
        from transformers import set_seed

        for note in self.hardware.notes:
            self.log(note)
        train_ds, eval_ds, stats = self.prepare(train, validation)
        set_seed(self.config.seed)
        self.log(
            f"loading {self.base_path} ({self.hardware.backend}, "
            f"{self.hardware.precision_label}, {self.hardware.description})"
        )
        model, peft_config = self._model()
        self.callback = ProgressCallbackFactory.make(self.on_progress, self.should_stop, self.on_eval)
        args = self.sft_config(eval_ds is not None, stats["longest_example_tokens"])
        started = time.monotonic()
        trainer = trainer_class("assistant_only")(
            model=model,
            args=args,
            train_dataset=train_ds,
            eval_dataset=eval_ds,
            processing_class=self.tokenizer,
            peft_config=peft_config,
            callbacks=[self.callback],
        )
        if self.config.packing:
            trainer.data_collator = PackedRowsCollator(self.tokenizer.pad_token_id)
            stats.update(self.packing)
            self.log(f"packing: rows of {self.packing['row_tokens']} tokens, {self.packing['rows_per_step']} per step")
        checkpoint = last_complete_checkpoint(self.workdir / "checkpoints")
        resumed_from = 0
        if checkpoint is not None:
            resumed_from = int(_CHECKPOINT.match(checkpoint.name).group(1))
            self.log(f"resuming from checkpoint step {resumed_from} ({checkpoint.name})")
        trainer.train(resume_from_checkpoint=str(checkpoint) if checkpoint else None)
        if self.callback.cancelled:
            from dyag_runtime.jobs import JobCancelled

            raise JobCancelled("cancelled during training")
        final_eval = None
        if eval_ds is not None:  # the trainer may have evaluated at the last step already: not twice
            at_end = [
                h["eval_loss"]
                for h in trainer.state.log_history
                if "eval_loss" in h and h.get("step") == trainer.state.global_step
            ]
            final_eval = float(at_end[-1] if at_end else trainer.evaluate()["eval_loss"])
        adapter_dir = self.workdir / "adapter"
        if adapter_dir.exists():
            shutil.rmtree(adapter_dir)
        trainer.model.save_pretrained(str(adapter_dir))
        state = trainer.state
        history = list(state.log_history)
        losses = [h["loss"] for h in history if "loss" in h]
        metrics = {
            **stats,
            "steps": state.global_step,
            "epochs": round(float(state.epoch or 0), 3),
            "first_loss": losses[0] if losses else None,
            "final_loss": _mean_tail(losses),
            "eval_loss": final_eval,
            "first_eval_loss": next((h["eval_loss"] for h in history if "eval_loss" in h), None),
            "tokens_per_second": round(self.callback.tokens_per_second(state), 1),
            "train_seconds": round(self.callback.train_seconds, 1),
            "wall_seconds": round(time.monotonic() - started, 1),
            "tokens_seen": int(state.num_input_tokens_seen or 0),
            "resumed_from_step": resumed_from,
            "precision": self.hardware.precision_label,
            "backend": self.hardware.backend,
            "device": self.hardware.device,
            "torch_threads": torch.get_num_threads(),
        }
        return RunResult(adapter_dir, metrics, history, resumed_from, self.hardware)


def _mean_tail(values: list[float], n: int = 5) -> float | None:
    """The mean of the last few logged losses: a single step's loss is noisy."""
    tail = [v for v in values[-n:] if v is not None and math.isfinite(v)]
    return round(sum(tail) / len(tail), 5) if tail else None


def loss_curve_png(history: list[dict[str, Any]], path: Path, title: str) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    train = [(h["step"], h["loss"]) for h in history if "loss" in h and "step" in h]
    evals = [(h["step"], h["eval_loss"]) for h in history if "eval_loss" in h and "step" in h]
    fig, ax = plt.subplots(figsize=(7, 4), dpi=100)
    if train:
        ax.plot(*zip(*train, strict=True), label="train loss (assistant tokens)", linewidth=1.2)
    if evals:
        ax.plot(*zip(*evals, strict=True), "o-", label="validation loss", linewidth=1.2)
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path
