"""What the profiler's hooks cost: one training step with profiling off, without the
hook at all, and with profiling on.

    python -m bench.profiler_overhead [--quick] [--steps-per-run N]

Rows (medians of interleaved runs, ``harness.compare``), one encoder-decoder training
step of ``transformer``'s "tiny" reverse task (forward, backward, clip, AdamW):

    off         the engine as shipped: ``Function.apply`` and the backward loop test
                ``autograd._observers`` once per op and see it empty
    no hook     ``Function.apply`` replaced by the same code without the test (the
                engine before the profiler); the backward loop keeps its one test per
                node, the same cost as in forward
    profiling   inside ``profiler.profile()`` (every op timed, costed and recorded)

"off / no hook" is the price of having a profiler; "profiling / off" its price when used.
"""
from __future__ import annotations

import argparse
import sys

import numpy as np

from . import harness


def _apply_without_hook(cls, *inputs, **attrs):
    """``Function.apply`` as it was before observers: no ``_observers`` test."""
    from minitensor import autograd, grad_mode
    requires_grad = grad_mode.is_grad_enabled() and any([t._requires_grad for t in inputs])
    ctx = autograd.Context(cls, inputs, requires_grad)
    anomaly = grad_mode.is_anomaly_enabled()
    if anomaly:
        ctx.created_at = autograd._user_code_location()
    with np.errstate(**autograd._QUIET):
        out = cls.forward(ctx, *[t._data for t in inputs], **attrs)
    return autograd._wrap(cls, ctx, inputs, out, requires_grad, anomaly)


def make_step(steps_per_run: int):
    from minitensor import autograd, profiler
    from transformer.config import resolve_configs
    from transformer.trainer import Trainer

    opts = dict(n_train=256, n_val=16, n_test=16, eval_examples=16, batch_size=32,
                progress=False, plots=False, threads=harness.THREADS)
    cfg, model_over = resolve_configs("reverse", "tiny", opts, {"dropout": 0.1})
    trainer = Trainer(cfg, model_over, "/tmp/minitensor-bench-profiler", log=None)
    batch = trainer.stream.next()
    shipped = autograd.Function.__dict__["apply"]
    roof = profiler.Roofline(1e11, 1e10, "bench: not used for timing")

    def steps():
        for _ in range(steps_per_run):
            trainer.train_step(batch)

    def no_hook():
        autograd.Function.apply = classmethod(_apply_without_hook)
        try:
            steps()
        finally:
            autograd.Function.apply = shipped

    def profiling():
        with profiler.profile(roofline=roof):
            steps()
    return {"off": steps, "no hook": no_hook, "profiling": profiling}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--steps-per-run", type=int, default=3)
    args = parser.parse_args(argv)
    harness.configure_threads()
    settings = harness.QUICK if args.quick else harness.FULL
    timings = harness.compare(make_step(args.steps_per_run), settings)
    per_step = {name: t.median / args.steps_per_run * 1e3 for name, t in timings.items()}
    print(harness.format_header(harness.environment()))
    print(f"{'mode':<10} {'ms/step':>9} {'vs no hook':>11}")
    for name, ms in per_step.items():
        print(f"{name:<10} {ms:9.2f} {ms / per_step['no hook']:11.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
