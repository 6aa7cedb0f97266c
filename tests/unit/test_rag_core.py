"""The pure part of the RAG: chunks, entity linking, rank fusion, prompt, input checks (dyag_core.rag)."""

from __future__ import annotations

import dataclasses

import pytest

from dyag_core.catalog import load_catalog_file
from dyag_core.catalog.model import Entity
from dyag_core.rag import (
    COMPACT_SYSTEM_PROMPT,
    SECTIONS,
    SYSTEM_PROMPT,
    ContextChunk,
    EntityLinker,
    RagError,
    abstention,
    build_messages,
    chunk_catalog,
    chunk_entity,
    cited_entities,
    compact_chunks,
    entity_of_chunk_id,
    is_abstention,
    names_of,
    reciprocal_rank_fusion,
    tokenize,
    validate_collection_name,
    validate_question,
    vocabularies,
)


@pytest.fixture(scope="module")
def catalog(sample_catalog_path):
    return load_catalog_file(sample_catalog_path)


@pytest.fixture(scope="module")
def chunks(catalog):
    return chunk_catalog(catalog)


@pytest.fixture(scope="module")
def linker(chunks):
    vocabulary, ordinary = vocabularies(c.text for c in chunks)
    first = {}
    for c in chunks:
        first.setdefault(c.entity_id, c.metadata)
    return EntityLinker.from_metadatas(first.values(), ordinary), vocabulary


# ------------------------------------------------------------------ chunks


def test_every_entity_gets_one_chunk_per_section_with_its_name_and_id(catalog, chunks):
    by_entity: dict[str, set[str]] = {}
    for c in chunks:
        by_entity.setdefault(c.entity_id, set()).add(c.section)
        entity = catalog.by_id()[c.entity_id]
        first_line = c.text.splitlines()[0]
        assert entity.name in first_line and f"[id {entity.id}]" in first_line
        assert c.metadata["entity_id"] == entity.id and c.metadata["entity_name"] == entity.name
        assert entity.name in c.embed_text
        assert all(isinstance(v, (str, int, float, bool)) for v in c.metadata.values()), c.metadata
    assert len(by_entity) == len(catalog.entities)
    assert all(sections == set(SECTIONS) for sections in by_entity.values())


def test_sections_hold_their_facts_and_say_when_a_field_is_empty(catalog):
    tzen = next(e for e in catalog.entities if e.name == "6Tzen")
    text = {c.section: c.text for c in chunk_entity(tzen)}
    assert "Statut : En production" in text["overview"] and "Transports > Transports routiers" in text["overview"]
    assert "MOA : DGITM/DST/PTF" in text["organisation"] and "aurelie.lefebvre@" in text["organisation"]
    assert "https://6tzen.example.gouv.fr/" in text["sites"]
    assert "REGTRANS (flux bidirectionnel)" in text["related"]
    prelev = next(e for e in catalog.entities if e.name == "PRELEV")  # no contacts in the record
    organisation = next(c.text for c in chunk_entity(prelev) if c.section == "organisation")
    assert "Contacts : non renseigné" in organisation


def test_a_long_description_is_cut_into_parts_that_each_name_the_entity(catalog):
    tzen = next(e for e in catalog.entities if e.name == "6Tzen")
    parts = [c for c in chunk_entity(tzen) if c.section == "description"]
    assert len(parts) == 2 and [c.part for c in parts] == [1, 2]
    assert all(len(c.text) < 1500 and c.text.startswith("6Tzen (") for c in parts)
    joined = " ".join(c.text for c in parts)
    assert "production de statistiques nationales" in joined and "l'inscription au registre" in joined


def test_chunk_ids_are_stable_and_change_only_with_the_content(catalog):
    geoval = next(e for e in catalog.entities if e.name == "GEOVAL")
    first, again = chunk_entity(geoval), chunk_entity(geoval)
    assert [c.id for c in first] == [c.id for c in again]
    assert all(entity_of_chunk_id(c.id) == geoval.id for c in first)
    moved = dataclasses.replace(geoval, status="En fin de vie")
    changed = {c.section for c in chunk_entity(moved)} - {
        c.section for c in chunk_entity(moved) if c.id in {x.id for x in first}
    }
    assert changed == {"overview"}  # only the section holding the status changed
    renamed = dataclasses.replace(geoval, name="GEOVAL-2")
    assert not {c.id for c in chunk_entity(renamed)} & {c.id for c in first}  # the name is in every chunk


