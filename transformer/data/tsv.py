"""Your own data: tab-separated files (or Python lists) of pairs, checked line by line.

Two file formats, one example a line, UTF-8::

    translate   source<TAB>target      e.g.  forty two<TAB>42
    classify    text<TAB>label         e.g.  what a lovely film<TAB>pos

Blank lines are skipped; everything else must hold exactly one tab with text on both
sides. A bad file is refused with one line naming the file, the line number and what is
wrong (`DataFileError`), so the user can open the file at that line and fix it.

    read_pairs(path, kind)                  the (left, right) pairs of a file
    check_pairs(pairs, kind, source)        the same checks for a Python list of pairs
    check_labels(pairs, source, lines)      classify: every label needs two examples
    carve_splits(pairs, seed, ...)          train / val / test by input, seeded
    pairs_vocab(pairs, tokens)              a char or word Vocab over both sides

The pairs become a task in problems/files.py (`train --task translate --data FILE`).
"""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path
from typing import Sequence

import numpy as np

from .tasks import Splits
from .vocab import Vocab

PathLike = str | os.PathLike[str]
FORMATS = {"translate": ("source", "target"), "classify": ("text", "label")}
TOKEN_LEVELS = ("char", "word")
HELD_OUT_FRACTION = 0.1  # of the distinct inputs, for each of val and test when carved


class DataFileError(ValueError):
    """A data file (or list of pairs) the task cannot read; the message names the place."""


def _layout(kind: str) -> str:
    left, right = FORMATS[kind]
    return f"one '{left}<TAB>{right}' a line"


def read_pairs(path: PathLike, kind: str) -> tuple[list[tuple[str, str]], list[int]]:
    """Read a TSV file of pairs.

    Args:
        path: a UTF-8 file, one ``left<TAB>right`` pair a line.
        kind: "translate" (source, target) or "classify" (text, label).

    Returns:
        (pairs, line numbers): the pairs in file order and the 1-based line each came from.

    Raises:
        DataFileError: missing file, not UTF-8, empty, or a line without exactly one
            tab or with an empty side; the message is ``FILE:LINE: what is wrong``.
    """
    p = Path(path)
    if not p.is_file():
        what = "is a directory" if p.is_dir() else "does not exist"
        raise DataFileError(f"{p}: the data file {what}")
    raw = p.read_bytes()
    try:
        text = raw.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError as exc:
        line = raw[:exc.start].count(b"\n") + 1
        raise DataFileError(f"{p}:{line}: not UTF-8 text (byte 0x{raw[exc.start]:02x}); "
                            "save the file as UTF-8") from None
    pairs, lines = [], []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        pairs.append(_split_line(line, kind, f"{p}:{number}"))
        lines.append(number)
    if not pairs:
        raise DataFileError(f"{p}: the file is empty (expected {_layout(kind)})")
    return pairs, lines


def _split_line(line: str, kind: str, where: str) -> tuple[str, str]:
    left_name, right_name = FORMATS[kind]
    tabs = line.count("\t")
    if tabs == 0:
        raise DataFileError(f"{where}: no tab in {_clip(line)!r} (expected {_layout(kind)})")
    if tabs > 1:
        raise DataFileError(f"{where}: {tabs} tabs in {_clip(line)!r} (expected exactly one: "
                            f"{_layout(kind)})")
    left, right = (part.strip() for part in line.split("\t"))
    for name, part in ((left_name, left), (right_name, right)):
        if not part:
            raise DataFileError(f"{where}: the {name} is empty in {_clip(line)!r}")
    return left, right


def _clip(text: str, n: int = 40) -> str:
    return text if len(text) <= n else text[:n] + "..."


