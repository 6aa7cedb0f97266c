"""A GGUF holding a tensor type mainline llama.cpp does not know (ik_llama.cpp's quantizer writes its own Q6_0 for the
rows K-quants do not fit, e.g. Qwen 0.5B's attn_v at q4_K_M): the exporter still reads its metadata, and names those
tensors, so that quantize() writes them again in q8_0 (measured on Qwen 0.5B: 12 attn_v tensors; bench/RESULTS.md)."""

from __future__ import annotations

import shutil
import struct

import pytest

pytest.importorskip("gguf")

from dyag_llm.gguf import resolve  # noqa: E402
from dyag_model_exporter.llama import foreign_tensor_types, gguf_metadata  # noqa: E402

IK_Q6_0 = 133


def with_tensor_type(source, target, name: str, raw_type: int):
    """A copy of a GGUF whose tensor `name` says it is of `raw_type` (its info record patched in place)."""
    shutil.copy(source, target)
    data = bytearray(target.read_bytes())
    marker = struct.pack("<Q", len(name)) + name.encode()
    start = data.index(marker) + len(marker)
    n_dims = struct.unpack_from("<I", data, start)[0]
    at = start + 4 + 8 * n_dims
    assert struct.unpack_from("<I", data, at)[0] in range(64)  # a ggml type id before the patch
    struct.pack_into("<I", data, at, raw_type)
    target.write_bytes(bytes(data))
    return target


def test_a_tensor_of_an_ik_llama_cpp_type_is_named_and_the_metadata_still_reads(tmp_path):
    source = resolve("smollm2-135m")[0]
    assert foreign_tensor_types(source) == {}
    patched = with_tensor_type(source, tmp_path / "patched.gguf", "blk.3.attn_v.weight", IK_Q6_0)
    assert foreign_tensor_types(patched) == {"blk.3.attn_v.weight": IK_Q6_0}
    meta = gguf_metadata(patched)  # the gguf package alone would refuse the file (unknown GGMLQuantizationType)
    assert meta["general.architecture"] == "llama" and "{{" in str(meta["tokenizer.chat_template"])
