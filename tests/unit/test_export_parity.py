"""The parity gate's scoring (dyag_core.export.parity, on dyag_core.evaluation's normalisation and verdicts), the
fixed probe set, and the tokenizer fix that keeps llama.cpp's converter from misreading the default model's
tokenizer (a GGUF whose tokenizer breaks is exactly what the gate is there to catch)."""

from __future__ import annotations

import json

import pytest

from dyag_core.evaluation import EvalCase
from dyag_core.export import choose_probes, parity_report, same_answer

FACT = "Risques naturels et technologiques"
CASE = EvalCase("q1", "Quel est le domaine de INSPECTA ?", f"INSPECTA relève du domaine {FACT}.", (FACT,), "domain")


def test_answers_agree_after_normalisation():
    assert same_answer(
        "L'application INSPECTA relève du domaine « Risques naturels ».",
        "l application inspecta releve du domaine risques naturels",
    )
    assert not same_answer("INSPECTA est en production.", "INSPECTA est abandonnée.")


def test_a_gguf_that_answers_like_the_hf_model_passes():
    hf = [f"INSPECTA relève du domaine « {FACT} »."] * 4
    report = parity_report("q8_0", [CASE] * 4, hf, list(hf), threshold=0.75, prompt_tokens_equal=[True] * 4)
    assert report.passed and report.agreement == 1.0 and report.mean_token_f1 == 1.0
    assert report.hf_fact_accuracy == report.gguf_fact_accuracy == 1.0 and report.prompt_token_agreement == 1.0
    assert report.reason == "" and report.samples[0]["agree"] and report.samples[0]["gguf_correct"]


def test_a_gguf_whose_answers_drift_fails_with_the_reason():
    hf = [f"INSPECTA relève du domaine « {FACT} »."] * 4
    gguf = [hf[0], "INSPECTA relève du domaine des transports.", "Je ne sais pas.", "INSPECTA INSPECTA INSPECTA"]
    report = parity_report("q4_K_M", [CASE] * 4, hf, gguf, threshold=0.75, max_accuracy_drop=0.2)
    assert not report.passed
    assert report.agreement == 0.25 and report.hf_fact_accuracy == 1.0 and report.gguf_fact_accuracy == 0.25
    assert "1/4 probes as the HF model does (25% < 75%)" in report.reason
    assert "fact accuracy falls from 100% to 25%" in report.reason


def test_agreement_alone_can_pass_when_both_models_are_wrong_alike():
    wrong = ["INSPECTA relève du domaine des transports."] * 2
    report = parity_report("q8_0", [CASE] * 2, wrong, list(wrong), threshold=0.75)
    assert report.passed and report.hf_fact_accuracy == report.gguf_fact_accuracy == 0.0


def test_the_probe_set_is_fixed_and_spread_over_question_types():
    cases = [
        EvalCase(f"{t}-{i}", f"{t} question {i}", "a", (), t) for t in ("status", "domain", "actors") for i in range(5)
    ]
    first = choose_probes(cases, 5)
    assert [c.qtype for c in first] == ["actors", "domain", "status", "actors", "domain"]
    assert first == choose_probes(list(reversed(cases)), 5)  # the same probes whatever the file's order
    assert len(choose_probes(cases, 100)) == 15


def test_the_default_models_tokenizer_is_fixed_for_llama_cpp_without_changing_a_token():
    """transformers writes the tokenizer of a model loaded from a GGUF (the default model) as a byte-level BPE marked
    byte_fallback; llama.cpp's converter then takes it for a SentencePiece vocabulary, and the GGUF's tokenizer aborts
    on the first prompt. The fix drops byte_fallback, after checking that every sample is cut into the same tokens."""
    pytest.importorskip("tokenizers")
    from dyag_llm.local import default_model_path
    from dyag_model_exporter.engine import TOKENIZER_SAMPLES
    from dyag_model_exporter.llama import gguf_ready_tokenizer, same_tokenization

    original = json.loads((default_model_path() / "tokenizer.json").read_text())
    fixed = gguf_ready_tokenizer(original)
    assert fixed is not None and fixed["model"]["byte_fallback"] is False and fixed["decoder"]["type"] == "ByteLevel"
    assert original["model"]["byte_fallback"] is True  # the input is left alone
    assert same_tokenization(original, fixed, [*TOKENIZER_SAMPLES, "Ça coûte 12 € — « vraiment » ?\n\n\tOK"])
    assert gguf_ready_tokenizer(fixed) is None  # nothing more to fix
    sentencepiece_like = {"model": {"type": "BPE", "byte_fallback": True}, "pre_tokenizer": {"type": "Metaspace"}}
    assert gguf_ready_tokenizer(sentencepiece_like) is None  # a real byte-fallback vocabulary is not touched
