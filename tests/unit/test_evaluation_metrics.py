"""Per-question metrics on hand-checked cases: every expected number is worked out in a comment."""

from __future__ import annotations

import pytest
from test_evaluation_support import (
    ACTORS_GEOVAL,
    CATALOG,
    COUNT_PRODUCTION,
    EMPTY_SITES_ARCHIPEL,
    EVENTS_GEOVAL,
    SITES_GEOVAL,
    STATUS_GEOVAL,
    UNKNOWN_ZORGLUB,
    case,
)

from dyag_core.evaluation import (
    CatalogIndex,
    Response,
    abstains,
    match_fact,
    normalize_url,
    score_answer,
    token_prf,
    view,
)

INDEX = CatalogIndex(CATALOG)


def score(c, text: str, **kw):
    return score_answer(c, Response(text, latency_ms=100.0), index=INDEX, **kw)


def test_a_correct_answer() -> None:
    r = score(STATUS_GEOVAL, "GEOVAL est en production.")
    # fact "en production" is stated -> 1/1 = 1.0; no contradiction -> correct.
    assert r.correct and r.reason_code is None and r.reason is None
    assert r.fact_recall == 1.0 and r.facts_found == ("en production",) and r.facts_missing == ()
    assert r.hallucinations == () and not r.abstained
    # Tokens without stop words ("est", "en", "l", "des" dropped):
    #   answer   = geoval, production                                                    -> 2
    #   expected = application, geoval, gestion, valorisations, geographiques, actuellement, production -> 7
    #   common = 2 -> precision 2/2 = 1.0, recall 2/7, F1 = 2·1·(2/7) / (1 + 2/7) = 4/9.
    assert r.precision == 1.0
    assert r.recall == pytest.approx(2 / 7)
    assert r.f1 == pytest.approx(4 / 9)
    assert not r.exact_match


def test_a_partially_correct_list() -> None:
    r = score(ACTORS_GEOVAL, "Les acteurs de GEOVAL sont la DGALN/DHUP et le CEREMA.")
    # 2 of the 3 actors -> fact recall 2/3 = 0.667 < 0.8 -> incorrect, "missing_facts", IGN missing.
    assert r.fact_recall == pytest.approx(2 / 3)
    assert r.facts_found == ("DGALN/DHUP", "CEREMA") and r.facts_missing == ("IGN",)
    assert not r.correct and r.reason_code == "missing_facts"
    assert "IGN" in r.reason and "2/3" in r.reason
    assert r.hallucinations == ()


def test_a_long_list_with_one_member_missing_is_still_correct() -> None:
    members = ("ALPHA", "BRAVO", "CHARLIE", "DELTA", "ECHO")
    c = case("listing", "Quelles applications … ?", "ALPHA, BRAVO, CHARLIE, DELTA et ECHO.", members, ())
    r = score(c, "ALPHA, BRAVO, CHARLIE et DELTA.")
    # 4 of 5 members -> 0.8 = the threshold -> correct.
    assert r.fact_recall == pytest.approx(0.8) and r.correct


def test_a_paraphrased_correct_answer() -> None:
    # The date in another form (03/04/2019 for "3 avril 2019"), other words: the fact is stated -> 1/1, correct,
    # although few words are shared with the expected answer.
    r = score(EVENTS_GEOVAL, "Elle a été mise en service le 03/04/2019, en version 1.")
    assert r.fact_recall == 1.0 and r.correct
    assert r.f1 < 0.5  # token overlap alone would have failed it
    # The URL without scheme, www or trailing slash; upper case.
    r = score(SITES_GEOVAL, "On la trouve sur WWW.GEOVAL.EXAMPLE.GOUV.FR.")
    assert r.fact_recall == 1.0 and r.correct and r.hallucinations == ()
    # A count in words: "deux" for the fact "2"; "en production" in upper case without accents issue.
    r = score(COUNT_PRODUCTION, "Deux applications sont EN PRODUCTION : GEOVAL et HYDROSCOPE.")
    assert r.fact_recall == 1.0 and r.correct
    # Gender / plural: "abandonné" states the status "Abandonnée".
    sinp = case("status", "Quel est le statut de 8-SINP ?", "8-SINP est abandonnée.", ("abandonnée",), ("2",))
    assert score(sinp, "Le projet 8-SINP a été abandonné.").correct


