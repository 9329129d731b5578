"""This machine's roofline: peak FLOP rate and memory bandwidth, probed once and cached.

An op's speed is capped by one of two ceilings (Williams, Waterman, Patterson 2009):
compute (peak FLOP/s) or memory (bandwidth x arithmetic intensity, FLOPs per byte).
Both are *measured* here, the way a user's code could reach them from Python:

* peak FLOP/s: a float32 NumPy matmul of two 1024 x 1024 matrices (2 n^3 FLOPs; BLAS
  with its default threads), the best of a few runs;
* bandwidth: copying a 64 MB array (64 MB read + 64 MB written), the best of a few runs.

The result is cached as JSON in ``~/.cache/minitensor/roofline.json`` (or under
``$XDG_CACHE_HOME``), keyed by the machine (CPU model, logical CPUs, BLAS threads), so a
second process reads it instead of probing.
"""
from __future__ import annotations

import json
import os
import platform
import time
from dataclasses import asdict, dataclass

import numpy as np

from ..io import atomic_write

_MATMUL_N = 1024
_COPY_BYTES = 64 * 2**20


@dataclass(frozen=True)
class Roofline:
    """peak_flops (FLOP/s), bandwidth (bytes/s), and the machine they were measured on."""
    peak_flops: float
    bandwidth: float
    machine: str = ""

    def attainable(self, intensity: float) -> float:
        """The FLOP/s ceiling at ``intensity`` FLOPs per byte: min(peak, intensity * bandwidth)."""
        return min(self.peak_flops, intensity * self.bandwidth)

    @property
    def ridge(self) -> float:
        """The intensity (FLOP/byte) where memory-bound turns compute-bound."""
        return self.peak_flops / self.bandwidth

    def describe(self) -> str:
        return (f"peak {self.peak_flops / 1e9:.1f} GFLOP/s, bandwidth "
                f"{self.bandwidth / 1e9:.1f} GB/s (ridge {self.ridge:.1f} FLOP/B)")


def roofline_cache_path() -> str:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "minitensor", "roofline.json")


def machine_identity() -> str:
    """What the numbers depend on: CPU model, logical CPUs, BLAS threads."""
    return f"{_cpu_model()} | {os.cpu_count()} logical CPUs | {_blas_threads()} BLAS threads"


def measure_roofline(refresh: bool = False, path: str | None = None) -> Roofline:
    """The cached roofline of this machine, probing it (about a second) when absent.

    Args:
        refresh: probe again even when cached.
        path: the cache file (default ``roofline_cache_path()``).
    """
    path = path or roofline_cache_path()
    machine = machine_identity()
    cache = _read_cache(path)
    if not refresh and machine in cache:
        entry = cache[machine]
        return Roofline(entry["peak_flops"], entry["bandwidth"], machine)
    roofline = Roofline(probe_peak_flops(), probe_bandwidth(), machine)
    cache[machine] = {k: v for k, v in asdict(roofline).items() if k != "machine"}
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        atomic_write(path, json.dumps(cache, indent=1))
    except OSError:  # a read-only home: the numbers are still good for this process
        pass
    return roofline


def probe_peak_flops(n: int = _MATMUL_N, repeats: int = 5) -> float:
    """FLOP/s of the best of ``repeats`` float32 n x n matmuls."""
    rng = np.random.default_rng(0)
    a, b = (rng.standard_normal((n, n), dtype=np.float32) for _ in range(2))
    out = np.empty((n, n), np.float32)
    np.matmul(a, b, out=out)  # warm-up: BLAS threads start, pages are touched
    best = min(_timed(lambda: np.matmul(a, b, out=out)) for _ in range(repeats))
    return 2 * n**3 / best


def probe_bandwidth(nbytes: int = _COPY_BYTES, repeats: int = 5) -> float:
    """Bytes/s (read + written) of the best of ``repeats`` copies of an nbytes array."""
    src = np.ones(nbytes // 8, np.float64)
    dst = np.empty_like(src)
    np.copyto(dst, src)
    best = min(_timed(lambda: np.copyto(dst, src)) for _ in range(repeats))
    return 2 * nbytes / best


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def _read_cache(path: str) -> dict:
    try:
        with open(path) as f:
            data = json.load(f)
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _blas_threads() -> int | str:
    try:
        from threadpoolctl import threadpool_info
        counts = [i["num_threads"] for i in threadpool_info() if i.get("user_api") == "blas"]
        return max(counts) if counts else "?"
    except Exception:  # threadpoolctl missing or a BLAS it cannot read: still a usable key
        return "?"