# ------------------------------------------------------------------ entity linking


@pytest.mark.parametrize(
    ("question", "expected", "kind"),
    [
        ("Quel est le statut de GEOVAL ?", "GEOVAL", "name"),
        ("quel est le statut de geoval", "GEOVAL", "name"),
        ("Que fait l'application Gestion des valorisations geographiques ?", "GEOVAL", "long_name"),
        ("Qui gère l'application Observatoire national de la qualité des cours d'eau ?", "HYDROSTAT", "long_name"),
        ("Quel est le statut de GEOVALL ?", "GEOVAL", "fuzzy_name"),
        ("Hydroscpe est-il en production ?", "HYDROSCOPE", "fuzzy_name"),
        ("Où en est GOEVAL ?", "GEOVAL", "fuzzy_name"),  # two letters swapped
        ("Que fait l'application 6Ten ?", "6Tzen", "fuzzy_name"),  # a letter dropped
        ("Les dates clés d'AD-PLUS ?", "ADS-PLUS", "fuzzy_name"),
        ("Le site de secheresse info ?", "SECHERESSE-INFO", "name"),
        ("N2000 SUIVI, c'est quoi ?", "N2000-SUIVI", "name"),
        ("Qui s'occupe de LHI ?", "LHI-SUIVI", "acronym"),
        ("Que fait le SINP ?", "8-SINP", "acronym"),
        ("Parle-moi de 6tzen", "6Tzen", "name"),
        (
            "Contacts de l'application Registre national des entreprises de transport routier ?",
            "REGTRANS",
            "partial_long_name",
        ),
    ],
)
def test_the_linker_finds_names_long_names_acronyms_accents_and_typos(linker, question, expected, kind):
    link, vocabulary = linker
    found = link.link(question, vocabulary)
    assert found, question
    assert found[0].name == expected and found[0].kind == kind, found


def test_the_linker_finds_both_sides_of_a_comparison_and_nothing_in_a_listing(linker):
    link, vocabulary = linker
    names = {m.name for m in link.link("Quelle est la différence entre l'application EOLIA et BILAN-GES ?", vocabulary)}
    assert names == {"EOLIA", "BILAN-GES"}
    assert link.link("Quelles applications impliquent DREAL Bretagne ?", vocabulary) == []
    assert link.link("Quels sont les sites de GEOVAL ?", vocabulary)[0].name == "GEOVAL"  # "sites" is not SITES-POLLUES


def test_names_come_from_the_catalog_aliases_included():
    entity = Entity(
        id="9",
        name="ZEPHYR",
        long_name="Zone d'expérimentation",
        extra={"sigle": "ZXP", "autres noms": "Vent d'ouest; WESTWIND"},
    )
    names = names_of(entity)
    assert names.aliases == ("ZXP", "Vent d'ouest", "WESTWIND")
    link = EntityLinker([names])
    assert link.link("Qu'est-ce que WESTWIND ?")[0].kind == "alias"
    assert link.link("Statut de zxp ?")[0].entity_id == "9"
    assert EntityLinker([names_of(Entity(id="1", name="GEOVAL"))]).link("Statut de ZEPHYR ?") == []


def test_unknown_names_are_reported_but_catalog_words_are_not(linker):
    link, vocabulary = linker
    question = "Quel est le statut de l'application TIVAPORT NG ?"
    assert link.unknown_mentions(question, link.link(question, vocabulary), vocabulary) == ["TIVAPORT NG"]
    for known in ("Quelles applications impliquent DREAL Bretagne ?", "Quel est le statut de GEOVAL ?"):
        assert link.unknown_mentions(known, link.link(known, vocabulary), vocabulary) == []


# ------------------------------------------------------------------ fusion, prompt, checks


