"""Fuzzing, the long run: schemathesis against a fresh stack's gateway, every operation of its OpenAPI, every phase
(examples, coverage, fuzzing, stateful through the links), with the checks of tests/integration/test_fuzz.py (no 5xx;
every 4xx/5xx body in the error shape) and many more examples.

    .venv/bin/python bench/bench_fuzz.py                                   # 100 examples per operation, 500 scenarios
    .venv/bin/python bench/bench_fuzz.py --examples 300 --stateful 2000 --seed 7

Starts its own stack (a new DYAG_HOME, free ports, its own nats-server) with the fakes the integration tests use (chat
servers speaking Ollama's and OpenAI's protocols, a fine-tuning API, an Ollama registry) on loopback, so that every
route has what it talks to. Seeds a catalog and a dataset for the links to lead to, runs schemathesis, and writes
the figures (operations, requests by phase and status, links followed, failures) to the "Fuzzing" section of
bench/RELIABILITY.md (the other sections are left as they are) and to --json.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.reliability import load, machine, publish  # noqa: E402
from dyag_cli.stack import Stack, StackConfig, free_port, installed_services  # noqa: E402
from tests import fuzzing  # noqa: E402
from tests.fake_llm import FakeOllama, FakeOpenAI  # noqa: E402
from tests.fakes import openai_server  # noqa: E402
from tests.fakes.ollama_server import FakeOllamaServer  # noqa: E402

SAMPLE = ROOT / "examples" / "test-mygusi" / "applicationsIA_mini_normalized.json"
TERMINAL = ("succeeded", "failed", "cancelled")


def run(args: argparse.Namespace) -> dict:
    home = Path(tempfile.mkdtemp(prefix="dyag-bench-fuzz-"))
    with FakeOllama(models=("applications-ia",)) as ollama, FakeOpenAI(api_key="sk-dyag-bench") as chat:
        fine_tuning = openai_server.FakeOpenAI(api_key="sk-dyag-bench-ft").start()
        registry = FakeOllamaServer().start()
        os.environ["DYAG_OPENAI_API_KEY"] = fine_tuning.api_key
        config = StackConfig(
            home=home,
            gateway_port=free_port(),
            grpc_ports={n: free_port() for n in installed_services()},
            start_nats_always=True,
            extra_env={
                "DYAG_MAX_UPLOAD_BYTES": "2000000",
                "DYAG_MAX_CATALOG_BYTES": "2000000",
                "DYAG_RATE_LIMIT_PER_MIN": "1000000",  # the fuzzer's one key sends thousands of requests a minute
                "OLLAMA_HOST": ollama.host,
                "OPENAI_BASE_URL": chat.base_url,
                "OPENAI_API_KEY": chat.api_key,
                **fine_tuning.service_env(),
                "DYAG_EXPORTER_OLLAMA_HOST": registry.host,
            },
        )
        stack = Stack(config)
        try:
            stack.up(timeout=300)
            key = (home / "api-key").read_text().strip()
            http = httpx.Client(base_url=config.gateway_url, headers={"X-API-Key": key}, timeout=120)
            seed(http)
            load_before = load()
            print(f"[bench] fuzzing {config.gateway_url} (load {load_before})", flush=True)
            report = fuzzing.run(
                config.gateway_url,
                key,
                max_examples=args.examples,
                stateful_examples=args.stateful,
                seed=args.seed,
                max_time=args.max_time or None,
                request_timeout=60.0,
            )
            load_after = load()
            http.close()
        finally:
            stack.down()
            fine_tuning.stop()
            registry.stop()
            shutil.rmtree(home, ignore_errors=True)
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "load_before": load_before,
        "load_after": load_after,
        "seed": args.seed,
        "examples": args.examples,
        "stateful": args.stateful,
        "seconds": round(report.seconds, 1),
        "operations": report.operations,
        "selected": report.selected,
        "requests": report.requests,
        "by_phase": dict(report.by_phase),
        "scenarios": dict(report.scenarios),
        "statuses": {str(k): v for k, v in sorted(report.statuses.items())},
        "links_declared": report.links,
        "links_followed": sorted(report.links_followed),
        "transitions": report.transitions,
        "network_errors": report.network_errors,
        "errors": report.errors,
        "failures": [f.__dict__ for f in report.failures],
    }


def seed(http: httpx.Client) -> None:
    """A catalog and a dataset (a finished job) for the stateful phase's links to lead to."""
    reply = http.post("/catalogs", files={"file": (SAMPLE.name, SAMPLE.read_bytes())}, data={"name": "fuzz-seed"})
    reply.raise_for_status()
    job = http.post("/datasets", json={"catalog": "fuzz-seed", "num_questions": 50}).json()
    for _ in range(600):
        if http.get(f"/jobs/{job['id']}").json()["status"] in TERMINAL:
            return
        time.sleep(0.5)


def markdown(result: dict) -> str:
    five_xx = sum(n for status, n in result["statuses"].items() if int(status) >= 500)
    statuses = ", ".join(f"{s}: {n:,}" for s, n in result["statuses"].items())
    phases = ", ".join(f"{p} {n:,}" for p, n in result["by_phase"].items())
    lines = [
        "## Fuzzing",
        "",
        "schemathesis (the version in tests/requirements.txt) against the gateway's `/openapi.json` on a fresh stack, "
        "every operation but `GET /jobs/events` (no input, a stream that never ends), phases examples, coverage, "
        "fuzzing and stateful (through the schema's links); checks `not_a_server_error` and `error_shape` (every "
        '4xx/5xx body is `{"error": {"code", "message"}}`). Bounded in the suite (`tests/integration/test_fuzz.py`, '
        "8 examples per operation, 100 scenarios); the long run is `bench/bench_fuzz.py`, which writes this section.",
        "",
        f"Run of {result['date']} on {result['machine']}, load {result['load_before']} before, "
        f"{result['load_after']} after; seed {result['seed']}, {result['examples']} examples per operation, "
        f"{result['stateful']} stateful scenarios.",
        "",
        "| figure | value |",
        "|---|---|",
        f"| operations tested | {result['operations']} of {result['selected']} selected |",
        f"| requests | {result['requests']:,} in {result['seconds']:.0f} s ({phases}) |",
        f"| statuses | {statuses} |",
        f"| 5xx | **{five_xx}** |",
        f"| links followed (stateful) | {len(result['links_followed'])} of {result['transitions']} |",
        f"| failures (checks) | **{len(result['failures'])}** |",
        f"| network errors (no answer within 60 s) | {result['network_errors']} |",
        f"| run errors | {len(result['errors'])} |",
    ]
    if result["failures"]:
        lines += ["", "Failures:", ""]
        lines += [
            f"- `{f['operation']}` → {f['status']}: {f['check']}: {f['message'][:200]} (`{f['request'][:150]}`)"
            for f in result["failures"][:30]
        ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--examples", type=int, default=100, help="examples per operation (fuzzing phase)")
    parser.add_argument("--stateful", type=int, default=500, help="scenarios of the stateful phase")
    parser.add_argument("--seed", type=int, default=20261207)
    parser.add_argument("--max-time", type=float, default=0, help="a time budget in seconds for the whole run")
    parser.add_argument("--json", default=str(ROOT / "bench" / ".cache" / "fuzz.json"), help="the figures as JSON")
    parser.add_argument("--no-write", action="store_true", help="print the section, leave RELIABILITY.md as it is")
    args = parser.parse_args()
    result = run(args)
    publish("Fuzzing", result, markdown(result), args.json, write=not args.no_write)
    sys.exit(1 if result["failures"] else 0)


if __name__ == "__main__":
    main()
