#!/usr/bin/env python3
"""Real-shape Llama GGUF files with seeded random weights, for benchmarks.

Called by scripts/make-real-shapes.sh, which installs what this needs (gguf
and numpy from PyPI, in a venv under ~/.cache/atenia) and runs llama.cpp's
llama-quantize and the engine's converter on the F16 file this writes.

    real_shapes.py shapes                          the known shapes, one a line
    real_shapes.py size SHAPE                      exact size in bytes of SHAPE's F16 file
    real_shapes.py params SHAPE                    its parameter count
    real_shapes.py write SHAPE OUT.gguf --tokenizer SRC.gguf [--seed N] [--reserve BYTES]

write refuses, before writing anything, when the disk holding OUT.gguf has
less free space than the file's size plus --reserve (default 2 GiB).

The file is a Llama-architecture GGUF at the real model's shape (hidden size,
layers, heads, KV heads, FFN width, rope theta, tied or separate output
embedding) with every tokenizer.* key copied byte for byte from SRC.gguf
(SmolLM2's: vocab 49152). Only the shapes are real: the weights are random
and the model's text is noise. Rope scaling (Llama 3.1's rope_freqs) is left
out: it changes no shape and no cost.

Weights, documented so that anyone can make the same bits:
  * every 2-D weight: numpy's Generator(PCG64(SeedSequence(seed,
    spawn_key=(crc32(tensor name),)))).standard_normal(float32), drawn row
    block by row block, times 0.02 (GPT-2's init scale), rounded to F16;
  * every norm weight: 1.0 in F32 (as llama.cpp's converter stores norms).
With unit norms and std 0.02 the residual stream stays near its embedding
scale and the logits have a spread of about 0.02 * sqrt(hidden), so
activations stay finite and ordinary at every layer. The same seed and the
same numpy give the same file; the seed and numpy version are written in
general.description.

The tensors are written one at a time, in row blocks of at most
CHUNK_ELEMS values, so memory stays small (tens of MB) even for the 13B
shape (a 26 GB file).
"""

import argparse
import os
import shutil
import sys
import tempfile
import zlib

import numpy as np
import gguf

STD = 0.02
CHUNK_ELEMS = 8 << 20  # values per generated block (32 MB of f32)
VOCAB = 49152  # SmolLM2's tokenizer

# name: (hidden, layers, heads, kv heads, ffn, rope theta, tied output, rms eps, context)
SHAPES = {
    # meta-llama/Llama-3.2-1B: tied input/output embedding.
    "llama-3.2-1b": dict(hidden=2048, layers=16, heads=32, kv_heads=8, ffn=8192,
                         rope_theta=500000.0, tied=True, eps=1e-5, context=8192),
    # meta-llama/Llama-3.1-8B: separate output matrix.
    "llama-3.1-8b": dict(hidden=4096, layers=32, heads=32, kv_heads=8, ffn=14336,
                         rope_theta=500000.0, tied=False, eps=1e-5, context=8192),
    # meta-llama/Llama-2-13b: full multi-head attention (40 KV heads).
    "llama-2-13b": dict(hidden=5120, layers=40, heads=40, kv_heads=40, ffn=13824,
                        rope_theta=10000.0, tied=False, eps=1e-5, context=4096),
}


