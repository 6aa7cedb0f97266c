"""Catalogs of the sizes and shapes real exports have (issue "any catalog"): bytes and a file name, per shape."""

from __future__ import annotations

import csv
import io
import json


def app(i: int, **extra) -> dict:
    record = {
        "id": 100 + i,
        "nom": f"APP{i:04d}",
        "nom long": f"Application numéro {i}",
        "descriptif": f"Gère le dossier {i}.",
        "statut si": "En production" if i % 3 else "En construction",
        "portee geographique": "Nationale",
        "domaines et sous domaines": [{"domaine metier": f"Domaine {i % 4}"}],
        "acteurs": [{"role d acteur": "MOA", "acteur": f"DIR/{i % 5}"}],
        "contacts": [
            {"role de contact": "Chef de projet", "contact": f"NOM{i} Prénom", "courriel": f"p{i}@example.org"}
        ],
    }
    record.update(extra)
    return record


def as_json(records: list[dict]) -> tuple[bytes, str]:
    return json.dumps({"mes applications": records}, ensure_ascii=False).encode(), "catalog.json"


def as_csv(records: list[dict]) -> tuple[bytes, str]:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=["id", "nom", "nom long", "descriptif", "statut si", "portee geographique"])
    writer.writeheader()
    for r in records:
        writer.writerow({k: r.get(k, "") for k in writer.fieldnames})
    return out.getvalue().encode(), "catalog.csv"


SHAPES = {
    "1 application": lambda: as_json([app(1)]),
    "2 applications": lambda: as_json([app(1), app(2)]),
    "10 applications": lambda: as_json([app(i) for i in range(10)]),
    "1,000 applications": lambda: as_json([app(i) for i in range(1000)]),
    "CSV": lambda: as_csv([app(i) for i in range(10)]),
    "JSONL": lambda: ("\n".join(json.dumps(app(i), ensure_ascii=False) for i in range(10)).encode(), "catalog.jsonl"),
    "a bare list": lambda: (json.dumps([app(i) for i in range(10)], ensure_ascii=False).encode(), "catalog.json"),
    "English field names": lambda: (
        json.dumps(
            [
                {
                    "id": i,
                    "name": f"APP{i}",
                    "long name": f"Application {i}",
                    "status": "En production",
                    "description": f"Handles case {i}.",
                    "scope": "Nationale",
                }
                for i in range(10)
            ]
        ).encode(),
        "catalog.json",
    ),
    "no contacts field": lambda: as_json([{k: v for k, v in app(i).items() if k != "contacts"} for i in range(10)]),
    "only names and descriptions": lambda: as_json(
        [{"id": i, "nom": f"APP{i}", "descriptif": f"Gère le dossier {i}."} for i in range(10)]
    ),
    "two applications sharing a name": lambda: as_json([app(1), {**app(2), "nom": "APP0001"}, app(3)]),
    "a 10,000-word description": lambda: as_json([app(1, descriptif="mot " * 10_000), app(2)]),
    "50 domains": lambda: as_json(
        [app(1, **{"domaines et sous domaines": [{"domaine metier": f"Domaine {d}"} for d in range(50)]}), app(2)]
    ),
    "many empty placeholders": lambda: as_json(
        [
            app(i, **{"statut si": "***TEMPORAIRE***", "portee geographique": "N/A", "descriptif": "-"})
            for i in range(10)
        ]
    ),
}
