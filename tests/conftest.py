"""Shared fixtures: the kernel ``backend`` parametrization, a seeded ``rng``, a torch skip.

``backend`` runs a test once per kernel backend ("numba", "numpy"), inside
``minitensor.kernels.use(name)``; the numba run is skipped when numba does not import.

Skips are summed up by reason at the end of a run, one line each ("43 skipped: PyTorch
is not installed ..."), instead of pytest's line per test location (``-rs``); the
pyproject's ``addopts`` asks pytest to list failures and errors only.
"""
from __future__ import annotations

import importlib.util
import os
from collections import Counter

import numpy as np
import pytest

import minitensor as mt
from minitensor import kernels

# Parallel kernels compile here when first called, as Numba does, not in a background
# process with their serial twins standing in meanwhile (the default, for users): a test
# of a parallel kernel must run the parallel code. (Subprocesses inherit this;
# test_background_compile.py turns it on for itself.)
os.environ.setdefault("MINITENSOR_BACKGROUND_COMPILE", "0")


def _torch_installed() -> bool:
    try:
        return importlib.util.find_spec("torch") is not None
    except (ImportError, ValueError):
        return False


HAS_TORCH = _torch_installed()
# ``@requires_torch`` on a test that compares with PyTorch (a reference only, never required).
requires_torch = pytest.mark.skipif(not HAS_TORCH, reason="PyTorch is not installed (reference only)")


@pytest.fixture(params=["numba", "numpy"])
def backend(request):
    """The name of the active kernel backend for the duration of the test."""
    name = request.param
    if name == "numba" and not kernels.numba_available():
        pytest.skip("numba backend is not importable on this machine")
    with kernels.use(name):
        yield name


@pytest.fixture
def rng():
    """A NumPy generator with a fixed seed (and minitensor's global generator re-seeded)."""
    mt.manual_seed(0)
    return np.random.default_rng(1234)


# In CI, hypothesis replays the same examples every run (derandomize): a property test
# that fails there fails for everyone, reproducibly. Locally it keeps exploring.
try:
    from hypothesis import settings as _hypothesis_settings
    _hypothesis_settings.register_profile("ci", derandomize=True)
    if os.environ.get("CI"):
        _hypothesis_settings.load_profile("ci")
except ImportError:  # pragma: no cover - hypothesis is a dev dependency
    pass


def _skip_reason(report) -> str:
    longrepr = report.longrepr
    reason = longrepr[2] if isinstance(longrepr, tuple) and len(longrepr) == 3 else str(longrepr)
    return reason.removeprefix("Skipped: ")


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    """One line per skip reason, with how many tests it skipped."""
    if any(c in (config.getoption("reportchars") or "") for c in "saA"):
        return  # the user asked for pytest's own list of skips (-rs / -ra / -rA)
    reasons = Counter(_skip_reason(r) for r in terminalreporter.stats.get("skipped", []))
    if not reasons:
        return
    terminalreporter.section("skipped, by reason", sep="-")
    for reason, n in reasons.most_common():
        terminalreporter.write_line(f"{n:4d} skipped: {reason}")
