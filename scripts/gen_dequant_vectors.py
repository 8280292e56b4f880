#!/usr/bin/env python3
"""Write the golden dequantization vectors golden/dequant/<TYPE>.safetensors.

Each file holds, for one ggml type:
  blocks  U8  [n, block_bytes]  raw blocks (for F32/F16/BF16 one element per row)
  values  F32 [n, block_elems]  gguf.quants.dequantize(blocks) (numpy float32)
and string metadata: the type, gguf/numpy versions, the seed and `sources`,
a JSON list saying which rows came from which file/tensor/block or which
random recipe.

Blocks are (a) sampled from real GGUF files written by llama.cpp and (b) random
bytes with chosen f16 scale fields (negative, zero, subnormal, large). The
engine's test engine/tests/dequant_vectors.rs compares its decoder against
`values` bit for bit.

Needs: pip install gguf numpy. Run from anywhere:
  python3 scripts/gen_dequant_vectors.py
"""

from __future__ import annotations

import argparse
import json
import os
import struct
from importlib import metadata

import numpy as np
import gguf
from gguf import GGMLQuantizationType as T
from gguf.constants import GGML_QUANT_SIZES

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

MODEL_FILES = [
    "/work/cache/models/files/SmolLM2-135M-Instruct.Q4_1.gguf",
    "/work/cache/models/files/gemma-3-270m-q4_k_m.gguf",
]
FIXTURE_DIR = "/work/shared/fixtures/gguf/llama"

TYPES = [T.F32, T.F16, T.BF16, T.Q4_0, T.Q4_1, T.Q5_0, T.Q5_1, T.Q8_0,
         T.Q2_K, T.Q3_K, T.Q4_K, T.Q5_K, T.Q6_K]
FLOAT_TYPES = (T.F32, T.F16, T.BF16)

# Byte offsets of the f16 scale fields (d, and m/dmin where present) per block.
SCALE_OFFSETS = {
    T.Q4_0: [0], T.Q4_1: [0, 2], T.Q5_0: [0], T.Q5_1: [0, 2], T.Q8_0: [0],
    T.Q2_K: [80, 82], T.Q3_K: [108], T.Q4_K: [0, 2], T.Q5_K: [0, 2], T.Q6_K: [208],
}

# Rows per file: real rows, random rows. K-quant rows are ~1.2 KB each, so
# they get fewer to keep every file under 100 KB.
COUNTS = {t: (256, 256) for t in FLOAT_TYPES}
COUNTS.update({t: (48, 48) for t in (T.Q4_0, T.Q4_1, T.Q5_0, T.Q5_1, T.Q8_0)})
COUNTS.update({t: (32, 32) for t in (T.Q2_K, T.Q3_K, T.Q4_K, T.Q5_K, T.Q6_K)})

TENSORS_PER_TYPE = 6


def source_files() -> list[str]:
    fixtures = sorted(
        os.path.join(FIXTURE_DIR, f) for f in os.listdir(FIXTURE_DIR) if f.endswith(".gguf")
    )
    return MODEL_FILES + fixtures


def collect_tensors(files: list[str]) -> dict[T, list[tuple[str, str, np.ndarray]]]:
    """For each type, (file name, tensor name, raw bytes as [n_blocks, block_bytes])."""
    out: dict[T, list[tuple[str, str, np.ndarray]]] = {t: [] for t in TYPES}
    for path in files:
        reader = gguf.GGUFReader(path)
        for t in reader.tensors:
            if t.tensor_type not in out:
                continue
            type_size = GGML_QUANT_SIZES[t.tensor_type][1]
            raw = np.asarray(t.data).reshape(-1).view(np.uint8)
            out[t.tensor_type].append(
                (os.path.basename(path), t.name, raw.reshape(-1, type_size))
            )
    return out


