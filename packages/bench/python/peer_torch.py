"""PyTorch side by side with kvkit, for the bench's `peer-torch` scenario.

Two workloads, each in two forms of the projections:
  linear  plain nn.Linear (for one token, sgemm with M=1 on Debian's OpenBLAS);
  addmv   the fastest B=1 decode form found here: an (in, out) contiguous copy of each weight,
          torch.addmv for a single row, torch.addmm on the same copy for more rows.

  --mode seed   (or seed,layer: both, in one process) the seed notebook's timing (cells 19 and 20): construct + prefill + decode with
                the cache, against construct + the full forward of every prefix. Weights come
                from torch.manual_seed(42), which kvkit's setSeed(42) reproduces bit for bit.
  --mode layer  one attention layer's decode step at each context t (cached: the step at t with t
                cached positions; uncached: the forward of the t + 1 token prefix), with the
                weights and input kvkit wrote to --tensors (a JSON manifest + raw float32 file).
  --mode gpt    a whole minGPT GPT (static cache, max_batch_size 1) on the weights kvkit wrote to
                --gpt-tensors: prefill the prompt's first max(contexts) positions, then, longest
                context first, decode prompt token t at position t (re-decoding: the static
                cache simply overwrites position t), then the no-cache forward of the first
                uncachedT + 1 tokens; logits of the last position only, as kvkit's
                lastPositionOnly. In the addmv form every Linear of the model (lm_head too) is
                the (in, out) contiguous copy; it is the same model, converted after the
                nn.Linear form's steps, on the same cache (prefilled once).

A minimal CausalSelfAttention with the fork's static KV cache (written from the notebook's
description). Timed like IPython's %timeit: loops calibrated with timeit.Timer.autorange
(>= --target-ms, 200 by default), --repeats repeats, per-loop mean and population std. One thread (set
OPENBLAS_NUM_THREADS=1 before torch loads: torch.set_num_threads does not bind Debian's
OpenBLAS), no autograd, eval mode. Prints one JSON object on stdout, with each form's outputs
for the caller to check against kvkit's before it reports any timing.
"""

import argparse
import functools
import glob
import json
import math
import os
import re
import statistics
import timeit

import torch
import torch.nn as nn
from torch.nn import functional as F


class ContiguousLinear(nn.Module):
    """y = x W^T + b from an (in, out) contiguous copy of W: addmv for one row, addmm for more."""

    def __init__(self, linear):
        super().__init__()
        self.weight_t = linear.weight.detach().t().contiguous()  # (in, out)
        self.bias = None if linear.bias is None else linear.bias.detach()

    def forward(self, x):
        rows = x.reshape(-1, x.shape[-1])
        if self.bias is None:  # lm_head
            y = torch.mv(self.weight_t.t(), rows[0]).unsqueeze(0) if rows.shape[0] == 1 else rows @ self.weight_t
        elif rows.shape[0] == 1:
            y = torch.addmv(self.bias, self.weight_t.t(), rows[0]).unsqueeze(0)
        else:
            y = torch.addmm(self.bias, rows, self.weight_t)
        return y.view(*x.shape[:-1], y.shape[-1])


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

    def to_form(self, form):
        if form == "addmv":
            self.c_attn = ContiguousLinear(self.c_attn)
            self.c_proj = ContiguousLinear(self.c_proj)
        return self

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


class NewGELU(nn.Module):
    """minGPT's NewGELU (GPT-2's gelu_new), the tanh approximation."""

    def forward(self, x):
        return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * torch.pow(x, 3.0))))


class Block(nn.Module):
    def __init__(self, n_embd, n_head, block_size):
        super().__init__()
        self.ln_1 = nn.LayerNorm(n_embd)
        self.attn = CausalSelfAttention(n_embd, n_head, block_size, max_batch_size=1)
        self.ln_2 = nn.LayerNorm(n_embd)
        self.mlp = nn.ModuleDict(dict(c_fc=nn.Linear(n_embd, 4 * n_embd), c_proj=nn.Linear(4 * n_embd, n_embd), act=NewGELU()))

    def forward(self, x, use_kv_cache, start_pos):
        x = x + self.attn(self.ln_1(x), use_kv_cache, start_pos)
        m = self.mlp
        return x + m.c_proj(m.act(m.c_fc(self.ln_2(x))))


