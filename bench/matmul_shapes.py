"""The training step's matmuls: forward, dX and dW of every Linear of configs S, M and dates.

    python -m bench.matmul_shapes [--configs S M dates] [--threads 2 1] [--repeat 7]

The shapes are collected by running one training step of each config and recording
what ``Linear`` gives its kernel (x (N, in), W (out, in)); the default ``dates`` task's
shapes are listed (DATES_SHAPES: encoder rows 64 x 8, decoder rows 64 x 11). Each
distinct shape becomes three rows, with the operands laid out as Linear has them
(transposes are views, never copies):

    fwd   Y  = X @ W^T      X (N, in) C-order, W^T a view of W (out, in)
    dX    dX = dY @ W       dY (N, out), W (out, in)
    dW    dW = dY^T @ X     dY^T a view of dY

Columns: median ms and GFLOP/s (2*N*in*out per product) for minitensor (numba backend:
``linear`` for fwd, ``linear_backward``'s dX alone for dX and its dW alone for dW, on the
same views: the paths Linear takes, the ``narrow_product`` and ``weight_grad`` kernels
where they fit, else OpenBLAS through Numba's np.dot), its AVX-512 GEMM
``numba_cpu.gemm.gemm`` (same views, no bias),
``np.matmul`` and
``torch.matmul`` (on the same memory through ``torch.from_numpy``), and each one's share
of the machine's peak. The peak is *probed*, not looked up: the best GFLOP/s of
np.matmul and torch.matmul on a (2048, 2048) @ (2048, 2048) product with the same
threads (what a tuned GEMM reaches on this machine; the FMA units' theoretical peak is
higher). One process, same threads for every library (Numba, every BLAS through
threadpoolctl, ``torch.set_num_threads``), runs interleaved, the libraries' order
rotated from run to run (``compare_rotated``);
``--threads 2 1`` runs the whole table at each thread count in turn, in the same process.
"""
from __future__ import annotations

import argparse

import numpy as np

from . import e2e, harness

PEAK_N = 2048
# The default task (``python -m transformer train``: d_model 64, d_ff 256, batch 64,
# sources ~8 and targets ~11 tokens, ~40 output classes) as (rows, in, out).
DATES_SHAPES = [(rows, k_in, k_out) for rows in (512, 704)
                for k_in, k_out in ((64, 192), (64, 64), (64, 256), (256, 64))] + [(704, 64, 40)]


def collect_shapes(config: str) -> list:
    """Distinct (N, in, out) of the Linear calls of one training step of ``config``."""
    if config == "dates":
        return list(DATES_SHAPES)
    from minitensor import kernels
    from minitensor.ops import linalg as ops_linalg

    seen = []
    forward = ops_linalg.Linear.forward

    def spy(ctx, x, weight, bias=None):
        shape = (int(np.prod(x.shape[:-1])), weight.shape[1], weight.shape[0])
        if shape not in seen:
            seen.append(shape)
        return forward(ctx, x, weight, bias)

    ops_linalg.Linear.forward = staticmethod(spy)
    try:
        _, step = e2e.build_ours(e2e.CONFIGS[config])
        with kernels.use("numba"):
            step("numba")
    finally:
        ops_linalg.Linear.forward = staticmethod(forward)
    return seen


def _products(shape, rng):
    n, k_in, k_out = shape
    x = rng.standard_normal((n, k_in)).astype(np.float32)
    w = rng.standard_normal((k_out, k_in)).astype(np.float32)
    g = rng.standard_normal((n, k_out)).astype(np.float32)
    return {"fwd": (x, w.T, f"({n}, {k_in}) @ ({k_in}, {k_out})^T"),
            "dX": (g, w, f"({n}, {k_out}) @ ({k_out}, {k_in})"),
            "dW": (g.T, x, f"({k_out}, {n})^T @ ({n}, {k_in})")}