def test_a_wrong_status() -> None:
    r = score(STATUS_GEOVAL, "GEOVAL est abandonnée depuis 2021.")
    # "abandonnée" is in the catalog's status vocabulary (8-SINP's) and GEOVAL's record says "En production":
    # one wrong_status hallucination; "en production" is not stated -> fact recall 0/1; incorrect for the hallucination.
    assert [h.kind for h in r.hallucinations] == ["wrong_status"]
    assert r.hallucinations[0].value == "abandonnee"
    assert "En production" in r.hallucinations[0].detail
    assert r.fact_recall == 0.0
    assert not r.correct and r.reason_code == "hallucination" and "faits manquants : en production" in r.reason


def test_a_negated_status_is_not_a_claim() -> None:
    r = score(STATUS_GEOVAL, "Non, GEOVAL n'est pas abandonnée : elle est en production.")
    assert r.hallucinations == () and r.correct
    # "mise en production" is an event, not the status of ARCHIPEL ("En projet").
    archipel = case("status", "Quel est le statut d'ARCHIPEL ?", "ARCHIPEL est en projet.", ("en projet",), ("3",))
    assert score(archipel, "ARCHIPEL est en projet ; sa mise en production est prévue en 2026.").hallucinations == ()


def test_an_invented_url() -> None:
    r = score(SITES_GEOVAL, "GEOVAL est accessible à https://www.geoval.gouv.fr/accueil.")
    # geoval.gouv.fr/accueil is no record's URL -> invented_url; the catalog URL is not stated -> 0/1.
    assert [(h.kind, h.value) for h in r.hallucinations] == [("invented_url", "https://www.geoval.gouv.fr/accueil")]
    assert r.fact_recall == 0.0 and not r.correct and r.reason_code == "hallucination"
    # Another application's URL, for a question about GEOVAL -> other_entity_url.
    r = score(SITES_GEOVAL, "GEOVAL est accessible à https://sinp.example.gouv.fr.")
    assert [h.kind for h in r.hallucinations] == ["other_entity_url"] and "8-SINP" in r.hallucinations[0].detail


def test_a_correct_abstention() -> None:
    r = score(EMPTY_SITES_ARCHIPEL, "Je ne sais pas : le catalogue ne renseigne pas d'adresse pour ARCHIPEL.")
    # A negative question, the answer abstains and asserts nothing -> correct (no key facts: fact recall None).
    assert r.abstained and r.correct and r.fact_recall is None and r.hallucinations == ()
    r = score(UNKNOWN_ZORGLUB, "Aucune application nommée ZORGLUB ne figure dans le catalogue.")
    assert r.abstained and r.correct
    # Abstaining and adding the record's true status is still a correct abstention.
    r = score(EMPTY_SITES_ARCHIPEL, "Cette information n'est pas renseignée. En revanche, ARCHIPEL est en projet.")
    assert r.correct and r.hallucinations == ()


def test_an_invented_answer_to_an_unanswerable_question() -> None:
    r = score(UNKNOWN_ZORGLUB, "ZORGLUB est en production ; voir https://zorglub.example.gouv.fr.")
    # Does not abstain -> invented_answer; the URL is in no record -> invented_url too. Incorrect, "invented_answer".
    assert not r.abstained
    assert [h.kind for h in r.hallucinations] == ["invented_answer", "invented_url"]
    assert not r.correct and r.reason_code == "invented_answer"
    r = score(EMPTY_SITES_ARCHIPEL, "ARCHIPEL est accessible à l'adresse https://archipel.example.gouv.fr.")
    assert [h.kind for h in r.hallucinations] == ["invented_answer", "invented_url"] and not r.correct


def test_an_empty_answer() -> None:
    for text in ("", "   \n"):
        r = score(STATUS_GEOVAL, text)
        # Answered (the call succeeded) but empty: incorrect, every metric 0, nothing asserted.
        assert not r.correct and r.reason_code == "empty_answer" and not r.failed
        assert (r.precision, r.recall, r.f1, r.fact_recall) == (0.0, 0.0, 0.0, 0.0)
        assert r.hallucinations == () and not r.abstained


def test_a_failed_call_is_a_failed_question_not_a_crash() -> None:
    r = score_answer(STATUS_GEOVAL, Response.failed("timeout après 30 s", latency_ms=30000.0), index=INDEX)
    assert r.failed and not r.correct and r.reason_code == "failed" and "timeout" in r.reason
    assert r.fact_recall == 0.0 and r.facts_missing == ("en production",)


def test_another_application_presented_as_the_answer() -> None:
    r = score(STATUS_GEOVAL, "8-SINP est une plateforme régionale, actuellement abandonnée.")
    # GEOVAL is never named and the first sentence names 8-SINP -> other_entity. The status is 8-SINP's own
    # (attributed to the nearest application named before it), so no wrong_status.
    assert [h.kind for h in r.hallucinations] == ["other_entity"] and r.hallucinations[0].value == "8-SINP"