class GPT(nn.Module):
    """minGPT's GPT (names and layout), positions start_pos + i, logits of the last position."""

    def __init__(self, n_layer, n_head, n_embd, vocab_size, block_size):
        super().__init__()
        self.transformer = nn.ModuleDict(dict(
            wte=nn.Embedding(vocab_size, n_embd),
            wpe=nn.Embedding(block_size, n_embd),
            h=nn.ModuleList([Block(n_embd, n_head, block_size) for _ in range(n_layer)]),
            ln_f=nn.LayerNorm(n_embd),
        ))
        self.lm_head = nn.Linear(n_embd, vocab_size, bias=False)

    def to_form(self, form):
        if form == "addmv":
            for b in self.transformer.h:
                b.attn.to_form(form)
                b.mlp.c_fc = ContiguousLinear(b.mlp.c_fc)
                b.mlp.c_proj = ContiguousLinear(b.mlp.c_proj)
            self.lm_head = ContiguousLinear(self.lm_head)
        return self

    def forward(self, idx, use_kv_cache=False, start_pos=0):
        T = idx.shape[1]
        pos = torch.arange(start_pos, start_pos + T, dtype=torch.long)
        x = self.transformer.wte(idx) + self.transformer.wpe(pos)
        for block in self.transformer.h:
            x = block(x, use_kv_cache, start_pos)
        return self.lm_head(self.transformer.ln_f(x[:, -1:]))


def autorange(timer, target):
    """timeit.Timer.autorange with a target other than its fixed 0.2 s (quick runs use 20 ms)."""
    scale = 1
    while True:
        for m in (1, 2, 5):
            loops = m * scale
            took = timer.timeit(loops)
            if took >= target:
                return loops, took / loops
        scale *= 10


def measure(fn, a, budget_s=math.inf, warmup=True, fixed=None):
    """%timeit: a warm-up call, autorange, then --repeats repeats; fewer (down to 3) when they
    would take longer than budget_s, as the bench's timeit does with budgetMs. `fixed`
    (loops, repeats) skips the calibration: for calls of a second or more."""
    if warmup:
        fn()
    timer = timeit.Timer(fn)
    if fixed:
        loops, repeats = a.loops or fixed[0], fixed[1]
        per_call, budget_s = math.nan, math.inf
    elif a.loops:
        loops = a.loops
        per_call = math.nan if math.isinf(budget_s) else timer.timeit(1)
    else:
        loops, per_call = autorange(timer, a.target_ms / 1000)
    if not fixed:
        affordable = a.repeats if math.isinf(budget_s) else math.floor(budget_s / (per_call * loops))
        repeats = max(min(a.repeats, 3), min(a.repeats, affordable))
    samples = [t / loops * 1000 for t in timer.repeat(repeat=repeats, number=loops)]
    return {
        "meanMs": statistics.fmean(samples),
        "stdMs": statistics.pstdev(samples),
        "minMs": min(samples),
        "medianMs": statistics.median(samples),
        "loops": loops,
        "repeats": repeats,
        "samplesMs": samples,
    }


def flat(t):
    return t.reshape(-1).tolist()


def seed(a, form):
    torch.manual_seed(42)
    x = torch.rand((a.B, a.T, a.C))

    def build():
        torch.manual_seed(42)
        return CausalSelfAttention(a.C, a.n_head, a.T).eval().to_form(form)

    def cached():
        m = build()
        y = m.forward(x[:, : a.prefill], use_kv_cache=True, start_pos=0)
        for i in range(a.prefill, a.T):
            y = m.forward(x[:, i : i + 1], use_kv_cache=True, start_pos=i)
        return y

    def uncached():
        m = build()
        for i in range(a.prefill, a.T + 1):
            y = m.forward(x[:, :i])
        return y

    check = {"cachedLast": flat(cached()), "uncachedLast": flat(uncached()[:, -1:])}
    return {"cached": measure(cached, a), "uncached": measure(uncached, a), "check": check}


@functools.lru_cache(maxsize=2)  # each form reads the same file: read it once
def read_tensors(path):
    with open(path) as f:
        manifest = json.load(f)
    with open(os.path.join(os.path.dirname(path), manifest["data"]), "rb") as f:
        raw = bytearray(f.read())
    data = torch.frombuffer(raw, dtype=torch.float32)
    return {
        name: data[e["offset"] : e["offset"] + math.prod(e["shape"])].view(*e["shape"]).clone()
        for name, e in manifest["tensors"].items()
    }, manifest