def probe_peak(settings, torch=None) -> float:
    """GFLOP/s of the faster of np.matmul and torch.matmul on a big square product."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((PEAK_N, PEAK_N)).astype(np.float32)
    fns = {"numpy": lambda: np.matmul(a, a)}
    if torch is not None:
        ta = torch.from_numpy(a)
        fns["torch"] = lambda: torch.matmul(ta, ta)
    t = harness.compare(fns, settings)
    return 2 * PEAK_N ** 3 / min(x.median for x in t.values()) / 1e9


def compare_rotated(fns: dict, settings) -> dict:
    """harness.compare with the order of the libraries rotated every run: after a call,
    OpenBLAS's and OpenMP's idle threads spin for a while and slow whatever runs next
    on 2 cores, so a fixed order would charge that to the same library every time."""
    names = list(fns)
    timings = {}
    for r in range(settings.repeat):
        order = names[r % len(names):] + names[:r % len(names)]
        for name, timing in harness.compare({n: fns[n] for n in order}, settings, repeat=1).items():
            timings.setdefault(name, harness.Timing(number=timing.number)).runs.extend(timing.runs)
    return {name: timings[name] for name in names}


def run(configs, settings, torch=None, log=print) -> tuple:
    from minitensor.kernels import numba_cpu
    from minitensor.kernels.numba_cpu.gemm import gemm
    peak = probe_peak(settings, torch)
    log(f"  probed peak {peak:.0f} GFLOP/s")
    rng = np.random.default_rng(0)
    rows = []
    for config in configs:
        for shape in collect_shapes(config):
            for kind, (a, b, text) in _products(shape, rng).items():
                out = np.empty((a.shape[0], b.shape[1]), np.float32)
                ours = {"fwd": lambda a=a, b=b: numba_cpu.linear(a, b.T, None),
                        "dX": lambda a=a, b=b: numba_cpu.linear_backward(a, None, b,
                                                                         (True, False, False)),
                        # dW as Linear's backward makes it (a = dY^T: a.T is dY itself)
                        "dW": lambda a=a, b=b: numba_cpu.linear_backward(a.T, b, None,
                                                                         (False, True, False))}
                fns = {"numba": ours[kind],
                       "gemm": lambda a=a, b=b: gemm(a, b),
                       "numpy": lambda a=a, b=b, out=out: np.matmul(a, b, out=out)}
                if torch is not None:
                    ta, tb = torch.from_numpy(a), torch.from_numpy(b)
                    fns["torch"] = lambda ta=ta, tb=tb: torch.matmul(ta, tb)
                t = compare_rotated(fns, settings)
                flop = 2 * a.shape[0] * a.shape[1] * b.shape[1]
                row = {"name": f"{config} {kind}", "shape": text}
                for lib, timing in t.items():
                    row[f"{lib}_ms"] = timing.median * 1e3
                    row[f"{lib}_gflops"] = flop / timing.median / 1e9
                    row[f"{lib}_peak"] = row[f"{lib}_gflops"] / peak
                best_other = max(row.get("numpy_gflops") or 0, row.get("torch_gflops") or 0)
                row["ours_vs_best"] = row["numba_gflops"] / best_other if best_other else None
                row["gemm_vs_ours"] = row["gemm_gflops"] / row["numba_gflops"]
                row["gemm_vs_best"] = row["gemm_gflops"] / best_other if best_other else None
                rows.append(row)
                log(f"  {row['name']} {text}: {row['numba_gflops']:.0f} GFLOP/s, "
                    f"gemm {row['gemm_gflops']:.0f}")
    return rows, peak


COLUMNS = [("name", "row", ""), ("shape", "product", ""),
           ("numba_gflops", "minitensor GFLOP/s", ".0f"), ("numba_peak", "of peak", ".0%"),
           ("gemm_gflops", "gemm GFLOP/s", ".0f"), ("gemm_peak", "of peak", ".0%"),
           ("numpy_gflops", "np.matmul GFLOP/s", ".0f"), ("numpy_peak", "of peak", ".0%"),
           ("torch_gflops", "torch GFLOP/s", ".0f"), ("torch_peak", "of peak", ".0%"),
           ("ours_vs_best", "ours / best other", ".2f"),
           ("gemm_vs_ours", "gemm / ours", ".2f"), ("gemm_vs_best", "gemm / best other", ".2f")]


def main(argv=None) -> None:
    p = argparse.ArgumentParser(prog="python -m bench.matmul_shapes")
    p.add_argument("--configs", nargs="+", default=["S", "M", "dates"])
    p.add_argument("--threads", type=int, nargs="+", default=[2])
    p.add_argument("--repeat", type=int, default=7)
    p.add_argument("--no-torch", action="store_true")
    a = p.parse_args(argv)
    if a.no_torch:
        harness.disable_torch()
    harness.configure_threads(a.threads[0])
    torch = harness.try_import_torch()
    settings = harness.Settings(repeat=a.repeat)
    print(harness.format_header(harness.environment()) + "\n", flush=True)
    for threads in a.threads:
        harness.configure_threads(threads)
        rows, peak = run(a.configs, settings, torch, log=lambda s: print(s, flush=True))
        print(f"\nTraining-step matmuls, float32, {threads} thread(s); peak = {peak:.0f} GFLOP/s "
              f"(probed: best of np.matmul / torch.matmul at {PEAK_N}^3)\n")
        print(harness.format_table(rows, COLUMNS), flush=True)


if __name__ == "__main__":
    main()
