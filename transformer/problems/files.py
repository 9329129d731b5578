"""translate / classify on your own data: the seq2seq and classify problems, fed from a file.

    train --task translate --data pairs.tsv      source<TAB>target, an encoder-decoder
    train --task classify  --data labelled.tsv   text<TAB>label, an encoder + class head

From Python, `TrainConfig.data` (and `valid_data`, `test_data`) may also be a list of
(left, right) string pairs. Reading and checking the pairs is data/tsv.py's job; here
they become splits, a vocabulary (`TrainConfig.tokens`: characters or words, over every
split, so evaluation never meets an unknown token) and, for classify, the label list,
which is kept in ``cfg.task_options["labels"]`` so that the checkpoint's config
rebuilds the classifier without the file.
"""
from __future__ import annotations

from ..config import ConfigError, TrainConfig
from ..data import Splits, Vocab
from ..data.tsv import DataFileError, carve_splits, check_labels, check_pairs, pairs_vocab, read_pairs
from .classify import ClassifyProblem
from .seq2seq import Seq2SeqProblem


def _read(data, kind: str, name: str) -> tuple[list[tuple[str, str]], list[str], str]:
    """(pairs, where each came from, the source's name) for a path or a list of pairs."""
    if isinstance(data, (list, tuple)):
        pairs = check_pairs(data, kind, name)
        return pairs, [f"[{i}]" for i in range(len(pairs))], name
    pairs, lines = read_pairs(data, kind)
    return pairs, [f":{n}" for n in lines], str(data)


def load_pair_splits(cfg: TrainConfig) -> tuple[Splits, dict[str, tuple[list[str], str]]]:
    """The train / val / test pairs of a file task, and where each split's pairs came from.

    Validation and test are carved from `cfg.data` with `cfg.seed` unless `valid_data` /
    `test_data` are given.
    """
    kind = cfg.task
    train, places, source = _read(cfg.data, kind, "data")
    if kind == "classify":
        check_labels(train, source, places)
    # Carve (left, right, place) triples, so every pair keeps the line it came from.
    carved = carve_splits([(l, r, at) for (l, r), at in zip(train, places)], cfg.seed,
                          carve_val=not cfg.valid_data, carve_test=not cfg.test_data, source=source)
    parts, origin = {}, {}
    for split in ("train", "val", "test"):
        triples = getattr(carved, split)
        parts[split] = [(l, r) for l, r, _ in triples]
        origin[split] = ([at for _, _, at in triples], source)
    for split, given, name in (("val", cfg.valid_data, "valid_data"), ("test", cfg.test_data, "test_data")):
        if given:
            parts[split], split_places, split_source = _read(given, kind, name)
            origin[split] = (split_places, split_source)
    return Splits(**parts), origin


def _no_options(cfg: TrainConfig, allowed: tuple[str, ...] = ()) -> None:
    unknown = sorted(set(cfg.task_options) - set(allowed))
    if unknown:
        takes = f"only {', '.join(allowed)}" if allowed else "none"
        raise ConfigError(f"task {cfg.task!r} got unknown option(s) {', '.join(unknown)}; it takes {takes}")


class FileSeq2SeqProblem(Seq2SeqProblem):
    """translate: an encoder-decoder learns the user's source -> target pairs."""

    def __init__(self, task_name: str, vocab: Vocab, cfg: TrainConfig):
        _no_options(cfg)
        super().__init__(task_name, vocab, cfg)

    def load_data(self) -> None:
        self.splits, _ = load_pair_splits(self.cfg)
        if len(self.vocab) == len(Vocab.from_alphabet("")):  # a fresh run: no checkpoint's vocab
            texts = [s for part in (self.splits.train, self.splits.val, self.splits.test)
                     for pair in part for s in pair]
            self.vocab = pairs_vocab(texts, self.cfg.tokens)

    def _target_len_hint(self) -> int:
        if self.splits is None:
            return 0
        return max(len(self.vocab.encode(t)) for _, t in self.splits.train[:2000]) + 2


class FileClassifyProblem(ClassifyProblem):
    """classify: an encoder + class head learns the user's text -> label pairs.

    Labels are numbered in sorted order (or the order of ``--task-opt labels=[...]``).
    """

    def __init__(self, task_name: str, vocab: Vocab, cfg: TrainConfig):
        _no_options(cfg, ("labels",))
        super().__init__(task_name, vocab, cfg)
        self._set_labels(cfg.task_options.get("labels"))

    def _set_labels(self, labels) -> None:
        self.label_names = tuple(str(x) for x in labels) if labels else ()
        self.num_classes = len(self.label_names)

    def load_data(self) -> None:
        splits, origin = load_pair_splits(self.cfg)
        if not self.label_names:
            # The labels of the --data file (train and whatever was carved from it).
            from_data = [splits.train] + [getattr(splits, split) for split, given in
                                          (("val", self.cfg.valid_data), ("test", self.cfg.test_data))
                                          if not given]
            every = [label for part in from_data for _, label in part]
            self._set_labels(sorted(set(every)))
            # Kept in the run's config, so a checkpoint rebuilds the head without the file.
            self.cfg.task_options = {**self.cfg.task_options, "labels": list(self.label_names)}
        ids = {name: i for i, name in enumerate(self.label_names)}
        parts = {}
        for split in ("train", "val", "test"):
            places, source = origin[split]
            pairs = getattr(splits, split)
            for (_, label), place in zip(pairs, places):
                if label not in ids:
                    raise DataFileError(f"{source}{place}: the label {label!r} is not one of the "
                                        f"training labels ({', '.join(self.label_names)})")
            parts[split] = [(text, ids[label]) for text, label in pairs]
        self.splits = Splits(**parts)
        if len(self.vocab) == len(Vocab.from_alphabet("")):
            texts = [t for part in parts.values() for t, _ in part]
            self.vocab = pairs_vocab(texts, self.cfg.tokens)
