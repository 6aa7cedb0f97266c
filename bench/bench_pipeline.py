"""The whole workflow, timed: `dyag run` on the sample catalog against a fresh stack home.

    .venv/bin/python bench/bench_pipeline.py [--runs 1] [--out bench/out/pipeline] [-- extra dyag run options]

Starts a fresh stack (a new DYAG_HOME, free ports, its own nats-server: nothing shared with a running stack),
times its start, then runs `dyag run` (the README's first command) as a subprocess against it and times it, and
reads the pipeline back from the gateway: each step's wall time and when it started and ended (steps overlap: RAG
indexing runs beside the dataset and the training). Prints a Markdown table for bench/RESULTS.md with the machine
and the load average, and writes the figures as JSON beside the comparison reports (--out).

The converted base model is read from the usual cache (DYAG_MODEL_CACHE, else ~/.dyag/models): converting it is
set-up, which the README's 10-minute target leaves out. The RAG embedding cache is the fresh home's: indexing is cold.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from dyag_cli.stack import Stack, StackConfig, free_port, installed_services  # noqa: E402

TARGET_S = 600.0


def machine() -> str:
    model = ""
    try:
        model = next(
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        )
    except (OSError, StopIteration):
        pass
    try:
        mem_kb = int(
            next(
                line.split()[1]
                for line in Path("/proc/meminfo").read_text().splitlines()
                if line.startswith("MemTotal")
            )
        )
        mem = f", {mem_kb / 1024 / 1024:.0f} GiB"
    except (OSError, StopIteration, ValueError):
        mem = ""
    gpu = "an NVIDIA GPU" if Path("/proc/driver/nvidia/gpus").exists() else "no GPU"
    return f"{os.cpu_count()} cores ({model or platform.machine()}){mem}, {gpu}"


def load() -> str:
    return "/".join(f"{x:.1f}" for x in os.getloadavg())


def one_run(args: argparse.Namespace, extra: list[str], index: int) -> dict:
    home = Path(tempfile.mkdtemp(prefix="dyag-bench-pipeline-"))
    model_cache = os.environ.get("DYAG_MODEL_CACHE") or str(Path.home() / ".dyag" / "models")
    os.environ["DYAG_MODEL_CACHE"] = model_cache
    service_env: dict[str, dict[str, str]] = {}
    for item in args.service_env:  # e.g. evaluator:DYAG_JOB_CONCURRENCY=2
        service, _, setting = item.partition(":")
        key, _, value = setting.partition("=")
        service_env.setdefault(service, {})[key] = value
    config = StackConfig(
        home=home,
        gateway_port=free_port(),
        grpc_ports={n: free_port() for n in installed_services()},
        start_nats_always=True,
        service_env=service_env,
    )
    stack = Stack(config)
    load_before = load()
    began = time.monotonic()
    stack.up(timeout=300)
    stack_s = time.monotonic() - began
    key = (home / "api-key").read_text().strip()
    env = {**os.environ, "DYAG_URL": config.gateway_url, "DYAG_API_KEY": key, "DYAG_HOME": str(home), "COLUMNS": "160"}
    out = Path(args.out) / f"run-{index}"
    argv = [
        str(ROOT / ".venv" / "bin" / "dyag"),
        "run",
        *([args.catalog] if args.catalog else []),
        "--no-start",
        "--out",
        str(out),
        *extra,
    ]
    print(f"[bench] stack up in {stack_s:.1f} s (load {load_before}); running: {' '.join(argv[1:])}", flush=True)
    began = time.monotonic()
    proc = subprocess.run(argv, env=env, text=True, capture_output=True)
    run_s = time.monotonic() - began
    load_after = load()
    print(proc.stdout[-6000:], proc.stderr[-3000:], sep="\n", flush=True)
    http = httpx.Client(base_url=config.gateway_url, headers={"X-API-Key": key}, timeout=30)
    pipelines = http.get("/pipelines", params={"limit": 1}).json()["pipelines"]
    pipeline = http.get(f"/pipelines/{pipelines[0]['id']}").json() if pipelines else {}
    try:
        if not args.keep:
            stack.down()
            shutil.rmtree(home, ignore_errors=True)
    finally:
        http.close()
    created = datetime.fromisoformat(pipeline["created_at"].replace("Z", "+00:00")) if pipeline else None

    def offset(stamp: str | None) -> float | None:
        if not stamp or created is None:
            return None
        return round((datetime.fromisoformat(stamp.replace("Z", "+00:00")) - created).total_seconds(), 1)

    steps = [
        {
            "step": f"{s['number']}. {s['title']}",
            "name": s["name"],
            "status": s["status"],
            "seconds": s["seconds"],
            "queued_s": s.get("queued_s"),
            "from_s": offset(s["started_at"]),
            "to_s": offset(s["ended_at"]),
            "job_id": s["job_id"],
            "summary": (s.get("result") or {}).get("summary"),
            "metrics": (s.get("result") or {}).get("metrics"),
        }
        for s in pipeline.get("steps", [])
    ]
    result = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "service_env": service_env,
        "load_before": load_before,
        "load_after": load_after,
        "stack_start_s": round(stack_s, 1),
        "dyag_run_s": round(run_s, 1),
        "exit_code": proc.returncode,
        "pipeline_id": pipeline.get("id"),
        "pipeline_status": pipeline.get("status"),
        "pipeline_s": pipeline.get("elapsed_s"),
        "params": {
            k: (pipeline.get("params") or {}).get(k)
            for k in (
                "device",
                "num_questions",
                "max_steps",
                "max_eval_questions",
                "eval_max_tokens",
                "max_parallel",
                "targets",
            )
        },
        "steps": steps,
        "reports": str(out),
    }
    out.mkdir(parents=True, exist_ok=True)
    (out / "bench.json").write_text(json.dumps(result, indent=2, ensure_ascii=False))
    return result


def markdown(result: dict) -> str:
    lines = [
        f"Run of {result['date']} on {result['machine']}; load average (1/5/15 min) {result['load_before']} before, "
        f"{result['load_after']} after; parameters {json.dumps(result['params'])}"
        + (f"; service settings {json.dumps(result['service_env'])}" if result["service_env"] else "")
        + ".",
        "",
        "| step | status | wall time (of which queued in its service) | from → to (s after the pipeline was created) |",
        "|---|---|---|---|",
    ]
    for s in result["steps"]:
        span = f"{s['from_s']} → {s['to_s']}" if s["from_s"] is not None else "–"
        seconds = f"{s['seconds']:.1f} s" if s["seconds"] is not None else "–"
        if s.get("queued_s"):
            seconds += f" ({s['queued_s']:.1f} s)"
        lines.append(f"| {s['step']} | {s['status']} | {seconds} | {span} |")
    verdict = "met" if result["exit_code"] == 0 and result["dyag_run_s"] <= TARGET_S else "**not met**"
    lines += [
        "| **pipeline** (POST to its end, on the gateway) | "
        f"{result['pipeline_status']} | **{result['pipeline_s']} s** | |",
        f"| **`dyag run`** (the command, exit code {result['exit_code']}) | | "
        f"**{result['dyag_run_s']} s** | target ≤ {TARGET_S:.0f} s: {verdict} |",
        f"| stack start (`dyag up`'s work, before the command) | | {result['stack_start_s']} s | |",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--catalog", default="", help="a catalog file (default: dyag run's own, the sample catalog)")
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument(
        "--out", default=str(ROOT / "bench" / ".cache" / "pipeline"), help="reports and bench.json of each run"
    )
    parser.add_argument("--keep", action="store_true", help="leave the stack running (its home is printed)")
    parser.add_argument(
        "--service-env",
        action="append",
        default=[],
        metavar="SERVICE:KEY=VALUE",
        help="a setting for one service, e.g. evaluator:DYAG_JOB_CONCURRENCY=2 (repeatable)",
    )
    args, extra = parser.parse_known_args()
    extra = [a for a in extra if a != "--"]
    for i in range(1, args.runs + 1):
        result = one_run(args, extra, i)
        print("\n" + markdown(result) + "\n", flush=True)


if __name__ == "__main__":
    main()
