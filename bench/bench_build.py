"""Benchmark: build a dataset with every question type from a synthetic catalog of 1,000 applications.

Target: generate() in at most 5 s on the 2-core dev machine. Prints the median of 5 runs for
num_questions=None (everything the plan allows) and num_questions=20,000, and the ratio to the target.

    /work/main/.venv/bin/python bench/bench_build.py [--apps 1000] [--runs 5]
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import time
from typing import Any

from dyag_core.catalog import Catalog, load_catalog
from dyag_core.dataset import GenerationConfig, generate, plan_size

TARGET_S = 5.0
# Fill rates of the guide's step 1.1 (and the real export's other fields).
FILL = {
    "nom long": 0.96,
    "descriptif": 0.93,
    "statut si": 1.0,
    "domaines et sous domaines": 0.89,
    "sites": 0.84,
    "acteurs": 0.78,
    "contacts": 0.67,
    "portee geographique": 0.85,
    "evenements": 0.7,
    "applications liees": 0.5,
    "donnees liees": 0.45,
}
STATUSES = (
    "En production",
    "En production",
    "En production",
    "En construction",
    "En fin de vie",
    "Abandonnée",
    "En projet",
)
SCOPES = ("Nationale", "Régionale", "Départementale", "Locale", "Européenne")
DOMAINS = {
    "Transports": ("Transports routiers", "Transport ferroviaire", "Transport fluvial", "Sécurité routière"),
    "Biodiversité": ("Aires protégées", "Espèces protégées", "Milieu marin", "Natura 2000"),
    "Eau et milieux aquatiques": ("Assainissement", "Qualité des eaux", "Hydrométrie", "Gestion quantitative"),
    "Énergie et climat": ("Climat", "Énergies renouvelables", "Efficacité énergétique", "Qualité de l'air"),
    "Risques naturels et technologiques": ("Inondations", "Installations classées", "Séismes", "Sites et sols pollués"),
    "Aménagement, urbanisme et logement": ("Urbanisme", "Logement social", "Construction", "Habitat privé"),
    "Fonctions support": ("Finances", "Ressources humaines", "Systèmes d'information", "Achats"),
    "Information géographique": ("Cartographie", "Référentiels géographiques", "Données ouvertes", "Imagerie"),
}
ACTORS = [
    f"{d}/{s}"
    for d in ("DGALN", "DGITM", "DGPR", "DGEC", "SNUM", "SG", "CGDD")
    for s in ("DEB", "DHUP", "DST", "SRT", "MSP", "DRH", "SDSI", "SCEE")
]
ACTORS += [
    f"DREAL {r}" for r in ("Bretagne", "Occitanie", "Normandie", "Grand Est", "Hauts-de-France", "Auvergne-Rhône-Alpes")
]
SYLLABLES = (
    "GEO",
    "HYDRO",
    "ECO",
    "AGRI",
    "TRANS",
    "URBA",
    "BIO",
    "CLIM",
    "RISK",
    "DOC",
    "STAT",
    "PLAN",
    "SUIVI",
    "NAT",
    "TERRA",
    "FLUX",
)
FIRST_NAMES = ("Camille", "Julien", "Aurélie", "Thomas", "Marie", "Nicolas", "Sophie", "Antoine", "Laura", "Romain")
LAST_NAMES = ("MARTIN", "BERNARD", "DUBOIS", "LAMBERT", "ROCHE", "GARNIER", "MERCIER", "VINCENT", "LEFEBVRE", "NICOLAS")
SENTENCES = (
    "Cette application permet aux services de l'État de suivre les procédures réglementaires de leur périmètre.",
    "Elle centralise les données produites par les services déconcentrés et les met à disposition du public.",
    "Les dossiers sont instruits en ligne depuis une interface dédiée, avec des contrôles automatiques de complétude.",
    "Des tableaux de bord nationaux et régionaux sont produits chaque trimestre pour le pilotage.",
    "L'outil échange des données avec plusieurs référentiels nationaux au moyen d'une API.",
)


def synthetic_catalog(apps: int, seed: int = 7) -> bytes:
    rng = random.Random(seed)
    names = _names(apps, rng)
    records = [_record(1000 + i, name, names, rng) for i, name in enumerate(names)]
    return json.dumps({"applicationsia synthetic": records}, ensure_ascii=False).encode()


def _names(count: int, rng: random.Random) -> list[str]:
    names: dict[str, None] = {}
    while len(names) < count:
        names[f"{rng.choice(SYLLABLES)}{rng.choice(SYLLABLES)}-{rng.randrange(1, 999)}"] = None
    return list(names)


def _record(app_id: int, name: str, names: list[str], rng: random.Random) -> dict[str, Any]:
    record: dict[str, Any] = {"id": app_id, "nom": name}
    has = {field: rng.random() < rate for field, rate in FILL.items()}
    domain = rng.choice(list(DOMAINS))
    optional = {
        "nom long": lambda: f"Suivi des {rng.choice(DOMAINS[domain]).lower()} ({name})",
        "descriptif": lambda: "\n\n".join(rng.sample(SENTENCES, rng.randint(1, 4))),
        "statut si": lambda: rng.choice(STATUSES),
        "portee geographique": lambda: rng.choice(SCOPES),
        "domaines et sous domaines": lambda: [
            {"domaine metier": domain, "sous domaine metier": s} for s in rng.sample(DOMAINS[domain], rng.randint(1, 2))
        ],
        "sites": lambda: [{"nature de l url": "Site principal", "url": f"https://{name.lower()}.example.gouv.fr/"}],
        "acteurs": lambda: [
            {"role d acteur": role, "acteur": rng.choice(ACTORS)} for role in ("MOA", "MOE")[: rng.randint(1, 2)]
        ],
        "contacts": lambda: [_contact(rng) for _ in range(rng.randint(1, 2))],
        "evenements": lambda: [
            {
                "date": f"{rng.randint(1, 28):02d}/{rng.randint(1, 12):02d}/{rng.randint(2005, 2024)}",
                "type d evenement": "Mise en production",
                "version": "1.0",
            }
        ],
        "applications liees": lambda: [
            {"application": rng.choice(names), "type de flux": rng.choice(("Entrant", "Sortant"))}
            for _ in range(rng.randint(1, 3))
        ],
        "donnees liees": lambda: [
            {"donnee": f"Données {rng.choice(DOMAINS[domain]).lower()}", "type de flux": "Entrant"}
        ],
    }
    for field, make in optional.items():
        if has[field]:
            record[field] = make()
    return record


def _contact(rng: random.Random) -> dict[str, str]:
    first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
    return {
        "role de contact": "Chef de projet",
        "contact": f"{last} {first} (chef de projet) - {rng.choice(ACTORS)}",
        "courriel": f"{first.lower()}.{last.lower()}@example.gouv.fr",
    }


def median_seconds(catalog: Catalog, config: GenerationConfig, runs: int) -> tuple[float, int]:
    timings, size = [], 0
    for _ in range(runs):
        start = time.perf_counter()
        size = len(generate(catalog, config))
        timings.append(time.perf_counter() - start)
    return statistics.median(timings), size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--apps", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()

    start = time.perf_counter()
    catalog = load_catalog(synthetic_catalog(args.apps), filename="synthetic.json")
    print(f"catalog: {len(catalog.entities)} applications, loaded in {time.perf_counter() - start:.2f} s")
    plan = plan_size(catalog, GenerationConfig())
    print(plan.describe())
    for num_questions in (None, 20_000):
        seconds, size = median_seconds(catalog, GenerationConfig(num_questions=num_questions), args.runs)
        label = "all" if num_questions is None else f"{num_questions:,}"
        print(
            f"generate(num_questions={label}): {size:,} examples, median {seconds:.2f} s over {args.runs} runs "
            f"= {seconds / TARGET_S:.0%} of the {TARGET_S:.0f} s target"
        )


if __name__ == "__main__":
    main()
