"""What the reliability benches (bench_fuzz, bench_faults, bench_load, bench_scale) share: the machine they ran on, its
load, waiting for a condition, and their sections of bench/RELIABILITY.md, each replaced in place with every other
section kept."""

from __future__ import annotations

import contextlib
import json
import os
import platform
import re
import shutil
import time
from pathlib import Path

import httpx

RELIABILITY = Path(__file__).resolve().parent / "RELIABILITY.md"


def machine() -> str:
    """e.g. "2 cores (AMD EPYC …), 24 GiB, no GPU"."""
    lines = Path("/proc/cpuinfo").read_text().splitlines() if Path("/proc/cpuinfo").exists() else []
    model = next((line.split(":", 1)[1].strip() for line in lines if "model name" in line), platform.machine())
    meminfo = Path("/proc/meminfo").read_text().splitlines() if Path("/proc/meminfo").exists() else []
    memory = next((int(line.split()[1]) for line in meminfo if line.startswith("MemTotal")), 0)
    gpu = "a GPU" if shutil.which("nvidia-smi") else "no GPU"
    return f"{os.cpu_count()} cores ({model}), {memory / 2**20:.0f} GiB, {gpu}"


def wait_until(predicate, timeout: float, what: str, poll: float = 0.2):
    """predicate()'s first true value, polled (an HTTP error counts as not yet); TimeoutError naming `what`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError):
            if value := predicate():
                return value
        time.sleep(poll)
    raise TimeoutError(f"{what}: not within {timeout:.0f} s")


def load() -> str:
    """The load average over 1, 5 and 15 minutes, e.g. "2.5/3.5/3.5"."""
    return "/".join(f"{x:.1f}" for x in os.getloadavg())


def write_section(title: str, section: str) -> None:
    """The "## {title}" section of RELIABILITY.md replaced (or added at the end); every other section kept. Read just
    before writing: another bench may have changed the file during the run."""
    text = RELIABILITY.read_text() if RELIABILITY.exists() else "# Reliability\n\n"
    pattern = re.compile(rf"^## {re.escape(title)}\n.*?(?=^## |\Z)", re.S | re.M)
    text = pattern.sub(lambda _: section + "\n", text) if pattern.search(text) else text.rstrip("\n") + "\n\n" + section
    RELIABILITY.write_text(text.rstrip("\n") + "\n")


def publish(title: str, result: dict, section: str, json_path: str, write: bool = True) -> None:
    """A bench's end: its figures as JSON at `json_path`, its section printed and (unless not `write`) written."""
    path = Path(json_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2, ensure_ascii=False, default=str))
    print("\n" + section, flush=True)
    if write:
        write_section(title, section)
        print(f"[bench] bench/{RELIABILITY.name}: {title} section written", flush=True)
