"""The attention op at the model's shapes, by kernel pair: fused (flash, heads split and
merged by copies) against the heads-merged weights kernels, dropout 0 (where the op may
pick either; the config S/M rows too). Sets where ``ops/attention.FUSED_MIN_SCORES`` goes. Forward + backward of ``F.multi_head_attention`` on Tensors (dates
training rows), forward only under no_grad (decoding rows), ms per call, 1 process.

Run: ``python -m bench.attention_route [--threads N]``.
"""
from __future__ import annotations

import argparse
import time

import numpy as np


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--reps", type=int, default=100)
    args = parser.parse_args(argv)
    import numba

    import minitensor as mt
    from minitensor.functional import attention as FA
    from minitensor.ops import attention as OA
    from bench.attention_shapes import cases

    numba.set_num_threads(min(args.threads, numba.config.NUMBA_NUM_THREADS))
    rows = cases(np.random.default_rng(0))          # config S/M rows run here without dropout
    route = OA.FUSED_MIN_SCORES
    results = {}
    for rnd in range(3):
        for name, tile in (("fused", 0), ("weights", 1 << 30)):
            OA.FUSED_MIN_SCORES = -1 if name == "fused" else tile   # -1: fused when allowed
            for r in rows:
                label, inputs, layout, heads, mask, _, with_bwd = r
                ts = [mt.tensor(x, requires_grad=with_bwd) for x in inputs]
                if len(ts) == 1:
                    q, k, v = ts[0], None, None
                elif len(ts) == 2:
                    q, k, v = ts[0], ts[1], None
                else:
                    q, k, v = ts

                def step():
                    if with_bwd:
                        out = FA.multi_head_attention(q, k, v, heads, attn_mask=mask)
                        out.sum().backward()
                    else:
                        with mt.no_grad():
                            FA.multi_head_attention(q, k, v, heads, attn_mask=mask)
                step()
                times = []
                for _ in range(args.reps):
                    t0 = time.perf_counter()
                    step()
                    times.append(time.perf_counter() - t0)
                results.setdefault((name, label), []).append(1e3 * float(np.median(times)))
    OA.FUSED_MIN_SCORES = route
    print(f"ms per call (fwd+bwd with grad, fwd alone for decode), {args.threads} threads, "
          "median of 3 rounds")
    print(f"{'shape':28s}{'fused':>10s}{'weights':>10s}{'fused/weights':>15s}")
    for r in rows:
        f = float(np.median(results[("fused", r[0])]))
        w = float(np.median(results[("weights", r[0])]))
        print(f"{r[0]:28s}{f:10.4f}{w:10.4f}{f / w:15.2f}")


if __name__ == "__main__":
    main()