def test_reciprocal_rank_fusion():
    fused = reciprocal_rank_fusion([["a", "b", "c"], ["c", "a", "d"]], k=60)
    assert [item for item, _ in fused] == ["a", "c", "b", "d"]
    assert fused[0][1] == pytest.approx(1 / 61 + 1 / 62)
    assert reciprocal_rank_fusion([[], []]) == []
    with pytest.raises(ValueError):
        reciprocal_rank_fusion([["a"]], weights=[1.0, 2.0])


def test_the_prompt_is_french_grounded_and_asks_for_sources():
    for phrase in ("uniquement à partir des extraits", "Je ne sais pas", "[1503 GEOVAL]"):
        assert phrase in SYSTEM_PROMPT
    messages = build_messages(
        "Quel est le statut de GEOVAL ?", [ContextChunk("1503", "GEOVAL", "GEOVAL [id 1503]\nStatut : En production")]
    )
    assert [m["role"] for m in messages] == ["system", "user"]
    assert (
        "source : [1503 GEOVAL]" in messages[1]["content"]
        and "Question : Quel est le statut de GEOVAL ?" in messages[1]["content"]
    )
    assert is_abstention(abstention(["TIVAPORT NG"])) and "TIVAPORT NG" in abstention(["TIVAPORT NG"])
    assert cited_entities("GEOVAL est en production [1503 GEOVAL].", [("1503", "GEOVAL"), ("1004", "6Tzen")]) == [
        "1503"
    ]
    assert cited_entities("Voir l'application 6tzen.", [("1503", "GEOVAL"), ("1004", "6Tzen")]) == ["1004"]


def test_bad_input_is_refused_with_a_clear_message():
    with pytest.raises(RagError) as empty:
        validate_question("   ")
    assert empty.value.code == "empty_question"
    with pytest.raises(RagError) as huge:
        validate_question("x" * 100_000)
    assert huge.value.code == "question_too_long" and "100,000" in huge.value.message
    assert validate_question("  Quel   statut ? ") == "Quel statut ?"
    assert validate_collection_name("applications_ia") == "applications_ia"
    for bad in ("", "a", "-bad", "bad name", "x..y", "10.0.0.1"):
        with pytest.raises(RagError):
            validate_collection_name(bad)


def test_tokens_fold_accents_and_drop_stop_words():
    assert tokenize("Quels sont les Réseaux de l'Écologie ?") == ["reseau", "ecologie"]


def test_a_compact_context_for_small_local_models_keeps_the_first_chunks_within_the_budget():
    chunks = [
        ContextChunk(str(i), f"APP{i}", f"APP{i} [id {i}] — fiche\n" + "Statut : En production\n" * 40)
        for i in range(5)
    ]
    assert compact_chunks(chunks, 0) == chunks  # no budget: unchanged
    compact = compact_chunks(chunks, 900)
    assert [c.entity_id for c in compact] == ["0", "1", "2"]  # the first three, in order
    assert sum(len(c.text) for c in compact) <= 900
    assert all(c.text.startswith(f"APP{c.entity_id} [id {c.entity_id}]") and c.text.endswith("…") for c in compact)
    short = [ContextChunk("1", "A", "court"), ContextChunk("2", "B", "mot " * 400)]
    assert [len(c.text) for c in compact_chunks(short, 900)][0] == 5 and len(compact_chunks(short, 900)[1].text) <= 895
    assert compact_chunks(chunks, 300) == []  # a share under MIN_CHUNK_CHARS: nothing rather than crumbs

    messages = build_messages("Quel est le statut de APP0 ?", chunks, max_context_chars=900)
    assert messages[0]["content"] == COMPACT_SYSTEM_PROMPT and "Je ne sais pas" in COMPACT_SYSTEM_PROMPT
    assert "[1] source" not in messages[1]["content"] and "APP0 [id 0]" in messages[1]["content"]
    assert messages[1]["content"].endswith("Question : Quel est le statut de APP0 ?")
    assert build_messages("q", chunks, "Mon prompt", max_context_chars=900)[0]["content"] == "Mon prompt"
    full = build_messages("q", chunks)
    assert full[0]["content"] == SYSTEM_PROMPT and "[5] source : [4 APP4]" in full[1]["content"]
