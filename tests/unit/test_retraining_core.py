"""The retraining domain without services: the policy, the champion book (aliases, log, rollback) and the triggers
(dedupe, debounce, coalescing, one at a time)."""

from __future__ import annotations

import pytest

from dyag_core.retraining import (
    ChampionBook,
    ChampionError,
    ModelRef,
    PolicyError,
    RetrainingPolicy,
    TriggerState,
    finish,
    is_due,
    on_change,
    request,
    start,
)

V1, V2 = ModelRef("lora", "lora-1", "v1"), ModelRef("lora", "lora-2", "v2")
RAG = ModelRef("rag", "applications_ia", "v2", {"rag_mode": "auto"})


# --- policy ------------------------------------------------------------------------------------------------------
def test_a_policy_round_trips_and_names_what_is_wrong():
    policy = RetrainingPolicy.from_dict(
        {"approaches": ["rag", "lora"], "debounce_s": 5, "thresholds": {"min_absolute": 0.05}}
    )
    assert RetrainingPolicy.from_dict(policy.to_dict()) == policy
    with pytest.raises(PolicyError, match="unknown policy option.*debounce"):
        RetrainingPolicy.from_dict({"debounce": 5})
    with pytest.raises(PolicyError, match="unknown approach.*finetune"):
        RetrainingPolicy.from_dict({"approaches": ["finetune"]})
    with pytest.raises(PolicyError, match="needs a schedule"):
        RetrainingPolicy.from_dict({"trigger": "schedule"})
    with pytest.raises(PolicyError, match="min_relative must be between 0 and 1"):
        RetrainingPolicy.from_dict({"thresholds": {"min_relative": 3}})
    with pytest.raises(PolicyError, match="unknown threshold"):
        RetrainingPolicy.from_dict({"thresholds": {"min_abs": 0.1}})


# --- champion book -------------------------------------------------------------------------------------------------
def test_promotion_keeps_the_previous_champion_and_logs_why():
    book = ChampionBook("apps")
    book.promote(V1, reason="first", by="alice", at=1.0)
    book.propose(V2, reason="catalog v2", by="retraining", at=2.0)
    assert book.aliases["challenger"] == V2
    entry = book.promote(V2, reason="better on changed facts", evidence={"runs": ["r1", "r2"]}, by="retraining", at=3.0)
    assert book.champion == V2 and book.aliases["previous"] == V1 and "challenger" not in book.aliases
    assert entry.replaced == V1 and entry.evidence == {"runs": ["r1", "r2"]}
    assert [e.action for e in book.log] == ["promoted", "proposed", "promoted"]
    assert ChampionBook.from_dict(book.to_dict()) == book  # what the KV store keeps


def test_a_rejected_challenger_stays_a_candidate_and_the_champion_does_not_change():
    book = ChampionBook("apps")
    book.promote(V1, reason="first", by="alice", at=1.0)
    book.propose(V2, reason="catalog v2", by="retraining", at=2.0)
    book.reject(V2, reason="worse on unchanged facts", by="retraining", at=3.0)
    assert book.champion == V1 and "challenger" not in book.aliases
    assert [(e.target, e.reason) for e in book.candidates()] == [(V2, "worse on unchanged facts")]


def test_rollback_to_the_previous_or_any_earlier_champion():
    book = ChampionBook("apps")
    for at, target in enumerate((V1, V2, RAG), start=1):
        book.promote(target, reason="", by="x", at=float(at))
    book.rollback(reason="", by="bob", at=4.0)
    assert book.champion == V2 and book.aliases["previous"] == RAG
    book.rollback("lora-1", reason="back to the first", by="bob", at=5.0)
    assert book.champion == V1
    book.rollback("3", reason="", by="bob", at=6.0)  # log entry 3 made RAG champion
    assert book.champion == RAG and book.log[-1].action == "rolled_back" and book.log[-1].replaced == V1
    with pytest.raises(ChampionError, match="never a champion"):
        book.rollback("lora-9", reason="", by="bob", at=7.0)
    with pytest.raises(ChampionError, match="no champion to roll back"):
        ChampionBook("empty").rollback(reason="", by="bob", at=1.0)


def test_a_target_must_say_what_it_is():
    with pytest.raises(ChampionError, match="kind must be one of"):
        ModelRef("model", "x")
    with pytest.raises(ChampionError, match="needs an id"):
        ModelRef("lora", " ")