def layer(a, form):
    tensors, manifest = read_tensors(a.tensors)
    C, n_head, contexts = manifest["C"], manifest["nHead"], manifest["contexts"]
    x = tensors["input"]  # (1, Tmax, C)
    m = CausalSelfAttention(C, n_head, x.shape[1], max_batch_size=1).eval()
    m.load_state_dict({k: tensors[k] for k in ["c_attn.weight", "c_attn.bias", "c_proj.weight", "c_proj.bias"]}, strict=False)
    m.to_form(form)
    token = x[:, :1]
    out, check = {}, {}
    for t in sorted(contexts, reverse=True):
        m.forward(x[:, :t], use_kv_cache=True, start_pos=0)  # positions [0, t) cached
        step = lambda: m.forward(token, use_kv_cache=True, start_pos=t)  # noqa: E731
        prefix = x[:, : t + 1]
        full = lambda: m.forward(prefix)  # noqa: E731
        if t == max(contexts):
            check = {"cachedLast": flat(step()), "uncachedLast": flat(full()[:, -1:])}
        out[f"cached/t={t}"] = measure(step, a)
        out[f"uncached/t={t}"] = measure(full, a)
    return {"timings": out, "check": check}


def gpt(a, forms):
    """Both forms on one model: prefilled once with nn.Linear, converted to the addmv form after
    its steps (the cache is the attention modules' own, so it stays)."""
    tensors, manifest = read_tensors(a.gpt_tensors)
    n_layer, n_head, n_embd = manifest["nLayer"], manifest["nHead"], manifest["C"]
    vocab, block = manifest["vocabSize"], manifest["blockSize"]
    contexts, uncached_t, chunk = manifest["contexts"], manifest["uncachedT"], manifest["prefillChunk"]
    step_budget = manifest["stepBudgetMs"] / 1000
    m = GPT(n_layer, n_head, n_embd, vocab, block).eval()
    missing, unexpected = m.load_state_dict(tensors, strict=False)
    # Only the causal-mask buffers (attn.bias, not parameters) come from the module itself.
    missing = [k for k in missing if not k.endswith(".attn.bias")]
    if missing or unexpected:
        raise SystemExit(f"gpt: state dict mismatch: missing {missing}, unexpected {unexpected}")
    ids = torch.tensor([manifest["ids"]], dtype=torch.long)  # (1, blockSize)
    longest = max(contexts)
    for start in range(0, longest, chunk):
        m(ids[:, start : min(longest, start + chunk)], use_kv_cache=True, start_pos=start)
    results = {}
    for form in forms:  # "linear" first: to_form only ever goes from nn.Linear to addmv
        m.to_form(form)
        out, check = {}, {}
        for t in sorted(contexts, reverse=True):
            token = ids[:, t : t + 1]
            step = lambda: m(token, use_kv_cache=True, start_pos=t)  # noqa: E731
            check[f"cached/t={t}"] = flat(step())
            out[f"cached/t={t}"] = measure(step, a, step_budget)
        prefix = ids[:, : uncached_t + 1]
        full = lambda: m(prefix)  # noqa: E731
        # A second or more a call: its first call (checked) warms up, then 3 repeats of one.
        check[f"uncached/t={uncached_t}"] = flat(full())
        out[f"uncached/t={uncached_t}"] = measure(full, a, warmup=False, fixed=(1, min(a.repeats, 3)))
        results[form] = {"timings": out, "check": check}
    return results


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--mode", default="seed", help="seed, layer, gpt, or several: seed,layer,gpt")
    p.add_argument("--forms", default="linear,addmv")
    p.add_argument("--tensors", default="")
    p.add_argument("--gpt-tensors", default="")
    for name, default in [("B", 8), ("T", 64), ("C", 128), ("n-head", 8), ("prefill", 3), ("repeats", 7), ("loops", 0), ("target-ms", 200)]:
        p.add_argument(f"--{name}", type=int, default=default)
    a = p.parse_args()
    torch.set_num_threads(1)
    torch.set_grad_enabled(False)
    # Debian's torch links the generic libblas.so.3, which the alternatives system points at
    # OpenBLAS when libopenblas0-pthread is installed: report where it really points.
    info = re.search(r"BLAS_INFO=([^,]+)", torch.__config__.show())
    blas = info.group(1) if info else "unknown"
    for lib in glob.glob("/usr/lib/*/libblas.so.3"):
        blas += f" ({lib} -> {os.path.realpath(lib)})"
    runs = {"seed": seed, "layer": layer}
    modes = a.mode.split(",")
    if any(m not in [*runs, "gpt"] for m in modes):
        p.error(f"--mode: expected a comma-separated list of seed, layer, gpt; got {a.mode}")
    # One process for both workloads: importing torch costs seconds.
    forms = a.forms.split(",")
    out = {m: gpt(a, forms) if m == "gpt" else {form: runs[m](a, form) for form in forms} for m in modes}
    print(json.dumps({
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "blasThreads": os.environ.get("OPENBLAS_NUM_THREADS", "unset"),
        "blas": blas,
        "modes": out,
    }))


if __name__ == "__main__":
    main()
