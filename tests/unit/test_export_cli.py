"""`dyag export`'s result as a user reads it: the parity table shows each level's teacher-forced figures beside their
limits, and a failure names the measure that failed."""

from __future__ import annotations

from rich.console import Console

from dyag_cli import export as cli

LIMITS = {"max_mean_kld": 0.03, "max_p99_kld": 0.3, "min_top1_agreement": 0.9, "max_perplexity_ratio": 1.05}


def level(quantization: str, mean_kld: float, passed: bool, reason: str = "") -> dict:
    return {
        "quantization": quantization,
        "passed": passed,
        "reason": reason,
        "failed": [] if passed else ["mean_kld"],
        "scored_tokens": 1117,
        "mean_kld": mean_kld,
        "p99_kld": 0.044,
        "top1_agreement": 0.946,
        "perplexity_ratio": 1.013,
        "limits": LIMITS,
        "sequence_token_agreement": 1.0,
        "chat_template": "same",
        "adapter": {"verdict": "present"},
        "agreement": 0.5,
        "probes": 8,
    }


EXPORT = {
    "id": "exp-0123456789abcdef",
    "name": "sample",
    "status": "failed",
    "architecture": "LlamaForCausalLM",
    "base_model": "default",
    "mode": "merged",
    "files": [],
    "parity": [
        level("q8_0", 0.0067, True),
        level("q4_K_M", 0.4, False, "mean KL divergence 0.4000 > 0.25: its next-token distributions differ"),
    ],
    "ollama": {"name": "dyag-model", "created": False, "command": "ollama create dyag-model -f Modelfile"},
    "bundle_dir": "/tmp/bundle",
}


def test_the_parity_table_shows_the_figures_their_limits_and_what_failed(monkeypatch):
    console = Console(record=True, width=250)
    monkeypatch.setattr(cli, "console", console)
    cli.print_export(EXPORT)
    out = console.export_text()
    assert "1117 reference-answer tokens teacher-forced" in out
    assert "0.0067 (≤0.03)" in out and "94.6% (≥90%)" in out and "1.013 (≤1.05)" in out
    assert "present" in out and "50% of 8" in out
    assert "failed: mean KL divergence 0.4000 > 0.25" in out


def test_the_list_shows_each_level_s_kl_divergence(monkeypatch):
    console = Console(record=True, width=250)
    monkeypatch.setattr(cli, "console", console)

    class Client:
        def get(self, path, **params):
            return {
                "exports": [
                    {
                        **EXPORT,
                        "model_id": "lora-1",
                        "quantizations": ["q8_0", "q4_K_M"],
                        "created_at": "2026-12-07T10:00:00Z",
                    }
                ]
            }

    monkeypatch.setattr(cli, "GatewayClient", Client)
    cli.list_exports()
    out = console.export_text()
    assert "q8_0 0.0067" in out and "q4_K_M 0.4000 ✗" in out
