"""Cold-start rows, each measured in fresh subprocesses (a process's first call is the
only honest first call):

    import minitensor            `import minitensor` (Numba is not imported yet: the
                                 backend loads lazily), median of several processes
    load numba backend           the first kernels.get(): imports numba and the kernel
                                 modules (defining @njit functions compiles nothing)
    kernel first calls           every kernel row's numba thunk at toy sizes, float32,
                                 called twice; compile = sum(first) - sum(second). Once
                                 with an EMPTY cache (NUMBA_CACHE_DIR = a fresh temp dir)
                                 and once more with the same dir, now warm
    e2e first step               import minitensor + transformer, build the config-S
                                 model, one training step, then steady steps; with an
                                 empty cache and again warm. The headline number is
                                 warm import + first step - steady step (target < 2 s);
                                 model construction is reported apart, not included

A full run uses a fresh NUMBA_CACHE_DIR (empty, then warm); --quick and the smoke test
run each child once on the default cache instead (an empty-cache compile of every kernel
takes tens of seconds). Children run ``python -m bench.cold_start --child MODE`` and
print one JSON line; they inherit the parent's environment and thread count.
Only float32 signatures are compiled (float64 ones compile on first float64 use).
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TARGET_S = 2.0              # warm cache: import + first step - steady
FIRST_STEP_TARGET_S = 8.0   # empty cache: the first training step (issue 13)


# ----------------------------------------------------------------------------- children

def _child_import() -> dict:
    t0 = time.perf_counter()
    import minitensor  # noqa: F401
    t1 = time.perf_counter()
    from minitensor import kernels
    with kernels.use("numba"):
        kernels.get()
    t2 = time.perf_counter()
    return {"import_s": t1 - t0, "backend_s": t2 - t1}


def _child_kernels(size: str, only: list | None) -> dict:
    import numpy as np

    from minitensor import kernels
    from . import kernels as K
    kernels.set_backend("numba")
    mod = kernels.get()
    rng = np.random.default_rng(0)
    calls = []
    for case in K.cases(size):
        if (only and case.name not in only) or K._missing(case, "numba", mod):
            continue
        thunk = case.ours(mod, case.make(rng))
        t0 = time.perf_counter()
        thunk()
        t1 = time.perf_counter()
        thunk()
        t2 = time.perf_counter()
        calls.append({"name": case.name, "first_s": t1 - t0, "second_s": t2 - t1})
    return {"calls": calls}


class _CompileLog:
    """Numba's compile events: (seconds, function) of every top-level compilation (a
    kernel called from Python; its helpers' compilations are inside its time)."""

    def __init__(self):
        from numba.core import event
        self.stack, self.top = [], []

        class Listener(event.Listener):
            def on_start(_, ev):
                self.stack.append((ev.data["dispatcher"].py_func.__qualname__,
                                   time.perf_counter()))

            def on_end(_, ev):
                name, t0 = self.stack.pop()
                if not self.stack:
                    self.top.append((time.perf_counter() - t0, name))
        event.register("numba:compile", Listener())


def _child_e2e(config: str, steps: int) -> dict:
    t0 = time.perf_counter()
    import minitensor  # noqa: F401
    import transformer  # noqa: F401
    from minitensor import kernels
    t1 = time.perf_counter()
    from . import e2e
    model, step = e2e.build_ours(e2e.CONFIGS[config])
    t2 = time.perf_counter()
    cold = kernels.kernels_need_compiling()
    compiles = _CompileLog()
    step("numba")
    t3 = time.perf_counter()
    steady = []
    for _ in range(steps):
        s = time.perf_counter()
        step("numba")
        steady.append(time.perf_counter() - s)
    import numba
    background = _background_status(t2, step)
    return {"import_s": t1 - t0, "build_s": t2 - t1, "first_step_s": t3 - t2,
            "steady_s": statistics.median(steady), "steady_runs_s": steady, **background,
            "threads": numba.get_num_threads(), "cache_was_cold": cold,
            "compiled": [[round(sec, 3), name] for sec, name in sorted(compiles.top, reverse=True)]}


def _background_status(t_first_step: float, step) -> dict:
    """The kernels compiled in a background process (kernels/numba_cpu/
    _background_compile.py: the parallel ones, and Linear's weight gradient asked for
    ahead): how many, and when the last parallel one was ready, in seconds after the
    first step began (waits for it); then the step time with all of them loaded."""
    from minitensor.kernels.numba_cpu import _background_compile as bg
    if bg._worker is None:
        return {"background_kernels": 0}
    deadline = time.monotonic() + 600
    while any(bg._key(k) not in bg._done for k in list(bg._pending)) and time.monotonic() < deadline:
        time.sleep(0.02)
    ready = time.perf_counter() - t_first_step
    step("numba")                       # loads the parallel kernels from the cache
    times = []
    for _ in range(3):
        s = time.perf_counter()
        step("numba")
        times.append(time.perf_counter() - s)
    return {"background_kernels": len(bg._done), "parallel_ready_s": ready,
            "step_after_ready_s": statistics.median(times)}


