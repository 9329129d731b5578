"""Time to quality: wall time until the default task (dates, small preset) reaches 99%
validation exact match, minitensor against PyTorch, fair protocol.

    python -m bench.time_to_quality [--seeds 0 1 2] [--threads 2] [--target 0.99]
                                    [--eval-every 50] [--steps N]

Each run is its own process (``protocol.spawn``): ours is ``--child ours`` here, PyTorch's
is ``bench/time_to_quality_torch.py`` (``torch.set_num_threads(n)`` only, tried under
OpenMP's default wait policy: one policy, to keep the run short; the e2e rows show how
much the other one changes). Seeds alternate between the two libraries (ours seed 0,
torch seed 0, ours seed 1, ...). Reported per library: the median over seeds of the
seconds to target, with the min-max, and the steps it took.

Both sides do the same work and nothing else: the trainer's batches, step (forward,
label-smoothed loss, backward, clipping at 1.0, the schedule's lr, AdamW), and every
``eval_every`` steps greedy decoding of the first 500 validation examples and their exact
match (no checkpoints, logs, validation loss or BLEU on either side). The clock starts
after the data and the model are built, and stops at the first evaluation >= target.
Ours runs through ``Trainer`` (built exactly as ``python -m transformer train`` builds
it) with ``kernels.threads(n)``; nothing process-wide is changed.

Run time: on an idle 2-core machine, the small preset reaches 99% in a few hundred steps;
3 seeds x 2 libraries is roughly 10-20 minutes.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time

from . import protocol
from .harness import cpu_model


def child_ours(seed: int, threads: int, target: float, eval_every: int, steps: int | None) -> dict:
    import minitensor as mt
    from minitensor import kernels
    from transformer.trainer import Trainer

    from .time_to_quality_torch import _configs
    t_start = time.perf_counter()
    cfg, model_over = _configs(seed, target, eval_every, steps)
    cfg.threads = threads
    with tempfile.TemporaryDirectory() as run_dir:
        trainer = Trainer(cfg, model_over, run_dir, log=None)
        problem, model = trainer.problem, trainer.model
        val = problem.splits.val[:cfg.eval_examples]
        score, evals = 0.0, 0
        with kernels.threads(threads):
            t0 = time.perf_counter()
            while trainer.step < cfg.steps:
                trainer.train_step(trainer.stream.next())
                if trainer.step % cfg.eval_every == 0 or trainer.step == cfg.steps:
                    model.eval()
                    with mt.no_grad():
                        preds = problem.decode(model, [s for s, _ in val])
                    model.train()
                    score = sum(p == t for p, (_, t) in zip(preds, val)) / len(val)
                    evals += 1
                    if score >= target:
                        break
            end = time.perf_counter()
    return {"lib": "minitensor", "seed": seed, "threads": threads, "seconds": end - t0,
            "setup_s": t0 - t_start, "steps": trainer.step, "evaluations": evals,
            "exact_match": score, "reached": score >= target}


def _args(seed, a) -> list:
    out = ["--seed", str(seed), "--threads", str(a.threads), "--target", str(a.target),
           "--eval-every", str(a.eval_every)]
    return out + (["--steps", str(a.steps)] if a.steps else [])


def _summary(runs: list) -> dict:
    secs = [r["seconds"] for r in runs]
    return {"median_s": statistics.median(secs), "min_s": min(secs), "max_s": max(secs),
            "steps": [r["steps"] for r in runs], "reached": [r["reached"] for r in runs],
            "runs": runs}


def main(argv=None) -> None:
    p = argparse.ArgumentParser(prog="python -m bench.time_to_quality")
    p.add_argument("--child", choices=["ours"])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--target", type=float, default=0.99)
    p.add_argument("--eval-every", type=int, default=50)
    p.add_argument("--steps", type=int, default=None, help="cap (default: the preset's 2500)")
    p.add_argument("--no-torch", action="store_true")
    a = p.parse_args(argv)
    if a.child:
        print(json.dumps(child_ours(a.seed, a.threads, a.target, a.eval_every, a.steps)))
        return
    print(f"CPU {cpu_model()} ({os.cpu_count()} cores); dates/small, target {a.target} "
          f"validation exact match, eval every {a.eval_every} steps, {a.threads} thread(s), "
          f"seeds {a.seeds}\nprotocol: each run its own process, libraries alternated per "
          f"seed, median over seeds (min-max)", flush=True)
    runs = {"minitensor": [], "torch": []}
    for seed in a.seeds:
        runs["minitensor"].append(protocol.spawn("bench.time_to_quality",
                                                 ["--child", "ours", *_args(seed, a)], {}))
        print(f"  seed {seed} minitensor: {json.dumps(runs['minitensor'][-1])}", flush=True)
        if not a.no_torch:
            runs["torch"].append(protocol.spawn("bench.time_to_quality_torch", _args(seed, a), {}))
            print(f"  seed {seed} torch:      {json.dumps(runs['torch'][-1])}", flush=True)
    out = {k: _summary(v) for k, v in runs.items() if v}
    for k, s in out.items():
        print(f"{k:<11} {s['median_s']:.1f} s ({s['min_s']:.1f}-{s['max_s']:.1f}) to "
              f"{a.target:.0%}; steps {s['steps']}; reached {s['reached']}")
    if "torch" in out:
        print(f"torch / minitensor time: {out['torch']['median_s'] / out['minitensor']['median_s']:.2f}")
    print(json.dumps({"summary": {k: {x: y for x, y in s.items() if x != 'runs'}
                                  for k, s in out.items()}}))


if __name__ == "__main__":
    main()
