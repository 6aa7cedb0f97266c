"""The whole report: JSON-able, rendered in French in the guide's layout."""

from __future__ import annotations

import json

from test_validation_support import catalog, chat, entity, long_answer

from dyag_core.validation import validate_dataset

CATALOG = catalog(
    entity("1", "GEOVAL", "Outil de gestion des valorisations géographiques des services de l'État."),
    entity("2", "SINP"),
)


def test_report_to_dict_is_json_and_render_follows_the_guide(tmp_path) -> None:
    lines = [chat(f"Qu'est-ce que GEOVAL (variante {i}) ?", long_answer("GEOVAL", i)) for i in range(3)] + ["{cassé"]
    path = tmp_path / "train.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    report = validate_dataset(path, catalog=CATALOG, model="gpt-3.5-turbo")
    data = json.loads(json.dumps(report.to_dict()))
    assert data["examples"] == 3 and data["invalid_lines"] == 1
    assert data["issues"][0] == {"line": 4, "code": "invalid_json", "message": data["issues"][0]["message"]}
    assert data["coverage"]["uncovered"] == [{"id": "2", "name": "SINP"}]
    assert {item["key"] for item in data["checklist"]} >= {
        "size",
        "format",
        "duplicates",
        "coverage",
        "balance",
        "answer_length",
        "negatives",
        "split",
    }
    text = report.render()
    for heading in (
        "📊 Statistiques globales:",
        "⚠️  Recommandations:",
        "Applications couvertes: 1 (50.0%)",
        "- ID 2: SINP",
        "Ligne 4: invalid_json",
    ):
        assert heading in text
    assert "Ajouter des exemples pour les applications non couvertes : SINP (ID 2)" in text


def test_a_clean_small_file_is_usable_with_reservations() -> None:
    report = validate_dataset([chat(f"Question {i} ?", long_answer("APP", i)) for i in range(5)], pii=False)
    assert report.blocking == []
    assert report.verdict == "utilisable avec réserves"  # too small, no split…
