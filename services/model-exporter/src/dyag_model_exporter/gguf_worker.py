"""ik-llama-cpp-python work in a child process: quantizing a GGUF (ik_llama.cpp's llama-quantize), and the parity
gate's GGUF side (IkLlama): greedy answers to prompts, and the reference answers read teacher-forced, compared with the
HF model's log-probabilities token by token.

llama.cpp aborts the whole process on some bad inputs (a vocabulary it misreads, a damaged file): run here,
such a crash ends this child, and the export fails with what llama.cpp said instead of taking the service down.

    python -m dyag_model_exporter.gguf_worker quantize IN.gguf OUT.gguf q8_0 [--threads N]
    python -m dyag_model_exporter.gguf_worker answer MODEL.gguf REQUEST.json RESULT.json [--lora ADAPTER.gguf]
        REQUEST: {"prompts": [...], "max_tokens": 48, "stop": [...], "threads": 0,
                  "sequences": [{"text": ..., "tokens": [...], "first": 17}, ...],   (optional: teacher forcing)
                  "reference": "hf.npy", "base": "base.npy" or null}
        RESULT:  {"tokens": [[...], ...], "answers": [...], "scored": {...}, "seconds": 1.2}
    The .npy files hold the HF model's (and the base model's) log-probabilities, one row per scored token, the
    sequences' rows one after the other; "scored" holds, per sequence, each token's KL divergence, top-1 verdict and
    both negative log-likelihoods (dyag_llm.fidelity), and whether the GGUF's tokenizer cuts its text into its tokens.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dyag_model_exporter.gguf_worker")
    sub = parser.add_subparsers(dest="command", required=True)
    q = sub.add_parser("quantize")
    q.add_argument("source", type=Path)
    q.add_argument("target", type=Path)
    q.add_argument("quantization")
    q.add_argument("--threads", type=int, default=0)
    a = sub.add_parser("answer")
    a.add_argument("model", type=Path)
    a.add_argument("request", type=Path)
    a.add_argument("result", type=Path)
    a.add_argument("--lora", type=Path, default=None)
    args = parser.parse_args(argv)

    from dyag_model_exporter.llama import GgufChat, quantize

    if args.command == "quantize":
        quantize(args.source, args.target, args.quantization, threads=args.threads)
        return 0
    request = json.loads(args.request.read_text(encoding="utf-8"))
    began = time.monotonic()
    chat = GgufChat(args.model, args.lora, threads=int(request.get("threads") or 0))
    try:
        tokens = [chat.tokenize(p) for p in request["prompts"]]
        answers = [
            chat.answer(p, max_tokens=int(request["max_tokens"]), stop=request.get("stop") or ())
            for p in request["prompts"]
        ]
        scored = (
            chat.score(request["sequences"], Path(request["reference"]), request.get("base") and Path(request["base"]))
            if request.get("sequences")
            else None
        )
    finally:
        chat.close()
    tmp = args.result.with_name(args.result.name + ".part")
    tmp.write_text(
        json.dumps(
            {"tokens": tokens, "answers": answers, "scored": scored, "seconds": round(time.monotonic() - began, 3)},
            ensure_ascii=False,
        ),
        encoding="utf-8",
    )
    tmp.replace(args.result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
