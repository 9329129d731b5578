"""What one tiny op costs in Python: the engine's dispatch overhead, in µs per op.

    python -m bench.dispatch [--quick] [--before REV] [--rounds N] [--json PATH]

A chain of ops on (4, 8) float32 tensors, so small that the arithmetic is a fraction of a
µs and what is left is the engine: ``Function.apply``, the graph node, Tensor creation,
saved-version checks, the backward walk, gradient accumulation, module calls.

Rows (µs per op, or per the unit the row names; medians of interleaved runs, timed as
``harness.compare`` does, with this process's CPU time unless ``--wall``):

    numpy floor            the same chain on bare ndarrays: the arithmetic itself
    Function.apply         ``Add.apply(x, b)`` directly, grad off: the engine alone
    forward, no_grad       ``(x * w + b).tanh().reshape(...)``, operators, under no_grad
                           (operators add the functional layer's checks to the engine)
    forward, grad          the same with a ``w`` that requires grad: a graph is built
    forward + backward     the same, then ``.sum().backward()``; per op of the chain
    backward (difference)  (forward + backward) - (forward, grad), per graph node
    Linear call, no_grad   ``nn.Linear(8, 8)(x)``, µs per module call
    zero_grad (Module)     ``Module.zero_grad()`` on 8 Linear layers, µs per parameter

With ``--before REV`` the package ``minitensor/`` at git revision REV is exported to a
temporary directory and both trees are measured in their own processes, alternated
``--rounds`` times (order rotated each round); the table shows each tree's median over
processes and before/after. Both run with ``MINITENSOR_BACKEND=numpy`` (an exported tree
has no Numba cache, and these ops do not use the kernels: ``Linear`` does, hence the
NumPy backend for both).
"""
from __future__ import annotations

import argparse
import gc
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time

from . import harness

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CHAIN = 16  # repetitions of the 4-op block below: 64 ops per call
OPS_PER_BLOCK = 4
SHAPE = (4, 8)

COLUMNS = [("name", "row", ""), ("unit", "unit", ""), ("us", "µs", ".2f"),
           ("before_us", "before µs", ".2f"), ("after_us", "after µs", ".2f"),
           ("speedup", "before/after", ".2f"), ("spread", "after (min-max)", "")]


def _cases() -> dict:
    """name -> (callable, divisor, unit): one call of the callable does ``divisor`` units."""
    import numpy as np

    import minitensor as mt
    from minitensor import nn
    from minitensor.ops.elementwise import Add

    rng = np.random.default_rng(0)
    x_np = rng.standard_normal(SHAPE).astype(np.float32)
    w_np = rng.standard_normal(SHAPE).astype(np.float32)
    b_np = rng.standard_normal(SHAPE).astype(np.float32)
    x = mt.tensor(x_np)
    b = mt.tensor(b_np)
    w_param = mt.tensor(w_np, requires_grad=True)
    n_ops = CHAIN * OPS_PER_BLOCK

    def numpy_floor():
        h = x_np
        for _ in range(CHAIN):
            h = np.tanh(h * w_np + b_np).reshape(SHAPE)
        return h

    def chain(w):
        h = x
        for _ in range(CHAIN):
            h = (h * w + b).tanh().reshape(*SHAPE)
        return h

    def apply_only():
        h = x
        for _ in range(n_ops):
            h = Add.apply(h, b)
        return h

    def forward_no_grad():
        with mt.no_grad():
            return chain(w_param)

    def forward_grad():
        return chain(w_param)

    def forward_backward():
        chain(w_param).sum().backward()
        w_param.grad = None

    linear = nn.Linear(SHAPE[1], SHAPE[1])
    model = nn.Sequential(*[nn.Linear(SHAPE[1], SHAPE[1]) for _ in range(8)])
    n_params = len(list(model.parameters()))

    def linear_call():
        with mt.no_grad():
            for _ in range(n_ops):
                linear(x)

    params = list(model.parameters())
    grads = [mt.zeros_like(p) for p in params]

    def zero_grad():
        for p, g in zip(params, grads):  # a gradient to clear, as after a backward
            p.grad = g
        model.zero_grad()

    return {
        "numpy floor": (numpy_floor, n_ops, "op"),
        "Function.apply": (apply_only, n_ops, "op"),
        "forward, no_grad": (forward_no_grad, n_ops, "op"),
        "forward, grad": (forward_grad, n_ops, "op"),
        "forward + backward": (forward_backward, n_ops + 1, "op"),
        "Linear call, no_grad": (linear_call, n_ops, "call"),
        "zero_grad (Module)": (zero_grad, n_params, "param"),
    }


def _compare(fns: dict, settings: harness.Settings, clock) -> dict:
    """``harness.compare``'s protocol (warm-up, calls per run calibrated to
    ``min_run_time``, runs interleaved, garbage collector off inside a run) timed with
    ``clock``: ``time.perf_counter`` (wall) or ``time.process_time`` (this process's CPU
    time, which leaves out the time other processes held the core: these rows are
    single-threaded, so on a shared machine it is the steadier measure)."""
    def run(fn, number):
        gc.disable()
        try:
            t0 = clock()
            for _ in range(number):
                fn()
            return (clock() - t0) / number
        finally:
            gc.enable()

    numbers = {}
    for name, fn in fns.items():
        for _ in range(settings.warmup):
            fn()
        once = run(fn, 1)
        numbers[name] = max(1, min(10_000, math.ceil(settings.min_run_time / max(once, 1e-7))))
    timings = {name: harness.Timing(number=n) for name, n in numbers.items()}
    for _ in range(settings.repeat):
        for name, fn in fns.items():
            gc.collect(1)
            timings[name].runs.append(run(fn, numbers[name]))
    return timings