def pick_tensors(cands, k: int):
    """Up to k tensors, spread over each file's tensors and round-robin over files."""
    by_file: dict[str, list] = {}
    for c in cands:
        by_file.setdefault(c[0], []).append(c)
    spread = []
    for lst in by_file.values():
        lst.sort(key=lambda c: c[1])
        m = min(k, len(lst))
        spread.append([lst[j * len(lst) // m] for j in range(m)])
    picked = []
    for j in range(k):
        for lst in spread:
            if j < len(lst):
                picked.append(lst[j])
    return picked[:k]


def real_rows(ty: T, cands, n: int, rng: np.random.Generator):
    tensors = pick_tensors(cands, TENSORS_PER_TYPE)
    if not tensors:
        raise SystemExit(f"no tensor of type {ty.name} in the source files")
    rows, sources, start = [], [], 0
    per = -(-n // len(tensors))
    for fname, tname, blocks in tensors:
        take = min(per, n - start, blocks.shape[0])
        if take <= 0:
            break
        idx = np.sort(rng.choice(blocks.shape[0], size=take, replace=False))
        rows.append(blocks[idx])
        sources.append({"rows": [start, start + take], "file": fname, "tensor": tname,
                        "blocks": [int(i) for i in idx]})
        start += take
    return np.concatenate(rows), sources


def f16_scale(kind: str, rng: np.random.Generator) -> int:
    """Bits of a finite f16 of the given kind, random sign."""
    sign = int(rng.integers(0, 2)) << 15
    if kind == "zero":
        mag = 0
    elif kind == "subnormal":
        mag = int(rng.integers(1, 0x400))
    elif kind == "tiny":  # smallest normals
        mag = int(rng.integers(0x400, 0x1000))
    elif kind == "large":  # up to 65504
        mag = int(rng.integers(0x7400, 0x7C00))
    elif kind == "max":
        mag = 0x7BFF
    elif kind == "typical":  # ~1e-4 .. ~1
        mag = int(rng.integers(0x0C00, 0x3C00))
    else:  # any finite
        mag = int(rng.integers(0, 0x7C00))
    return sign | mag


SCALE_KINDS = ["typical", "any", "zero", "subnormal", "tiny", "large", "max"]


def random_quant_rows(ty: T, n: int, rng: np.random.Generator):
    type_size = GGML_QUANT_SIZES[ty][1]
    blocks = rng.integers(0, 256, size=(n, type_size), dtype=np.uint8)
    sources = []
    for i in range(n):
        kinds = []
        for off in SCALE_OFFSETS[ty]:
            # Cycle through the kinds so each appears on each scale field.
            kind = SCALE_KINDS[(i + off) % len(SCALE_KINDS)] if i < 2 * len(SCALE_KINDS) \
                else SCALE_KINDS[int(rng.integers(0, len(SCALE_KINDS)))]
            bits = f16_scale(kind, rng)
            blocks[i, off:off + 2] = np.frombuffer(struct.pack("<H", bits), dtype=np.uint8)
            kinds.append(kind)
        sources.append({"rows": [i, i + 1], "file": "random", "scales": kinds})
    return blocks, sources


def random_float_rows(ty: T, n: int, rng: np.random.Generator):
    """Special values first (zeros, subnormals, extremes, inf, NaNs), then random bits."""
    if ty == T.F32:
        special = [0x00000000, 0x80000000, 0x00000001, 0x807FFFFF, 0x00800000, 0x7F7FFFFF,
                   0xFF7FFFFF, 0x3F800000, 0xBF800000, 0x7F800000, 0xFF800000,
                   0x7FC00000, 0xFFC12345, 0x7F800001]
        rand = rng.integers(0, 2**32, size=n - len(special), dtype=np.uint64)
        bits = np.array(special + [int(x) for x in rand], dtype=np.uint32)
        raw = bits.astype("<u4").view(np.uint8).reshape(n, 4)
    else:
        if ty == T.F16:
            special = [0x0000, 0x8000, 0x0001, 0x83FF, 0x0400, 0x7BFF, 0xFBFF, 0x3C00, 0xBC00,
                       0x7C00, 0xFC00, 0x7E00, 0xFE01, 0x7C01]
        else:
            special = [0x0000, 0x8000, 0x0001, 0x807F, 0x0080, 0x7F7F, 0xFF7F, 0x3F80, 0xBF80,
                       0x7F80, 0xFF80, 0x7FC0, 0xFFC1, 0x7F81]
        rand = rng.integers(0, 2**16, size=n - len(special), dtype=np.uint32)
        bits = np.array(special + [int(x) for x in rand], dtype=np.uint16)
        raw = bits.astype("<u2").view(np.uint8).reshape(n, 2)
    sources = [{"rows": [0, len(special)], "file": "special",
                "note": "+-0, subnormals, min normal, max, +-1, +-inf, quiet and signaling NaNs"},
               {"rows": [len(special), n], "file": "random", "note": "uniform random bits"}]
    return raw, sources


def write_safetensors(path: str, tensors: dict[str, np.ndarray], meta: dict[str, str]):
    dtypes = {np.dtype(np.uint8): "U8", np.dtype(np.float32): "F32"}
    header: dict = {"__metadata__": meta}
    offset, payload = 0, []
    for name, arr in tensors.items():
        arr = np.ascontiguousarray(arr)
        data = arr.astype(arr.dtype.newbyteorder("<"), copy=False).tobytes()
        header[name] = {"dtype": dtypes[arr.dtype], "shape": list(arr.shape),
                        "data_offsets": [offset, offset + len(data)]}
        payload.append(data)
        offset += len(data)
    hjson = json.dumps(header, separators=(",", ":")).encode()
    hjson += b" " * (-len(hjson) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(hjson)))
        f.write(hjson)
        for p in payload:
            f.write(p)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=os.path.join(REPO, "golden", "dequant"))
    ap.add_argument("--seed", type=int, default=20250101)
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)

    files = source_files()
    tensors = collect_tensors(files)
    versions = {"gguf": metadata.version("gguf"), "numpy": np.__version__}

    for ty in TYPES:
        rng = np.random.default_rng([args.seed, int(ty.value)])
        n_real, n_rand = COUNTS[ty]
        real, real_src = real_rows(ty, tensors[ty], n_real, rng)
        if ty in FLOAT_TYPES:
            rand, rand_src = random_float_rows(ty, n_rand, rng)
        else:
            rand, rand_src = random_quant_rows(ty, n_rand, rng)
        for s in rand_src:
            s["rows"] = [s["rows"][0] + len(real), s["rows"][1] + len(real)]
        blocks = np.concatenate([real, rand]).astype(np.uint8)
        values = gguf.quants.dequantize(blocks, ty).astype(np.float32, copy=False)
        block_elems = GGML_QUANT_SIZES[ty][0]
        assert values.shape == (blocks.shape[0], block_elems), values.shape
        meta = {
            "type": ty.name,
            "generator": "scripts/gen_dequant_vectors.py",
            "reference": "gguf.quants.dequantize (gguf-py, numpy float32)",
            "gguf_version": versions["gguf"],
            "numpy_version": versions["numpy"],
            "seed": str(args.seed),
            "sources": json.dumps(real_src + rand_src, separators=(",", ":")),
        }
        path = os.path.join(args.out, f"{ty.name}.safetensors")
        write_safetensors(path, {"blocks": blocks, "values": values}, meta)
        print(f"{path}: {blocks.shape[0]} rows, {os.path.getsize(path)} bytes")


if __name__ == "__main__":
    main()
