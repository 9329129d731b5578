"""The ``intents`` task: short requests to a booking assistant, labelled by what they ask.

Five labels, each written over the same eighty situations (flights, hotels, tables,
appointments, rentals, ...), so that the topic says nothing about the label:

    book        "Can you reserve a table for four at eight tonight?"
    cancel      "We're not coming tonight, cancel the table for two."
    reschedule  "Change the sushi reservation to 9pm."
    status      "Is our sushi reservation still on?"
    complaint   "We waited forty minutes for our sushi and it was wrong."

The sentences ship as two TSV files (text<TAB>label) in ``data/``: 300 for training
(the trainer holds out a validation part) and 95 for the final test, never trained on.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np

from ..data.task_base import Task
from ..data.vocab import Vocab

DATA = Path(__file__).parent / "data"
LABELS = ("book", "cancel", "reschedule", "status", "complaint")


def read_labelled_tsv(path: str | os.PathLike, labels: tuple[str, ...] = LABELS) -> list[tuple[str, int]]:
    """Lines ``text<TAB>label`` -> [(text, label index)]; blank lines are skipped.

    Raises:
        ValueError: a line without exactly one tab, or an unknown label (with its line number).
    """
    out = []
    for number, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        parts = line.split("\t")
        if len(parts) != 2 or not parts[0].strip():
            raise ValueError(f"{path}:{number}: expected 'text<TAB>label', got {line!r}")
        text, label = parts[0].strip(), parts[1].strip()
        if label not in labels:
            raise ValueError(f"{path}:{number}: unknown label {label!r}; labels: {', '.join(labels)}")
        out.append((text, labels.index(label)))
    return out


@dataclass(frozen=True)
class IntentsTask(Task):
    """The shipped intent sentences (no options): fixed train and test files.

    ``val_fraction`` of the training file (drawn with the run's seed) is the
    validation split.
    """

    name: ClassVar[str] = "intents"
    kind: ClassVar[str] = "sentence_classify"
    labels: ClassVar[tuple[str, ...]] = LABELS
    val_fraction: float = 0.15

    def splits(self, seed: int) -> tuple[list, list, list]:
        """(train, val, test) lists of (text, label index)."""
        if not 0 < self.val_fraction < 1:
            raise ValueError(f"task 'intents': val_fraction must be in (0, 1), got {self.val_fraction}")
        train = read_labelled_tsv(DATA / "intents_train.tsv")
        test = read_labelled_tsv(DATA / "intents_test.tsv")
        order = np.random.default_rng(seed).permutation(len(train))
        n_val = max(1, round(self.val_fraction * len(train)))
        val = [train[i] for i in order[:n_val]]
        return [train[i] for i in sorted(order[n_val:])], val, test

    def sample(self, rng: np.random.Generator):
        raise NotImplementedError("the intents task is a fixed data set: use splits(seed)")

    def num_distinct(self) -> int:
        return len(read_labelled_tsv(DATA / "intents_train.tsv")) + len(read_labelled_tsv(DATA / "intents_test.tsv"))

    @property
    def chars(self) -> str:
        return ""   # the word pieces come from the pretrained tokenizer, not a char vocab

    def vocab(self) -> Vocab:
        return Vocab.from_alphabet("")
