"""Right answers, measured: grounded answering (dyag_core.answering) on the sample's test split and on the
hand-written questions (examples/handwritten, written by hand, never from Dyag's phrasings).

    .venv/bin/python bench/bench_answers.py                       # grounded mode, both sets
    .venv/bin/python bench/bench_answers.py --auto local:default  # auto: the questions not understood go to a model
    .venv/bin/python bench/bench_answers.py --show-misses 20      # the questions it gets wrong, with why

Scored by the evaluator's own rules (dyag_core.evaluation.scoring): accuracy, hallucinations, abstention on negative
questions, latency per answer (p50, p95; each answer timed alone, the answerer built once per catalog version).
Targets (issue "Right answers"): test split accuracy >= 95 %, hallucinations <= 1 %, abstention on negatives >= 95 %;
hand-written accuracy >= 90 %, hallucinations <= 1 %; grounded p50 <= 100 ms, auto p50 <= 1 s.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from collections import Counter
from pathlib import Path

from dyag_core.answering.grounded import GroundedAnswerer
from dyag_core.catalog.loader import load_catalog_file
from dyag_core.dataset.generate import GenerationConfig, generate
from dyag_core.dataset.split import split_examples
from dyag_core.evaluation.model import EvalCase, Response, Target
from dyag_core.evaluation.scoring import evaluate
from dyag_core.evaluation.testset import cases_from_examples, read_test_set

ROOT = Path(__file__).resolve().parent.parent
CATALOG = ROOT / "examples/test-mygusi/applicationsIA_mini_normalized.json"
HANDWRITTEN = ROOT / "examples/handwritten/questions.jsonl"
DEV = (
    ROOT / "examples/dev/questions.jsonl"
)  # the development set: what understanding is improved on (never the hand-written)
NOT_UNDERSTOOD = "Je ne peux pas répondre à cette question à partir du catalogue."


def test_split(catalog, num_questions: int = 1000, seed: int = 42) -> list[EvalCase]:
    """The test split `dyag run` evaluates on (the pipeline's defaults: 1,000 questions, paraphrase split)."""
    examples = generate(catalog, GenerationConfig(num_questions=num_questions, seed=seed))
    return list(cases_from_examples(split_examples(examples, seed=seed).test))


def answer_all(answerer: GroundedAnswerer, cases: list[EvalCase], chat=None) -> tuple[list[Response], Counter]:
    """Each question answered alone and timed; with `chat`, those not understood go to the model (auto mode)."""
    responses, modes = [], Counter()
    for case in cases:
        began = time.perf_counter()
        grounded = answerer.answer(case.question)
        text = grounded.text if grounded.understood else NOT_UNDERSTOOD
        mode = "grounded"
        if not grounded.understood and chat is not None:
            from dyag_core.dataset.templates import answer_summary
            from dyag_core.rag.prompt import ContextChunk, build_messages

            records = [answerer.by_id[i] for i in grounded.entities[:2]]
            context = [ContextChunk(e.id, e.name, answer_summary(e).text) for e in records]
            text = chat.chat(build_messages(case.question, context), max_tokens=96, temperature=0.0).text
            mode = "generative"
        modes[mode] += 1
        responses.append(Response(text, (time.perf_counter() - began) * 1000))
    return responses, modes


def report(
    name: str, cases: list[EvalCase], responses: list[Response], catalog, modes: Counter, show_misses: int
) -> dict:
    run = evaluate(cases, responses, target=Target(name, "grounded"), catalog=catalog, test_set=name)
    latencies = sorted(r.latency_ms for r in responses)
    o = run.overall
    row = {
        "set": name,
        "questions": len(cases),
        "accuracy": round(run.accuracy, 4),
        "hallucination_rate": None if o.hallucination_rate is None else round(o.hallucination_rate, 4),
        "abstention_on_negatives": None if o.abstention_rate is None else round(o.abstention_rate, 4),
        "p50_ms": round(statistics.median(latencies), 2),
        "p95_ms": round(latencies[int(0.95 * (len(latencies) - 1))], 2),
        "modes": dict(modes),
        "by_type": {t: {"n": m.n, "accuracy": round(m.accuracy, 3)} for t, m in sorted(run.by_type.items())},
    }
    print(f"\n== {name}: {len(cases)} questions ==")
    print(
        f"accuracy {row['accuracy']:.1%} · hallucinations {row['hallucination_rate'] or 0:.1%} · "
        "abstention on negatives "
        f"{row['abstention_on_negatives'] if row['abstention_on_negatives'] is not None else float('nan'):.1%} · "
        f"latency p50 {row['p50_ms']} ms, p95 {row['p95_ms']} ms · answered {dict(modes)}"
    )
    for qtype, m in row["by_type"].items():
        print(f"  {qtype:24} {m['n']:4}  {m['accuracy']:.0%}")
    misses = [r for r in run.results if not r.correct][:show_misses]
    for r in misses:
        print(
            f"  ✗ [{r.case.qtype}] {r.case.question}\n    -> "
            f"{r.answer[:160]!r}\n    {r.reason_code}: {(r.reason or '')[:160]}"
        )
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--auto", default="", help="a chat-model spec (local:default, ollama:NAME…): auto mode")
    parser.add_argument("--show-misses", type=int, default=0)
    parser.add_argument("--json", type=Path, help="write the figures here")
    parser.add_argument(
        "--sets", default="test,handwritten", help="which sets, comma-separated: test, handwritten, dev"
    )
    args = parser.parse_args()
    catalog = load_catalog_file(CATALOG)
    began = time.perf_counter()
    answerer = GroundedAnswerer(catalog)
    build_ms = (time.perf_counter() - began) * 1000
    chat = None
    if args.auto:
        from dyag_llm import open_chat_model

        chat = open_chat_model(args.auto)
    print(
        f"machine: {platform.processor() or platform.machine()}, "
        f"{platform.python_version()}; answerer built in {build_ms:.0f} ms"
    )
    rows = []
    sets = {
        "test": ("test split (generated, 1000 questions, seed 42)", lambda: test_split(catalog)),
        "handwritten": ("hand-written (examples/handwritten)", lambda: list(read_test_set(HANDWRITTEN).cases)),
        "dev": ("development set (examples/dev)", lambda: list(read_test_set(DEV).cases)),
    }
    for key in [k.strip() for k in args.sets.split(",") if k.strip()]:
        name, cases = sets[key][0], sets[key][1]()
        responses, modes = answer_all(answerer, cases, chat)
        rows.append(report(name, cases, responses, catalog, modes, args.show_misses))
    if args.json:
        args.json.write_text(
            json.dumps(
                {"build_ms": round(build_ms, 1), "mode": "auto" if chat else "grounded", "sets": rows},
                indent=2,
                ensure_ascii=False,
            )
        )


if __name__ == "__main__":
    sys.exit(main())
