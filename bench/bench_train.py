"""Benchmark: LoRA training tokens/s, this trainer vs a plain transformers + peft + trl SFTTrainer baseline.

Same model (the default, SmolLM2-135M-Instruct), same data (a QA dataset generated from the sample
catalog), same machine, same run, same LoRA (r=16 on the attention projections, the guide's step 5.3):

- baseline: trl's SFTTrainer as the guide sets it up, without packing: batches of 8 examples padded to the
  longest, the loss (and so the LM head) on every token, transformers' own loss on the full logits.
  Gradient checkpointing off, like ours (it would only slow the baseline down).
- ours (gpu_lora_trainer.engine.LoraTrainer): examples packed (BFD) into rows of 1,024 tokens with a
  block-diagonal mask, the loss and the LM head on the assistant's tokens only.

Tokens/s counts real tokens (padding excluded) over the training steps alone; each run drops its first
steps (warm-up) and the figure is the median of the per-step rates. The physical limit is
peak FLOP/s / (4 x 135 M) per token (forward 2N + backward 2N for activation gradients; frozen weights
need no weight gradients): `--peak-gflops` (default: a 2048² matmul measured now, in the run's dtype).

Then the bf16 question: the same training in fp32 and in bf16, same seed and data, and the loss curves
compared step by step. On a CPU without native bf16 (AVX2 only: bf16 matmuls are emulated and ~30x
slower than fp32 there), the bf16 run emulates bf16 numerics in fp32: every matmul's inputs and output
rounded to bf16 (what autocast does, with fp32 accumulation), so the loss-curve comparison still holds.

    .venv/bin/python bench/bench_train.py [--device cpu|cuda] [--steps 12] [--warmup 2] [--loss-steps 30]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "services" / "gpu-lora-trainer" / "src"))

from dyag_core.catalog.loader import load_catalog_file  # noqa: E402
from dyag_core.dataset import GenerationConfig, generate  # noqa: E402
from dyag_core.training import ChatExample, TrainingConfig  # noqa: E402

PARAMS = 135e6


def dataset(n: int, seed: int = 42) -> list[ChatExample]:
    catalog = load_catalog_file(ROOT / "examples" / "test-mygusi" / "applicationsIA_mini_normalized.json")
    examples = generate(catalog, GenerationConfig(num_questions=n, seed=seed))
    return [
        ChatExample(
            i + 1,
            [
                {"role": "system", "content": e.system},
                {"role": "user", "content": e.question},
                {"role": "assistant", "content": e.answer},
            ],
        )
        for i, e in enumerate(examples)
    ]


def peak_gflops(device: str, dtype: str) -> float:
    import torch

    torch_dtype = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[dtype]
    a = torch.randn(2048, 2048, device=device).to(torch_dtype)
    b = torch.randn(2048, 2048, device=device).to(torch_dtype)
    a @ b
    runs = []
    for _ in range(3 if device == "cpu" else 20):
        if device == "cuda":
            torch.cuda.synchronize()
        began = time.perf_counter()
        a @ b
        if device == "cuda":
            torch.cuda.synchronize()
        runs.append(2 * 2048**3 / (time.perf_counter() - began) / 1e9)
    return statistics.median(runs)


class Bf16Numerics:
    """A torch function mode: matmul inputs and outputs rounded to bf16, computed in fp32 (autocast's numerics)."""

    def __new__(cls):
        import torch
        import torch.nn.functional as F
        from torch.overrides import TorchFunctionMode

        ops = {
            F.linear,
            torch.matmul,
            torch.Tensor.matmul,
            torch.mm,
            torch.bmm,
            torch.addmm,
            F.scaled_dot_product_attention,
        }

        def rnd(value):
            if isinstance(value, torch.Tensor) and value.dtype == torch.float32:
                return value.to(torch.bfloat16).to(torch.float32)
            return value

        class Mode(TorchFunctionMode):
            def __torch_function__(self, func, types, args=(), kwargs=None):
                kwargs = kwargs or {}
                if func in ops:
                    out = func(*(rnd(a) for a in args), **{k: rnd(v) for k, v in kwargs.items()})
                    return rnd(out)
                return func(*args, **kwargs)

        return Mode()


def run_ours(
    examples,
    base_path,
    *,
    steps,
    precision,
    device,
    seed=42,
    emulate_bf16=False,
    max_seq_len=1024,
    target_modules=("q_proj", "k_proj", "v_proj", "o_proj"),
) -> dict[str, Any]:
    from dyag_gpu_lora_trainer.engine import LoraTrainer

    config = TrainingConfig.from_dict(
        {
            "max_steps": steps,
            "precision": precision,
            "max_seq_len": max_seq_len,
            "r": 16,
            "lora_alpha": 32,
            "lora_dropout": 0.0,
            "learning_rate": 2e-4,
            "seed": seed,
            "checkpoint_steps": 100000,
            "target_modules": list(target_modules),
            "warmup_ratio": 0.0,
            "lr_scheduler": "constant",
        }
    ).resolve(len(examples))
    with tempfile.TemporaryDirectory(prefix="bench-train-") as tmp:
        trainer = LoraTrainer(config, base_path, Path(tmp), log_fn=lambda _: None, device=device)
        if emulate_bf16:
            trainer.hardware.precision = "fp32"
            with Bf16Numerics():
                result = trainer.train(examples, [])
        else:
            result = trainer.train(examples, [])
    return {
        "rates": trainer.callback.step_rates,
        "losses": [h["loss"] for h in result.log_history if "loss" in h],
        "precision": "bf16 (emulated numerics)" if emulate_bf16 else result.hardware.precision_label,
    }


def run_baseline(examples, base_path, *, steps, precision, device, batch_size=8) -> dict[str, Any]:
    """trl's SFTTrainer as plainly as it goes: no packing, padding to the longest, loss on every token."""
    import torch
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, set_seed
    from trl import SFTConfig

    from dyag_gpu_lora_trainer.engine import ProgressCallbackFactory, trainer_class
    from dyag_llm.local import encode_chat, load_tokenizer

    tokenizer = load_tokenizer(base_path)
    data = Dataset.from_dict({"input_ids": [encode_chat(tokenizer, e.messages)[0] for e in examples]})
    set_seed(42)
    model = AutoModelForCausalLM.from_pretrained(base_path, dtype=torch.float32, attn_implementation="sdpa").to(device)
    callback = ProgressCallbackFactory.make(lambda _: None, lambda: False)
    with tempfile.TemporaryDirectory(prefix="bench-baseline-") as tmp:
        args = SFTConfig(
            output_dir=tmp,
            max_steps=steps,
            per_device_train_batch_size=batch_size,
            learning_rate=2e-4,
            seed=42,
            bf16=precision == "bf16",
            fp16=precision == "fp16",
            use_cpu=device == "cpu",
            gradient_checkpointing=False,
            max_length=1024,
            packing=False,
            padding_free=False,
            completion_only_loss=False,
            assistant_only_loss=False,
            save_strategy="no",
            eval_strategy="no",
            logging_steps=1,
            report_to=[],
            disable_tqdm=True,
            include_num_input_tokens_seen="non_padding",
            dataloader_num_workers=0,
            lr_scheduler_type="constant",
        )
        trainer = trainer_class("full_logits")(
            model=model,
            args=args,
            train_dataset=data,
            processing_class=tokenizer,
            callbacks=[callback],
            peft_config=LoraConfig(
                r=16,
                lora_alpha=32,
                lora_dropout=0.0,
                target_modules=["q_proj", "k_proj", "v_proj", "o_proj"],
                task_type="CAUSAL_LM",
            ),
        )
        trainer.train()
    return {"rates": callback.step_rates, "precision": precision}


def median_rate(rates: list[tuple[int, float]], warmup: int) -> float:
    kept = [tokens / seconds for tokens, seconds in rates[warmup:] if seconds > 0]
    return statistics.median(kept) if kept else 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--examples", type=int, default=400)
    parser.add_argument("--steps", type=int, default=12, help="optimizer steps per speed run")
    parser.add_argument("--warmup", type=int, default=2, help="first steps left out of the median")
    parser.add_argument(
        "--loss-steps", type=int, default=30, help="steps of the bf16-vs-fp32 loss-curve comparison (0: skip)"
    )
    parser.add_argument(
        "--peak-gflops", type=float, default=0.0, help="the machine's peak; 0: measure a 2048² matmul now"
    )
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()

    import torch

    from dyag_gpu_lora_trainer.engine import cpu_has_bf16, unsloth_installed
    from dyag_llm.local import resolve_base_model

    if args.device == "cuda" and not torch.cuda.is_available():
        sys.exit("--device cuda: no CUDA device here")
    base = resolve_base_model("default")
    examples = dataset(args.examples)
    machine = (
        torch.cuda.get_device_name(0)
        if args.device == "cuda"
        else f"{platform.processor() or platform.machine()} CPU, {torch.get_num_threads()} threads, "
        f"{'native bf16' if cpu_has_bf16() else 'no native bf16 (AVX2)'}"
    )
    print(f"machine: {machine}; {len(examples)} examples from the sample catalog; model {base}")
    precision = "fp32" if args.device == "cpu" else ("bf16" if torch.cuda.is_bf16_supported() else "fp16")
    figures: dict[str, Any] = {
        "machine": machine,
        "device": args.device,
        "precision": precision,
        "examples": len(examples),
    }

    peak = args.peak_gflops or peak_gflops(args.device, precision)
    limit = peak * 1e9 / (4 * PARAMS)
    figures.update(peak_gflops=round(peak, 1), physical_limit_tokens_per_s=round(limit, 1))
    print(f"peak {peak:.0f} GFLOP/s ({precision} 2048² matmul) -> physical limit {limit:.0f} tokens/s")

    # Interleaved, so that a change in the machine's load hits both.
    base_run = run_baseline(examples, base, steps=args.steps, precision=precision, device=args.device)
    ours_run = run_ours(examples, base, steps=args.steps, precision=precision, device=args.device)
    baseline, ours = median_rate(base_run["rates"], args.warmup), median_rate(ours_run["rates"], args.warmup)
    figures.update(
        baseline_tokens_per_s=round(baseline, 1),
        ours_tokens_per_s=round(ours, 1),
        ratio=round(ours / baseline, 2) if baseline else None,
        fraction_of_limit=round(ours / limit, 3),
    )
    print(f"baseline (SFTTrainer, padded batches of 8, loss on all tokens): {baseline:.1f} tokens/s")
    print(f"ours (packed rows, assistant-only loss and LM head):             {ours:.1f} tokens/s")
    print(
        f"ratio: {ours / baseline:.2f}x; ours at {ours / limit:.0%} of "
        f"the physical limit, the baseline at {baseline / limit:.0%}"
    )

    if args.device == "cuda" and unsloth_installed():
        unsloth_run = run_ours(examples, base, steps=args.steps, precision=precision, device="cuda")
        figures["unsloth_tokens_per_s"] = round(median_rate(unsloth_run["rates"], args.warmup), 1)
        print(f"unsloth path: {figures['unsloth_tokens_per_s']} tokens/s")

    if args.loss_steps:
        native = args.device == "cuda" or cpu_has_bf16()
        fp32 = run_ours(examples, base, steps=args.loss_steps, precision="fp32", device=args.device, max_seq_len=512)
        bf16 = run_ours(
            examples,
            base,
            steps=args.loss_steps,
            precision="bf16",
            device=args.device,
            max_seq_len=512,
            emulate_bf16=not native,
        )
        a, b = fp32["losses"], bf16["losses"]
        diffs = [abs(x - y) / x for x, y in zip(a, b, strict=False)]
        figures.update(
            loss_fp32=[round(x, 4) for x in a],
            loss_bf16=[round(x, 4) for x in b],
            bf16_mode=bf16["precision"],
            loss_max_rel_diff=round(max(diffs), 4),
            loss_mean_rel_diff=round(statistics.mean(diffs), 4),
            loss_final_fp32=round(statistics.mean(a[-5:]), 4),
            loss_final_bf16=round(statistics.mean(b[-5:]), 4),
        )
        if native:
            figures["bf16_tokens_per_s"] = round(median_rate(bf16["rates"], args.warmup), 1)
            figures["fp32_tokens_per_s_512"] = round(median_rate(fp32["rates"], args.warmup), 1)
        print(
            f"loss curve, {len(a)} steps, fp32 vs {bf16['precision']}: mean relative "
            f"difference {statistics.mean(diffs):.2%}, max {max(diffs):.2%}; last-5 "
            f"mean {figures['loss_final_fp32']} vs {figures['loss_final_bf16']}"
        )
        print("fp32:", " ".join(f"{x:.3f}" for x in a))
        print("bf16:", " ".join(f"{x:.3f}" for x in b))
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
