#!/usr/bin/env python3
"""The GGUF side of pxOS's import tests: makes GGUF files with weights it
chooses (through the `gguf` package from PyPI), and is the straightforward
reference pxOS is checked against: a float64 numpy forward pass over the
weights as `gguf` dequantizes them, and plain tokenizers.

  gguf_ref.py make OUT --type T --vocab spm|bpe [--tied] [--seed N] [--chat]
  gguf_ref.py logits FILE --tokens 1,2,3      -> JSON: every position's logits
  gguf_ref.py tokenize FILE --text TEXT       -> JSON: token ids
  gguf_ref.py hashes FILE                     -> JSON: each tensor's SHA-256
  gguf_ref.py l2c FILE OUT --version 0|2      -> the weights as a llama2.c checkpoint
"""

import argparse
import json
import sys

import numpy as np
import gguf
from gguf import GGMLQuantizationType as Q

TYPES = {
    "f32": Q.F32, "f16": Q.F16, "bf16": Q.BF16, "q8_0": Q.Q8_0,
    "q4_0": Q.Q4_0, "q4_1": Q.Q4_1, "q4_k": Q.Q4_K, "q6_k": Q.Q6_K,
}

# A small llama: widths are multiples of 256 so every type fits its blocks.
DIM, HIDDEN, LAYERS, HEADS, KV_HEADS, CONTEXT = 256, 512, 2, 4, 2, 64
THETA, EPS = 10000.0, 1e-5

CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] | trim + '<|im_end|>\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)

WORDS = ["the", "he", "th", "in", "is", "it", "an", "er", "on", "hello", "world",
         "pixel", "pix", "el", "os", "thin", "theme", "at", "en", "12", "123"]


def spm_vocab(rng):
    tokens = ["<unk>", "<s>", "</s>"] + [f"<0x{b:02X}>" for b in range(256)]
    types = [2, 3, 3] + [6] * 256
    scores = [0.0, 0.0, 0.0] + [0.0] * 256
    pieces = []
    for w in WORDS:
        for i in range(1, len(w) + 1):
            for p in (w[:i], "\u2581" + w[:i]):
                if len(p) > 1 and p not in pieces:
                    pieces.append(p)
    pieces += ["\u2581", "a", "e", "h", "t", "o", "l", "w", "r", "d", "p", "x", "s", "i", "n", "m"]
    for p in pieces:
        if p not in tokens:
            tokens.append(p)
            types.append(1)
            scores.append(float(-len(tokens) * 0.01 + rng.uniform(-0.005, 0.005)))
    return tokens, types, scores, []


