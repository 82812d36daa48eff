#!/usr/bin/env python3
"""llama.cpp (through llama-cpp-python) on a GGUF file: every position's
logits for a token list, and how it tokenizes a text.

  llama_cpp_ref.py FILE --tokens 1,2,3 --text TEXT -> JSON {logits, tokens}
"""
import argparse
import json
import sys

from llama_cpp import Llama

p = argparse.ArgumentParser()
p.add_argument("file")
p.add_argument("--tokens", required=True)
p.add_argument("--text", default="")
args = p.parse_args()
tokens = [int(x) for x in args.tokens.split(",")]
m = Llama(model_path=args.file, n_ctx=max(64, len(tokens)), n_threads=2, logits_all=True, verbose=False)
m.eval(tokens)
json.dump({
    "logits": [list(map(float, row)) for row in m.scores[: len(tokens)]],
    "tokens": m.tokenize(args.text.encode(), add_bos=True, special=True),
}, sys.stdout)
