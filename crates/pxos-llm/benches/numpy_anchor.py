"""The second anchor for the decode benchmark: the same llama forward pass in
numpy, f32, random weights, 256 decode steps with a KV cache, on the thread
count of the BLAS it runs on (set OPENBLAS_NUM_THREADS=2 / OMP_NUM_THREADS=2).

    OPENBLAS_NUM_THREADS=2 python3 crates/pxos-llm/benches/numpy_anchor.py

Prints one JSON line per shape: {"shape", "tokens_per_second"}.
"""
import json
import sys
import time

import numpy as np

SHAPES = [("15M", 288, 768, 6, 256), ("42M", 512, 1376, 8, 1024), ("110M", 768, 2048, 12, 1024)]
VOCAB = 32000


def rmsnorm(x, w):
    return w * (x / np.sqrt(np.mean(x * x) + 1e-5))


def run(name, dim, hidden, layers, context, steps=256):
    rng = np.random.default_rng(1)
    r = lambda *s: (rng.random(s, dtype=np.float32) - 0.5) * 0.1
    heads = layers
    hs = dim // heads
    embed = r(VOCAB, dim)
    L = [dict(wq=r(dim, dim), wk=r(dim, dim), wv=r(dim, dim), wo=r(dim, dim),
              w1=r(hidden, dim), w3=r(hidden, dim), w2=r(dim, hidden),
              n1=np.ones(dim, np.float32), n2=np.ones(dim, np.float32)) for _ in range(layers)]
    nf = np.ones(dim, np.float32)
    kc = np.zeros((layers, context, dim), np.float32)
    vc = np.zeros((layers, context, dim), np.float32)
    freqs = 1.0 / (10000.0 ** (np.arange(0, hs, 2, dtype=np.float32) / hs))

    def rope(v, pos):
        v = v.reshape(heads, hs // 2, 2)
        a = pos * freqs
        c, s = np.cos(a), np.sin(a)
        x0, x1 = v[..., 0].copy(), v[..., 1].copy()
        v[..., 0] = x0 * c - x1 * s
        v[..., 1] = x0 * s + x1 * c
        return v.reshape(dim)

    token = 1
    started = time.perf_counter()
    for pos in range(steps):
        x = embed[token].copy()
        for l, w in enumerate(L):
            h = rmsnorm(x, w["n1"])
            q = rope(w["wq"] @ h, pos)
            kc[l, pos] = rope(w["wk"] @ h, pos)
            vc[l, pos] = w["wv"] @ h
            k = kc[l, : pos + 1].reshape(pos + 1, heads, hs)
            v = vc[l, : pos + 1].reshape(pos + 1, heads, hs)
            att = np.einsum("hd,thd->ht", q.reshape(heads, hs), k) / np.sqrt(hs)
            att = np.exp(att - att.max(axis=1, keepdims=True))
            att /= att.sum(axis=1, keepdims=True)
            o = np.einsum("ht,thd->hd", att, v).reshape(dim)
            x = x + w["wo"] @ o
            h = rmsnorm(x, w["n2"])
            g = w["w1"] @ h
            x = x + w["w2"] @ ((g / (1 + np.exp(-g))) * (w["w3"] @ h))
        logits = embed @ rmsnorm(x, nf)
        token = int(np.argmax(logits))
    elapsed = time.perf_counter() - started
    return steps / elapsed


if __name__ == "__main__":
    names = sys.argv[1:] or [s[0] for s in SHAPES]
    for shape in SHAPES:
        if shape[0] in names:
            print(json.dumps({"shape": shape[0], "tokens_per_second": round(run(*shape), 1)}), flush=True)
