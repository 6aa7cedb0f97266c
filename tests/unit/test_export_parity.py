"""The parity gate's verdicts (dyag_core.export.parity): teacher-forced measures against each level's limits, the
conversion checks (tokenizer, chat template, adapter), greedy answers as information; the fixed probe set, and the
tokenizer fix that keeps llama.cpp's converter from misreading the default model's
tokenizer (a GGUF whose tokenizer breaks is exactly what the gate is there to catch)."""

from __future__ import annotations

import json
import math

import pytest

from dyag_core.evaluation import EvalCase
from dyag_core.export import (
    LEVEL_LIMITS,
    AdapterCheck,
    ConversionChecks,
    Fidelity,
    GreedyAnswers,
    choose_probes,
    first_difference,
    greedy_answers,
    limits_for,
    parity_report,
    same_answer,
)
from dyag_core.export.parity import RUNTIME_LORA_LIMITS

FACT = "Risques naturels et technologiques"
CASE = EvalCase("q1", "Quel est le domaine de INSPECTA ?", f"INSPECTA relève du domaine {FACT}.", (FACT,), "domain")


def test_answers_agree_after_normalisation():
    assert same_answer(
        "L'application INSPECTA relève du domaine « Risques naturels ».",
        "l application inspecta releve du domaine risques naturels",
    )
    assert not same_answer("INSPECTA est en production.", "INSPECTA est abandonnée.")


def fidelity(mean_kld: float, *, tokens: int = 100, top1: float = 1.0, ppl_ratio: float = 1.0) -> Fidelity:
    """A GGUF whose tokens all have the same KL divergence, `top1` of them ranked alike, and the perplexity ratio."""
    agree = round(top1 * tokens)
    return Fidelity.of_tokens(
        [mean_kld] * tokens,
        [True] * agree + [False] * (tokens - agree),
        [1.0] * tokens,
        [1.0 + math.log(ppl_ratio)] * tokens,
    )


SAME = ConversionChecks(conversations=4, same_tokens=4)


def greedy(hf: list[str], gguf: list[str]) -> GreedyAnswers:
    return greedy_answers([CASE] * len(hf), hf, gguf)


RIGHT = [f"INSPECTA relève du domaine « {FACT} »."] * 4


def test_the_fidelity_measures_of_the_tokens():
    f = Fidelity.of_tokens([0.0] * 98 + [0.5, 1.5], [True] * 95 + [False] * 5, [1.0] * 100, [1.1] * 100)
    assert f.tokens == 100 and f.mean_kld == pytest.approx(0.02) and f.max_kld == 1.5
    assert f.p99_kld == pytest.approx(0.51)  # between the two largest, as numpy's percentile
    assert f.top1_agreement == 0.95 and f.perplexity_ratio == pytest.approx(math.exp(0.1))
    with pytest.raises(ValueError):
        Fidelity.of_tokens([], [], [], [])


def test_a_faithful_q8_0_passes_even_when_its_greedy_answers_drift():
    """The issue's case: a barely trained model loops, and its greedy answers part ways after a few tokens; the
    teacher-forced measures are what the quantization changed, and they are small."""
    drifting = ["de l'application de l'application de", "INSPECTA INSPECTA", "Je ne sais pas.", "…"]
    report = parity_report("q8_0", fidelity(0.007, top1=0.95, ppl_ratio=1.01), SAME, greedy(drifting, RIGHT[:4]))
    assert report.passed and report.failed == () and report.reason == ""
    assert report.agreement == 0.0 and report.hf_fact_accuracy == 0.0  # information only


@pytest.mark.parametrize(
    ("level", "measures", "failed"),
    [
        ("f16", {"mean_kld": 0.005}, ("mean_kld",)),
        ("q8_0", {"mean_kld": 0.17}, ("mean_kld",)),
        ("q8_0", {"mean_kld": 0.01, "top1": 0.8}, ("top1_agreement",)),
        ("q8_0", {"mean_kld": 0.01, "ppl_ratio": 1.3}, ("perplexity_ratio",)),
        ("q4_K_M", {"mean_kld": 0.09, "top1": 0.84, "ppl_ratio": 1.08}, ()),
        ("q4_K_M", {"mean_kld": 0.4}, ("mean_kld",)),
    ],
)
def test_each_level_has_its_limits(level, measures, failed):
    report = parity_report(level, fidelity(**measures), SAME, greedy(RIGHT, RIGHT))
    assert report.failed == failed and report.limits == LEVEL_LIMITS[level]
    words = {
        "mean_kld": "mean KL divergence",
        "top1_agreement": "top-1 agreement",
        "perplexity_ratio": "perplexity ratio",
    }
    for name in failed:
        assert words[name] in report.reason


def test_a_high_tail_fails_the_p99_limit_with_what_it_means():
    kld = [0.001] * 95 + [2.0] * 5
    f = Fidelity.of_tokens(kld, [True] * 100, [1.0] * 100, [1.0] * 100)
    report = parity_report("q8_0", f, SAME, greedy(RIGHT, RIGHT))
    assert report.failed == ("mean_kld", "p99_kld")
    assert "99th-percentile KL divergence 2.000 > 0.3: on some tokens it predicts something else" in report.reason


