"""Benchmarks for minitensor and transformer: medians and ratios, never tests.

    python -m bench              # everything (several minutes)
    python -m bench --quick      # small shapes, fewer repetitions (about a minute)

Modules: ``harness`` (timing protocol, threads, environment, tables, JSON), ``kernels``
(kernel rows and the attention memory row), ``e2e`` (one training step),
``cold_start`` (import and compile times, in subprocesses). See bench/README.md.
"""
