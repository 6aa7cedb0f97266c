"""Personal data: e-mails, French phone numbers, catalog contacts; redaction; the hosted-API verdict."""

from __future__ import annotations

import json

import pytest
from test_validation_support import catalog, chat, entity

from dyag_core.catalog.model import Contact
from dyag_core.validation import PiiScanner, parse_dataset, redact, scan_pii, validate_dataset

CATALOG = catalog(entity("1", "GEOVAL", contacts=(Contact("DUPONT Jean", "Chef de projet"), Contact("LEFÈVRE Hélène"))))


@pytest.mark.parametrize(
    ("text", "kind", "match"),
    [
        (
            "Écrire à jean.dupont@developpement-durable.gouv.fr pour l'accès.",
            "email",
            "jean.dupont@developpement-durable.gouv.fr",
        ),
        ("Appeler le 01 23 45 67 89 en semaine.", "telephone", "01 23 45 67 89"),
        ("Standard : +33 1 23 45 67 89.", "telephone", "+33 1 23 45 67 89"),
        ("Tél. 0123456789", "telephone", "0123456789"),
        ("Tél. 01.23.45.67.89", "telephone", "01.23.45.67.89"),
        ("Le chef de projet est Jean Dupont.", "personne", "Jean Dupont"),
        ("Contact : DUPONT Jean (MOE).", "personne", "DUPONT Jean"),
        ("Contact : Helene Lefevre.", "personne", "Helene Lefevre"),
    ],
)
def test_each_kind_is_found(text: str, kind: str, match: str) -> None:
    assert (kind, match) in PiiScanner.for_catalog(CATALOG).find(text)


def test_ordinary_text_has_no_hit() -> None:
    scanner = PiiScanner.for_catalog(CATALOG)
    assert scanner.find("GEOVAL compte 1 234 567 lignes et la version 12.4.2 date de 2023.") == []


def test_hits_carry_their_line_and_broken_lines_are_scanned_too() -> None:
    lines = [chat("Qui contacter ?", "Jean Dupont, jean.dupont@example.fr"), chat("Q", "R"), "{broken 06 12 34 56 78"]
    parsed = parse_dataset(lines)
    report = scan_pii(parsed.records, parsed.broken_text, catalog=CATALOG)
    assert [(h.line, h.kind) for h in report.hits] == [(1, "email"), (1, "personne"), (3, "telephone")]


def test_the_hosted_api_verdict_blocks_until_redacted_or_allowed() -> None:
    lines = [chat("Qui contacter ?", "Écrire à jean.dupont@example.fr")]
    blocked = validate_dataset(lines, catalog=CATALOG, bound_for_hosted_api=True)
    assert blocked.pii.blocking
    assert blocked.pii.verdict.startswith("BLOQUANT")
    assert "avant l'envoi à une API hébergée" in blocked.pii.verdict
    assert any("données personnelles" in reason for reason in blocked.blocking)
    allowed = validate_dataset(lines, catalog=CATALOG, bound_for_hosted_api=True, allow_pii=True)
    assert not allowed.pii.blocking
    local = validate_dataset(lines, catalog=CATALOG)
    assert not local.pii.blocking and local.pii.hits


def test_redact_writes_placeholders_and_keeps_json_valid(tmp_path) -> None:
    source = tmp_path / "train.jsonl"
    lines = [
        chat("Qui contacter pour GEOVAL ?", "Hélène Lefèvre : helene.lefevre@example.fr, tél. +33 1 23 45 67 89."),
        chat("Statut ?", "En production."),
        "{broken jean.dupont@example.fr",
    ]
    source.write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = redact(source, tmp_path / "redacted.jsonl", catalog=CATALOG)
    assert result.lines_changed == [1, 3]
    out = (tmp_path / "redacted.jsonl").read_text(encoding="utf-8").splitlines()
    answer = json.loads(out[0])["messages"][2]["content"]
    assert answer == "[PERSONNE] : [EMAIL], tél. [TÉLÉPHONE]."
    assert out[1] == lines[1] and out[2] == "{broken [EMAIL]"
    assert validate_dataset(tmp_path / "redacted.jsonl", catalog=CATALOG).pii.hits == []
