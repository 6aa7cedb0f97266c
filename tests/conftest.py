"""Fixtures shared by every test: the repository and its sample catalogs."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture(scope="session")
def sample_catalog_path() -> Path:
    return REPO_ROOT / "examples" / "test-mygusi" / "applicationsIA_mini_normalized.json"


@pytest.fixture(scope="session")
def sample_catalog_bytes(sample_catalog_path: Path) -> bytes:
    return sample_catalog_path.read_bytes()


@pytest.fixture(scope="session")
def products_dir() -> Path:
    return REPO_ROOT / "examples" / "products"
