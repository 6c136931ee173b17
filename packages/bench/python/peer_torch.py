"""The seed notebook's timing (cells 19 and 20) in PyTorch, for kvkit's `peer-torch` scenario.

A minimal CausalSelfAttention with the fork's static KV cache (written from the notebook's
description: c_attn -> q, k, v; cache_k/cache_v of shape [max_batch_size, n_head, block_size,
head_size] written at [:B, :, start_pos:start_pos+T]), timed like IPython's %timeit: loops per
repeat calibrated with timeit.Timer.autorange (>= 0.2 s), 7 repeats, per-loop mean and
population std. One thread, no autograd, eval mode. Prints one JSON object on stdout.

    python3 peer_torch.py --B 8 --T 64 --C 128 --n-head 8 --prefill 3 [--repeats 7] [--loops N]
"""

import argparse
import glob
import os
import re
import json
import math
import statistics
import timeit

import torch
import torch.nn as nn
from torch.nn import functional as F


class CausalSelfAttention(nn.Module):
    def __init__(self, n_embd, n_head, block_size, max_batch_size=64):
        super().__init__()
        self.n_head = n_head
        self.head_size = n_embd // n_head
        self.block_size = block_size
        self.max_batch_size = max_batch_size
        self.c_attn = nn.Linear(n_embd, 3 * n_embd)
        self.c_proj = nn.Linear(n_embd, n_embd)
        self.register_buffer(
            "bias", torch.tril(torch.ones(block_size, block_size)).view(1, 1, block_size, block_size)
        )
        self.cache_k = None
        self.cache_v = None

    def forward(self, x, use_kv_cache=False, start_pos=0):
        B, T, C = x.size()
        q, k, v = self.c_attn(x).split(C, dim=2)
        q = q.view(B, T, self.n_head, self.head_size).transpose(1, 2)  # (B, nh, T, hs)
        k = k.view(B, T, self.n_head, self.head_size).transpose(1, 2)
        v = v.view(B, T, self.n_head, self.head_size).transpose(1, 2)
        if use_kv_cache:
            if self.cache_k is None:
                shape = (self.max_batch_size, self.n_head, self.block_size, self.head_size)
                self.cache_k = torch.zeros(shape)
                self.cache_v = torch.zeros(shape)
            self.cache_k[:B, :, start_pos : start_pos + T] = k
            self.cache_v[:B, :, start_pos : start_pos + T] = v
            k = self.cache_k[:B, :, : start_pos + T]
            v = self.cache_v[:B, :, : start_pos + T]
        att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(k.size(-1)))
        if T > 1:  # a single new token sees every cached key; chunks need the causal mask
            t = k.size(-2)
            att = att.masked_fill(self.bias[:, :, start_pos : start_pos + T, :t] == 0, float("-inf"))
        att = F.softmax(att, dim=-1)
        y = (att @ v).transpose(1, 2).contiguous().view(B, T, C)
        return self.c_proj(y)


def main():
    p = argparse.ArgumentParser()
    for name, default in [("B", 8), ("T", 64), ("C", 128), ("n-head", 8), ("prefill", 3), ("repeats", 7), ("loops", 0)]:
        p.add_argument(f"--{name}", type=int, default=default)
    a = p.parse_args()
    torch.set_num_threads(1)
    torch.set_grad_enabled(False)
    torch.manual_seed(42)
    x = torch.rand((a.B, a.T, a.C))

    def build():
        torch.manual_seed(42)
        return CausalSelfAttention(a.C, a.n_head, a.T).eval()

    def cached():
        m = build()
        m.forward(x[:, : a.prefill], use_kv_cache=True, start_pos=0)
        for i in range(a.prefill, a.T):
            m.forward(x[:, i : i + 1], use_kv_cache=True, start_pos=i)

    def uncached():
        m = build()
        for i in range(a.prefill, a.T + 1):
            m.forward(x[:, :i])

    def measure(fn):
        fn()  # warm-up
        timer = timeit.Timer(fn)
        loops = a.loops or timer.autorange()[0]
        samples = [t / loops * 1000 for t in timer.repeat(repeat=a.repeats, number=loops)]
        return {
            "meanMs": statistics.fmean(samples),
            "stdMs": statistics.pstdev(samples),
            "minMs": min(samples),
            "medianMs": statistics.median(samples),
            "loops": loops,
            "repeats": a.repeats,
            "samplesMs": samples,
        }

    # Debian's torch links the generic libblas.so.3, which the alternatives system points at
    # OpenBLAS when libopenblas0-pthread is installed: report where it really points.
    info = re.search(r"BLAS_INFO=([^,]+)", torch.__config__.show())
    blas = info.group(1) if info else "unknown"
    for lib in glob.glob("/usr/lib/*/libblas.so.3"):
        blas += f" ({lib} -> {os.path.realpath(lib)})"
    out = {
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "blas": blas,
        "cached": measure(cached),
        "uncached": measure(uncached),
    }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
