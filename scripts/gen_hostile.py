#!/usr/bin/env python3
"""Write the hostile-file corpus golden/hostile/ (see golden/hostile/README.md).

Every file is a small, valid model with exactly one lie in it, so that each
file tests one check of the loaders. Two valid bases are built first:

  gguf/base.gguf  a 1-layer Llama (hidden 32, 4 heads / 2 kv heads, ffn 64,
                  Q4_0 matrices, F32 norms, tied embeddings) whose metadata and
                  512-token SentencePiece vocabulary are those of
                  golden/gguf/llama/llama-F32.gguf and whose weights are slices
                  of that file's weights;
  hf/base/        a 1-layer Llama checkpoint directory (hidden 16, 2 heads /
                  1 kv head, ffn 32, BF16 weights sliced from
                  golden/hf/llama-tied-f32, tied embeddings) with a byte-level
                  BPE tokenizer.json of 264 tokens written here.

Each case then mutates a copy. `manifest.json` lists every case with the
`E-...` code `atenia generate --model CASE --prompt hi --max-tokens 1` must
print (`ok` for the two bases, which must run); README.md is written from the
same list. engine/tests/hostile.rs runs them all.

Deterministic: no randomness, no timestamps; rerunning rewrites the same bytes.
Needs only the Python standard library. Run from anywhere:
  python3 scripts/gen_hostile.py
"""

from __future__ import annotations

import copy
import json
import math
import os
import shutil
import struct

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(REPO, "golden", "hostile")
SRC_GGUF = os.path.join(REPO, "golden", "gguf", "llama", "llama-F32.gguf")
SRC_HF = os.path.join(REPO, "golden", "hf", "llama-tied-f32", "model.safetensors")

# GGUF value types.
U8, I8, U16, I16, U32, I32, F32, BOOL, STR, ARR, U64, I64, F64 = range(13)
SCALAR_FMT = {U8: "<B", I8: "<b", U16: "<H", I16: "<h", U32: "<I", I32: "<i",
              F32: "<f", BOOL: "<B", U64: "<Q", I64: "<q", F64: "<d"}
GGML_F32, GGML_Q4_0 = 0, 2
ALIGN = 32
BIG = 1 << 63


def u32(v):
    return struct.pack("<I", v)


def u64(v):
    return struct.pack("<Q", v)


def gstr(s):
    b = s.encode() if isinstance(s, str) else s
    return u64(len(b)) + b


# ---------------------------------------------------------------- GGUF reading


def read_gguf(path):
    """(kvs, tensors): kvs is a list of (key, type, value) with arrays as
    (elem_type, [values]); tensors a list of dicts name/dims/type/data."""
    buf = open(path, "rb").read()
    pos = 0

    def take(n):
        nonlocal pos
        b = buf[pos:pos + n]
        pos += n
        return b

    def rd(fmt):
        return struct.unpack(fmt, take(struct.calcsize(fmt)))[0]

    def rstr():
        return take(rd("<Q")).decode()

    def value(t):
        if t == STR:
            return rstr()
        if t == ARR:
            et = rd("<I")
            n = rd("<Q")
            return (et, [value(et) for _ in range(n)])
        v = rd(SCALAR_FMT[t])
        return bool(v) if t == BOOL else v

    assert take(4) == b"GGUF"
    rd("<I")
    n_tensors, n_kv = rd("<Q"), rd("<Q")
    kvs = []
    for _ in range(n_kv):
        k = rstr()
        t = rd("<I")
        kvs.append((k, t, value(t)))
    infos = []
    for _ in range(n_tensors):
        name = rstr()
        nd = rd("<I")
        dims = [rd("<Q") for _ in range(nd)]
        infos.append((name, dims, rd("<I"), rd("<Q")))
    data_start = (pos + ALIGN - 1) // ALIGN * ALIGN
    tensors = []
    for name, dims, t, off in infos:
        assert t == GGML_F32
        n = math.prod(dims)
        raw = buf[data_start + off:data_start + off + 4 * n]
        tensors.append({"name": name, "dims": dims,
                        "values": list(struct.unpack(f"<{n}f", raw))})
    return kvs, tensors


# ---------------------------------------------------------------- GGUF writing


def enc_value(t, v):
    if t == STR:
        return gstr(v)
    if t == ARR:
        et, items = v
        return u32(et) + u64(len(items)) + b"".join(enc_value(et, x) for x in items)
    if t == BOOL:
        return struct.pack("<B", 1 if v else 0)
    return struct.pack(SCALAR_FMT[t], v)


class Gguf:
    """A GGUF file as parts; `build()` returns its bytes and a layout of where
    each part landed, for byte-level patches and truncations."""

    def __init__(self, kvs, tensors):
        self.magic = b"GGUF"
        self.version = 3
        self.kvs = kvs            # (key, type, value) or ("raw", bytes)
        self.tensors = tensors    # dicts: name, dims, type, data; optional offset
        self.n_tensors = None     # header overrides
        self.n_kv = None
        self.alignment = ALIGN

    def kv(self, key):
        for i, e in enumerate(self.kvs):
            if e[0] == key:
                return i
        raise KeyError(key)

    def set(self, key, t, v):
        self.kvs[self.kv(key)] = (key, t, v)

    def drop(self, key):
        del self.kvs[self.kv(key)]

    def tensor(self, name):
        return next(t for t in self.tensors if t["name"] == name)

    def build(self):
        lay = {"kv": [], "info": []}
        out = bytearray(self.magic)
        out += u32(self.version)
        lay["tensor_count"] = len(out)
        out += u64(len(self.tensors) if self.n_tensors is None else self.n_tensors)
        lay["kv_count"] = len(out)
        out += u64(len(self.kvs) if self.n_kv is None else self.n_kv)
        lay["header_end"] = len(out)
        for e in self.kvs:
            start = len(out)
            if e[0] == "raw":
                out += e[1]
            else:
                out += gstr(e[0]) + u32(e[1]) + enc_value(e[1], e[2])
            lay["kv"].append((start, len(out), e[0]))
        offsets = []
        cursor = 0
        for t in self.tensors:
            cursor = (cursor + self.alignment - 1) // self.alignment * self.alignment
            offsets.append(cursor)
            cursor += len(t["data"])
        for t, off in zip(self.tensors, offsets):
            start = len(out)
            out += gstr(t["name"]) + u32(len(t["dims"]))
            for d in t["dims"]:
                out += u64(d)
            out += u32(t["type"])
            off_at = len(out)
            out += u64(t.get("offset", off))
            lay["info"].append({"start": start, "end": len(out), "offset_at": off_at,
                                "name": t["name"]})
        lay["infos_end"] = len(out)
        while len(out) % self.alignment:
            out += b"\0"
        lay["data_start"] = len(out)
        for t, off in zip(self.tensors, offsets):
            while len(out) < lay["data_start"] + off:
                out += b"\0"
            out += t["data"]
        return bytes(out), lay


