"""Character-level language-model data from UTF-8 text files.

`load_corpus(paths)` reads the files the user names (or the packaged `default.txt`
when none are given), builds a char vocab, encodes the text and cuts it into
contiguous train / val / test pieces, so no position of the text is in two splits.
`lm_windows` turns a piece into (input, target) windows of length T; batching.py's
`lm_loader` and `sample_lm_batch` batch them.

Files are checked at the edge: a missing path raises FileNotFoundError, an empty
file or one that is not UTF-8 raises ValueError, each message naming the file.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Sequence

import numpy as np

from .vocab import Vocab

DEFAULT_TEXT_NAME = "default.txt"
PathLike = str | os.PathLike[str]


def default_text() -> str:
    """The packaged default LM text (original English prose, ~30 KB)."""
    return resources.files(__package__).joinpath(DEFAULT_TEXT_NAME).read_text(encoding="utf-8")


def read_text_file(path: PathLike) -> str:
    """Read one UTF-8 text file, with clear errors.

    Raises:
        FileNotFoundError: the path does not exist.
        ValueError: it is a directory, is empty (or only whitespace), or is not UTF-8.
    """
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"text file not found: {str(p)!r}")
    if p.is_dir():
        raise ValueError(f"expected a text file but {str(p)!r} is a directory")
    raw = p.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(
            f"text file {str(p)!r} is not valid UTF-8 (bad byte 0x{raw[exc.start]:02x} at "
            f"offset {exc.start}); convert it to UTF-8 first"
        ) from None
    if not text.strip():
        raise ValueError(f"text file {str(p)!r} is empty")
    return text.removeprefix("\ufeff")  # a BOM is an encoding marker, not text


def read_texts(paths: PathLike | Sequence[PathLike] | None = None) -> str:
    """Read and join one or more UTF-8 files (default: the packaged default.txt).

    Args:
        paths: a path, a list of paths, or None for the default text.

    Returns:
        The texts joined in order, each ending in a newline.
    """
    if paths is None:
        return default_text()
    if isinstance(paths, (str, os.PathLike)):  # one path, not an iterable of characters
        paths = [paths]
    if len(paths) == 0:
        raise ValueError("no text files given (pass paths, or None for the default text)")
    texts = [read_text_file(p) for p in paths]
    return "".join(t if t.endswith("\n") else t + "\n" for t in texts)


@dataclass(frozen=True)
class LMCorpus:
    """An encoded text cut into contiguous, non-overlapping splits.

    Attributes:
        vocab: char vocab built from the whole text.
        train, val, test: 1-D int64 id arrays, in text order.
    """

    vocab: Vocab
    train: np.ndarray
    val: np.ndarray
    test: np.ndarray


def load_corpus(
    paths: PathLike | Sequence[PathLike] | None = None,
    val_fraction: float = 0.05,
    test_fraction: float = 0.05,
    vocab: Vocab | None = None,
) -> LMCorpus:
    """Read text (see `read_texts`), encode it per character and split it.

    The first 1 - val_fraction - test_fraction of the text is train, then val,
    then test.

    Args:
        paths: files to read, or None for the packaged default text.
        val_fraction, test_fraction: shares of the text for val and test.
        vocab: reuse a vocab (e.g. one loaded with a checkpoint); by default one is
            built over every character of the text, so no split meets UNK.

    Returns:
        An LMCorpus.
    """
    if val_fraction < 0 or test_fraction < 0 or val_fraction + test_fraction >= 1:
        raise ValueError(
            f"load_corpus: need val_fraction, test_fraction >= 0 with sum < 1, "
            f"got {val_fraction} and {test_fraction}"
        )
    text = read_texts(paths)
    vocab = vocab or Vocab.from_chars(text)
    if vocab.level != "char":
        raise ValueError("load_corpus: the LM data is character-level; pass a char vocab")
    ids = np.array(vocab.encode(text), dtype=np.int64)
    n_val, n_test = int(len(ids) * val_fraction), int(len(ids) * test_fraction)
    n_train = len(ids) - n_val - n_test
    return LMCorpus(vocab, ids[:n_train], ids[n_train : n_train + n_val], ids[n_train + n_val :])


def lm_windows(ids: np.ndarray, block_size: int, stride: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """All (input, target) windows of length T = block_size, target shifted by one.

    Args:
        ids: 1-D int array of length >= block_size + 1.
        block_size: T.
        stride: step between window starts (default T: non-overlapping).

    Returns:
        x, y: int64 arrays (N, T) with y[:, t] == ids[start + t + 1] and
        x[:, t + 1] == y[:, t].
    """
    ids = np.asarray(ids, dtype=np.int64)
    stride = block_size if stride is None else stride
    if stride < 1:
        raise ValueError(f"lm_windows: stride must be >= 1, got {stride}")
    if ids.ndim != 1 or len(ids) < block_size + 1 or block_size < 1:
        raise ValueError(
            f"lm_windows: need a 1-D array of at least block_size + 1 = {block_size + 1} "
            f"tokens, got shape {ids.shape}; use a smaller block size or more text"
        )
    starts = np.arange(0, len(ids) - block_size, stride)  # (N,)
    rows = starts[:, None] + np.arange(block_size)  # (N, T)
    return ids[rows], ids[rows + 1]