def check_pairs(pairs: Sequence, kind: str, source: str = "pairs") -> list[tuple[str, str]]:
    """Check a Python list of (left, right) string pairs as `read_pairs` checks a file.

    Args:
        pairs: e.g. ``[("forty two", "42"), ...]`` or ``[("what a film", "pos"), ...]``.
        kind: "translate" or "classify".
        source: how messages name the list.

    Returns:
        The pairs as a list of (str, str) tuples, sides stripped of surrounding spaces.

    Raises:
        DataFileError: an empty list, an item that is not two strings, or an empty side;
            the message names the item by index.
    """
    if len(pairs) == 0:
        raise DataFileError(f"{source}: the list is empty (expected ({', '.join(FORMATS[kind])}) pairs)")
    out = []
    for i, item in enumerate(pairs):
        if (not isinstance(item, (tuple, list)) or len(item) != 2
                or not all(isinstance(s, str) for s in item)):
            raise DataFileError(f"{source}[{i}]: expected a pair of strings "
                                f"({', '.join(FORMATS[kind])}), got {_clip(repr(item))}")
        line = f"{item[0]}\t{item[1]}"
        if "\n" in line or line.count("\t") != 1:
            raise DataFileError(f"{source}[{i}]: a side holds a tab or a newline: {_clip(repr(item))}")
        out.append(_split_line(line, kind, f"{source}[{i}]"))
    return out


def check_labels(pairs: Sequence[tuple[str, str]], source: str, places: Sequence[str]) -> None:
    """classify: refuse a label seen only once (nothing to learn it from and check it on).

    Args:
        pairs: (text, label) pairs.
        source: the file (or list) name for the message.
        places: per pair, where it came from ("line 7" or "[6]").
    """
    counts = Counter(label for _, label in pairs)
    for (_, label), place in zip(pairs, places):
        if counts[label] == 1:
            raise DataFileError(f"{source}{place}: the label {label!r} appears only once; every "
                                "label needs at least two examples (to learn it and to check it)")
    if len(counts) < 2:
        raise DataFileError(f"{source}: every example has the label {next(iter(counts))!r}; "
                            "a classifier needs at least two labels")


def carve_splits(pairs: Sequence[tuple], seed: int, carve_val: bool = True,
                 carve_test: bool = True, source: str = "data") -> Splits:
    """Shuffle the distinct inputs with `seed` and cut train / val / test from them.

    Each carved held-out split gets HELD_OUT_FRACTION of the distinct inputs (at least
    one); pairs that share an input (``pair[0]``; a pair may carry more items, e.g. its
    line number) stay together, so no input is in two splits.
    A split that is not carved (given as its own file) comes back empty.

    Raises:
        DataFileError: too few distinct inputs to carve the held-out splits.
    """
    inputs = list(dict.fromkeys(pair[0] for pair in pairs))
    n_held = [max(1, round(HELD_OUT_FRACTION * len(inputs))) if c else 0 for c in (carve_val, carve_test)]
    if len(inputs) < sum(n_held) + 1:
        raise DataFileError(f"{source}: {len(inputs)} distinct inputs are too few to carve "
                            f"{' and '.join(n for n, c in (('validation', carve_val), ('test', carve_test)) if c)} "
                            "examples from; add lines or give the held-out files yourself")
    order = np.random.default_rng(seed).permutation(len(inputs))
    where = {}
    for rank, i in enumerate(order):
        where[inputs[i]] = "val" if rank < n_held[0] else "test" if rank < sum(n_held) else "train"
    parts: dict[str, list] = {"train": [], "val": [], "test": []}
    for pair in pairs:
        parts[where[pair[0]]].append(pair)
    return Splits(train=parts["train"], val=parts["val"], test=parts["test"])


def pairs_vocab(texts: Sequence[str], tokens: str) -> Vocab:
    """A char or word (`tokenize_words`) vocabulary over `texts`, deterministic ids."""
    if tokens not in TOKEN_LEVELS:
        raise ValueError(f"tokens must be one of {', '.join(TOKEN_LEVELS)}, got {tokens!r}")
    return Vocab.from_chars(texts) if tokens == "char" else Vocab.from_words(texts)


def example_file(name: str) -> Path:
    """The path of a packaged example file: "numbers.tsv" (translate: number words ->
    digits) or "sentiment.tsv" (classify: short reviews -> pos / neg)."""
    path = Path(__file__).with_name("examples") / name
    if not path.is_file():
        raise FileNotFoundError(f"no example file {name!r}; there are: "
                                f"{', '.join(sorted(p.name for p in path.parent.glob('*.tsv')))}")
    return path
