"""``train --profile N``: where a training step's time goes, op by op.

After a few warm-up steps (Numba compiles its kernels on first use; BLAS starts its
threads), ``profile_training`` runs N ordinary training steps under
``minitensor.profiler.profile``, each inside a ``record_function("train_step")`` range,
then prints the per-op table and writes ``trace.json`` (Chrome trace format: open it in
https://ui.perfetto.dev) into the run directory. The range's *self* time is the step's
time outside any op: the optimizer update, gradient clipping, Python and data.

The profiled steps are real steps (the model trains), but nothing is checkpointed: this
measures, it does not replace a run.
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, TextIO

from minitensor import kernels, profiler

TRACE_FILE = "trace.json"
STEP_RANGE = "train_step"


def profile_training(trainer: Any, steps: int, warmup: int = 2, out: TextIO | str | None = "stdout",
                     row_limit: int = 25, roofline=None) -> tuple[profiler.profile, Path]:
    """Warm up, then profile ``steps`` training steps of ``trainer``.

    Args:
        trainer: a ``transformer.trainer.Trainer`` (its model, optimizer and batches).
        steps: how many steps to profile (>= 1).
        warmup: unprofiled steps first.
        out: where the table is printed: a stream, "stdout" (whatever sys.stdout is
            then), or None for nowhere.
        row_limit: rows of the table.
        roofline: a ``profiler.Roofline`` (default: this machine's, measured once and cached).
    Returns:
        (the profile, the path of the trace written in ``trainer.run_dir``).
    """
    if steps < 1:
        raise ValueError(f"profile_training: steps must be >= 1, got {steps}")
    with kernels.threads(trainer.world.threads(trainer.cfg.threads)):
        for _ in range(warmup):
            trainer.train_step(trainer.stream.next())
        with profiler.profile(roofline=roofline) as prof:
            for _ in range(steps):
                batch = trainer.stream.next()
                with profiler.record_function(STEP_RANGE):
                    trainer.train_step(batch)
    run_dir = Path(trainer.run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    trace = run_dir / TRACE_FILE
    prof.export_chrome_trace(trace)
    out = sys.stdout if out == "stdout" else out
    if out is not None:
        print(f"profile of {steps} training steps (after {warmup} warm-up steps):", file=out)
        print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=row_limit), file=out)
        print(f"trace: {trace} (open in https://ui.perfetto.dev)", file=out, flush=True)
    return prof, trace
