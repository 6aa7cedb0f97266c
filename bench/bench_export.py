"""Benchmark: exporting a fine-tuned model (model-exporter) at each quantization level, with its parity score.

The default model (SmolLM2-135M-Instruct) gets a LoRA adapter trained here on a QA dataset generated from the
sample catalog (a few AdamW steps, peft, on the assistant's tokens); then one export (dyag_model_exporter's
Exporter, as the service runs it) writes the merged model, GGUF f16 (llama.cpp's converter), q8_0 and q4_K_M
(llama.cpp's quantizer), and the parity gate answers the same probes (questions of the dataset not used in
training, chosen across question types) with the HF model (transformers, fp32, greedy) and with each GGUF
(llama-cpp-python, greedy, the prompt rendered by the derived Ollama template); then the same GGUFs answer questions
the adapter was trained on (the regime of a fine-tuned model answering what it was taught).

Per level: the time to make the file (convert for f16, quantize from f16 for the others), its size, the parity
gate's answer agreement, token F1 against the HF answers, and the fact accuracy of both. The machine and its load
average are printed with the figures: on a shared machine, times are only comparable within one run.

    .venv/bin/python bench/bench_export.py [--train 24] [--steps 24] [--probes 16] [--max-tokens 48] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os

# As the service does (dyag_model_exporter.__main__): OpenMP threads that wait passively, set before torch loads.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
import platform
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "services" / "model-exporter" / "src"))

from dyag_core.catalog.loader import load_catalog_file  # noqa: E402
from dyag_core.dataset import GenerationConfig, generate  # noqa: E402
from dyag_core.evaluation import cases_from_examples  # noqa: E402
from dyag_core.export import choose_probes, human_bytes  # noqa: E402

LEVELS = ("f16", "q8_0", "q4_K_M")


def machine() -> str:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor() or "?",
    )
    return (
        f"{cpu}, {os.cpu_count()} cores, {platform.system()} {platform.release()}, Python {platform.python_version()}"
    )


def train_adapter(examples, steps: int, folder: Path) -> dict:
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from dyag_llm.local import default_model_path, encode_chat, load_tokenizer, padded_batch

    torch.manual_seed(0)
    base = default_model_path()
    tokenizer = load_tokenizer(str(base))
    model = AutoModelForCausalLM.from_pretrained(str(base), dtype=torch.float32)
    model = get_peft_model(
        model,
        LoraConfig(
            r=16,
            lora_alpha=32,
            lora_dropout=0.0,
            task_type="CAUSAL_LM",
            target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
        ),
    )
    rows = [
        encode_chat(
            tokenizer,
            [
                {"role": "system", "content": e.system},
                {"role": "user", "content": e.question},
                {"role": "assistant", "content": e.answer},
            ],
        )
        for e in examples
    ]
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=2e-3)
    began, losses = time.monotonic(), []
    model.train()
    for step in range(steps):
        batch = [rows[(step * 4 + i) % len(rows)] for i in range(4)]
        out = model(**padded_batch(batch, tokenizer.pad_token_id))
        out.loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        losses.append(round(out.loss.item(), 4))
    model.save_pretrained(folder)
    return {
        "seconds": round(time.monotonic() - began, 1),
        "first_loss": losses[0],
        "final_loss": losses[-1],
        "steps": steps,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--train", type=int, default=24, help="training examples")
    parser.add_argument(
        "--steps", type=int, default=24, help="optimisation steps (batches of 4: four epochs of 24 examples)"
    )
    parser.add_argument("--probes", type=int, default=16)
    parser.add_argument("--max-tokens", type=int, default=48)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()

    from dyag_llm.local import default_model_path
    from dyag_model_exporter.engine import Exporter, ExportInputs, ExportOptions

    load_before = os.getloadavg()
    catalog = load_catalog_file(ROOT / "examples" / "test-mygusi" / "applicationsIA_mini_normalized.json")
    examples = list(generate(catalog, GenerationConfig(num_questions=args.train + 4 * args.probes, seed=42)))
    train, held_out = examples[: args.train], examples[args.train :]
    probes = choose_probes(list(cases_from_examples(held_out)), args.probes)
    with tempfile.TemporaryDirectory(prefix="bench-export-") as tmp:
        adapter = Path(tmp) / "adapter"
        training = train_adapter(train, args.steps, adapter)
        print(f"adapter: {training}", flush=True)
        began = time.monotonic()
        outcome = Exporter(Path(tmp) / "export", log=lambda m, *a: print("   ", m[:160], flush=True)).run(
            ExportInputs("default", default_model_path(), adapter),
            ExportOptions(
                quantizations=LEVELS,
                system_prompt=train[0].system,
                probes=probes,
                max_tokens=args.max_tokens,
                ollama_name="applications-ia",
                parity_threshold=0.0,
                max_accuracy_drop=1.0,
            ),
        )
        total = time.monotonic() - began
        t = dict(outcome.timings)
        # The same GGUFs on questions the adapter was trained on (what a fine-tuned model answers confidently).
        exporter = Exporter(Path(tmp) / "export", log=lambda m, *a: None)
        tokenizer, template = exporter.template(outcome.folder / "merged")
        trained_probes = choose_probes(list(cases_from_examples(train)), args.probes)
        trained = {
            r.quantization: r
            for r in exporter.parity(
                outcome.folder / "merged",
                tokenizer,
                template,
                [(q, outcome.folder / f"model-{q}.gguf", None) for q in LEVELS],
                ExportOptions(
                    quantizations=LEVELS,
                    system_prompt=train[0].system,
                    probes=trained_probes,
                    max_tokens=args.max_tokens,
                    parity_threshold=0.0,
                    max_accuracy_drop=1.0,
                ),
            )
        }
        rows = []
        for report in outcome.parity:
            q = report.quantization
            make = t["convert"] if q == "f16" else t[f"quantize_{q}"]
            size = (outcome.folder / f"model-{q}.gguf").stat().st_size
            rows.append(
                {
                    "quantization": q,
                    "make_seconds": make,
                    "bytes": size,
                    "agreement": report.agreement,
                    "mean_token_f1": report.mean_token_f1,
                    "hf_fact_accuracy": report.hf_fact_accuracy,
                    "gguf_fact_accuracy": report.gguf_fact_accuracy,
                    "prompt_token_agreement": report.prompt_token_agreement,
                    "gguf_answer_seconds": t.get(f"parity_{q}"),
                    "trained_agreement": trained[q].agreement,
                    "trained_mean_token_f1": trained[q].mean_token_f1,
                    "trained_hf_fact_accuracy": trained[q].hf_fact_accuracy,
                    "trained_gguf_fact_accuracy": trained[q].gguf_fact_accuracy,
                }
            )
    result = {
        "machine": machine(),
        "load_average_before": load_before,
        "load_average_after": os.getloadavg(),
        "training": training,
        "probes": len(probes),
        "max_tokens": args.max_tokens,
        "export_seconds": round(total, 1),
        "timings": t,
        "levels": rows,
    }
    print(json.dumps(result, indent=2))
    print(
        f"\nMachine: {result['machine']}; load average {load_before[0]:.2f} "
        f"before, {result['load_average_after'][0]:.2f} after"
    )
    print(
        f"Export of the three levels: {total:.0f} s (merge {t['merge']:.1f} "
        f"s, HF answers {t['parity_hf']:.1f} s for {len(probes)} probes)\n"
    )
    print(
        "| GGUF | made in | size | held-out probes: agreement / token F1 / fact acc. "
        "HF → GGUF | trained probes: agreement / token F1 / fact acc. HF → GGUF |"
    )
    print("|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['quantization']} | {r['make_seconds']:.1f} s | {human_bytes(r['bytes'])} | "
            f"{r['agreement']:.0%} / {r['mean_token_f1']:.2f} / {r['hf_fact_accuracy']:.0%} → "
            f"{r['gguf_fact_accuracy']:.0%} | {r['trained_agreement']:.0%} / {r['trained_mean_token_f1']:.2f} "
            f"/ {r['trained_hf_fact_accuracy']:.0%} → {r['trained_gguf_fact_accuracy']:.0%} |"
        )
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
