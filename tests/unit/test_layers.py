"""The layers, kept by an import check over the source tree (every import statement, at any depth):

- dyag-core, the pure domain, imports no framework (web, RPC, bus, ML, storage);
- a service imports no other service (they talk over gRPC and NATS, through dyag-runtime and the protos);
- the gateway's routers import no pipeline internals (the runner is reached through the app's state).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FRAMEWORKS = (
    "fastapi",
    "starlette",
    "grpc",
    "nats",
    "pydantic_settings",
    "uvicorn",
    "torch",
    "transformers",
    "peft",
    "trl",
    "chromadb",
    "llama_cpp",
    "openai",
    "httpx",
    "requests",
    "sqlalchemy",
    "dyag_runtime",
    "dyag_llm",
    "dyag_gateway",
)
SERVICES = {
    p.name: next((p / "src").glob("dyag_*/__init__.py")).parent.name
    for p in (ROOT / "services").iterdir()
    if (p / "src").is_dir()
}


def imports(folder: Path) -> list[tuple[Path, int, str]]:
    """(file, line, module) for every import under folder, but those for type checkers only (`if TYPE_CHECKING:`)."""
    found = []
    for path in sorted(folder.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        typing_only = {
            id(n)
            for block in ast.walk(tree)
            if isinstance(block, ast.If) and ast.unparse(block.test).endswith("TYPE_CHECKING")
            for n in ast.walk(block)
        }
        for node in ast.walk(tree):
            if id(node) in typing_only:
                continue
            if isinstance(node, ast.Import):
                found += [(path, node.lineno, alias.name) for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                found.append((path, node.lineno, node.module))
    return found


def offending(folder: Path, banned) -> list[str]:
    return [
        f"{path.relative_to(folder)}:{line} imports {module}"
        for path, line, module in imports(folder)
        if any(module == b or module.startswith(b + ".") for b in banned)
    ]


def test_the_domain_imports_no_framework():
    assert offending(ROOT / "libs/dyag-core/src/dyag_core", FRAMEWORKS) == []


@pytest.mark.parametrize("service", sorted(SERVICES))
def test_a_service_imports_no_other_service(service):
    others = [package for name, package in SERVICES.items() if name != service]
    assert offending(ROOT / "services" / service / "src", others) == []


def test_the_routers_import_no_pipeline_internals():
    internals = tuple(
        f"dyag_gateway.pipeline.{m}" for m in ("model", "settings", "steps", "runner", "views", "service")
    )
    assert offending(ROOT / "services/gateway/src/dyag_gateway/routers", internals) == []  # only the package's facade


def test_the_check_finds_what_it_bans(tmp_path):
    (tmp_path / "bad.py").write_text(
        "def f():\n    from fastapi import FastAPI\n    import grpc.aio\nif TYPE_CHECKING:\n    import torch\n"
    )
    assert offending(tmp_path, FRAMEWORKS) == ["bad.py:2 imports fastapi", "bad.py:3 imports grpc.aio"]
