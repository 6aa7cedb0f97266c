"""The guide's step 3.1: entities covered, question types, recommendations."""

from __future__ import annotations

from test_validation_support import catalog, chat, entity, long_answer

from dyag_core.validation import analyse_coverage, parse_dataset, validate_dataset

CATALOG = catalog(
    entity("1", "GEOVAL", "Outil de gestion des valorisations géographiques pour les services de l'État."),
    entity("2", "HYDROSTAT", "Observatoire.", long_name="Observatoire de la qualité des cours d'eau"),
    entity("3", "SINP", "Système d'information sur la nature et les paysages, plateformes régionales."),
)


def test_uncovered_entities_are_named_when_matching_questions() -> None:
    lines = [
        chat("Qu'est-ce que geoval ?", long_answer("GEOVAL")),
        chat("À quoi sert l'Observatoire de la qualité des cours d'eau ?", "x"),
    ]
    report = analyse_coverage(CATALOG, parse_dataset(lines).records)
    assert report.source == "texte"
    assert report.covered == ["1", "2"]
    assert report.uncovered == [("3", "SINP")]
    assert round(report.percent, 1) == 66.7
    assert report.recommendations[0] == "Ajouter des exemples pour les applications non couvertes : SINP (ID 3)"
    assert any(
        r.startswith("Vérifier la qualité des descriptifs trop courts (<50 caractères) : HYDROSTAT")
        for r in report.recommendations
    )


def test_the_manifest_gives_entities_and_question_types(tmp_path) -> None:
    lines = [chat(f"Question {i}", long_answer("X", i)) for i in range(4)]
    manifest = [
        {"line": 1, "type": "definition", "entity_ids": ["1"], "negative": False},
        {"line": 2, "type": "definition", "entity_ids": ["1"], "negative": False},
        {"line": 3, "type": "definition", "entity_ids": ["2"], "negative": False},
        {"line": 4, "type": "comparative", "entity_ids": ["1", "3"], "negative": False},
    ]
    report = validate_dataset(lines, catalog=CATALOG, manifest=manifest, pii=False)
    assert report.coverage.source == "manifest" and report.coverage.percent == 100.0
    assert report.type_counts == {"definition": 3, "comparative": 1}
    text = " | ".join(report.recommendations)
    assert "Équilibrer les types de questions (plus de questions de statut" in text
    assert "Réduire la part du type « Définition » (75.0 % > 40%)" in text
    assert "Ajouter des exemples négatifs" in text
    rendered = report.render()
    assert "📈 Distribution des types de questions:" in rendered and "Définition: 3 (75.0%)" in rendered


def test_the_sidecar_manifest_is_found_next_to_the_dataset(tmp_path) -> None:
    from dyag_core.dataset.formats import manifest_path

    path = tmp_path / "train.jsonl"
    path.write_text(chat("Statut ?", long_answer("SINP")) + "\n", encoding="utf-8")
    entry = {
        "line": 1,
        "id": "a",
        "type": "status",
        "entity_ids": ["3"],
        "fields": ["status"],
        "template": "status.1",
        "key_facts": [],
        "negative": False,
    }
    manifest_path(path).write_text(__import__("json").dumps(entry) + "\n", encoding="utf-8")
    report = validate_dataset(path, catalog=CATALOG, pii=False)
    assert report.coverage.covered == ["3"]
    assert report.type_counts == {"status": 1}