def bytes_to_unicode():
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(0xA1, 0xAC + 1)) + list(range(0xAE, 0xFF + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {b: chr(c) for b, c in zip(bs, cs)}


def bpe_vocab(rng):
    table = bytes_to_unicode()
    tokens = [table[b] for b in range(256)]
    merges = []
    for w in WORDS:
        for word in (w, " " + w):
            sym = [table[b] for b in word.encode()]
            # Merge left to right: each prefix joins its next character.
            cur = sym[0]
            for s in sym[1:]:
                merged = cur + s
                if merged not in tokens:
                    merges.append(f"{cur} {s}")
                    tokens.append(merged)
                cur = merged
    types = [1] * len(tokens)
    for special in ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]:
        tokens.append(special)
        types.append(3)
    return tokens, types, None, merges


def block_random(qtype, rows, cols, rng):
    """Random valid blocks for the k-quants (gguf has no quantizer for them)."""
    nblocks = rows * cols // 256
    if qtype == Q.Q4_K:
        d = rng.uniform(0.00004, 0.00008, nblocks).astype(np.float16)
        dmin = rng.uniform(0.00004, 0.00008, nblocks).astype(np.float16)
        blocks = np.zeros((nblocks, 144), dtype=np.uint8)
        blocks[:, 0:2] = d.view(np.uint8).reshape(nblocks, 2)
        blocks[:, 2:4] = dmin.view(np.uint8).reshape(nblocks, 2)
        blocks[:, 4:144] = rng.integers(0, 256, (nblocks, 140), dtype=np.uint8)
    else:
        blocks = np.zeros((nblocks, 210), dtype=np.uint8)
        blocks[:, 0:192] = rng.integers(0, 256, (nblocks, 192), dtype=np.uint8)
        blocks[:, 192:208] = rng.integers(-64, 64, (nblocks, 16), dtype=np.int8).view(np.uint8)
        d = rng.uniform(0.00003, 0.00006, nblocks).astype(np.float16)
        blocks[:, 208:210] = d.view(np.uint8).reshape(nblocks, 2)
    return blocks.reshape(rows, cols // 256 * blocks.shape[1])


def make(args):
    rng = np.random.default_rng(args.seed)
    qtype = TYPES[args.type]
    if args.vocab == "spm":
        tokens, types, scores, merges = spm_vocab(rng)
    else:
        tokens, types, scores, merges = bpe_vocab(rng)
    vocab = len(tokens)
    w = gguf.GGUFWriter(args.out, "llama")
    w.add_name(f"test-{args.type}-{args.vocab}")
    w.add_context_length(CONTEXT)
    w.add_embedding_length(DIM)
    w.add_block_count(LAYERS)
    w.add_feed_forward_length(HIDDEN)
    w.add_head_count(HEADS)
    w.add_head_count_kv(KV_HEADS)
    w.add_rope_dimension_count(DIM // HEADS)
    w.add_rope_freq_base(THETA)
    w.add_layer_norm_rms_eps(EPS)
    w.add_file_type(0)
    w.add_tokenizer_model("llama" if args.vocab == "spm" else "gpt2")
    if args.vocab == "bpe":
        w.add_tokenizer_pre("default")
    w.add_token_list(tokens)
    w.add_token_types(types)
    if scores is not None:
        w.add_token_scores(scores)
    if merges:
        w.add_token_merges(merges)
    if args.vocab == "spm":
        w.add_bos_token_id(1)
        w.add_eos_token_id(2)
        w.add_unk_token_id(0)
    else:
        w.add_bos_token_id(tokens.index("<|endoftext|>"))
        w.add_eos_token_id(tokens.index("<|endoftext|>"))
        w.add_add_bos_token(False)
    if args.chat:
        w.add_chat_template(CHAT_TEMPLATE)

    def matrix(name, rows, cols, scale):
        if qtype in (Q.Q4_K, Q.Q6_K):
            w.add_tensor(name, block_random(qtype, rows, cols, rng), raw_dtype=qtype)
            return
        x = (rng.standard_normal((rows, cols)) * scale).astype(np.float32)
        if qtype == Q.F32:
            w.add_tensor(name, x)
        elif qtype == Q.F16:
            w.add_tensor(name, x.astype(np.float16))
        else:
            w.add_tensor(name, gguf.quants.quantize(x, qtype), raw_dtype=qtype)

    def norm(name):
        w.add_tensor(name, (1.0 + 0.1 * rng.standard_normal(DIM)).astype(np.float32))

    kv = DIM // HEADS * KV_HEADS
    matrix("token_embd.weight", vocab, DIM, 0.5)
    for l in range(LAYERS):
        norm(f"blk.{l}.attn_norm.weight")
        matrix(f"blk.{l}.attn_q.weight", DIM, DIM, 0.06)
        matrix(f"blk.{l}.attn_k.weight", kv, DIM, 0.06)
        matrix(f"blk.{l}.attn_v.weight", kv, DIM, 0.06)
        matrix(f"blk.{l}.attn_output.weight", DIM, DIM, 0.06)
        norm(f"blk.{l}.ffn_norm.weight")
        matrix(f"blk.{l}.ffn_gate.weight", HIDDEN, DIM, 0.06)
        matrix(f"blk.{l}.ffn_up.weight", HIDDEN, DIM, 0.06)
        matrix(f"blk.{l}.ffn_down.weight", DIM, HIDDEN, 0.04)
    norm("output_norm.weight")
    if not args.tied:
        matrix("output.weight", vocab, DIM, 0.06)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def load(path):
    r = gguf.GGUFReader(path)
    tensors = {}
    for t in r.tensors:
        shape = [int(d) for d in reversed(t.shape)]  # rows first
        values = gguf.quants.dequantize(t.data, t.tensor_type)
        tensors[t.name] = np.asarray(values, dtype=np.float64).reshape(shape)
    meta = {}
    for k, f in r.fields.items():
        meta[k] = f
    return r, tensors


def field(r, key):
    f = r.fields.get(key)
    if f is None:
        return None
    if f.types and f.types[0] == gguf.GGUFValueType.ARRAY:
        if f.types[-1] == gguf.GGUFValueType.STRING:
            return [bytes(f.parts[i]).decode("utf-8") for i in f.data]
        return [f.parts[i].tolist()[0] for i in f.data]
    if f.types[0] == gguf.GGUFValueType.STRING:
        return bytes(f.parts[f.data[0]]).decode("utf-8")
    return f.parts[f.data[0]].tolist()[0]


def rmsnorm(x, w):
    return x / np.sqrt(np.mean(x * x) + EPS) * w


def logits(args):
    r, t = load(args.file)
    dim = field(r, "llama.embedding_length")
    layers = field(r, "llama.block_count")
    heads = field(r, "llama.attention.head_count")
    kv_heads = field(r, "llama.attention.head_count_kv") or heads
    theta = field(r, "llama.rope.freq_base") or 10000.0
    hs = dim // heads
    embd = t["token_embd.weight"]
    out_w = t.get("output.weight", embd)
    tokens = [int(x) for x in args.tokens.split(",")]
    keys = [[] for _ in range(layers)]
    values = [[] for _ in range(layers)]
    result = []
    for pos, tok in enumerate(tokens):
        x = embd[tok].copy()
        freqs = 1.0 / theta ** (np.arange(0, hs, 2) / hs)
        ang = pos * freqs
        cos, sin = np.cos(ang), np.sin(ang)

        def rope(v):
            v = v.reshape(-1, hs // 2, 2)
            a, b = v[..., 0].copy(), v[..., 1].copy()
            v[..., 0] = a * cos - b * sin
            v[..., 1] = a * sin + b * cos
            return v.reshape(-1)

        for l in range(layers):
            p = f"blk.{l}."
            h = rmsnorm(x, t[p + "attn_norm.weight"])
            q = rope(t[p + "attn_q.weight"] @ h)
            k = rope(t[p + "attn_k.weight"] @ h)
            v = t[p + "attn_v.weight"] @ h
            keys[l].append(k)
            values[l].append(v)
            K = np.stack(keys[l]).reshape(pos + 1, kv_heads, hs)
            V = np.stack(values[l]).reshape(pos + 1, kv_heads, hs)
            att_out = np.zeros(dim)
            for hh in range(heads):
                kvh = hh // (heads // kv_heads)
                s = K[:, kvh, :] @ q[hh * hs:(hh + 1) * hs] / np.sqrt(hs)
                s = np.exp(s - s.max())
                s /= s.sum()
                att_out[hh * hs:(hh + 1) * hs] = s @ V[:, kvh, :]
            x = x + t[p + "attn_output.weight"] @ att_out
            h = rmsnorm(x, t[p + "ffn_norm.weight"])
            g = t[p + "ffn_gate.weight"] @ h
            u = t[p + "ffn_up.weight"] @ h
            x = x + t[p + "ffn_down.weight"] @ (g / (1.0 + np.exp(-g)) * u)
        result.append((out_w @ rmsnorm(x, t["output_norm.weight"])).tolist())
    json.dump({"logits": result}, sys.stdout)


def tokenize(args):
    r = gguf.GGUFReader(args.file)
    model = field(r, "tokenizer.ggml.model")
    tokens = field(r, "tokenizer.ggml.tokens")
    types = field(r, "tokenizer.ggml.token_type") or [1] * len(tokens)
    ids = {}
    for i, tok in enumerate(tokens):
        ids.setdefault(tok, i)
    bos = field(r, "tokenizer.ggml.bos_token_id")
    add_bos = field(r, "tokenizer.ggml.add_bos_token")
    if add_bos is None:
        add_bos = model == "llama"
    specials = sorted(((tok, i) for i, tok in enumerate(tokens) if types[i] in (3, 4)),
                      key=lambda p: (-len(p[0]), p[1]))
    out = [bos] if add_bos and bos is not None else []
    text = args.text
    # Split on special tokens, earliest (then longest) first.
    fragments = []
    while text:
        best = None
        for s, i in specials:
            at = text.find(s)
            if at >= 0 and (best is None or at < best[0] or (at == best[0] and len(s) > best[1])):
                best = (at, len(s), i)
        if best is None:
            fragments.append(text)
            break
        if best[0] > 0:
            fragments.append(text[:best[0]])
        fragments.append(best[2])
        text = text[best[0] + best[1]:]
    prev_special = True
    if model == "llama":
        scores = field(r, "tokenizer.ggml.scores")
        for frag in fragments:
            if isinstance(frag, int):
                if not (len(out) == 1 and frag == bos and out[0] == bos):
                    out.append(frag)
                prev_special = True
                continue
            s = ("\u2581" if prev_special else "") + frag.replace(" ", "\u2581")
            prev_special = False
            sym = list(s)
            while True:
                best, at = None, None
                for i in range(len(sym) - 1):
                    m = sym[i] + sym[i + 1]
                    if m in ids and (best is None or scores[ids[m]] > best):
                        best, at = scores[ids[m]], i
                if at is None:
                    break
                sym[at:at + 2] = [sym[at] + sym[at + 1]]
            for p in sym:
                if p in ids:
                    out.append(ids[p])
                else:
                    out.extend(ids.get(f"<0x{b:02X}>", 0) for b in p.encode())
    else:
        import regex
        pat = regex.compile(r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+""")
        merges = field(r, "tokenizer.ggml.merges")
        rank = {tuple(m.split(" ", 1)): i for i, m in enumerate(merges)}
        table = bytes_to_unicode()
        for frag in fragments:
            if isinstance(frag, int):
                out.append(frag)
                continue
            for word in pat.findall(frag):
                sym = [table[b] for b in word.encode()]
                while len(sym) > 1:
                    pairs = [(rank.get((sym[i], sym[i + 1]), None), i) for i in range(len(sym) - 1)]
                    pairs = [p for p in pairs if p[0] is not None]
                    if not pairs:
                        break
                    _, at = min(pairs)
                    sym[at:at + 2] = [sym[at] + sym[at + 1]]
                for p in sym:
                    out.append(ids[p])
    json.dump({"tokens": out}, sys.stdout)


def hashes(args):
    """SHA-256 of each tensor's exact bytes in the file."""
    import hashlib
    r = gguf.GGUFReader(args.file)
    out = {t.name: hashlib.sha256(np.ascontiguousarray(t.data).tobytes()).hexdigest() for t in r.tensors}
    json.dump(out, sys.stdout)


def l2c(args):
    """Writes a GGUF's (f32) weights as a llama2.c checkpoint, as llama2.c's
    export.py lays it out: version 0 (legacy f32) or version 2 (int8 groups)."""
    import struct
    r, t = load(args.file)
    dim = field(r, "llama.embedding_length")
    hidden = field(r, "llama.feed_forward_length")
    layers = field(r, "llama.block_count")
    heads = field(r, "llama.attention.head_count")
    kv_heads = field(r, "llama.attention.head_count_kv") or heads
    ctx = field(r, "llama.context_length")
    vocab = t["token_embd.weight"].shape[0]
    shared = "output.weight" not in t
    L = range(layers)
    mats = ["attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_down", "ffn_up"]
    f32 = lambda a: np.asarray(a, dtype=np.float32).tobytes()
    with open(args.out, "wb") as f:
        if args.version == 0:
            f.write(struct.pack("7i", dim, hidden, layers, heads, kv_heads, vocab if shared else -vocab, ctx))
            f.write(f32(t["token_embd.weight"]))
            for l in L: f.write(f32(t[f"blk.{l}.attn_norm.weight"]))
            for m in mats[:4]:
                for l in L: f.write(f32(t[f"blk.{l}.{m}.weight"]))
            for l in L: f.write(f32(t[f"blk.{l}.ffn_norm.weight"]))
            for m in mats[4:]:
                for l in L: f.write(f32(t[f"blk.{l}.{m}.weight"]))
            f.write(f32(t["output_norm.weight"]))
            f.write(b"\0" * (2 * ctx * (dim // heads) // 2 * 4))
            if not shared:
                f.write(f32(t["output.weight"]))
        else:
            gs = args.group_size
            hdr = struct.pack("I", 0x616b3432) + struct.pack("i", 2)
            hdr += struct.pack("7i", dim, hidden, layers, heads, kv_heads, vocab, ctx)
            hdr += struct.pack("B", int(shared)) + struct.pack("i", gs)
            f.write(hdr + b"\0" * (256 - len(hdr)))
            for l in L: f.write(f32(t[f"blk.{l}.attn_norm.weight"]))
            for l in L: f.write(f32(t[f"blk.{l}.ffn_norm.weight"]))
            f.write(f32(t["output_norm.weight"]))
            names = ["token_embd.weight"] + [f"blk.{l}.{m}.weight" for m in mats for l in L]
            if not shared:
                names.append("output.weight")
            for n in names:
                w = np.asarray(t[n], dtype=np.float32).reshape(-1, gs)
                scale = np.abs(w).max(axis=1) / 127.0
                q = np.round(w / np.where(scale > 0, scale, 1)[:, None]).astype(np.int8)
                f.write(q.tobytes())
                f.write(scale.astype(np.float32).tobytes())


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    m = sub.add_parser("make")
    m.add_argument("out")
    m.add_argument("--type", required=True, choices=sorted(TYPES))
    m.add_argument("--vocab", default="spm", choices=["spm", "bpe"])
    m.add_argument("--tied", action="store_true")
    m.add_argument("--chat", action="store_true")
    m.add_argument("--seed", type=int, default=1)
    lg = sub.add_parser("logits")
    lg.add_argument("file")
    lg.add_argument("--tokens", required=True)
    tk = sub.add_parser("tokenize")
    tk.add_argument("file")
    tk.add_argument("--text", required=True)
    h = sub.add_parser("hashes")
    h.add_argument("file")
    c = sub.add_parser("l2c")
    c.add_argument("file")
    c.add_argument("out")
    c.add_argument("--version", type=int, default=0, choices=[0, 2])
    c.add_argument("--group-size", type=int, default=64)
    args = p.parse_args()
    {"make": make, "logits": logits, "tokenize": tokenize, "hashes": hashes, "l2c": l2c}[args.cmd](args)


if __name__ == "__main__":
    main()