# --- triggers ------------------------------------------------------------------------------------------------------
POLICY = RetrainingPolicy(debounce_s=10, min_changed_entities=1)


def change(state: TriggerState, version: str, changed: list[str], now: float, policy=POLICY) -> str:
    return on_change(
        state, policy, version=version, previous_version="v0", added=[], changed=changed, removed=[], now=now
    )


def test_a_redelivered_event_starts_nothing_twice():
    state = TriggerState()
    assert change(state, "v1", ["a"], 0.0) == "queued"
    assert change(state, "v1", ["a"], 1.0) == "duplicate"
    start(state, "pipeline-1", 11.0)
    assert change(state, "v1", ["a"], 12.0) == "duplicate"  # running
    finish(state, "pipeline-1")
    assert change(state, "v1", ["a"], 13.0) == "duplicate"  # done
    assert state.pending is None and state.started == 1


def test_changes_within_the_window_coalesce_into_one_retraining():
    state = TriggerState()
    for i, version in enumerate(("v1", "v2", "v3")):
        change(state, version, [f"app{i}"], float(i))
    assert not is_due(state, POLICY, 11.0)  # the window restarted with the last change (at 2 s)
    assert is_due(state, POLICY, 12.0)
    started = start(state, "pipeline-1", 12.0)
    assert (
        started.version == "v3" and started.from_version == "v0" and started.asked_about() == ["app0", "app1", "app2"]
    )


def test_changes_during_a_retraining_wait_for_it_then_run_once():
    state = TriggerState()
    change(state, "v1", ["a"], 0.0)
    start(state, "pipeline-1", 10.0)
    change(state, "v2", ["b"], 11.0)
    change(state, "v3", ["c"], 12.0)
    assert not is_due(state, POLICY, 100.0)  # one retraining per catalog at a time
    assert not finish(state, "pipeline-other") and finish(state, "pipeline-1")
    assert is_due(state, POLICY, 100.0) and start(state, "pipeline-2", 100.0).asked_about() == ["b", "c"]


def test_small_changes_wait_for_the_minimum_and_manual_policies_wait_for_a_request():
    state, policy = TriggerState(), RetrainingPolicy(debounce_s=0, min_changed_entities=2)
    change(state, "v1", ["a"], 0.0, policy)
    assert not is_due(state, policy, 1.0)
    change(state, "v2", ["b"], 2.0, policy)
    assert is_due(state, policy, 2.0)
    manual, state = RetrainingPolicy(trigger="manual"), TriggerState()
    change(state, "v1", ["a"], 0.0, manual)
    assert not is_due(state, manual, 1e9)
    request(state, version="v1", from_version="v0", now=5.0)
    assert is_due(state, manual, 5.0)


def test_cron_schedules():
    from datetime import datetime

    from dyag_core.retraining.schedule import CronError, cron_matches

    monday_3am = datetime(2026, 12, 7, 3, 0)  # a Monday
    assert cron_matches("0 3 * * *", monday_3am) and not cron_matches("0 3 * * *", monday_3am.replace(minute=1))
    assert cron_matches("*/15 * * * 1", monday_3am) and not cron_matches("0 3 * * 0", monday_3am)
    assert cron_matches("0 3 1 * 1", monday_3am)  # both day fields restricted: either is enough
    assert cron_matches("0 3 * * 7", datetime(2026, 12, 6, 3, 0))  # 7 is Sunday too
    for bad, message in (("0 3 * *", "five fields"), ("61 * * * *", "within 0-59"), ("a * * * *", "not a number")):
        with pytest.raises(CronError, match=message):
            cron_matches(bad, monday_3am)
    with pytest.raises(PolicyError, match="minute field"):
        RetrainingPolicy.from_dict({"trigger": "schedule", "schedule": "99 * * * *"})


def test_a_rag_target_is_the_same_system_whatever_the_catalog_version():
    assert RAG.same_system(ModelRef("rag", "applications_ia", "v9", {"rag_mode": "auto", "dataset_id": "ds-9"}))
    assert not RAG.same_system(ModelRef("rag", "applications_ia", "v2", {"rag_mode": "grounded"}))
    assert not V1.same_system(V2) and V1.same_system(ModelRef("lora", "lora-1")) and not V1.same_system(None)