def f32_bytes(values):
    return struct.pack(f"<{len(values)}f", *values)


def q4_0(values):
    """ggml's quantize_row_q4_0_ref."""
    out = bytearray()
    for b in range(0, len(values), 32):
        x = values[b:b + 32]
        amax, vmax = 0.0, 0.0
        for v in x:
            if abs(v) > amax:
                amax, vmax = abs(v), v
        d = vmax / -8.0
        inv = 1.0 / d if d else 0.0
        d16 = struct.pack("<e", d)
        qs = bytearray(16)
        for j in range(16):
            lo = min(15, int(x[j] * inv + 8.5))
            hi = min(15, int(x[16 + j] * inv + 8.5))
            qs[j] = lo | (hi << 4)
        out += d16 + qs
    return bytes(out)


def base_gguf():
    kvs, src = read_gguf(SRC_GGUF)
    by = {t["name"]: t for t in src}

    def mat(name, rows, cols):
        t = by[name]
        src_cols = t["dims"][0]
        v = t["values"]
        return [v[r * src_cols + c] for r in range(rows) for c in range(cols)]

    hidden, ffn, q_dim, kv_dim, vocab = 32, 64, 32, 16, 512
    sizes = {
        "general.name": (STR, "hostile-base"),
        "general.size_label": (STR, "40K"),
        "general.file_type": (U32, 2),
        "llama.block_count": (U32, 1),
        "llama.embedding_length": (U32, hidden),
        "llama.feed_forward_length": (U32, ffn),
        "llama.attention.head_count": (U32, 4),
        "llama.attention.head_count_kv": (U32, 2),
        "llama.attention.key_length": (U32, 8),
        "llama.attention.value_length": (U32, 8),
        "llama.rope.dimension_count": (U32, 8),
    }
    kvs = [(k, *sizes[k]) if k in sizes else (k, t, v) for k, t, v in kvs]
    g = Gguf(kvs, [])

    def matrix(name, src_name, rows, cols):
        g.tensors.append({"name": name, "dims": [cols, rows], "type": GGML_Q4_0,
                          "data": q4_0(mat(src_name, rows, cols))})

    def vector(name, n):
        g.tensors.append({"name": name, "dims": [n], "type": GGML_F32,
                          "data": f32_bytes(by[name]["values"][:n])})

    matrix("token_embd.weight", "token_embd.weight", vocab, hidden)
    vector("blk.0.attn_norm.weight", hidden)
    matrix("blk.0.attn_q.weight", "blk.0.attn_q.weight", q_dim, hidden)
    matrix("blk.0.attn_k.weight", "blk.0.attn_k.weight", kv_dim, hidden)
    matrix("blk.0.attn_v.weight", "blk.0.attn_v.weight", kv_dim, hidden)
    matrix("blk.0.attn_output.weight", "blk.0.attn_output.weight", hidden, q_dim)
    vector("blk.0.ffn_norm.weight", hidden)
    matrix("blk.0.ffn_gate.weight", "blk.0.ffn_gate.weight", ffn, hidden)
    matrix("blk.0.ffn_up.weight", "blk.0.ffn_up.weight", ffn, hidden)
    matrix("blk.0.ffn_down.weight", "blk.0.ffn_down.weight", hidden, ffn)
    vector("output_norm.weight", hidden)
    return g


# ---------------------------------------------------------------- corpus


CASES = []  # (relative path, expected code, what)


def emit(rel, data, code, what):
    path = os.path.join(OUT, rel)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)
    CASES.append((rel, code, what))