def test_listing_count_and_date_contradictions() -> None:
    listing = case(
        "listing",
        "Quelles applications sont en production ?",
        "GEOVAL et HYDROSCOPE.",
        ("en production", "GEOVAL", "HYDROSCOPE"),
        ("1", "4"),
    )
    r = score(listing, "GEOVAL, HYDROSCOPE et 8-SINP sont en production.")
    # 8-SINP is "Abandonnée": it does not meet the criterion -> wrong_member (facts are all stated, still incorrect).
    assert [(h.kind, h.value) for h in r.hallucinations] == [("wrong_member", "8-SINP")] and not r.correct
    r = score(COUNT_PRODUCTION, "Le catalogue compte 3 applications en production.")
    # 3 stated, 2 in the record -> wrong_count.
    assert [(h.kind, h.value) for h in r.hallucinations] == [("wrong_count", "3")]
    r = score(EVENTS_GEOVAL, "GEOVAL a été mise en production le 12 mai 2018.")
    assert [(h.kind, h.value) for h in r.hallucinations] == [("wrong_date", "12/05/2018")]


def test_without_a_catalog_only_the_abstention_rule_runs() -> None:
    r = score_answer(STATUS_GEOVAL, Response("GEOVAL est abandonnée."), index=None)
    assert r.hallucinations == () and r.reason_code == "missing_facts"
    r = score_answer(UNKNOWN_ZORGLUB, Response("ZORGLUB est en production."), index=None)
    assert [h.kind for h in r.hallucinations] == ["invented_answer"]


def test_questions_without_key_facts_use_token_overlap() -> None:
    c = case("unknown", "Qu'est-ce que GEOVAL ?", "GEOVAL gère les valorisations géographiques des services.")
    r = score(c, "GEOVAL gère les valorisations géographiques.")
    # answer: geoval, gere, valorisations, geographiques (4); expected adds "services" (5): P 1, R 4/5,
    # F1 = 1.6/1.8 = 8/9 >= 0.5.
    assert r.f1 == pytest.approx(8 / 9) and r.correct
    r = score(c, "Aucune idée précise, désolé.")
    assert not r.correct and r.reason_code == "low_overlap"
    # With a similarity above the threshold, a paraphrase passes.
    assert score(c, "Un outil de l'État.", similarity=0.9).correct


@pytest.mark.parametrize(
    ("fact", "answer", "found"),
    [
        ("3 avril 2019", "le 2019-04-03", True),
        ("1er avril 2019", "le 01/04/2019", True),
        ("2019-04-03", "le 3 avril 2019", True),
        ("3 avril 2019", "le 4 avril 2019", False),
        ("https://geoval.example.gouv.fr/", "http://geoval.example.gouv.fr", True),
        ("https://geoval.example.gouv.fr/aide/", "geoval.example.gouv.fr/aide", True),
        ("https://geoval.example.gouv.fr/", "geoval.example.gouv.fr/aide", False),
        ("camille.nicolas@example.fr", "écrire à Camille.Nicolas@Example.fr.", True),
        ("4", "quatre applications", True),
        ("22", "vingt-deux applications", True),
        ("71", "soixante et onze", True),
        ("4", "quatorze applications", False),
        ("Transports routiers", "les TRANSPORTS ROUTIERS", True),
        ("Qualité de l'air", "la qualite de l air", True),
        ("en production", "n'est plus en production", False),
        ("en production", "ADS-PLUS est en production", True),
        (
            "Inventaire des émissions de polluants atmosphériques",
            "l'inventaire des polluants atmosphériques et de leurs émissions",
            True,
        ),
    ],
)
def test_fact_normalisation(fact: str, answer: str, found: bool) -> None:
    assert match_fact(fact, view(answer)).found is found


def test_url_normal_form_and_abstention_phrases() -> None:
    assert normalize_url("HTTPS://www.Example.gouv.fr:443/Aide/") == "example.gouv.fr/aide"
    for text in (
        "Je ne sais pas.",
        "Cette information n'est pas renseignée.",
        "Je ne dispose d'aucune information.",
        "ZORGLUB ne figure pas dans le catalogue.",
        "I don't know.",
    ):
        assert abstains(text), text
    for text in ("GEOVAL est en production.", "Elle sert à renseigner les usagers."):
        assert not abstains(text), text


def test_token_prf_is_squad_style() -> None:
    # pred: geoval, production, nationale (3); gold: geoval, production (2); common 2 -> P 2/3, R 1, F1 0.8.
    assert token_prf("GEOVAL : production nationale", "GEOVAL est en production") == pytest.approx((2 / 3, 1.0, 0.8))
    assert token_prf("", "x") == (0.0, 0.0, 0.0)
