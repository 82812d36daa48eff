#!/usr/bin/env python3
"""llama.cpp's decode speed on a GGUF file, the anchor for pxOS's imported
models: 256 steps from position 0, one token at a time, greedy, on the same
thread count. Prints JSON {"tokens_per_second": ..., "seconds": ...}.

  llama_cpp_anchor.py FILE [--threads 2] [--steps 256] [--runs 3]
"""
import argparse
import json
import time

import numpy as np
from llama_cpp import Llama

p = argparse.ArgumentParser()
p.add_argument("file")
p.add_argument("--threads", type=int, default=2)
p.add_argument("--steps", type=int, default=256)
p.add_argument("--runs", type=int, default=3)
a = p.parse_args()
m = Llama(model_path=a.file, n_ctx=a.steps, n_threads=a.threads, n_threads_batch=a.threads,
          n_batch=1, logits_all=False, verbose=False)
best = None
for _ in range(a.runs):
    m.reset()
    tok = 1
    t0 = time.perf_counter()
    for _ in range(a.steps):
        m.eval([tok])
        tok = int(np.argmax(m.scores[0 if m.scores.shape[0] == 1 else m.n_tokens - 1]))
    dt = time.perf_counter() - t0
    best = dt if best is None else min(best, dt)
print(json.dumps({"tokens_per_second": a.steps / best, "seconds": best}))