def _child_main(argv: list) -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--child", required=True, choices=["import", "kernels", "e2e"])
    p.add_argument("--size", default="toy")
    p.add_argument("--only", nargs="*")
    p.add_argument("--config", default="S")
    p.add_argument("--steps", type=int, default=5)
    a = p.parse_args(argv)
    if a.child == "import":
        out = _child_import()
    elif a.child == "kernels":
        out = _child_kernels(a.size, a.only)
    else:
        out = _child_e2e(a.config, a.steps)
    print(json.dumps(out))


# ------------------------------------------------------------------------------ parent

def _child_env(cache_dir: str | None, threads: int) -> dict:
    """The parent's environment (OpenBLAS variables included, as the bench header says),
    plus the repo on sys.path, the thread count everywhere, and the Numba cache dir."""
    env = dict(os.environ)
    env["PYTHONPATH"] = ROOT + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    for var in ("NUMBA_NUM_THREADS", "OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS"):
        env[var] = str(threads)
    # as the user started the bench (minitensor's import then sets it, as in real use)
    from .harness import OMP_POLICY_AT_START
    if OMP_POLICY_AT_START is None:
        env.pop("OMP_WAIT_POLICY", None)
    else:
        env["OMP_WAIT_POLICY"] = OMP_POLICY_AT_START
    if cache_dir is not None:
        env["NUMBA_CACHE_DIR"] = cache_dir
    else:
        env.pop("NUMBA_CACHE_DIR", None)
    return env


def _spawn(args: list, cache_dir: str | None, timeout: float = 900,
           threads: int | None = None, background: bool = True) -> dict:
    import numba
    cmd = [sys.executable, "-m", "bench.cold_start", *args]
    env = _child_env(cache_dir, threads or numba.get_num_threads())  # default: the parent's
    if not background:  # every kernel compiled in the child itself, as Numba does
        env["MINITENSOR_BACKGROUND_COMPILE"] = "0"
    res = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True,
                         text=True, timeout=timeout)
    if res.returncode != 0:
        tail = res.stderr.strip().splitlines()[-1:] or ["(no stderr)"]
        raise RuntimeError(f"child {' '.join(args)} failed: {tail[0]}")
    return json.loads(res.stdout.strip().splitlines()[-1])


def _row(name: str, seconds, detail: str = "", **extra) -> dict:
    return {"section": "cold", "name": name, "seconds": seconds, "detail": detail, **extra}


def _import_rows(n: int) -> list:
    runs = [_spawn(["--child", "import"], None) for _ in range(n)]
    imp = [r["import_s"] for r in runs]
    back = [r["backend_s"] for r in runs]
    return [_row("import minitensor", statistics.median(imp), f"median of {n} processes", runs_s=imp),
            _row("load numba backend", statistics.median(back),
                 "first kernels.get(): import numba + kernel modules", runs_s=back)]


def _labels(cache_dir: str | None) -> tuple:
    """A fresh cache dir is measured twice (empty, then warm); the default cache once."""
    if cache_dir:
        return ("empty cache", "warm cache")
    return ("default cache",)


def _kernel_rows(cache_dir: str | None, only: list | None) -> list:
    # toy sizes: compile time does not depend on the size, and the run after it is short
    args = ["--child", "kernels", "--size", "toy"] + (["--only", *only] if only else [])
    rows = []
    for label in _labels(cache_dir):
        # background compilation off: these rows measure what compiling costs
        calls = _spawn(args, cache_dir, background=False)["calls"]
        first = sum(c["first_s"] for c in calls)
        compile_s = first - sum(c["second_s"] for c in calls)
        rows.append(_row(f"kernel first calls, {label}", compile_s,
                         f"{len(calls)} rows' kernels, first call - second call, float32"
                         + ("" if cache_dir else " (default cache: warm unless kernels changed)"),
                         calls=calls))
    return rows