def gguf_cases():
    base = base_gguf()
    good, lay = base.build()
    emit("gguf/base.gguf", good, "ok", "the valid base every GGUF case mutates (must run)")

    def mutated(fn):
        g = copy.deepcopy(base)
        fn(g)
        return g.build()[0]

    def patched(at, raw, src=good):
        b = bytearray(src)
        b[at:at + len(raw)] = raw
        return bytes(b)

    def case(name, code, what, data):
        emit(f"gguf/{name}.gguf", data, code, what)

    case("base-v2", "ok", "the base as GGUF version 2 (same layout as v3; must run)", patched(4, u32(2)))

    # Not GGUF at all.
    case("empty", "E-GGUF", "a zero-byte file", b"")
    case("not-gguf", "E-GGUF", "a text file (bad magic)", b"hello, I am not a model\n")
    case("magic-lowercase", "E-GGUF", "magic 'gguf' instead of 'GGUF'", patched(0, b"gguf"))
    case("version-1", "E-GGUF", "GGUF version 1 (unsupported)", patched(4, u32(1)))
    case("version-4", "E-GGUF", "GGUF version 4 (does not exist)", patched(4, u32(4)))
    case("version-huge", "E-GGUF", "version 0xffffffff", patched(4, u32(0xFFFFFFFF)))

    # Truncated at every section boundary.
    bounds = [(4, "after the magic"), (8, "after the version"),
              (lay["kv_count"], "after the tensor count"),
              (lay["header_end"], "after the kv count (end of the header)")]
    for i, (s, e, k) in enumerate(lay["kv"]):
        bounds.append((e, f"after metadata kv #{i} ({k})"))
    tok = next(x for x in lay["kv"] if x[2] == "tokenizer.ggml.tokens")
    bounds.append(((tok[0] + tok[1]) // 2, "in the middle of the tokenizer.ggml.tokens array"))
    for i, info in enumerate(lay["info"]):
        bounds.append((info["end"], f"after tensor info #{i} ({info['name']})"))
    bounds.append((lay["data_start"], "at the start of the tensor data section"))
    bounds.append(((lay["data_start"] + len(good)) // 2, "in the middle of the tensor data"))
    bounds.append((len(good) - 1, "one byte before the end of the tensor data"))
    seen = set()
    for at, what in sorted(bounds):
        if at in seen:
            continue
        seen.add(at)
        case(f"truncated-{at:06d}", "E-GGUF", f"truncated at byte {at}: {what}", good[:at])

    # Counts and lengths near 2^63.
    case("tensor-count-2p63", "E-GGUF", "tensor_count = 2^63 - 1",
         patched(lay["tensor_count"], u64(BIG - 1)))
    case("tensor-count-max", "E-GGUF", "tensor_count = 2^64 - 1",
         patched(lay["tensor_count"], u64(2**64 - 1)))
    case("tensor-count-plus-one", "E-GGUF",
         "tensor_count one more than the infos present (reads data as an info)",
         patched(lay["tensor_count"], u64(len(base.tensors) + 1)))
    case("kv-count-2p63", "E-GGUF", "kv_count = 2^63", patched(lay["kv_count"], u64(BIG)))
    case("kv-count-plus-one", "E-GGUF",
         "kv_count one more than present (reads a tensor info as a kv)",
         patched(lay["kv_count"], u64(len(base.kvs) + 1)))
    first = lay["kv"][0][0]
    case("key-length-2p63", "E-GGUF", "the first key's length = 2^63", patched(first, u64(BIG)))
    arch_value = first + 8 + len("general.architecture") + 4
    case("string-length-2p63", "E-GGUF", "general.architecture's string length = 2^63",
         patched(arch_value, u64(BIG)))
    case("string-length-max", "E-GGUF", "general.architecture's string length = 2^64 - 1",
         patched(arch_value, u64(2**64 - 1)))
    tok_count = tok[0] + 8 + len("tokenizer.ggml.tokens") + 4 + 4
    case("array-length-2p63", "E-GGUF", "tokenizer.ggml.tokens array length = 2^63",
         patched(tok_count, u64(BIG)))
    case("array-length-max", "E-GGUF", "tokenizer.ggml.tokens array length = 2^64 - 1",
         patched(tok_count, u64(2**64 - 1)))
    case("tensor-name-length-2p63", "E-GGUF", "the first tensor name's length = 2^63",
         patched(lay["info"][0]["start"], u64(BIG)))

    # Dimensions.
    def dims(name, d, **kw):
        def fn(g):
            g.tensor(name)["dims"] = d
            g.tensor(name).update(kw)
        return mutated(fn)

    case("dims-product-overflow", "E-GGUF", "token_embd dims [2^40, 2^40]: the element count overflows",
         dims("token_embd.weight", [1 << 40, 1 << 40]))
    case("dims-bytes-overflow", "E-GGUF",
         "an F32 tensor of dims [2^31, 2^31]: 2^62 elements fit but their bytes overflow",
         dims("blk.0.attn_norm.weight", [1 << 31, 1 << 31]))
    case("dims-u64-max", "E-GGUF", "a dimension of 2^64 - 1",
         dims("blk.0.attn_norm.weight", [2**64 - 1]))
    case("dims-huge-past-end", "E-GGUF",
         "token_embd dims [2^20, 2^20] (Q4_0, 618 GB) in a tiny file",
         dims("token_embd.weight", [1 << 20, 1 << 20]))
    case("dims-zero", "E-GGUF", "token_embd dims [32, 0]", dims("token_embd.weight", [32, 0]))
    case("n-dims-0", "E-GGUF", "a tensor with 0 dimensions", dims("output_norm.weight", []))
    case("n-dims-5", "E-GGUF", "a tensor with 5 dimensions",
         dims("output_norm.weight", [32, 1, 1, 1, 1]))
    case("dims-not-block-multiple", "E-GGUF",
         "a Q4_0 tensor whose row length (31) is not a multiple of the 32-element block",
         dims("blk.0.attn_q.weight", [31, 32]))
    case("dims-3d-embedding", "E-WEIGHTS", "token_embd is 3-D [32, 512, 1]",
         dims("token_embd.weight", [32, 512, 1]))
    case("shape-mismatch", "E-WEIGHTS", "attn_q is [32, 16] where the heads need [32, 32]",
         dims("blk.0.attn_q.weight", [32, 16]))
    case("norm-wrong-length", "E-WEIGHTS", "attn_norm has 16 elements where hidden is 32",
         dims("blk.0.attn_norm.weight", [16]))

    # Offsets.
    embd = lay["info"][0]
    assert embd["name"] == "token_embd.weight"
    data_len = len(good) - lay["data_start"]
    past = (data_len + ALIGN - 1) // ALIGN * ALIGN
    case("offset-past-end", "E-GGUF", "token_embd's data offset lies past the end of the file",
         patched(embd["offset_at"], u64(past)))
    case("offset-wrapping", "E-GGUF", "token_embd's offset = 2^64 - 32: offset + size wraps around",
         patched(embd["offset_at"], u64(2**64 - 32)))
    case("offset-misaligned", "E-GGUF", "a tensor offset not a multiple of the alignment (32)",
         patched(lay["info"][1]["offset_at"],
                 u64(struct.unpack("<Q", good[lay["info"][1]["offset_at"]:][:8])[0] + 1)))

    # Unknown types.
    def add_kv(entry):
        return mutated(lambda g: g.kvs.append(entry))

    case("kv-type-unknown", "E-GGUF", "a metadata value of type 13 (no such type)",
         add_kv(("raw", gstr("hostile.unknown") + u32(13) + u64(0))))
    case("kv-type-huge", "E-GGUF", "a metadata value of type 0xffffffff",
         add_kv(("raw", gstr("hostile.unknown") + u32(0xFFFFFFFF) + u64(0))))
    case("array-elem-type-unknown", "E-GGUF", "an array whose element type is 13",
         add_kv(("raw", gstr("hostile.array") + u32(ARR) + u32(13) + u64(1) + u64(0))))
    case("bool-byte-2", "E-GGUF", "a bool stored as byte 2",
         mutated(lambda g: g.kvs.__setitem__(
             g.kv("tokenizer.ggml.add_bos_token"),
             ("raw", gstr("tokenizer.ggml.add_bos_token") + u32(BOOL) + b"\x02"))))
    case("key-not-utf8", "E-GGUF", "a metadata key that is not UTF-8",
         add_kv(("raw", gstr(b"hostile.\xff\xfe") + u32(U8) + b"\x01")))
    case("string-not-utf8", "E-GGUF", "general.name is not UTF-8",
         mutated(lambda g: g.kvs.__setitem__(
             g.kv("general.name"), ("raw", gstr("general.name") + u32(STR) + gstr(b"\xc3\x28")))))

    def ttype(name, t):
        return mutated(lambda g: g.tensor(name).update(type=t))

    case("tensor-type-unknown", "E-GGUF", "a tensor of ggml type id 99 (no such type)",
         ttype("blk.0.attn_q.weight", 99))
    case("tensor-type-huge", "E-GGUF", "a tensor of ggml type id 0xffffffff",
         ttype("blk.0.attn_q.weight", 0xFFFFFFFF))
    case("tensor-type-unsupported", "E-UNSUPPORTED",
         "a tensor of ggml type 16 (IQ2_XXS: a real type this engine does not read)",
         ttype("blk.0.attn_q.weight", 16))

    # Deeply nested arrays: 4096 levels of array-of-array.
    depth = 1024
    nested = u32(ARR) + b"".join(u32(ARR) + u64(1) for _ in range(depth)) + u32(U8) + u64(0)
    case("nested-arrays-1024", "E-GGUF", f"an array nested {depth} levels deep",
         add_kv(("raw", gstr("hostile.nested") + nested)))

    # Duplicates.
    case("duplicate-key", "E-GGUF", "general.architecture appears twice",
         add_kv(("general.architecture", STR, "llama")))

    def dup_tensor(g):
        g.tensor("blk.0.ffn_up.weight")["name"] = "blk.0.ffn_gate.weight"

    case("duplicate-tensor", "E-GGUF", "two tensors named blk.0.ffn_gate.weight",
         mutated(dup_tensor))

    # Missing tensors.
    def drop_tensor(name):
        return mutated(lambda g: g.tensors.remove(g.tensor(name)))

    case("missing-attn-k", "E-WEIGHTS", "blk.0.attn_k.weight is absent",
         drop_tensor("blk.0.attn_k.weight"))
    case("missing-token-embd", "E-WEIGHTS", "token_embd.weight is absent",
         drop_tensor("token_embd.weight"))
    case("missing-output-norm", "E-WEIGHTS", "output_norm.weight is absent",
         drop_tensor("output_norm.weight"))
    case("no-tensors", "E-WEIGHTS", "metadata only, no tensors at all",
         mutated(lambda g: g.tensors.clear()))

    # Alignment.
    def align(v, t=U32):
        return add_kv(("general.alignment", t, v))

    case("alignment-0", "E-GGUF", "general.alignment = 0", align(0))
    case("alignment-3", "E-GGUF", "general.alignment = 3 (not a power of two)", align(3))
    case("alignment-2p31", "E-GGUF", "general.alignment = 2^31", align(1 << 31))
    case("alignment-string", "E-GGUF", "general.alignment is a string", align("32", STR))

    # Vocabulary against the embedding.
    def vocab(n):
        def fn(g):
            for key in ("tokenizer.ggml.tokens", "tokenizer.ggml.scores",
                        "tokenizer.ggml.token_type"):
                k, t, (et, items) = g.kvs[g.kv(key)]
                if n < len(items):
                    items = items[:n]
                else:
                    extra = {STR: [f"<extra_{i}>" for i in range(n - len(items))],
                             F32: [0.0] * (n - len(items)),
                             I32: [1] * (n - len(items))}[et]
                    items = items + extra
                g.kvs[g.kv(key)] = (k, t, (et, items))
        return mutated(fn)

    case("vocab-511-tokens", "E-WEIGHTS",
         "tokenizer.ggml.tokens has 511 entries but token_embd has 512 rows", vocab(511))
    case("vocab-513-tokens", "E-WEIGHTS",
         "tokenizer.ggml.tokens has 513 entries but token_embd has 512 rows", vocab(513))

    # Hyperparameters.
    def hp(key, t, v):
        return mutated(lambda g: g.set(key, t, v))

    def hp_drop(*keys, **sets):
        def fn(g):
            for k in keys:
                g.drop(k)
            for k, (t, v) in sets.items():
                g.set(k.replace("__", "."), t, v)
        return mutated(fn)

    case("head-count-0", "E-CONFIG", "llama.attention.head_count = 0",
         hp("llama.attention.head_count", U32, 0))
    case("head-count-kv-0", "E-CONFIG", "llama.attention.head_count_kv = 0",
         hp("llama.attention.head_count_kv", U32, 0))
    case("head-count-kv-3", "E-CONFIG", "3 kv heads do not divide 4 query heads",
         hp("llama.attention.head_count_kv", U32, 3))
    case("head-count-kv-8", "E-CONFIG", "8 kv heads for 4 query heads",
         hp("llama.attention.head_count_kv", U32, 8))
    case("head-count-3-no-key-length", "E-CONFIG",
         "3 heads do not divide the hidden size 32 (no key_length to say otherwise)",
         hp_drop("llama.attention.key_length", "llama.attention.value_length",
                 "llama.rope.dimension_count",
                 llama__attention__head_count=(U32, 3), llama__attention__head_count_kv=(U32, 1)))
    case("head-count-2p40", "E-CONFIG", "llama.attention.head_count = 2^40",
         hp("llama.attention.head_count", U64, 1 << 40))
    case("head-count-negative", "E-CONFIG", "llama.attention.head_count = -4 (i32)",
         hp("llama.attention.head_count", I32, -4))
    case("block-count-0", "E-CONFIG", "llama.block_count = 0", hp("llama.block_count", U32, 0))
    case("block-count-2p32", "E-CONFIG", "llama.block_count = 2^32",
         hp("llama.block_count", U64, 1 << 32))
    case("block-count-2", "E-WEIGHTS", "llama.block_count = 2 but only layer 0 has tensors",
         hp("llama.block_count", U32, 2))
    case("embedding-length-0", "E-CONFIG", "llama.embedding_length = 0",
         hp("llama.embedding_length", U32, 0))
    case("embedding-length-2p62", "E-CONFIG", "llama.embedding_length = 2^62",
         hp("llama.embedding_length", U64, 1 << 62))
    case("feed-forward-length-0", "E-CONFIG", "llama.feed_forward_length = 0",
         hp("llama.feed_forward_length", U32, 0))
    case("key-length-0", "E-CONFIG", "llama.attention.key_length = 0",
         hp("llama.attention.key_length", U32, 0))
    case("rms-eps-nan", "E-CONFIG", "llama.attention.layer_norm_rms_epsilon = NaN",
         hp("llama.attention.layer_norm_rms_epsilon", F32, float("nan")))
    case("rms-eps-inf", "E-CONFIG", "llama.attention.layer_norm_rms_epsilon = +inf",
         hp("llama.attention.layer_norm_rms_epsilon", F32, float("inf")))
    case("rms-eps-negative", "E-CONFIG", "llama.attention.layer_norm_rms_epsilon = -1e-5",
         hp("llama.attention.layer_norm_rms_epsilon", F32, -1e-5))
    case("rms-eps-string", "E-CONFIG", "llama.attention.layer_norm_rms_epsilon is a string",
         hp("llama.attention.layer_norm_rms_epsilon", STR, "1e-5"))
    case("rms-eps-missing", "E-CONFIG", "llama.attention.layer_norm_rms_epsilon is absent",
         hp_drop("llama.attention.layer_norm_rms_epsilon"))
    case("rope-base-nan", "E-CONFIG", "llama.rope.freq_base = NaN",
         hp("llama.rope.freq_base", F32, float("nan")))
    case("rope-base-inf", "E-CONFIG", "llama.rope.freq_base = -inf",
         hp("llama.rope.freq_base", F64, float("-inf")))
    case("rope-base-0.5", "E-CONFIG", "llama.rope.freq_base = 0.5 (must exceed 1)",
         hp("llama.rope.freq_base", F32, 0.5))
    case("rope-dim-odd", "E-CONFIG", "llama.rope.dimension_count = 7 (odd)",
         hp("llama.rope.dimension_count", U32, 7))
    case("rope-dim-too-big", "E-CONFIG", "llama.rope.dimension_count = 16 > head size 8",
         hp("llama.rope.dimension_count", U32, 16))
    case("rope-scaling-yarn", "E-UNSUPPORTED", "llama.rope.scaling.type = yarn",
         add_kv(("llama.rope.scaling.type", STR, "yarn")))
    case("value-length-differs", "E-UNSUPPORTED", "llama.attention.value_length 16 != key_length 8",
         hp("llama.attention.value_length", U32, 16))
    case("arch-missing", "E-CONFIG", "general.architecture is absent", hp_drop("general.architecture"))
    case("arch-unknown", "E-UNSUPPORTED", "general.architecture = bert",
         hp("general.architecture", STR, "bert"))
    case("arch-not-string", "E-CONFIG", "general.architecture is a u32",
         hp("general.architecture", U32, 7))

    # Tokenizer metadata.
    case("tokenizer-model-bert", "E-TOKENIZER", "tokenizer.ggml.model = bert",
         hp("tokenizer.ggml.model", STR, "bert"))
    case("tokenizer-model-missing", "E-TOKENIZER", "tokenizer.ggml.model is absent",
         hp_drop("tokenizer.ggml.model"))
    case("tokenizer-tokens-missing", "E-TOKENIZER", "tokenizer.ggml.tokens is absent",
         hp_drop("tokenizer.ggml.tokens"))
    case("tokenizer-tokens-not-strings", "E-CONFIG", "tokenizer.ggml.tokens is an array of u32",
         hp("tokenizer.ggml.tokens", ARR, (U32, list(range(512)))))
    case("tokenizer-bos-out-of-range", "E-TOKENIZER", "tokenizer.ggml.bos_token_id = 512 (vocab 512)",
         hp("tokenizer.ggml.bos_token_id", U32, 512))
    case("tokenizer-eos-2p63", "E-TOKENIZER", "tokenizer.ggml.eos_token_id = 2^63",
         hp("tokenizer.ggml.eos_token_id", U64, BIG))
    case("tokenizer-eos-negative", "E-CONFIG", "tokenizer.ggml.eos_token_id = -1 (i32)",
         hp("tokenizer.ggml.eos_token_id", I32, -1))
    case("tokenizer-token-type-short", "E-TOKENIZER", "tokenizer.ggml.token_type has 511 entries",
         mutated(lambda g: g.set("tokenizer.ggml.token_type", ARR,
                                 (I32, g.kvs[g.kv("tokenizer.ggml.token_type")][2][1][:511]))))
    case("tokenizer-token-type-99", "E-TOKENIZER", "a token of type 99",
         mutated(lambda g: g.set("tokenizer.ggml.token_type", ARR,
                                 (I32, [99] + g.kvs[g.kv("tokenizer.ggml.token_type")][2][1][1:]))))
    case("tokenizer-scores-nan", "E-TOKENIZER", "a NaN score",
         mutated(lambda g: g.set("tokenizer.ggml.scores", ARR,
                                 (F32, g.kvs[g.kv("tokenizer.ggml.scores")][2][1][:5] + [float("nan")]
                                  + g.kvs[g.kv("tokenizer.ggml.scores")][2][1][6:]))))
    case("tokenizer-merge-unknown", "E-TOKENIZER", "a merge naming tokens not in the vocabulary",
         add_kv(("tokenizer.ggml.merges", ARR, (STR, ["zzz qqq"]))))
    case("tokenizer-merge-malformed", "E-TOKENIZER", "a merge without a space",
         add_kv(("tokenizer.ggml.merges", ARR, (STR, ["nospace"]))))
    case("chat-template-not-string", "E-CONFIG", "tokenizer.chat_template is a u32",
         add_kv(("tokenizer.chat_template", U32, 1)))

    # Weights.
    def nan_norm(g):
        t = g.tensor("blk.0.ffn_norm.weight")
        t["data"] = f32_bytes([float("nan")]) + t["data"][4:]

    case("weight-norm-nan", "E-WEIGHTS", "ffn_norm holds a NaN", mutated(nan_norm))


# ---------------------------------------------------------------- safetensors / HF


def read_safetensors(path):
    buf = open(path, "rb").read()
    n = struct.unpack("<Q", buf[:8])[0]
    header = json.loads(buf[8:8 + n])
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        s, e = info["data_offsets"]
        raw = buf[8 + n + s:8 + n + e]
        out[name] = (info["shape"], list(struct.unpack(f"<{len(raw) // 4}f", raw)))
    return out


def bf16(values):
    out = bytearray()
    for v in values:
        bits = struct.unpack("<I", struct.pack("<f", v))[0]
        bits = (bits + 0x7FFF + ((bits >> 16) & 1)) >> 16  # round to nearest even
        out += struct.pack("<H", bits)
    return bytes(out)


def safetensors(tensors, header_patch=None, pad=True):
    """tensors: list of (name, dtype, shape, data). Returns the file bytes."""
    header = {"__metadata__": {"format": "pt"}}
    offset = 0
    for name, dtype, shape, data in tensors:
        header[name] = {"dtype": dtype, "shape": shape,
                        "data_offsets": [offset, offset + len(data)]}
        offset += len(data)
    if header_patch:
        header_patch(header)
    h = json.dumps(header, separators=(",", ":")).encode()
    if pad:
        h += b" " * (-len(h) % 8)
    return u64(len(h)) + h + b"".join(t[3] for t in tensors)


def byte_level_alphabet():
    """GPT-2's bytes_to_unicode, in byte order."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(0xA1, 0xAD)) + list(range(0xAE, 0x100))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    table = dict(zip(bs, cs))
    return [chr(table[b]) for b in range(256)]


def tokenizer_json():
    alphabet = byte_level_alphabet()
    vocab = {c: i for i, c in enumerate(alphabet)}
    merges = [("h", "i"), ("Ġ", "t"), ("t", "h"), ("Ġt", "h"), ("h", "e"), ("Ġth", "e"), ("i", "n")]
    for a, b in merges:
        vocab[a + b] = len(vocab)
    eos = "<|endoftext|>"
    vocab[eos] = len(vocab)
    assert len(vocab) == 264
    tj = {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": [{"id": vocab[eos], "content": eos, "single_word": False, "lstrip": False,
                          "rstrip": False, "normalized": False, "special": True}],
        "normalizer": None,
        "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True,
                          "use_regex": True},
        "post_processor": None,
        "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True,
                    "use_regex": True},
        "model": {"type": "BPE", "dropout": None, "unk_token": None,
                  "continuing_subword_prefix": None, "end_of_word_suffix": None,
                  "fuse_unk": False, "byte_fallback": False, "ignore_merges": False,
                  "vocab": vocab, "merges": [f"{a} {b}" for a, b in merges]},
    }
    return tj


def hf_cases():
    src = read_safetensors(SRC_HF)
    hidden, heads, kv_heads, head_dim, ffn, vocab = 16, 2, 1, 8, 32, 264

    def mat(name, rows, cols):
        shape, v = src[name]
        return [v[r * shape[1] + c] for r in range(rows) for c in range(cols)]

    def vec(name, n):
        return src[name][1][:n]

    L = "model.layers.0."
    weights = [
        ("model.embed_tokens.weight", [vocab, hidden], mat("model.embed_tokens.weight", vocab, hidden)),
        (L + "input_layernorm.weight", [hidden], vec(L + "input_layernorm.weight", hidden)),
        (L + "self_attn.q_proj.weight", [heads * head_dim, hidden],
         mat(L + "self_attn.q_proj.weight", heads * head_dim, hidden)),
        (L + "self_attn.k_proj.weight", [kv_heads * head_dim, hidden],
         mat(L + "self_attn.k_proj.weight", kv_heads * head_dim, hidden)),
        (L + "self_attn.v_proj.weight", [kv_heads * head_dim, hidden],
         mat(L + "self_attn.v_proj.weight", kv_heads * head_dim, hidden)),
        (L + "self_attn.o_proj.weight", [hidden, heads * head_dim],
         mat(L + "self_attn.o_proj.weight", hidden, heads * head_dim)),
        (L + "post_attention_layernorm.weight", [hidden], vec(L + "post_attention_layernorm.weight", hidden)),
        (L + "mlp.gate_proj.weight", [ffn, hidden], mat(L + "mlp.gate_proj.weight", ffn, hidden)),
        (L + "mlp.up_proj.weight", [ffn, hidden], mat(L + "mlp.up_proj.weight", ffn, hidden)),
        (L + "mlp.down_proj.weight", [hidden, ffn], mat(L + "mlp.down_proj.weight", hidden, ffn)),
        ("model.norm.weight", [hidden], vec("model.norm.weight", hidden)),
    ]
    tensors = [(n, "BF16", s, bf16(v)) for n, s, v in weights]
    config = {
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        "hidden_size": hidden,
        "intermediate_size": ffn,
        "num_attention_heads": heads,
        "num_key_value_heads": kv_heads,
        "head_dim": head_dim,
        "num_hidden_layers": 1,
        "vocab_size": vocab,
        "max_position_embeddings": 256,
        "rms_norm_eps": 1e-06,
        "rope_theta": 10000.0,
        "rope_scaling": None,
        "hidden_act": "silu",
        "tie_word_embeddings": True,
        "torch_dtype": "bfloat16",
    }
    tok_config = {"eos_token": "<|endoftext|>", "bos_token": None, "add_bos_token": False}

    def js(v):
        return (json.dumps(v, indent=1, ensure_ascii=False) + "\n").encode()

    def base_files():
        return {
            "config.json": js(config),
            "model.safetensors": safetensors(tensors),
            "tokenizer.json": js(tokenizer_json()),
            "tokenizer_config.json": js(tok_config),
        }

    def case(name, code, what, change=None):
        files = base_files()
        if change:
            change(files)
        for fname in sorted(files):
            if files[fname] is None:
                continue
            path = os.path.join(OUT, "hf", name, fname)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "wb") as f:
                f.write(files[fname])
        CASES.append((f"hf/{name}", code, what))

    case("base", "ok", "the valid base every checkpoint case mutates (must run)")

    # model.safetensors lies.
    def st(data):
        return lambda f: f.__setitem__("model.safetensors", data)

    good = safetensors(tensors)
    hlen = struct.unpack("<Q", good[:8])[0]

    def header(fn):
        return st(safetensors(tensors, fn))

    def raw_header(text):
        h = text.encode()
        return st(u64(len(h)) + h + good[8 + hlen:])

    case("st-empty", "E-SAFETENSORS", "model.safetensors is empty", st(b""))
    case("st-short", "E-SAFETENSORS", "model.safetensors has 5 bytes", st(good[:5]))
    case("st-header-only", "E-SAFETENSORS", "model.safetensors ends right after its header",
         st(good[:8 + hlen]))
    case("st-truncated-data", "E-SAFETENSORS", "model.safetensors lacks its last byte",
         st(good[:-1]))
    case("st-header-length-past-end", "E-SAFETENSORS", "the header length runs past the end of the file",
         st(u64(len(good)) + good[8:]))
    case("st-header-length-2p63", "E-SAFETENSORS", "the header length is 2^63",
         st(u64(BIG) + good[8:]))
    case("st-header-not-json", "E-SAFETENSORS", "the header is not JSON",
         raw_header("{this is not json}" + " " * 6))
    case("st-header-not-utf8", "E-SAFETENSORS", "the header is not UTF-8",
         st(u64(8) + b"{\xff\xfe\xfd   " + good[8 + hlen:]))
    case("st-header-array", "E-SAFETENSORS", "the header is a JSON array, not an object",
         raw_header("[1, 2, 3]" + " " * 7))
    case("st-header-deeply-nested", "E-SAFETENSORS", "the header nests 10000 JSON arrays",
         raw_header('{"a":' + "[" * 10000 + "]" * 10000 + "}"))

    def offsets(name, s, e):
        def fn(h):
            h[name]["data_offsets"] = [s, e]
        return fn

    names = [t[0] for t in tensors]
    ends = {}
    acc = 0
    for n, _, _, d in tensors:
        ends[n] = (acc, acc + len(d))
        acc += len(d)
    n1 = names[1]
    case("st-offsets-overlap", "E-SAFETENSORS", f"{n1}'s data overlaps the embedding's",
         header(offsets(n1, ends[n1][0] - 16, ends[n1][1] - 16)))
    last = names[-1]
    case("st-offsets-past-end", "E-SAFETENSORS", "the last tensor's data ends past the end of the file",
         header(offsets(last, ends[last][0], ends[last][1] + 64)))
    case("st-offsets-reversed", "E-SAFETENSORS", "a tensor whose begin offset exceeds its end",
         header(offsets(last, ends[last][1], ends[last][0])))
    case("st-offsets-huge", "E-SAFETENSORS", "a tensor whose end offset is 2^64 - 1",
         header(offsets(last, ends[last][0], 2**64 - 1)))

    def shape(name, s):
        def fn(h):
            h[name]["shape"] = s
        return fn

    emb = names[0]
    case("st-shape-mismatch", "E-SAFETENSORS", "the embedding's shape [264, 17] does not match its bytes",
         header(shape(emb, [vocab, hidden + 1])))
    case("st-shape-overflow", "E-SAFETENSORS", "a shape [2^40, 2^40, 2^40] whose product overflows",
         header(shape(emb, [1 << 40, 1 << 40, 1 << 40])))

    def dtype(name, d):
        def fn(h):
            h[name]["dtype"] = d
        return fn

    case("st-dtype-unknown", "E-SAFETENSORS", "a tensor of dtype \"F9\"", header(dtype(names[1], "F9")))
    case("st-dtype-i16", "E-WEIGHTS", "a norm stored as I16 (a dtype the engine does not read)",
         header(dtype(names[1], "I16")))

    def drop(name):
        return st(safetensors([t for t in tensors if t[0] != name]))

    case("st-tensor-missing", "E-WEIGHTS", "k_proj is absent", drop(L + "self_attn.k_proj.weight"))
    case("st-tensor-extra", "E-UNSUPPORTED", "an expert tensor the Llama spec does not read",
         st(safetensors(tensors + [(L + "mlp.experts.0.up_proj.weight", "BF16", [2], b"\0" * 4)])))
    nan_norm = [(n, d, s, (b"\xc0\x7f" + data[2:]) if n == L + "input_layernorm.weight" else data)
                for n, d, s, data in tensors]
    case("st-weight-nan", "E-WEIGHTS", "input_layernorm holds a NaN", st(safetensors(nan_norm)))

    # config.json lies.
    def cfg(**patch):
        c = dict(config)
        for k, v in patch.items():
            if v is _DROP:
                c.pop(k, None)
            else:
                c[k] = v
        return lambda f: f.__setitem__("config.json", js(c))

    def cfg_raw(text):
        return lambda f: f.__setitem__("config.json", text.encode())

    case("config-missing", "E-IO", "no config.json",
         lambda f: f.__setitem__("config.json", None))
    case("config-not-json", "E-CONFIG", "config.json is not JSON", cfg_raw("{\"hidden_size\": 16,"))
    case("config-array", "E-CONFIG", "config.json is a JSON array", cfg_raw("[]"))
    case("config-deeply-nested", "E-CONFIG", "config.json nests 10000 JSON arrays",
         cfg_raw('{"x": ' + "[" * 10000 + "]" * 10000 + "}"))
    case("config-hidden-1e12", "E-CONFIG", "hidden_size = 10^12", cfg(hidden_size=10**12))
    case("config-layers-1e9", "E-CONFIG", "num_hidden_layers = 10^9", cfg(num_hidden_layers=10**9))
    case("config-vocab-2p40", "E-CONFIG", "vocab_size = 2^40", cfg(vocab_size=1 << 40))
    case("config-vocab-2p64", "E-CONFIG", "vocab_size = 2^64 (beyond u64)", cfg(vocab_size=1 << 64))
    case("config-vocab-mismatch", "E-WEIGHTS", "vocab_size = 300 but the embedding has 264 rows",
         cfg(vocab_size=300))
    case("config-head-dim-1e9", "E-CONFIG", "head_dim = 10^9", cfg(head_dim=10**9))
    case("config-heads-0", "E-CONFIG", "num_attention_heads = 0", cfg(num_attention_heads=0))
    case("config-kv-heads-non-dividing", "E-CONFIG", "num_key_value_heads = 3 for 2 heads",
         cfg(num_key_value_heads=3))
    case("config-heads-float", "E-CONFIG", "num_attention_heads = 2.5", cfg(num_attention_heads=2.5))
    case("config-eps-negative", "E-CONFIG", "rms_norm_eps = -1", cfg(rms_norm_eps=-1.0))
    case("config-eps-string", "E-CONFIG", "rms_norm_eps = \"1e-6\"", cfg(rms_norm_eps="1e-6"))
    case("config-eps-overflow", "E-CONFIG", "rms_norm_eps = 1e999 (overflows a double)",
         cfg_raw(js(config).decode().replace("1e-06", "1e999")))
    case("config-rope-theta-0", "E-CONFIG", "rope_theta = 0", cfg(rope_theta=0.0))
    case("config-act-unknown", "E-UNSUPPORTED", "hidden_act = relu6", cfg(hidden_act="relu6"))
    case("config-moe-experts", "E-UNSUPPORTED", "num_local_experts = 8 (mixture of experts)",
         cfg(num_local_experts=8, num_experts_per_tok=2))
    case("config-moe-mixtral", "E-UNSUPPORTED", "architectures = [MixtralForCausalLM]",
         cfg(architectures=["MixtralForCausalLM"], model_type="mixtral"))
    case("config-arch-unknown", "E-UNSUPPORTED", "architectures = [BertForMaskedLM]",
         cfg(architectures=["BertForMaskedLM"], model_type="bert"))
    case("config-arch-missing", "E-CONFIG", "neither architectures nor model_type",
         cfg(architectures=_DROP, model_type=_DROP))

    # Sharded checkpoints.
    half = len(tensors) // 2
    shard1 = safetensors(tensors[:half])
    shard2 = safetensors(tensors[half:])
    s1, s2 = "model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"
    index = {"metadata": {"total_size": sum(len(t[3]) for t in tensors)},
             "weight_map": {t[0]: (s1 if i < half else s2) for i, t in enumerate(tensors)}}

    def sharded(idx, with2=True, idx_raw=None):
        def fn(f):
            f["model.safetensors"] = None
            f[s1] = shard1
            if with2:
                f[s2] = shard2
            f["model.safetensors.index.json"] = idx_raw if idx_raw is not None else js(idx)
        return fn

    case("sharded-ok", "ok", "the base split in two shards with an index (must run)", sharded(index))
    case("sharded-missing-shard", "E-IO", "the index names a shard file that is absent",
         sharded(index, with2=False))
    bad = copy.deepcopy(index)
    bad["weight_map"][tensors[-1][0]] = "../" + s2
    case("sharded-path-traversal", "E-SAFETENSORS", "the index names a shard outside the directory",
         sharded(bad))
    bad = copy.deepcopy(index)
    bad["weight_map"][tensors[-1][0]] = s1
    case("sharded-tensor-not-in-shard", "E-SAFETENSORS", "the index maps a tensor to a shard without it",
         sharded(bad))
    case("sharded-index-not-json", "E-SAFETENSORS", "model.safetensors.index.json is not JSON",
         sharded(index, idx_raw=b"{\"weight_map\": "))
    case("sharded-index-no-map", "E-SAFETENSORS", "the index has no weight_map", sharded({"metadata": {}}))
    case("no-weights", "E-IO", "config.json and a tokenizer but no weights",
         lambda f: f.__setitem__("model.safetensors", None))
    case("pytorch-bin", "E-UNSUPPORTED", "pickled pytorch_model.bin weights instead of safetensors",
         lambda f: f.update({"model.safetensors": None, "pytorch_model.bin": b"PK\x03\x04"}))

    # Tokenizer files.
    def tok(data):
        return lambda f: f.__setitem__("tokenizer.json", data)

    case("tokenizer-missing", "E-TOKENIZER", "no tokenizer.json", tok(None))
    case("tokenizer-not-json", "E-TOKENIZER", "tokenizer.json is not JSON", tok(b"{\"model\": {"))
    case("tokenizer-empty-object", "E-TOKENIZER", "tokenizer.json is {}", tok(b"{}"))
    case("tokenizer-deeply-nested", "E-TOKENIZER", "tokenizer.json nests 10000 JSON arrays",
         tok(b'{"model": ' + b"[" * 10000 + b"]" * 10000 + b"}"))
    huge = tokenizer_json()
    huge["added_tokens"][0]["id"] = 4294967294
    huge["model"]["vocab"]["<|endoftext|>"] = 4294967294
    case("tokenizer-id-2p32", "E-TOKENIZER", "a token id of 2^32 - 2 (would size a 4-billion-entry table)",
         tok(js(huge)))
    case("tokenizer-config-not-json", "E-TOKENIZER", "tokenizer_config.json is not JSON",
         lambda f: f.__setitem__("tokenizer_config.json", b"{"))
    # Found by fuzz/ (target tokenizer_json): a control character inside a
    # string of the "decoder" object made tokenizers 0.22 panic (an `expect`
    # in its decoder deserializer) instead of returning an error.
    ctl = tokenizer_json()
    ctl["decoder"]["type"] = "DECODER-TYPE-MARK"
    case("tokenizer-decoder-control-char", "E-TOKENIZER",
         "a raw control character (U+0001) inside a string of the decoder object (fuzz)",
         tok(js(ctl).replace(b"DECODER-TYPE-MARK", b"Byte\x01Level")))
    case("tokenizer-decoder-bad-utf8", "E-TOKENIZER",
         "bytes that are not UTF-8 inside a string of the decoder object (fuzz)",
         tok(js(ctl).replace(b"DECODER-TYPE-MARK", b"Byte\xfe\xffLevel")))
    case("tokenizer-decoder-lone-surrogate", "E-TOKENIZER",
         "a lone surrogate escape (\\udc00) inside a string of the decoder object",
         tok(js(ctl).replace(b"DECODER-TYPE-MARK", b"Byte\\udc00Level")))


class _Drop:
    pass


_DROP = _Drop()


README_HEAD = """# Hostile-file corpus

Small model files, each a valid model with exactly one lie in it, that every
loader must reject with a clean error: the right `error[E-...]` code, exit
status 2, no panic, no hang, no allocation sized by a lying number.
`engine/tests/hostile.rs` runs each through
`atenia generate --model CASE --prompt hi --max-tokens 1` (and
`atenia diagnose --json CASE`, which must agree) under a 10 s timeout and a
256 MiB address-space limit (`ulimit -v` in the shell that starts it).

Bugs it found when it was written: `vocab-511-tokens` / `vocab-513-tokens`
loaded and ran (nothing compared tokenizer.ggml.tokens with token_embd's rows;
now E-WEIGHTS in `Model::from_gguf_with_spec`), and `hf/tokenizer-id-2p32`
aborted the process trying to allocate 96 GiB for the tokenizer's per-id table
(now E-TOKENIZER: ids beyond the largest vocabulary the engine accepts are refused).
`fuzz/` (scripts/fuzz.sh) found `hf/tokenizer-decoder-control-char` and
`hf/tokenizer-decoder-bad-utf8`: tokenizers 0.22 panicked on malformed JSON
inside the decoder object (now E-TOKENIZER: the whole file is checked, every
string decoded, before tokenizers reads it).

Generated by `python3 scripts/gen_hostile.py` (deterministic; standard
library only) from `golden/gguf/llama/llama-F32.gguf` and
`golden/hf/llama-tied-f32/`; do not edit the files by hand. The same list is
in `manifest.json`, which the test reads. Cases marked `ok` are the valid
bases and must run (exit 0).

- `gguf/base.gguf`: a 1-layer Llama (hidden 32, 4 heads / 2 kv heads, head
  size 8, ffn 64, Q4_0 matrices, F32 norms, tied embeddings) with the 512-token
  SentencePiece vocabulary and metadata of llama-F32.gguf and weights sliced
  from it.
- `hf/base/`: a 1-layer Llama checkpoint directory (hidden 16, 2 heads / 1 kv
  head, ffn 32, BF16, tied embeddings) with a 264-token byte-level BPE
  `tokenizer.json` and a `tokenizer_config.json`.

| case | expected | the lie |
| --- | --- | --- |
"""


def main():
    for sub in ("gguf", "hf"):
        shutil.rmtree(os.path.join(OUT, sub), ignore_errors=True)
    os.makedirs(OUT, exist_ok=True)
    gguf_cases()
    hf_cases()
    names = [c[0] for c in CASES]
    assert len(names) == len(set(names)), "duplicate case names"
    manifest = [{"path": p, "expect": code, "what": what} for p, code, what in CASES]
    with open(os.path.join(OUT, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1, ensure_ascii=False)
        f.write("\n")
    with open(os.path.join(OUT, "README.md"), "w") as f:
        f.write(README_HEAD)
        for p, code, what in CASES:
            f.write(f"| `{p}` | {'exit 0' if code == 'ok' else f'`{code}`'} | {what.replace('|', '/')} |\n")
    total = 0
    for root, _, files in os.walk(OUT):
        for fn in files:
            total += os.path.getsize(os.path.join(root, fn))
    print(f"{len(CASES)} cases, {total} bytes in {OUT}")


if __name__ == "__main__":
    main()
