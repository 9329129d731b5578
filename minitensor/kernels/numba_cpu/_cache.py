"""Numba's on-disk cache, made to notice edits to any file of this package.

Numba keys each cached kernel on its own source file (modification time and size). A
kernel in ``rows.py`` has the helpers of ``_math.py`` compiled into it, and
``attention.py`` those of ``_tiles.py``, ``rows.py`` and ``pointwise.py``: after an edit
to ``_math.py`` alone, Numba would go on loading the old machine code of every kernel
that uses it. So, when the package loads:

    h = sha256 of every .py file of the package (names and contents)
    for each directory Numba caches this package in:
        if its stamp file does not hold h:
            delete the package's cached kernels there (*.nbi index, *.nbc code)
            write h into the stamp file

A stale cache costs one recompilation (minutes); a fresh one is left alone. Reading and
hashing the sources takes well under a millisecond. Numba reads its cache at a kernel's
first call, not when the module defining it is imported, so this runs after the imports.
"""
from __future__ import annotations

import glob
import hashlib
import os

from numba.core import config
from numba.core.caching import _CacheLocator

STAMP = "minitensor_kernels.stamp"   # the source hash the cached kernels were compiled from


def source_hash(package_dir: str) -> str:
    """sha256 over the names and contents of the package's .py files, in name order."""
    digest = hashlib.sha256()
    for name in sorted(os.listdir(package_dir)):
        if name.endswith(".py"):
            digest.update(name.encode())
            with open(os.path.join(package_dir, name), "rb") as f:
                digest.update(f.read())
    return digest.hexdigest()


def cache_dirs(package_dir: str) -> list[str]:
    """Where Numba caches this package's kernels: ``__pycache__`` beside the sources, and
    NUMBA_CACHE_DIR's directory for them when that variable is set (Numba's naming)."""
    dirs = [os.path.join(package_dir, "__pycache__")]
    if config.CACHE_DIR:
        subpath = _CacheLocator.get_suitable_cache_subpath(os.path.join(package_dir, "__init__.py"))
        dirs.append(os.path.join(config.CACHE_DIR, subpath))
    return dirs


def clear_if_stale(cache_dir: str, source: str) -> bool:
    """Delete the cached kernels in ``cache_dir`` unless its stamp holds ``source`` (a
    source hash), then record it. True when something was stale."""
    stamp = os.path.join(cache_dir, STAMP)
    try:
        with open(stamp) as f:
            if f.read().strip() == source:
                return False
    except OSError:  # no stamp yet: what is cached there is of unknown age
        pass
    for path in glob.glob(os.path.join(cache_dir, "*.nbi")) + glob.glob(os.path.join(cache_dir, "*.nbc")):
        try:
            os.remove(path)
        except OSError:  # already removed by another process
            pass
    try:
        os.makedirs(cache_dir, exist_ok=True)  # stamp an empty cache too: what fills it is fresh
        temp = f"{stamp}.{os.getpid()}.tmp"
        with open(temp, "w") as f:
            f.write(source + "\n")
        os.replace(temp, stamp)
    except OSError:  # a read-only cache directory: Numba cannot write there either
        pass
    return True


def clear_stale_caches(package_dir: str) -> list[str]:
    """``clear_if_stale`` on every cache directory of the package; returns those cleared."""
    source = source_hash(package_dir)
    return [d for d in cache_dirs(package_dir) if clear_if_stale(d, source)]


def active_cache_dir(package_dir: str) -> str:
    """The directory Numba reads and writes this package's kernels in (the last of
    ``cache_dirs``: NUMBA_CACHE_DIR's when set, else ``__pycache__``)."""
    return cache_dirs(package_dir)[-1]


def is_cold(package_dir: str, cleared: list[str]) -> bool:
    """True when the kernels must be compiled (minutes of the first steps): the active
    cache directory was just cleared as stale, or holds no cached kernel yet."""
    active = active_cache_dir(package_dir)
    return active in cleared or not glob.glob(os.path.join(active, "*.nbi"))
