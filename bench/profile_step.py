"""Where one training step's time goes: per-op timing and a cProfile of the step.

    python -m bench.profile_step [--config S] [--threads 2] [--steps 20] [--cprofile]

Runs in its own process (minitensor only, nothing process-wide changed), warms up, then
times ``steps`` steps with every registered op's ``forward`` and ``backward`` wrapped in
a timer (wrapped here, in the bench: the library is not changed). Prints:

    - per op: calls per step, ms per step in forward and in backward;
    - per category: matmul (MatMul, Linear, LinearActivation), attention (Attention), optimizer (Adam's
      step), elementwise and rows (every other op: layer norm, dropout, relu,
      cross-entropy, embedding, add, reshape, ...), and the rest of the step: "Python
      overhead" (graph building, the engine's walk, gradient accumulation, zero_grad),
      measured as step time - the three above;
    - page faults per step (ru_minflt): each is a first write to a fresh 4 KiB page,
      ~1.5 us with the zeroing; the buffer pool (minitensor.kernels.buffers) exists to
      keep this near 0 (MINITENSOR_BUFFER_POOL=0 shows the step without it);
    - with --cprofile, the top functions of a cProfile of the same steps (cProfile
      itself slows Python-heavy code: read its shares, not its times).

The timers cost ~1 us per op call; the step time printed is measured with them on.
"""
from __future__ import annotations

import argparse
import cProfile
import pstats
import statistics
import time
from collections import defaultdict

from . import e2e

# LinearActivation is linear1 of the feed-forward block with its bias, ReLU and dropout
# fused in: counted as matmul (its product is most of its time).
CATEGORIES = {"MatMul": "matmul", "Linear": "matmul", "LinearActivation": "matmul",
              "Attention": "attention"}


def _wrap_ops(totals: dict) -> list:
    """Replace every registered op's forward/backward by a timed version; returns what
    to put back: (class, name, original staticmethod)."""
    from minitensor.ops.registry import REGISTRY
    originals = []

    def timed(name, kind, fn):
        def wrapper(*args, **kwargs):
            t0 = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                entry = totals[(name, kind)]
                entry[0] += 1
                entry[1] += time.perf_counter() - t0
        return staticmethod(wrapper)

    for name, cls in REGISTRY.items():
        for kind in ("forward", "backward"):
            if kind in vars(cls):
                originals.append((cls, kind, vars(cls)[kind]))
                setattr(cls, kind, timed(name, kind, vars(cls)[kind].__func__))
    return originals


def profile(config: str, threads: int, steps: int, warmup: int = 3, use_cprofile: bool = False):
    from minitensor import kernels, optim

    totals = defaultdict(lambda: [0, 0.0])
    opt_time = [0.0]
    adam_step = optim.Adam.step

    def timed_step(self, *a, **k):
        t0 = time.perf_counter()
        try:
            return adam_step(self, *a, **k)
        finally:
            opt_time[0] += time.perf_counter() - t0

    with kernels.threads(threads):
        _, step = e2e.build_ours(e2e.CONFIGS[config])
        for _ in range(warmup):
            step("numba")
        originals = _wrap_ops(totals)
        optim.Adam.step = timed_step
        times = []
        prof = cProfile.Profile() if use_cprofile else None
        faults_before = _minor_faults()
        try:
            for _ in range(steps):
                t0 = time.perf_counter()
                if prof:
                    prof.enable()
                step("numba")
                if prof:
                    prof.disable()
                times.append(time.perf_counter() - t0)
        finally:
            optim.Adam.step = adam_step
            for cls, kind, original in originals:
                setattr(cls, kind, original)
    faults = (_minor_faults() - faults_before) / steps
    return times, dict(totals), opt_time[0], prof, faults


def _minor_faults() -> int:
    """This process's page faults so far that needed no disk (a fresh page's first touch)."""
    import resource
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


def buffers_enabled() -> bool:
    from minitensor.kernels import buffers
    return buffers.enabled()


def report(config: str, threads: int, steps: int, times, totals, opt_time, prof,
           faults: float) -> str:
    total = sum(times)
    step_ms = statistics.median(times) * 1e3
    per_step = lambda s: s / steps * 1e3  # noqa: E731
    lines = [f"config {config} ({e2e.CONFIGS[config].describe()}), {threads} thread(s), "
             f"{steps} steps: median step {step_ms:.1f} ms (mean {per_step(total):.1f})",
             "", f"{'op':<14}{'calls/step':>11}{'fwd ms':>9}{'bwd ms':>9}{'share':>8}"]
    by_op = defaultdict(lambda: [0, 0.0, 0.0])
    for (name, kind), (calls, sec) in totals.items():
        e = by_op[name]
        if kind == "forward":
            e[0] += calls
        e[1 if kind == "forward" else 2] += sec
    cats = defaultdict(float)
    for name, (calls, f, b) in sorted(by_op.items(), key=lambda kv: -(kv[1][1] + kv[1][2])):
        lines.append(f"{name:<14}{calls / steps:>11.1f}{per_step(f):>9.2f}{per_step(b):>9.2f}"
                     f"{(f + b) / total:>8.1%}")
        cats[CATEGORIES.get(name, "elementwise and rows")] += f + b
    cats["optimizer (Adam.step)"] = opt_time
    cats["Python overhead (graph, engine, rest)"] = total - sum(cats.values())
    lines += ["", f"{'category':<40}{'ms/step':>9}{'share':>8}"]
    for name, sec in cats.items():
        lines.append(f"{name:<40}{per_step(sec):>9.2f}{sec / total:>8.1%}")
    n_ops = sum(e[0] for e in by_op.values()) / steps
    lines.append(f"\n{n_ops:.0f} op calls (graph nodes) per step; Python overhead per op "
                 f"{per_step(cats['Python overhead (graph, engine, rest)']) / n_ops * 1e3:.1f} us")
    lines.append(f"{faults:.0f} page faults per step (first touches of fresh memory; "
                 f"buffer pool {'on' if buffers_enabled() else 'off'})")
    if prof:
        import io
        out = io.StringIO()
        pstats.Stats(prof, stream=out).sort_stats("tottime").print_stats(25)
        lines += ["", "cProfile, top 25 by own time (all steps):", out.getvalue()]
    return "\n".join(lines)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(prog="python -m bench.profile_step")
    p.add_argument("--config", default="S", choices=sorted(e2e.CONFIGS))
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--cprofile", action="store_true")
    a = p.parse_args(argv)
    res = profile(a.config, a.threads, a.steps, use_cprofile=a.cprofile)
    print(report(a.config, a.threads, a.steps, *res))


if __name__ == "__main__":
    main()