def _e2e_rows(config: str, steps: int, cache_dir: str | None, threads: int | None = None,
              background: bool = True) -> list:
    """The e2e child on ``cache_dir`` (empty, then warm); rows name the thread count, and
    say so when background compilation was off."""
    args = ["--child", "e2e", "--config", config, "--steps", str(steps)]
    rows = []
    for label in _labels(cache_dir):
        r = _spawn(args, cache_dir, threads=threads, background=background)
        n = r["threads"]
        if not background:
            label += ", background compile off"
        overhead = r["import_s"] + r["first_step_s"] - r["steady_s"]
        top = ", ".join(f"{name} {sec:.1f}" for sec, name in r["compiled"][:3])
        rows.append(_row(f"e2e {config} first step, {label}, {n} thr", r["first_step_s"],
                         f"{len(r['compiled'])} compilations here (top: {top or 'none'}); "
                         f"import {r['import_s']:.2f} s, steady step {r['steady_s']:.2f} s"
                         + (f"; {r['background_kernels']} kernels compiled in the "
                            f"background, all ready {r['parallel_ready_s']:.1f} s after the "
                            f"first step began (step then {r['step_after_ready_s']:.2f} s)"
                            if r.get("background_kernels") else ""),
                         target_s=FIRST_STEP_TARGET_S, **r))
        rows.append(_row(f"e2e {config}: import + first step - steady, {label}, {n} thr",
                         overhead, f"import {r['import_s']:.2f} s + first step "
                         f"{r['first_step_s']:.2f} s - steady {r['steady_s']:.2f} s "
                         f"(build {r['build_s']:.2f} s apart)", target_s=TARGET_S,
                         meets_target=overhead < TARGET_S))
    return rows


def run(settings, log=print, fresh_cache: bool | None = None, only: list | None = None,
        e2e_config: str | None = None, parts=("import", "kernels", "e2e"),
        thread_counts=(None,)) -> list:
    """Cold-start rows of ``parts``. ``fresh_cache`` (default: only for a full run) points
    NUMBA_CACHE_DIR at a new temp dir and measures it empty, then warm (the user's own
    cache is never used or cleared then); without it each child runs once on the default
    cache (--quick, the smoke test: compiling everything from scratch takes tens of
    seconds). The e2e rows run at each of ``thread_counts`` (None: the parent's)."""
    if fresh_cache is None:
        fresh_cache = settings.size == "full"
    # one fresh dir per part and thread count: an "empty cache" must find nothing
    keys = ["kernels"] + [f"e2e{n}" for n in thread_counts] + ["e2e-off"]
    dirs = {k: tempfile.mkdtemp(prefix=f"minitensor-numba-cache-{k}-") if fresh_cache else None
            for k in keys}
    e2e_config = e2e_config or ("toy" if settings.size == "toy" else "S")
    if only is None and settings.size == "quick":  # --quick: the quick rows' kernels only
        from . import kernels as K
        only = sorted({c.name for c in K.cases("quick")})
    steps = max(settings.e2e_repeat, 1)
    jobs = [("import", lambda: _import_rows(max(settings.repeat, 1))),
            ("kernels", lambda: _kernel_rows(dirs["kernels"], only))]
    jobs += [("e2e", lambda n=n: _e2e_rows(e2e_config, steps, dirs[f"e2e{n}"], n))
             for n in thread_counts]
    # At 2+ threads, the same with every kernel compiled in the process (as Numba does):
    # what the background compilation saves.
    many = [n for n in thread_counts if n is not None and n > 1]
    if many:
        jobs.append(("e2e", lambda: _e2e_rows(e2e_config, steps, dirs["e2e-off"], many[0],
                                              background=False)))
    rows = []
    try:
        for name, fn in jobs:
            if name not in parts:
                continue
            try:
                new = fn()
            except Exception as e:  # one failing child must not hide the other rows
                new = [_row(f"{name} (failed)", None, error=f"{type(e).__name__}: {e}")]
            for r in new:
                log(f"  {r['name']}: " + (f"{r['seconds']:.2f} s" if r["seconds"] is not None
                                          else f"ERROR {r.get('error')}"))
            rows += new
    finally:
        for d in dirs.values():
            if d:
                shutil.rmtree(d, ignore_errors=True)
    return rows


def main(argv: list) -> None:
    """``python -m bench.cold_start [--config S] [--threads 2 1]``: the e2e first-step rows
    alone, each on a fresh temp NUMBA_CACHE_DIR (the user's cache is not touched)."""
    p = argparse.ArgumentParser(prog="python -m bench.cold_start")
    p.add_argument("--config", default="S")
    p.add_argument("--threads", type=int, nargs="+", default=[2, 1])
    a = p.parse_args(argv)
    from . import harness
    rows = run(harness.FULL, fresh_cache=True, e2e_config=a.config, parts=("e2e",),
               thread_counts=tuple(a.threads))
    print(harness.format_table(rows, COLD_COLUMNS))
    for r in rows:
        if r.get("compiled"):
            print(f"\n{r['name']}: compilations (s, function):")
            print("\n".join(f"  {sec:7.2f}  {name}" for sec, name in r["compiled"]))


COLD_COLUMNS = [("name", "row", ""), ("seconds", "seconds", ".2f"), ("detail", "detail", "")]

if __name__ == "__main__":
    if "--child" in sys.argv:
        _child_main(sys.argv[1:])
    else:
        main(sys.argv[1:])
