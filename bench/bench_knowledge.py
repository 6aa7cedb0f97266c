"""Can fine-tuning learn the catalog? Fact accuracy on held-out phrasings against training minutes, on this machine.

The knowledge preset (dyag_core.training.config: epochs sized by exposures per fact, LoRA on every linear layer)
trains on every phrasing the question types have of a few applications' facts (`--apps`, a seeded sample of the
sample catalog: a CPU cannot show 45 applications' facts thirty times each in minutes). Then, at each point of the
curve, the test split's questions whose fact was taught under *other* phrasings (the paraphrase split) are asked
to the model alone (no record in its context) and scored by the evaluator's own rules (all key facts stated).

The run is cut into segments (`--points`, in optimizer steps) at a constant learning rate: each segment resumes
from the last one's checkpoint, so the points lie on one training run. Point 0 is the base model.

    .venv/bin/python bench/bench_knowledge.py                          # SmolLM2-135M (the default), 2 applications
    .venv/bin/python bench/bench_knowledge.py --base-model qwen2.5-0.5b --points 0,10,20
    .venv/bin/python bench/bench_knowledge.py --json bench/knowledge-135m.json

Published knowledge-injection results say facts stick only with many exposures and several paraphrases per fact,
and that a short run moves wording, not facts: this measures where this machine stands on that curve.
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "services" / "gpu-lora-trainer" / "src"))

from dyag_core.catalog.loader import load_catalog_file  # noqa: E402
from dyag_core.dataset.generate import MOST_VARIATIONS, GenerationConfig, generate, sample_entities  # noqa: E402
from dyag_core.dataset.split import split_examples  # noqa: E402
from dyag_core.evaluation.model import Response, Target  # noqa: E402
from dyag_core.evaluation.scoring import evaluate  # noqa: E402
from dyag_core.evaluation.testset import cases_from_examples  # noqa: E402
from dyag_core.training import ChatExample, TrainingConfig, count_facts  # noqa: E402

CATALOG = ROOT / "examples/test-mygusi/applicationsIA_mini_normalized.json"


def chat(example) -> ChatExample:
    return ChatExample(
        0,
        [
            {"role": "system", "content": example.system},
            {"role": "user", "content": example.question},
            {"role": "assistant", "content": example.answer},
        ],
    )


def knowledge_data(apps: int, seed: int):
    """Every phrasing of a few applications' facts; the test questions ask facts trained under other phrasings."""
    catalog = sample_entities(load_catalog_file(CATALOG), GenerationConfig(max_entities=apps, seed=seed))
    variations = MOST_VARIATIONS
    examples = generate(catalog, GenerationConfig(variations=variations, add_negatives=False, seed=seed))
    split = split_examples(examples, seed=seed)
    taught = {e.answer for e in split.train}
    held_out = [e for e in split.test if e.answer in taught]
    return catalog, split.train, held_out, variations


def score(model_dir: str, adapter: str | None, cases, system: str, catalog, max_tokens: int) -> dict:
    from dyag_llm.local import generate as generate_text
    from dyag_llm.local import load_model

    model, tokenizer = load_model(model_dir, adapter, device="cpu", dtype="fp32")
    responses, began = [], time.perf_counter()
    for i in range(0, len(cases), 8):
        batch = cases[i : i + 8]
        prompts = [[{"role": "system", "content": system}, {"role": "user", "content": c.question}] for c in batch]
        for text, _, _ in generate_text(model, tokenizer, prompts, max_tokens=max_tokens, stop_loops=True):
            responses.append(Response(text, 0.0))
    run = evaluate(cases, responses, target=Target("bench", "fine_tuned"), catalog=catalog)
    return {
        "fact_accuracy": run.overall.fact_accuracy,
        "accuracy": run.accuracy,
        "seconds": time.perf_counter() - began,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--base-model", default="default", help="default (SmolLM2-135M-Instruct) or a shipped GGUF name (qwen2.5-0.5b)"
    )
    parser.add_argument("--apps", type=int, default=2, help="applications whose facts are taught")
    parser.add_argument("--points", default="0,20,40,80,120", help="optimizer steps at which the model is scored")
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    points = sorted({int(p) for p in args.points.split(",")})

    from dyag_gpu_lora_trainer.engine import LoraTrainer
    from dyag_llm.local import resolve_base_model

    catalog, train, held_out, variations = knowledge_data(args.apps, args.seed)
    train_chats = [chat(e) for e in train]
    facts = count_facts(train_chats)
    cases = list(cases_from_examples(held_out))
    base_dir = resolve_base_model(args.base_model)
    names = ", ".join(e.name for e in catalog.entities)
    print(
        f"{args.apps} applications ({names}): {len(train)} training examples, {facts} facts, "
        f"{len(train) / max(facts, 1):.1f} phrasings each (up to {variations}); {len(cases)} held-out questions "
        f"({dict(Counter(c.qtype for c in cases))})"
    )
    print(f"machine: {platform.processor() or platform.machine()}, model {args.base_model} ({base_dir})", flush=True)

    curve, train_seconds, work = [], 0.0, Path(tempfile.mkdtemp(prefix="dyag-knowledge-"))
    for step in points:
        adapter = None
        if step:
            config = TrainingConfig.from_dict(
                {
                    "base_model": args.base_model,
                    "preset": "knowledge",
                    "max_steps": step,
                    "lr_scheduler": "constant",
                    "warmup_ratio": 0.0,
                    "checkpoint_steps": step,
                    "seed": args.seed,
                }
            ).resolve(len(train_chats), facts)
            result = LoraTrainer(config, base_dir, work, log_fn=lambda _: None).train(train_chats, [])
            train_seconds += result.metrics["train_seconds"]
            # a folder per point: models are cached by their adapter's path, and each segment rewrites the same one
            adapter = str(shutil.copytree(result.adapter_dir, work / f"adapter-{step}"))
            epochs = result.metrics["epochs"]
        else:
            epochs = 0.0
        scored = score(base_dir, adapter, cases, train[0].system, catalog, args.max_tokens)
        point = {
            "steps": step,
            "epochs": epochs,
            "exposures_per_fact": round(epochs * len(train) / max(facts, 1), 1),
            "train_minutes": round(train_seconds / 60, 2),
            **{k: round(v, 4) for k, v in scored.items()},
        }
        curve.append(point)
        print(
            f"  step {step:4d}  epochs {epochs:5.2f}  exposures/fact {point['exposures_per_fact']:5.1f}  "
            f"training {point['train_minutes']:6.2f} min  fact accuracy {scored['fact_accuracy']:.1%}  "
            f"accuracy {scored['accuracy']:.1%}",
            flush=True,
        )
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "base_model": args.base_model,
                    "apps": args.apps,
                    "train_examples": len(train),
                    "facts": facts,
                    "held_out": len(cases),
                    "curve": curve,
                },
                indent=2,
            )
        )


if __name__ == "__main__":
    main()