def tensors(shape):
    """(name, numpy shape (rows, cols) or (n,), kind) in llama.cpp's order."""
    s = SHAPES[shape]
    h, f = s["hidden"], s["ffn"]
    kv = s["kv_heads"] * (h // s["heads"])
    out = [("token_embd.weight", (VOCAB, h), "w")]
    for i in range(s["layers"]):
        b = f"blk.{i}."
        out += [
            (b + "attn_norm.weight", (h,), "norm"),
            (b + "attn_q.weight", (h, h), "w"),
            (b + "attn_k.weight", (kv, h), "w"),
            (b + "attn_v.weight", (kv, h), "w"),
            (b + "attn_output.weight", (h, h), "w"),
            (b + "ffn_norm.weight", (h,), "norm"),
            (b + "ffn_gate.weight", (f, h), "w"),
            (b + "ffn_up.weight", (f, h), "w"),
            (b + "ffn_down.weight", (h, f), "w"),
        ]
    out.append(("output_norm.weight", (h,), "norm"))
    if not s["tied"]:
        out.append(("output.weight", (VOCAB, h), "w"))
    return out


def nbytes(dims, kind):
    return int(np.prod(dims)) * (4 if kind == "norm" else 2)


def copy_tokenizer(writer, src):
    """Every tokenizer.* key of src, with its exact type and bytes."""
    reader = gguf.GGUFReader(src)
    copied = 0
    for key, field in reader.fields.items():
        if not key.startswith("tokenizer."):
            continue
        vtype = field.types[0]
        if vtype == gguf.GGUFValueType.ARRAY:
            sub = field.types[-1]
            if sub == gguf.GGUFValueType.STRING:
                val = [bytes(field.parts[i]) for i in field.data]
            else:
                val = [field.parts[i].tolist()[0] for i in field.data]
            writer.add_key_value(key, val, vtype, sub_type=sub)
        elif vtype == gguf.GGUFValueType.STRING:
            writer.add_key_value(key, bytes(field.parts[field.data[0]]), vtype)
        else:
            writer.add_key_value(key, field.parts[field.data[0]].tolist()[0], vtype)
        copied += 1
    if copied == 0:
        sys.exit(f"real_shapes: {src} has no tokenizer.* keys")
    vocab = len(reader.fields["tokenizer.ggml.tokens"].data)
    if vocab != VOCAB:
        sys.exit(f"real_shapes: {src} has {vocab} tokens, expected {VOCAB}")


def header(shape, path, tokenizer, seed):
    """A writer with the header, metadata and tensor table written to path."""
    s = SHAPES[shape]
    w = gguf.GGUFWriter(path, "llama")
    w.add_name(f"{shape} shape, random weights")
    w.add_description(
        f"atenia scripts/real_shapes.py: {shape} shape, seed {seed}, "
        f"normal std {STD} (numpy {np.__version__} PCG64), norms 1.0; not a trained model")
    w.add_context_length(s["context"])
    w.add_embedding_length(s["hidden"])
    w.add_block_count(s["layers"])
    w.add_feed_forward_length(s["ffn"])
    w.add_head_count(s["heads"])
    w.add_head_count_kv(s["kv_heads"])
    w.add_rope_freq_base(s["rope_theta"])
    w.add_rope_dimension_count(s["hidden"] // s["heads"])
    w.add_layer_norm_rms_eps(s["eps"])
    w.add_vocab_size(VOCAB)
    w.add_file_type(gguf.LlamaFileType.MOSTLY_F16)
    copy_tokenizer(w, tokenizer)
    for name, dims, kind in tensors(shape):
        dtype = np.float32 if kind == "norm" else np.float16
        w.add_tensor_info(name, dims, np.dtype(dtype), nbytes(dims, kind))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_ti_data_to_file()
    return w


def pad(n, align):
    return (n + align - 1) // align * align


def expected_size(shape, tokenizer, seed):
    """Exact byte size of the F16 file: its metadata written to a scratch file, plus the data."""
    fd, tmp = tempfile.mkstemp(suffix=".gguf")
    os.close(fd)
    try:
        w = header(shape, tmp, tokenizer, seed)
        meta = w.fout[0].tell()
        align = w.data_alignment
        w.close()
    finally:
        os.unlink(tmp)
    return pad(meta, align) + sum(pad(nbytes(d, k), align) for _, d, k in tensors(shape))


def write_tensor(fout, name, dims, kind, seed, align):
    fout.write(b"\0" * (pad(fout.tell(), align) - fout.tell()))
    if kind == "norm":
        np.ones(dims, dtype=np.float32).tofile(fout)
    else:
        rng = np.random.Generator(np.random.PCG64(
            np.random.SeedSequence(seed, spawn_key=(zlib.crc32(name.encode()),))))
        rows, cols = dims
        step = max(1, CHUNK_ELEMS // cols)
        for r in range(0, rows, step):
            block = rng.standard_normal((min(step, rows - r), cols), dtype=np.float32)
            block *= STD
            block.astype(np.float16).tofile(fout)
    n = nbytes(dims, kind)
    fout.write(b"\0" * (pad(n, align) - n))


def check_disk(shape, out, reserve):
    """Exits, naming the sizes, when OUT's disk cannot hold SHAPE's file plus reserve."""
    need = sum(nbytes(d, k) for _, d, k in tensors(shape))
    free = shutil.disk_usage(os.path.dirname(os.path.abspath(out))).free
    if need + reserve > free:
        sys.exit(f"real_shapes: not enough disk for {out}: {need / 1e9:.2f} GB of weights "
                 f"and {reserve / 1e9:.2f} GB kept free, but only {free / 1e9:.2f} GB free")


def write(shape, out, tokenizer, seed, reserve):
    check_disk(shape, out, reserve)
    w = header(shape, out, tokenizer, seed)
    fout, align = w.fout[0], w.data_alignment
    listed = tensors(shape)
    total = sum(nbytes(d, k) for _, d, k in listed)
    done = 0
    # A terminal gets one line redrawn per tensor; a log, one line per layer.
    tty = sys.stdout.isatty()
    for i, (name, dims, kind) in enumerate(listed):
        write_tensor(fout, name, dims, kind, seed, align)
        done += nbytes(dims, kind)
        last = i == len(listed) - 1
        if (tty and kind == "w") or last or name.endswith("ffn_down.weight"):
            line = f"  [{i + 1:4d}/{len(listed)}] {done / 2**30:6.2f} / {total / 2**30:.2f} GiB  {name:<28}"
            print("\r" + line if tty else line, end="" if tty and not last else "\n", flush=True)
    fout.flush()
    os.fsync(fout.fileno())
    fout.close()


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    sub.add_parser("shapes")
    for cmd in ("size", "params"):
        c = sub.add_parser(cmd)
        c.add_argument("shape", choices=SHAPES)
        c.add_argument("--tokenizer")
        c.add_argument("--seed", type=int, default=0)
    c = sub.add_parser("write")
    c.add_argument("shape", choices=SHAPES)
    c.add_argument("out")
    c.add_argument("--tokenizer", required=True)
    c.add_argument("--seed", type=int, default=0)
    c.add_argument("--reserve", type=int, default=2 << 30,
                   help="bytes to leave free on the disk (default 2 GiB)")
    a = p.parse_args()
    if a.cmd == "shapes":
        print("\n".join(SHAPES))
    elif a.cmd == "params":
        print(sum(int(np.prod(d)) for _, d, _ in tensors(a.shape)))
    elif a.cmd == "size":
        if not a.tokenizer:
            p.error("size needs --tokenizer")
        print(expected_size(a.shape, a.tokenizer, a.seed))
    else:
        write(a.shape, a.out, a.tokenizer, a.seed, a.reserve)


if __name__ == "__main__":
    main()