def measure(settings: harness.Settings, cpu_time: bool = False) -> list:
    """The rows of this process's tree: µs per unit, median and min-max over runs."""
    cases = _cases()
    fns = {name: fn for name, (fn, _, _) in cases.items()}
    timings = _compare(fns, settings, time.process_time if cpu_time else time.perf_counter)
    rows = []
    for name, (_, divisor, unit) in cases.items():
        t = timings[name]
        rows.append({"name": name, "unit": unit, "us": t.median / divisor * 1e6,
                     "min_us": t.min / divisor * 1e6,
                     "max_us": max(t.runs) / divisor * 1e6})
    # The backward walk alone: (forward + backward) - (forward, grad), per graph node.
    nodes = cases["forward + backward"][1]
    backward = timings["forward + backward"].median - timings["forward, grad"].median
    rows.insert(5, {"name": "backward (difference)", "unit": "node",
                    "us": backward / nodes * 1e6, "min_us": None, "max_us": None})
    return rows


def _export(rev: str, into: str) -> str:
    """``minitensor/`` at git revision ``rev``, extracted under ``into``."""
    archive = subprocess.run(["git", "-C", ROOT, "archive", rev, "minitensor"],
                             capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", into], input=archive, check=True)
    return into


def _child(source: str, quick: bool, wall: bool) -> dict:
    env = dict(os.environ, MINITENSOR_BACKEND="numpy")
    env["PYTHONPATH"] = ROOT + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    args = [sys.executable, "-m", "bench.dispatch", "--child", "--source", source]
    args += (["--quick"] if quick else []) + (["--wall"] if wall else [])
    res = subprocess.run(args, cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=1800)
    if res.returncode != 0:
        raise RuntimeError(f"bench.dispatch child ({source}) failed:\n{res.stderr[-2000:]}")
    return json.loads(res.stdout.strip().splitlines()[-1])


def compare_trees(rev: str, rounds: int, quick: bool, wall: bool, log=print) -> list:
    """Rows with before (REV) and after (this tree), each tree in its own processes."""
    with tempfile.TemporaryDirectory(prefix="minitensor-before-") as tmp:
        trees = {"before": _export(rev, tmp), "after": ROOT}
        runs = {"before": [], "after": []}
        names = list(trees)
        for r in range(rounds):
            for name in names[r % 2:] + names[:r % 2]:
                runs[name].append(_child(trees[name], quick, wall))
                log(f"    round {r + 1}/{rounds} {name}: done")
    rows = []
    for i, row in enumerate(runs["after"][0]["rows"]):
        before = [run["rows"][i]["us"] for run in runs["before"]]
        after = [run["rows"][i]["us"] for run in runs["after"]]
        b, a = statistics.median(before), statistics.median(after)
        rows.append({"name": row["name"], "unit": row["unit"], "before_us": b, "after_us": a,
                     "speedup": harness.ratio(b, a),
                     "spread": f"{min(after):.2f}-{max(after):.2f}"})
    return rows


def main(argv: list | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m bench.dispatch",
                                description="µs per tiny op: the engine's Python overhead")
    p.add_argument("--quick", action="store_true", help="fewer, shorter runs")
    p.add_argument("--before", metavar="REV",
                   help="also measure minitensor/ at this git revision (own processes)")
    p.add_argument("--rounds", type=int, default=5, help="processes per tree with --before")
    p.add_argument("--json", metavar="PATH", help="also write the rows to PATH")
    p.add_argument("--wall", action="store_true",
                   help="time with the wall clock (default: this process's CPU time)")
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--source", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    settings = harness.QUICK if args.quick else harness.Settings(repeat=9, min_run_time=0.1)

    if args.child:  # measure the tree at --source, print one JSON line
        sys.path.insert(0, args.source)
        import minitensor
        assert os.path.dirname(minitensor.__file__).startswith(os.path.abspath(args.source))
        print(json.dumps({"rows": measure(settings, cpu_time=not args.wall)}))
        return

    load_start = os.getloadavg()[0]
    if args.before:
        rows = compare_trees(args.before, args.rounds, args.quick, args.wall)
        columns = [c for c in COLUMNS if c[0] != "us"]
        protocol = (f"before = minitensor/ at {args.before}, after = this tree; each in its own "
                    f"process, {args.rounds} rounds alternated, MINITENSOR_BACKEND=numpy; "
                    "median over processes of each process's median")
    else:
        rows = measure(settings, cpu_time=not args.wall)
        for r in rows:
            if r["min_us"] is not None:
                r["spread"] = f"{r['min_us']:.2f}-{r['max_us']:.2f}"
        columns = [c for c in COLUMNS if c[0] in ("name", "unit", "us", "spread")]
        columns[-1] = ("spread", "min-max", "")
        import minitensor
        protocol = f"this process, backend {minitensor.kernels.backend_name()}"
    load_end = os.getloadavg()[0]
    print(f"CPU      {harness.cpu_model()} ({os.cpu_count()} cores)")
    print(f"load     1-min load average {load_start:.2f} at start, {load_end:.2f} at end "
          "(background load makes every number noisy; compare ratios from one run)")
    clock = "the wall clock (time.perf_counter)" if args.wall else \
        "this process's CPU time (time.process_time; --wall for the wall clock)"
    print(f"protocol {protocol}; timed with {clock}")
    print(f"chain    {CHAIN} x (mul, add, tanh, reshape) on {SHAPE} float32\n")
    print(harness.format_table(rows, columns))
    if args.json:
        harness.write_json_atomic(args.json, {"rows": rows, "protocol": protocol,
                                              "cpu": harness.cpu_model(),
                                              "load": [load_start, load_end]})


if __name__ == "__main__":
    main()
