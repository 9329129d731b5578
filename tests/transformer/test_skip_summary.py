"""The test run's summary sums skips up by reason (tests/conftest.py), one line each."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

TESTS = '''
import pytest

@pytest.mark.parametrize("i", range(5))
def test_needs_torch(i):
    pytest.skip("PyTorch is not installed (reference only)")

def test_other():
    pytest.skip("no display")

def test_runs():
    assert True
'''


def _pytest(tmp_path: Path, *extra: str) -> str:
    (tmp_path / "test_skips.py").write_text(TESTS)
    proc = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "tests.conftest",
                           "-c", str(ROOT / "pyproject.toml"), "--rootdir", str(tmp_path), *extra,
                           str(tmp_path / "test_skips.py")],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


def test_skips_are_one_line_per_reason(tmp_path):
    out = _pytest(tmp_path)
    lines = [line.strip() for line in out.splitlines()]
    assert "5 skipped: PyTorch is not installed (reference only)" in lines
    assert "1 skipped: no display" in lines
    assert "SKIPPED" not in out  # pytest's line per location is not printed


def test_asking_for_pytests_own_list_still_works(tmp_path):
    out = _pytest(tmp_path, "-rs")
    assert "SKIPPED [5]" in out and "skipped, by reason" not in out
