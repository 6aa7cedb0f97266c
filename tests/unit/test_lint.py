"""The tree stays lint-clean: `ruff check .` and `ruff format --check .` from the repository root (ruff.toml)."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("ruff") is None,
    reason="ruff is not installed in this environment (pip install -r tests/requirements.txt)",
)


def ruff(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ruff", *args], cwd=ROOT, capture_output=True, text=True, timeout=300, check=False
    )


def test_ruff_check_finds_nothing() -> None:
    result = ruff("check", "--no-cache", ".")
    assert result.returncode == 0, f"ruff check . failed:\n{result.stdout}{result.stderr}"


def test_ruff_format_would_change_nothing() -> None:
    result = ruff("format", "--check", "--no-cache", ".")
    assert result.returncode == 0, f"ruff format --check . failed:\n{result.stdout}{result.stderr}"
