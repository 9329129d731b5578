"""``python -m bench [--quick] [--only kernels|e2e|cold] [--json PATH] [--unset-openblas-env]``
``python -m bench --render bench/results/latest.json``  (markdown tables of a saved run)

Prints the environment header, then one table per section (kernels, attention memory,
end-to-end training step, cold start), and writes the same numbers as JSON: a full run
(all sections, not --quick) to bench/results/latest.json, other runs to
latest-quick.json, latest-partial.json or latest-quick-partial.json beside it (so a
quick look never replaces the full table), plus ``--json PATH`` when given. Writes are
atomic.
"""
from __future__ import annotations

import argparse
import gc
import json
import os
import sys
import time

from . import cold_start, e2e, harness, kernels

RESULTS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")
SECTIONS = ("kernels", "e2e", "cold")


def parse_args(argv: list) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[1])
    p.add_argument("--quick", action="store_true",
                   help="fewer repetitions, small shapes only, config S only (~1 min)")
    p.add_argument("--only", action="append", choices=SECTIONS,
                   help="run only this section (repeatable)")
    p.add_argument("--json", metavar="PATH", help="also write the results to PATH")
    p.add_argument("--threads", type=int, nargs="+", default=[harness.THREADS, 1],
                   help="thread counts, the same for every library: e2e rows at each, "
                        "kernel rows at the first (default: 2 1)")
    p.add_argument("--no-torch", action="store_true", help="leave the PyTorch columns empty")
    p.add_argument("--render", metavar="JSON",
                   help="run nothing: print a results file as markdown tables (for README)")
    p.add_argument("--unset-openblas-env", action="store_true",
                   help="re-run the bench without OPENBLAS_CORETYPE/OPENBLAS_L2_SIZE "
                        "(the header says so)")
    return p.parse_args(argv)


def maybe_reexec_without_openblas_env(argv: list) -> None:
    """OpenBLAS reads its variables when it loads, so removing them needs a new process."""
    if os.environ.get(harness.REEXEC_MARK):
        return  # this is the re-exec'd process
    removed = {k: os.environ[k] for k in harness.OPENBLAS_VARS if k in os.environ}
    if not removed:
        print("--unset-openblas-env: none of the variables is set; running as is")
        return
    env = {k: v for k, v in os.environ.items() if k not in removed}
    env[harness.REEXEC_MARK] = json.dumps(removed)
    sys.stdout.flush()
    os.execve(sys.executable, [sys.executable, "-m", "bench", *argv], env)


def _init_threading_layer() -> None:
    """Run one tiny parallel kernel so the header can name Numba's threading layer."""
    import numpy as np
    try:
        from minitensor.kernels import numba_cpu
        numba_cpu.softmax_forward(np.zeros((2, 2), np.float32))
    except Exception:  # the header then says "not yet chosen"; the rows report errors
        pass


def run_all(settings: harness.Settings, sections=SECTIONS, torch=None, log=print,
            thread_counts=(harness.THREADS, 1)) -> dict:
    """Run ``sections``; returns {"env", "settings", "rows": {section: [...]}, ...}."""
    env = harness.environment()
    results = {"env": env, "settings": vars(settings).copy(), "rows": {}}
    t0 = time.perf_counter()
    if "kernels" in sections:
        log("kernels:")
        results["rows"]["kernels"] = kernels.run(settings, torch, log)
        if settings.size != "quick":
            log("attention memory:")
            results["rows"]["memory"] = kernels.attention_memory(settings.size)
    if "e2e" in sections:
        log("end-to-end training step:")
        results["rows"]["e2e"] = e2e.run(settings, torch, log, thread_counts)
    if "cold" in sections:
        log("cold start (subprocesses):")
        results["rows"]["cold"] = cold_start.run(settings, log, thread_counts=thread_counts)
    results["wall_s"] = time.perf_counter() - t0
    results["env"] = harness.environment()  # threading layer is known now
    results["env"]["loadavg_1min_at_start"] = env["loadavg_1min"]
    results["env"]["date"] = env["date"]
    return results


TABLES = (("kernels", "Kernels (float32; median ms; ratios are other/numba time, >1 = numba faster)",
           kernels.KERNEL_COLUMNS),
          ("memory", "Attention memory at T=512 (peak extra MB)", kernels.MEMORY_COLUMNS),
          ("e2e", "End-to-end training step (forward + backward + Adam), fair protocol: "
                  "median ms (min-max over processes); torch/minitensor > 1 = minitensor faster",
           e2e.E2E_COLUMNS),
          ("e2e", "Peak RSS of the steady training steps (fair protocol, VmHWM reset after "
                  "warm-up; '+MB' = over the RSS before the steps)", e2e.MEMORY_COLUMNS),
          ("cold", "Cold start (subprocesses)", cold_start.COLD_COLUMNS))


def render(results: dict, markdown: bool = False) -> str:
    """Header and every table present in ``results``."""
    fmt = harness.format_markdown if markdown else harness.format_table
    header = harness.format_header(results["env"])
    parts = [f"```\n{header}\n```" if markdown else header]
    for key, title, columns in TABLES:
        rows = results["rows"].get(key)
        if rows:
            title = f"**{title}**\n" if markdown else title
            parts.append(f"{title}\n{fmt(rows, columns)}{_notes(rows)}")
    return "\n\n".join(parts)


def _notes(rows: list) -> str:
    lines = [f"  note: {r['name']} {r.get('shape', '')}: {n}"
             for r in rows for n in r.get("notes", [])]
    lines += [f"  ERROR: {r['name']} {r.get('shape', '')}: {r['error']}"
              for r in rows if r.get("error")]
    return "\n" + "\n".join(lines) if lines else ""


def main(argv: list | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    if args.render:
        with open(args.render) as f:
            print(render(json.load(f), markdown=True))
        return 0
    if args.unset_openblas_env:
        maybe_reexec_without_openblas_env(argv)
    settings = harness.QUICK if args.quick else harness.FULL
    sections = tuple(args.only) if args.only else SECTIONS
    if args.no_torch:
        harness.disable_torch()
    harness.configure_threads(args.threads[0])  # imports torch itself, in the right order
    torch = harness.try_import_torch()
    _init_threading_layer()
    gc.freeze()  # import-time objects (numba, torch) leave the collector's scans: cheap GCs
    print(harness.format_header(harness.environment()) + "\n", flush=True)
    t0 = time.perf_counter()
    results = run_all(settings, sections, torch, log=lambda s: print(s, flush=True),
                      thread_counts=tuple(args.threads))
    results["argv"] = argv
    results["total_wall_s"] = time.perf_counter() - t0
    print("\n" + render(results))
    print(f"\nwall time {results['total_wall_s']:.1f} s")
    _write(results, args, sections)
    return 0


def _write(results: dict, args, sections) -> None:
    # only a complete full run may replace latest.json (the table the README quotes)
    partial = set(sections) != set(SECTIONS)
    name = "latest" + ("-quick" if args.quick else "") + ("-partial" if partial else "") + ".json"
    paths = [os.path.join(RESULTS_DIR, name)] + ([args.json] if args.json else [])
    for path in paths:
        harness.write_json_atomic(path, results)
        print(f"wrote {path}")


if __name__ == "__main__":
    sys.exit(main())