def test_limits_get_stricter_with_the_bits_and_a_runtime_lora_pair_is_looser():
    f16, q8, q4 = (LEVEL_LIMITS[q] for q in ("f16", "q8_0", "q4_K_M"))
    assert f16.max_mean_kld < q8.max_mean_kld < q4.max_mean_kld
    assert f16.min_top1_agreement > q8.min_top1_agreement > q4.min_top1_agreement
    pair = limits_for("q8_0+adapter")
    assert pair.max_mean_kld == RUNTIME_LORA_LIMITS.max_mean_kld > q8.max_mean_kld
    assert limits_for("q4_K_M+adapter").max_mean_kld == q4.max_mean_kld  # the looser of the two
    with pytest.raises(ValueError, match="no parity limits"):
        limits_for("q2_K")


def test_nan_logits_fail_every_measure_and_are_named():
    f = Fidelity.of_tokens([0.001] * 9 + [math.nan], [True] * 9 + [False], [1.0] * 10, [1.0] * 9 + [math.inf])
    report = parity_report("q8_0", f, SAME, greedy(RIGHT, RIGHT))
    assert report.failed[0] == "non_finite" and "mean_kld" in report.failed and "perplexity_ratio" in report.failed
    assert "not finite (NaN or infinite logits) on 1 of 10 tokens: a damaged tensor" in report.reason
    saved = report.to_dict()
    assert saved["mean_kld"] == 1e9 and saved["non_finite_tokens"] == 1
    json.dumps(saved, allow_nan=False)  # what the registry and the CLI read stays plain JSON


def test_a_tokenizer_that_cuts_differently_fails():
    checks = ConversionChecks(conversations=5, same_tokens=3, first_token_mismatch="conversation 2, from token 64")
    report = parity_report("q8_0", fidelity(0.005), checks, greedy(RIGHT, RIGHT))
    assert report.failed == ("tokenizer",) and checks.token_agreement == 0.6
    assert "cuts 2 of 5 probe conversations differently from the HF tokenizer (conversation 2, from token 64)" in (
        report.reason
    )


@pytest.mark.parametrize("verdict", ["differs", "missing"])
def test_a_wrong_or_missing_chat_template_fails(verdict):
    checks = ConversionChecks(4, 4, chat_template=verdict, chat_template_detail="renders conversation 1 otherwise")
    report = parity_report("q8_0", fidelity(0.005), checks, greedy(RIGHT, RIGHT))
    assert report.failed == ("chat_template",) and "renders conversation 1 otherwise" in report.reason
    assert parity_report(
        "q8_0", fidelity(0.005), ConversionChecks(4, 4, chat_template="none"), greedy(RIGHT, RIGHT)
    ).passed


def test_the_adapter_check_is_a_paired_test_over_the_conversations():
    present = AdapterCheck.of_sequences(0.16, [0.007, 0.006, 0.008, 0.007], [0.16, 0.15, 0.18, 0.17])
    assert present.verdict == "present" and present.margin == pytest.approx(0.158)
    missing = AdapterCheck.of_sequences(0.16, [0.17, 0.15, 0.18, 0.16], [0.008, 0.007, 0.009, 0.008])
    assert missing.verdict == "missing" and missing.z < -3
    # A barely trained adapter under q4_K_M's noise: nearer neither, which is not a failure.
    unclear = AdapterCheck.of_sequences(0.001, [0.085, 0.07, 0.09, 0.08], [0.0855, 0.069, 0.091, 0.0795])
    assert unclear.verdict == "undetermined"
    report = parity_report("q8_0", fidelity(0.17), ConversionChecks(4, 4, adapter=missing), greedy(RIGHT, RIGHT))
    assert report.failed == ("mean_kld", "adapter")
    assert "nearer the base model than the merged one" in report.reason and "missing or misplaced" in report.reason


def test_fact_accuracy_is_a_gate_only_where_the_hf_model_states_facts():
    wrong = ["INSPECTA relève du domaine des transports."] * 4
    lost = parity_report("q8_0", fidelity(0.005), SAME, greedy(RIGHT, [RIGHT[0], *wrong[:3]]))
    assert lost.failed == ("fact_accuracy",) and "falls from 100% (HF) to 25%" in lost.reason
    assert parity_report("q8_0", fidelity(0.005), SAME, greedy(wrong, wrong)).passed  # wrong alike: no facts to lose


def test_a_minimum_greedy_agreement_gates_only_when_asked():
    drifting = [RIGHT[0], "autre chose", "encore autre chose", "rien"]
    assert parity_report("q8_0", fidelity(0.005), SAME, greedy(RIGHT, drifting), max_accuracy_drop=1).passed
    asked = parity_report("q8_0", fidelity(0.005), SAME, greedy(RIGHT, drifting), threshold=0.75, max_accuracy_drop=1)
    assert asked.failed == ("answer_agreement",) and "25% of 4 probes" in asked.reason


def test_the_report_as_json_holds_every_figure_and_its_limit():
    report = parity_report("q8_0", fidelity(0.007, top1=0.95, ppl_ratio=1.01), SAME, greedy(RIGHT, RIGHT))
    saved = report.to_dict()
    assert saved["passed"] and saved["mean_kld"] == pytest.approx(0.007) and saved["top1_agreement"] == 0.95
    assert saved["limits"] == {
        "max_mean_kld": 0.03,
        "max_p99_kld": 0.3,
        "min_top1_agreement": 0.9,
        "max_perplexity_ratio": 1.05,
    }
    assert saved["perplexity_ratio"] == pytest.approx(1.01) and saved["sequence_token_agreement"] == 1.0
    assert saved["agreement"] == 1.0 and saved["samples"][0]["gguf_correct"]


def test_first_difference():
    assert first_difference([1, 2, 3], [1, 2, 4]) == 2
    assert first_difference("abc", "abcd") == 3 and first_difference("", "x") == 0


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
