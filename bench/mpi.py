"""``python -m bench.mpi``: what data parallelism over MPI costs and buys (issue 9).

For configs S and M of e2e.py (encoder-decoder, global batch 32, float32):

* **allreduce per step**: the gradient message (every parameter's gradient, one flat
  float32 buffer) and the time of what `transformer.distributed` does with it each step
  (the small float64 Allreduce of loss/weights/flags, then flatten + Allreduce(SUM) +
  unflatten of the gradients), on 2 ranks of this machine (shared memory);
* **step time**, one training step of the whole global batch (forward, backward, the
  gradient averaging, Adam), for 1 rank x 2 threads and 2 ranks x 1 thread (each rank
  half of the batch);
* a **model of k machines** from those numbers: step(k) = compute / k + ring allreduce,
  where a ring allreduce of n bytes over k machines moves 2 (k - 1) / k * n bytes per
  machine in 2 (k - 1) messages: t = 2 (k - 1) / k * n / bandwidth + 2 (k - 1) * latency,
  at 10 and 25 Gbit/s and 50 us per message (TCP on Ethernet).

The driver launches its workers as subprocesses (``mpiexec -n 2`` for the 2-rank one),
alternating them, and prints medians. Needs the `mpi` extra (mpi4py, mpich).

    python -m bench.mpi                 # S and M, 2 rounds (~2-4 min on 2 idle cores)
    python -m bench.mpi --configs S --rounds 1 --steps 3
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NETWORKS_GBIT = (10, 25)
LATENCY_S = 50e-6
MACHINES = (1, 2, 4, 8, 16)


# ---- the worker: runs on every rank --------------------------------------------------------


def worker(config: str, steps: int, threads: int) -> dict | None:
    """Time `steps` global steps and the gradient averaging; rank 0 returns the numbers."""
    import minitensor as mt
    from minitensor import functional as F
    from minitensor import kernels, optim
    from transformer import distributed

    from . import e2e

    cfg = e2e.CONFIGS[config]
    world = distributed.world(force=distributed.launched_world_size() > 1)
    mt.manual_seed(0)
    model = e2e.build_model(cfg)
    params = list(model.parameters())
    world.broadcast_parameters(params)
    opt = optim.Adam(params, lr=1e-4)
    src, tgt_in, tgt_out = e2e.make_batch(cfg)
    lo, hi = distributed.shard_bounds(cfg.batch, world.rank, world.size)
    src, tgt_in, tgt = src[lo:hi], tgt_in[lo:hi], mt.tensor(tgt_out[lo:hi].reshape(-1))
    weight = tgt.shape[0]

    def average() -> None:
        totals = world.reduce_step(0.0, weight, False, params)
        world.average_gradients(params, weight / totals.weight, totals.grad_ranks)

    def step() -> None:
        logits = model(src, tgt_in)                                        # (B/N, T, V)
        loss = F.cross_entropy(logits.reshape(-1, cfg.vocab), tgt)
        opt.zero_grad()
        loss.backward()
        average()
        opt.step()

    step_s, reduce_s = [], []
    with kernels.threads(threads):
        step()  # warm-up (kernel caches, allocator)
        for _ in range(steps):
            world.broadcast(None)  # start together: a step waits for the slowest rank anyway
            t0 = time.perf_counter()
            step()
            step_s.append(time.perf_counter() - t0)
        for _ in range(max(5, steps)):
            world.broadcast(None)
            t0 = time.perf_counter()
            average()
            reduce_s.append(time.perf_counter() - t0)
    if not world.is_writer:
        return None
    n = sum(p.data.size for p in params)
    return {"config": config, "ranks": world.size, "threads": threads, "params": int(n),
            "message_bytes": int(n * params[0].data.itemsize), "step_s": step_s, "reduce_s": reduce_s}


# ---- the driver -------------------------------------------------------------------------------


def _launch(config: str, ranks: int, threads: int, steps: int) -> dict:
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    cmd = [sys.executable, "-m", "bench.mpi", "--worker", config, "--threads", str(threads),
           "--steps", str(steps)]
    if ranks > 1:
        mpiexec = shutil.which("mpiexec")
        if mpiexec is None:
            raise SystemExit("error: mpiexec not found (pip install 'minitensor[mpi]')")
        cmd = [mpiexec, "-n", str(ranks), *cmd]
    out = subprocess.run(cmd, env=env, cwd=ROOT, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def ring_allreduce_s(nbytes: int, k: int, gbit: float, latency: float = LATENCY_S) -> float:
    """Time of a ring allreduce of `nbytes` over k machines (bandwidth term + latency term)."""
    if k == 1:
        return 0.0
    return 2 * (k - 1) / k * nbytes * 8 / (gbit * 1e9) + 2 * (k - 1) * latency


def report(rows: dict) -> str:
    med = lambda xs: float(np.median(xs)) * 1e3  # noqa: E731  (ms)
    lines = ["| config | params | message | allreduce step, 2 ranks (ms) | step 1 rank x 2 thr (ms) "
             "| step 2 ranks x 1 thr (ms) | 2x1 / 1x2 |", "|---|---:|---:|---:|---:|---:|---:|"]
    for config, r in rows.items():
        one, two = r[(1, 2)], r[(2, 1)]
        s1, s2 = med(one["step_s"]), med(two["step_s"])
        lines.append(f"| {config} | {one['params']:,} | {one['message_bytes'] / 2**20:.2f} MiB "
                     f"| {med(two['reduce_s']):.2f} | {s1:.0f} | {s2:.0f} | {s2 / s1:.2f} |")
    lines += ["", "Model of k machines (2 cores each), global batch 32: step(k) = compute(1 machine) / k"
              " + ring allreduce; compute = the 1 rank x 2 threads step.", ""]
    header = "| config | network | " + " | ".join(f"k={k}" for k in MACHINES) + " |"
    lines += [header, "|---|---|" + "---:|" * len(MACHINES)]
    for config, r in rows.items():
        one = r[(1, 2)]
        compute, nbytes = float(np.median(one["step_s"])), one["message_bytes"]
        for gbit in NETWORKS_GBIT:
            cells = []
            for k in MACHINES:
                t = compute / k + ring_allreduce_s(nbytes, k, gbit)
                cells.append(f"{t * 1e3:.0f} ms ({compute / t:.1f}x)")
            lines.append(f"| {config} | {gbit} Gbit/s | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.mpi", description=__doc__.split("\n\n")[0])
    p.add_argument("--configs", nargs="+", default=["S", "M"], choices=["S", "M", "toy"])
    p.add_argument("--rounds", type=int, default=2, help="alternations of the two layouts (default 2)")
    p.add_argument("--steps", type=int, default=5, help="timed steps per worker (default 5)")
    p.add_argument("--worker", metavar="CONFIG", help=argparse.SUPPRESS)
    p.add_argument("--threads", type=int, default=1, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        result = worker(args.worker, args.steps, args.threads)
        if result is not None:
            print(json.dumps(result), flush=True)
        return 0
    load = os.getloadavg()[0]
    print(f"bench.mpi on {os.cpu_count()} cores, 1-min load {load:.2f} at start"
          + (" (busy: the numbers are noisy)" if load > 0.5 else ""), flush=True)
    rows: dict = {}
    for config in args.configs:
        rows[config] = {}
        for _ in range(args.rounds):  # alternate, so background load hits both layouts alike
            for ranks, threads in ((1, 2), (2, 1)):
                r = _launch(config, ranks, threads, args.steps)
                acc = rows[config].setdefault((ranks, threads), r)
                if acc is not r:
                    acc["step_s"] += r["step_s"]
                    acc["reduce_s"] += r["reduce_s"]
    print(report(rows))
    print(f"\n1-min load {os.getloadavg()[0]:.2f} at the end")
    return 0


if __name__ == "__main__":
    sys.exit(main())
