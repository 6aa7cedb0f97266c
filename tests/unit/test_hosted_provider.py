"""openai-trainer's provider wrapper: the real openai client (3.x, httpx2) against the fake OpenAI API on
loopback, with Dyag's retry policy around each call."""

from __future__ import annotations

import asyncio
import logging
import time

import pytest

from dyag_core.hosted import ProviderRefusal, Scrubber
from dyag_openai_trainer.provider import Provider, SecretFilter
from dyag_openai_trainer.settings import OpenAITrainerSettings
from tests.fakes.openai_server import FakeOpenAI, Fault, JobScript

KEY = "sk-dyag-unit-" + "k" * 24


@pytest.fixture(scope="module")
def fake():
    server = FakeOpenAI(KEY).start()
    yield server
    server.stop()


def provider_for(fake: FakeOpenAI, key: str = KEY, **overrides) -> Provider:
    settings = OpenAITrainerSettings(
        openai_base_url=fake.base_url,
        openai_api_key=key,
        openai_retry_base_s=0.05,
        openai_retry_cap_s=0.2,
        openai_request_timeout_s=overrides.pop("timeout", 5.0),
        **overrides,
    )
    return Provider(settings, Scrubber([key]))


def run(coro):
    return asyncio.run(coro)


def upload(provider: Provider, content: bytes = b'{"messages": []}\n', **kwargs):
    async def go():
        try:
            return await provider.call(
                "files.create", provider.client.files.create, file=("t.jsonl", content), purpose="fine-tune", **kwargs
            )
        finally:
            await provider.close()

    return run(go())


def test_rate_limit_then_server_error_then_success_honours_retry_after(fake):
    fake.fail_next("POST /v1/files", Fault(429, retry_after=0.6), Fault(500))
    retries = []
    start = time.monotonic()
    uploaded = upload(provider_for(fake), on_retry=lambda *a: retries.append(a))
    assert uploaded.id.startswith("file-")
    assert [r[2] for r in retries] == [429, 500]
    assert retries[0][3] >= 0.6  # waited what Retry-After said
    assert time.monotonic() - start >= 0.6
    statuses = [c["status"] for c in fake.calls("POST /v1/files")][-3:]
    assert statuses == [429, 500, 200]


def test_timeouts_are_retried(fake):
    fake.fail_next("POST /v1/files", Fault(status=0, delay_s=1.0))
    uploaded = upload(provider_for(fake, timeout=0.3))
    assert uploaded.id.startswith("file-")


def test_a_provider_that_keeps_failing_gives_up_with_what_to_do(fake):
    fake.fail_next("POST /v1/files", *[Fault(503)] * 3)
    with pytest.raises(ProviderRefusal) as err:
        upload(provider_for(fake, openai_retry_max_attempts=3))
    assert err.value.code == "provider_unavailable" and "after 3 attempts" in err.value.message
    assert "reused" in err.value.next_step


def test_fine_tuning_not_available_is_permanent_and_explained(fake):
    fake.script("closed", JobScript(refuse_create=403))
    provider = provider_for(fake)

    async def go():
        f = await provider.call(
            "files.create", provider.client.files.create, file=("t.jsonl", b"{}\n"), purpose="fine-tune"
        )
        before = len(fake.calls("POST /v1/fine_tuning/jobs"))
        with pytest.raises(ProviderRefusal) as err:
            await provider.call(
                "fine_tuning.jobs.create",
                provider.client.fine_tuning.jobs.create,
                model="gpt-4o-mini-2024-07-18",
                training_file=f.id,
                suffix="closed",
            )
        assert len(fake.calls("POST /v1/fine_tuning/jobs")) == before + 1  # not retried
        await provider.close()
        return err.value

    refusal = run(go())
    assert refusal.status == 403 and refusal.code == "provider_refused"
    assert "Fine-tuning is not available for your organization" in refusal.message
    assert "Azure OpenAI" in refusal.message and "What to do next" in refusal.message


def test_a_wrong_key_is_refused_and_never_shown(fake):
    wrong = "sk-wrong-" + "w" * 30
    with pytest.raises(ProviderRefusal) as err:
        upload(provider_for(fake, key=wrong))
    assert err.value.status == 401 and "DYAG_OPENAI_API_KEY" in err.value.message
    assert wrong not in err.value.message and wrong not in str(err.value.details)


def test_the_log_filter_masks_the_key_everywhere_in_a_record(caplog):
    scrubber = Scrubber([KEY])
    logger = logging.getLogger("dyag.test.secret")
    handler = logging.Handler()
    seen = []
    handler.emit = seen.append
    handler.addFilter(SecretFilter(scrubber))
    logger.addHandler(handler)
    try:
        try:
            raise RuntimeError(f"boom with {KEY}")
        except RuntimeError:
            logger.exception("calling with %s", KEY, extra={"header": f"Bearer {KEY}", "nested": {"k": KEY}})
    finally:
        logger.removeHandler(handler)
    record = seen[0]
    text = " ".join(str(v) for v in record.__dict__.values())
    assert KEY not in text and "***" in record.getMessage()


def test_job_state_survives_a_restart_in_the_work_folder(tmp_path):
    from dyag_openai_trainer.jobstate import JobState

    state = JobState.load(tmp_path)
    assert state.plan is None and state.remote_job_id == ""
    state.plan, state.remote_job_id = {"key": "plan-1"}, "ftjob-1"
    state.seen_events += [f"ev-{i}" for i in range(6000)]
    state.save()
    again = JobState.load(tmp_path)
    assert again.plan == {"key": "plan-1"} and again.remote_job_id == "ftjob-1"
    assert len(again.seen_events) == 5000 and again.seen_events[-1] == "ev-5999"  # bounded, newest kept


def test_progress_follows_the_remote_status_and_steps():
    from dyag_openai_trainer.trainer import HostedTrainer

    assert HostedTrainer.fraction("queued", {})[0] < HostedTrainer.fraction("running", {})[0]
    fraction, step = HostedTrainer.fraction("running", {"step": 50, "total_steps": 100})
    assert 0.3 < fraction < 0.86 and step == "training: step 50/100"
    assert (
        HostedTrainer.fraction("running", {"step": 100, "total_steps": 100})[0]
        <= HostedTrainer.fraction("succeeded", {})[0]
    )
