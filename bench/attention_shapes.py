"""Milliseconds per call of the heads-merged attention kernels at the model's own shapes.

``attention_weights_forward`` / ``attention_weights_backward`` are what
``transformer.MultiheadAttention`` runs on with dropout, with a need for the weights, or
with at most 64 x 64 scores per head (``ops/attention.FUSED_MIN_SCORES``): every call of
the default task, of decoding and of configs S and M. The rows are the calls a training step or a greedy decoding step
makes, with the masks the model builds (float32):

    dates train   B64 H4 D16: encoder self (S 8, key padding), decoder self (T 11,
                  causal + key padding), cross (11 x 8, key padding); dropout 0
    dates decode  B256 H4 D16, one new query: self over a KV cache of 10 / 20 keys,
                  cross over 10 memory keys (key padding); no_grad, forward only
    config S      B32 H4 T32 D32, causal, dropout 0.1
    config M      B32 H8 T64 D32, causal, dropout 0.1

Run: ``python -m bench.attention_shapes [--threads N] [--compare MODULE]``. With
``--compare some.module`` (e.g. an older ``numba_cpu/attention.py`` copied outside the
package, so the package's cache stays valid) both are timed in the same process,
alternating, and the ratio is printed: on a shared machine only ratios measured in one
run mean anything. Kernels only; ``bench/attention_route.py`` times the op.
"""
from __future__ import annotations

import argparse
import importlib
import time

import numpy as np


def _padding_mask(rng, b, s, dtype):
    """(B, 1, 1, S) additive key padding: each batch row hides its last 0..S/3 keys."""
    m = np.zeros((b, 1, 1, s), dtype)
    for i, n in enumerate(rng.integers(0, s // 3 + 1, b)):
        if n:
            m[i, ..., s - n:] = -np.inf
    return m


def _causal(l, s, dtype):
    return np.triu(np.full((l, s), -np.inf, dtype), 1)[None, None]     # (1, 1, L, S)


def cases(rng, dtype=np.float32):
    """(name, inputs, layout, heads, mask, dropout_p, with_backward) per row."""
    def x(*shape):
        return rng.standard_normal(shape).astype(dtype)
    out = []
    b, h, d = 64, 4, 16
    out.append(("dates enc self  B64 T8", (x(b, 8, 3 * h * d),), "qkv", h,
                _padding_mask(rng, b, 8, dtype), 0.0, True))
    out.append(("dates dec self  B64 T11", (x(b, 11, 3 * h * d),), "qkv", h,
                _causal(11, 11, dtype) + _padding_mask(rng, b, 11, dtype), 0.0, True))
    out.append(("dates cross     B64 11x8", (x(b, 11, h * d), x(b, 8, 2 * h * d)), "q,kv", h,
                _padding_mask(rng, b, 8, dtype), 0.0, True))
    b = 256
    for s in (10, 20):
        out.append((f"decode self     B256 1x{s}", (x(b, 1, h * d), x(b, s, h * d), x(b, s, h * d)),
                    "q,k,v", h, None, 0.0, False))
    out.append(("decode cross    B256 1x10", (x(b, 1, h * d), x(b, 10, h * d), x(b, 10, h * d)),
                "q,k,v", h, _padding_mask(rng, b, 10, dtype), 0.0, False))
    out.append(("config S self   B32 H4 T32", (x(32, 32, 3 * 4 * 32),), "qkv", 4,
                _causal(32, 32, dtype)[0, 0], 0.1, True))
    out.append(("config M self   B32 H8 T64", (x(32, 64, 3 * 8 * 32),), "qkv", 8,
                _causal(64, 64, dtype)[0, 0], 0.1, True))
    return out


def _median_ms(fn, reps):
    fn()
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return 1e3 * float(np.median(times))


def time_case(mod, case, reps):
    """(forward ms, backward ms or None) for one kernel module."""
    _, inputs, layout, heads, mask, p, with_bwd = case
    scale = 1.0 / np.sqrt(inputs[0].shape[2] // heads // (3 if layout == "qkv" else 1))
    def fwd():
        return mod.attention_weights_forward(inputs, layout, heads, mask, scale, p, 7)
    t_fwd = _median_ms(fwd, reps)
    if not with_bwd:
        return t_fwd, None
    out, cache = fwd()
    dout = np.ones_like(out)
    t_bwd = _median_ms(lambda: mod.attention_weights_backward(dout, None, cache), reps)
    return t_fwd, t_bwd


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--reps", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3, help="alternations of the modules")
    parser.add_argument("--module", default="minitensor.kernels.numba_cpu.attention")
    parser.add_argument("--compare", default=None, help="another kernel module to time beside")
    args = parser.parse_args(argv)
    import numba
    numba.set_num_threads(min(args.threads, numba.config.NUMBA_NUM_THREADS))
    mods = {"new": importlib.import_module(args.module)}
    if args.compare:
        mods["old"] = importlib.import_module(args.compare)
    rows = cases(np.random.default_rng(0))
    results = {(name, r[0]): [] for name in mods for r in rows}
    for _ in range(args.rounds):
        for name, mod in mods.items():
            for r in rows:
                results[(name, r[0])].append(time_case(mod, r, args.reps))
    print(f"ms per call, median of {args.reps} calls, median over {args.rounds} rounds, "
          f"{numba.get_num_threads()} threads")
    head = f"{'shape':28s}" + "".join(f"{n + ' fwd':>10s}{n + ' bwd':>10s}" for n in mods)
    print(head + ("  old/new fwd  old/new bwd" if len(mods) > 1 else ""))
    for r in rows:
        line = f"{r[0]:28s}"
        med = {}
        for name in mods:
            vals = results[(name, r[0])]
            f = float(np.median([v[0] for v in vals]))
            b = None if vals[0][1] is None else float(np.median([v[1] for v in vals]))
            med[name] = (f, b)
            line += f"{f:10.4f}" + (f"{b:10.4f}" if b is not None else f"{'-':>10s}")
        if len(mods) > 1:
            (fo, bo), (fn, bn) = med["old"], med["new"]
            line += f"  {fo / fn:11.2f}" + (f"  {bo / bn:11.2f}" if bn else "")
        print(line)


if __name__ == "__main__":
    main()
