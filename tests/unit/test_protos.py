"""The committed gRPC stubs are exactly what grpcio-tools generates from proto/."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_generated_stubs_are_not_stale():
    result = subprocess.run(
        [sys.executable, str(REPO / "libs/dyag-proto/generate.py"), "--check"], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_proto_has_its_stubs():
    protos = sorted(p.stem for p in (REPO / "proto/dyag/v1").glob("*.proto"))
    assert protos, "no proto files"
    for name in protos:
        assert importlib.util.find_spec(f"dyag.v1.{name}_pb2"), name
