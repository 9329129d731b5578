"""The fair protocol: each library in its own process, as its users run it, alternated.

    for round in 1..rounds:                   (>= 5 for a reported table)
        for variant in variants (rotated by one each round):
            a fresh `python -m bench.<module> --child ...` process, in the user's
            environment plus only the variant's own settings; it warms up, times
            `steps` training steps and prints one JSON line (median step, peak RSS, ...)
    per variant: the median over rounds of the per-process medians, and the min-max spread

Variants of a training step (``e2e.py`` builds the models):

    minitensor         the numba backend, threads through ``kernels.threads(n)`` (its one
                       documented thread control); nothing process-wide is changed
    minitensor+tune    the same with MINITENSOR_TUNE_PROCESS=1 (the opt-in
                       ``kernels.tune_process()``: Numba's workqueue layer + glibc malloc),
                       shown so the cost of not tuning the process is visible
    torch              ``torch.set_num_threads(n)`` only, OpenMP's default wait policy
    torch PASSIVE      the same with OMP_WAIT_POLICY=PASSIVE set for that process only

The reference for the ratio is the faster of the two torch variants (the table names it).
No process ever imports the other library. The environment a child starts from is the
bench's own, minus the variables a variant controls (OMP_WAIT_POLICY,
MINITENSOR_TUNE_PROCESS): a user of either library would not have the other's settings.
"""
from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONTROLLED = ("OMP_WAIT_POLICY", "MINITENSOR_TUNE_PROCESS")


def child_env(extra: dict) -> dict:
    """The bench's environment without the controlled variables, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if k not in CONTROLLED}
    env["PYTHONPATH"] = ROOT + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env.update(extra)
    return env


def spawn(module: str, args: list, extra_env: dict, timeout: float = 1800) -> dict:
    """Run ``python -m <module> <args>`` in a fresh process; its last stdout line as JSON."""
    res = subprocess.run([sys.executable, "-m", module, *args], cwd=ROOT,
                         env=child_env(extra_env), capture_output=True, text=True,
                         timeout=timeout)
    if res.returncode != 0:
        tail = res.stderr.strip().splitlines()[-3:] or ["(no stderr)"]
        raise RuntimeError(f"{module} {' '.join(args)} failed: {' | '.join(tail)}")
    return json.loads(res.stdout.strip().splitlines()[-1])


def alternate(variants: dict, rounds: int, log=print) -> dict:
    """``variants``: name -> (module, args, extra_env). Runs every variant once per round,
    the order rotated each round; name -> list of child results (one per round)."""
    names = list(variants)
    results = {n: [] for n in names}
    for r in range(rounds):
        order = names[r % len(names):] + names[:r % len(names)]
        for name in order:
            module, args, extra = variants[name]
            out = spawn(module, args, extra)
            results[name].append(out)
            log(f"    round {r + 1}/{rounds} {name}: {out['median_ms']:.1f} ms")
    return results


def summary(runs: list) -> dict:
    """Median over processes of each process's median step, and the min-max spread."""
    medians = [r["median_ms"] for r in runs]
    return {"median_ms": statistics.median(medians), "min_ms": min(medians),
            "max_ms": max(medians), "process_medians_ms": medians,
            "peak_rss_mb": statistics.median(r["peak_rss_mb"] for r in runs),
            "step_rss_mb": statistics.median(r["step_rss_mb"] for r in runs), "runs": runs}


def spread(s: dict) -> str:
    """'72.1 (69.8-77.0)' for a table cell."""
    return f"{s['median_ms']:.1f} ({s['min_ms']:.1f}-{s['max_ms']:.1f})"


PROTOCOL = ("each library in its own process (never both in one), user's environment "
            "(torch: torch.set_num_threads(n) only; minitensor: kernels.threads(n), nothing "
            "process-wide); same threads; processes alternated, order rotated each round; "
            "median over processes of each process's median step, (min-max) over processes; "
            "torch under OMP default and OMP_WAIT_POLICY=PASSIVE (that process only), the "
            "faster is the reference")
