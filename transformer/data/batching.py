"""Batches of NumPy int64 arrays, padded with PAD_ID, and a seeded batch loader.

Four batch types, one per task kind:

    Seq2SeqBatch   src (B, S), tgt_in (B, T) = BOS + target, tgt_out (B, T) = target + EOS
    ClassifyBatch  tokens (B, S), labels (B,)
    SpanBatch      tokens (B, S) = query + separator + context, start/end (B,)
    LMBatch        x (B, T), y (B, T) = x shifted left by one

Pad masks are bool with True = PAD, which is PyTorch's key_padding_mask convention
(True = may NOT attend). `BatchLoader` yields one epoch per iteration: it shuffles
from its own seeded Generator, sorts by length within chunks of `bucket_chunks`
batches (less padding), then shuffles the batch order. Every example appears exactly
once per epoch, and the same seed gives the same batches.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Generic, Iterator, Sequence, TypeVar

import numpy as np

from .span import SPAN_SEPARATOR, SpanExample
from .vocab import BOS_ID, EOS_ID, PAD_ID, Vocab

BatchT = TypeVar("BatchT")
ItemT = TypeVar("ItemT")
SeedLike = int | np.random.Generator | None


def pad_sequences(seqs: Sequence[Sequence[int]], pad_id: int = PAD_ID) -> np.ndarray:
    """Right-pad ragged id lists into one array.

    Args:
        seqs: B lists (or 1-D arrays) of ids.
        pad_id: the fill value.

    Returns:
        int64 array (B, max_len).
    """
    width = max((len(s) for s in seqs), default=0)
    out = np.full((len(seqs), width), pad_id, dtype=np.int64)
    for i, s in enumerate(seqs):
        out[i, : len(s)] = s
    return out


def _require_nonempty(kind: str, seqs: Sequence[Sequence[int]]) -> None:
    # A row that is all PAD leaves attention nothing to attend to (softmax over an
    # empty set), so refuse it here rather than produce NaNs in the model.
    empty = [i for i, s in enumerate(seqs) if len(s) == 0]
    if empty:
        raise ValueError(f"{kind}: examples {empty[:5]} have an empty input sequence")


# ---- batch types ----------------------------------------------------------------------


@dataclass(frozen=True)
class Seq2SeqBatch:
    """A padded encoder-decoder batch.

    Attributes:
        src: (B, S) int64 source ids.
        tgt_in: (B, T) int64 decoder input, BOS + target.
        tgt_out: (B, T) int64 decoder labels, target + EOS.
        src_pad_mask: (B, S) bool, True where src is PAD.
        tgt_pad_mask: (B, T) bool, True where tgt_in is PAD (also where tgt_out is).
        ntokens: number of non-PAD entries of tgt_out (the loss normaliser).
    """

    src: np.ndarray
    tgt_in: np.ndarray
    tgt_out: np.ndarray
    src_pad_mask: np.ndarray
    tgt_pad_mask: np.ndarray
    ntokens: int

    def __len__(self) -> int:
        return self.src.shape[0]


@dataclass(frozen=True)
class ClassifyBatch:
    """A padded sequence-classification batch.

    Attributes:
        tokens: (B, S) int64 ids.
        pad_mask: (B, S) bool, True where tokens is PAD.
        labels: (B,) int64 class labels.
    """

    tokens: np.ndarray
    pad_mask: np.ndarray
    labels: np.ndarray

    def __len__(self) -> int:
        return self.tokens.shape[0]


@dataclass(frozen=True)
class SpanBatch:
    """A padded extractive-QA batch over query + separator + context.

    Attributes:
        tokens: (B, S) int64 ids.
        pad_mask: (B, S) bool, True where tokens is PAD.
        context_mask: (B, S) bool, True on context tokens (where an answer may lie);
            use it to mask start/end logits.
        start: (B,) int64 token position of the answer's first token.
        end: (B,) int64 token position of the answer's last token (inclusive).
    """

    tokens: np.ndarray
    pad_mask: np.ndarray
    context_mask: np.ndarray
    start: np.ndarray
    end: np.ndarray

    def __len__(self) -> int:
        return self.tokens.shape[0]


@dataclass(frozen=True)
class LMBatch:
    """A language-model batch: y[:, t] is the token that follows x[:, t].

    Attributes:
        x: (B, T) int64 inputs.
        y: (B, T) int64 targets.
    """

    x: np.ndarray
    y: np.ndarray

    def __len__(self) -> int:
        return self.x.shape[0]


# ---- collate: encoded items -> batch ---------------------------------------------------


def collate_seq2seq(pairs: Sequence[tuple[Sequence[int], Sequence[int]]]) -> Seq2SeqBatch:
    """Encoded (source ids, target ids) pairs -> Seq2SeqBatch (BOS/EOS added here).

    Args:
        pairs: B pairs of id lists without BOS/EOS; sources must be non-empty.

    Returns:
        A Seq2SeqBatch with S = longest source, T = longest target + 1.
    """
    srcs = [list(s) for s, _ in pairs]
    _require_nonempty("collate_seq2seq", srcs)
    src = pad_sequences(srcs)
    tgt_in = pad_sequences([[BOS_ID, *t] for _, t in pairs])
    tgt_out = pad_sequences([[*t, EOS_ID] for _, t in pairs])
    tgt_pad_mask = tgt_out == PAD_ID
    return Seq2SeqBatch(
        src=src,
        tgt_in=tgt_in,
        tgt_out=tgt_out,
        src_pad_mask=src == PAD_ID,
        tgt_pad_mask=tgt_pad_mask,
        ntokens=int((~tgt_pad_mask).sum()),
    )


def collate_classify(items: Sequence[tuple[Sequence[int], int]]) -> ClassifyBatch:
    """Encoded (ids, label) pairs -> ClassifyBatch."""
    seqs = [list(ids) for ids, _ in items]
    _require_nonempty("collate_classify", seqs)
    tokens = pad_sequences(seqs)
    labels = np.array([label for _, label in items], dtype=np.int64)
    return ClassifyBatch(tokens=tokens, pad_mask=tokens == PAD_ID, labels=labels)


@dataclass(frozen=True)
class EncodedSpan:
    """One span example in token space: ids[start..end] is the answer."""

    ids: list[int]
    context_from: int  # first context token
    start: int
    end: int


def encode_span(example: SpanExample, vocab: Vocab, sep: str = SPAN_SEPARATOR) -> EncodedSpan:
    """SpanExample -> ids of query + sep + context, with the answer in token positions.

    Args:
        example: a SpanExample (character span in its context).
        vocab: a char-level vocab (one token per character, so spans map exactly).
        sep: separator string between query and context; must be in the vocab.

    Returns:
        An EncodedSpan.
    """
    if vocab.level != "char":
        raise ValueError("encode_span: needs a char-level vocab so character spans map to tokens")
    sep_ids = vocab.encode(sep)
    q_ids = vocab.encode(example.query)
    offset = len(q_ids) + len(sep_ids)
    ids = q_ids + sep_ids + vocab.encode(example.context)
    return EncodedSpan(ids, offset, offset + example.start, offset + example.end)


def collate_span(items: Sequence[EncodedSpan]) -> SpanBatch:
    """EncodedSpan items -> SpanBatch."""
    _require_nonempty("collate_span", [it.ids for it in items])
    tokens = pad_sequences([it.ids for it in items])
    pad_mask = tokens == PAD_ID
    positions = np.arange(tokens.shape[1])[None, :]  # (1, S)
    starts = np.array([it.context_from for it in items], dtype=np.int64)[:, None]  # (B, 1)
    return SpanBatch(
        tokens=tokens,
        pad_mask=pad_mask,
        context_mask=(positions >= starts) & ~pad_mask,
        start=np.array([it.start for it in items], dtype=np.int64),
        end=np.array([it.end for it in items], dtype=np.int64),
    )


# ---- the loader ------------------------------------------------------------------------


def as_generator(seed: SeedLike) -> np.random.Generator:
    """An int or None -> np.random.default_rng(seed); a Generator is used as is."""
    return seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)


def bucket_indices(
    lengths: Sequence[int] | np.ndarray,
    batch_size: int,
    rng: np.random.Generator,
    shuffle: bool = True,
    drop_last: bool = False,
    bucket_chunks: int = 50,
) -> list[np.ndarray]:
    """Group example indices into batches of similar length.

    1. shuffle all indices (if `shuffle`);
    2. cut them into chunks of `bucket_chunks * batch_size` and stably sort each
       chunk by length (0 disables sorting);
    3. cut into batches of `batch_size`; with `drop_last`, drop a final short one;
    4. shuffle the batch order (if `shuffle`), so lengths do not rise within a chunk.

    Args:
        lengths: (N,) a sort key per example.
        batch_size: examples per batch (>= 1).
        rng: consumed only when `shuffle` is True.
        shuffle, drop_last, bucket_chunks: as above.

    Returns:
        A list of int64 index arrays, each (batch_size,) or shorter for the last.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    lengths = np.asarray(lengths)
    n = len(lengths)
    order = rng.permutation(n) if shuffle else np.arange(n)
    if bucket_chunks > 0:
        # Sort only within chunks: batches get similar lengths, yet (when shuffling)
        # which examples share a chunk, and so a batch, changes every epoch.
        chunk = bucket_chunks * batch_size
        for i in range(0, n, chunk):
            part = order[i : i + chunk]
            order[i : i + chunk] = part[np.argsort(lengths[part], kind="stable")]
    batches = [order[i : i + batch_size] for i in range(0, n, batch_size)]
    if drop_last and batches and len(batches[-1]) < batch_size:
        batches.pop()
    if shuffle:
        batches = [batches[i] for i in rng.permutation(len(batches))]
    return batches


@dataclass
class BatchLoader(Generic[ItemT, BatchT]):
    """Iterate over batches of pre-encoded items; each `iter()` is one epoch.

    Build one with `seq2seq_loader`, `classify_loader`, `span_loader` or `lm_loader`.
    The Generator is created once from the seed, so epoch k of two loaders built
    with the same seed is identical, and successive epochs differ.

    Attributes:
        items: the encoded examples.
        lengths: (N,) sort key for bucketing.
        collate: list of items -> batch.
        batch_size, shuffle, drop_last, bucket_chunks: see `bucket_indices`.
        rng: the loader's Generator.
    """

    items: Sequence[ItemT]
    lengths: np.ndarray
    collate: Callable[[list[ItemT]], BatchT]
    batch_size: int
    rng: np.random.Generator
    shuffle: bool = True
    drop_last: bool = False
    bucket_chunks: int = 50

    def __post_init__(self) -> None:
        if len(self.lengths) != len(self.items):
            raise ValueError(f"BatchLoader: {len(self.items)} items but {len(self.lengths)} lengths")
        if self.batch_size < 1:
            raise ValueError(f"BatchLoader: batch_size must be >= 1, got {self.batch_size}")

    def __len__(self) -> int:
        """Number of batches per epoch."""
        n, b = len(self.items), self.batch_size
        return n // b if self.drop_last else -(-n // b)

    def epoch_indices(self) -> list[np.ndarray]:
        """The next epoch's batches as index arrays (advances the Generator)."""
        return bucket_indices(
            self.lengths, self.batch_size, self.rng, self.shuffle, self.drop_last, self.bucket_chunks
        )

    def __iter__(self) -> Iterator[BatchT]:
        for idx in self.epoch_indices():
            yield self.collate([self.items[i] for i in idx])


def seq2seq_loader(
    examples: Sequence[tuple[str, str]],
    vocab: Vocab,
    batch_size: int,
    *,
    tgt_vocab: Vocab | None = None,
    seed: SeedLike = 0,
    shuffle: bool = True,
    drop_last: bool = False,
    bucket_chunks: int = 50,
) -> BatchLoader[tuple[list[int], list[int]], Seq2SeqBatch]:
    """Loader of Seq2SeqBatch over (source, target) strings.

    Args:
        examples: (source, target) pairs, e.g. Splits.train of a seq2seq task.
        vocab: encodes sources (and targets unless `tgt_vocab` is given).
        batch_size: examples per batch.
        tgt_vocab: a separate target vocab, if any.
        seed, shuffle, drop_last, bucket_chunks: see `BatchLoader`.

    Returns:
        A BatchLoader; bucketing sorts by source length, then target length.
    """
    tv = tgt_vocab or vocab
    items = [(vocab.encode(s), tv.encode(t)) for s, t in examples]
    src_len = np.array([len(s) for s, _ in items], dtype=np.int64)
    tgt_len = np.array([len(t) for _, t in items], dtype=np.int64)
    key = src_len * (int(tgt_len.max(initial=0)) + 1) + tgt_len  # lexicographic (src, tgt)
    rng = as_generator(seed)
    return BatchLoader(items, key, collate_seq2seq, batch_size, rng, shuffle, drop_last, bucket_chunks)


def classify_loader(
    examples: Sequence[tuple[str, int]],
    vocab: Vocab,
    batch_size: int,
    *,
    add_bos: bool = False,
    seed: SeedLike = 0,
    shuffle: bool = True,
    drop_last: bool = False,
    bucket_chunks: int = 50,
) -> BatchLoader[tuple[list[int], int], ClassifyBatch]:
    """Loader of ClassifyBatch over (text, label) pairs.

    Args:
        add_bos: prepend BOS to every sequence, a CLS-style position to pool from.
        (others as in `seq2seq_loader`)
    """
    items = [(vocab.encode(text, add_bos=add_bos), int(label)) for text, label in examples]
    lengths = np.array([len(ids) for ids, _ in items], dtype=np.int64)
    rng = as_generator(seed)
    return BatchLoader(items, lengths, collate_classify, batch_size, rng, shuffle, drop_last, bucket_chunks)


def span_loader(
    examples: Sequence[SpanExample],
    vocab: Vocab,
    batch_size: int,
    *,
    sep: str = SPAN_SEPARATOR,
    seed: SeedLike = 0,
    shuffle: bool = True,
    drop_last: bool = False,
    bucket_chunks: int = 50,
) -> BatchLoader[EncodedSpan, SpanBatch]:
    """Loader of SpanBatch over SpanExamples (char vocab; see `encode_span`)."""
    items = [encode_span(ex, vocab, sep) for ex in examples]
    lengths = np.array([len(it.ids) for it in items], dtype=np.int64)
    rng = as_generator(seed)
    return BatchLoader(items, lengths, collate_span, batch_size, rng, shuffle, drop_last, bucket_chunks)


def lm_loader(
    ids: np.ndarray,
    batch_size: int,
    block_size: int,
    *,
    seed: SeedLike = 0,
    shuffle: bool = True,
    drop_last: bool = False,
) -> BatchLoader[int, LMBatch]:
    """Loader of LMBatch over the non-overlapping windows of a token stream.

    Window i is x = ids[i*T : i*T + T], y = ids[i*T + 1 : i*T + T + 1] with
    T = block_size; an epoch visits each of the (len(ids) - 1) // T windows once.

    Args:
        ids: 1-D int array (e.g. LMCorpus.train).
        batch_size: windows per batch.
        block_size: T, the context length.
        seed, shuffle, drop_last: see `BatchLoader`.
    """
    ids = np.asarray(ids, dtype=np.int64)
    n_windows = _count_windows(ids, block_size)
    starts = list(range(0, n_windows * block_size, block_size))

    def collate(batch_starts: list[int]) -> LMBatch:
        rows = np.array(batch_starts, dtype=np.int64)[:, None] + np.arange(block_size)  # (B, T)
        return LMBatch(x=ids[rows], y=ids[rows + 1])

    lengths = np.full(n_windows, block_size, dtype=np.int64)
    rng = as_generator(seed)
    return BatchLoader(starts, lengths, collate, batch_size, rng, shuffle, drop_last, bucket_chunks=0)


def sample_lm_batch(
    ids: np.ndarray, batch_size: int, block_size: int, rng: np.random.Generator
) -> LMBatch:
    """B windows at uniformly random offsets (nanoGPT's get_batch); may overlap.

    Args:
        ids: 1-D int array, length >= block_size + 1.
        batch_size: B.
        block_size: T.
        rng: the Generator to draw offsets from.

    Returns:
        LMBatch with x, y of shape (B, T).
    """
    ids = np.asarray(ids, dtype=np.int64)
    _count_windows(ids, block_size)  # validates the length
    offsets = rng.integers(0, len(ids) - block_size, size=batch_size)  # (B,)
    rows = offsets[:, None] + np.arange(block_size)  # (B, T)
    return LMBatch(x=ids[rows], y=ids[rows + 1])


def _count_windows(ids: np.ndarray, block_size: int) -> int:
    if ids.ndim != 1:
        raise ValueError(f"LM ids must be 1-D, got shape {ids.shape}")
    if block_size < 1:
        raise ValueError(f"block_size must be >= 1, got {block_size}")
    if len(ids) < block_size + 1:
        raise ValueError(
            f"LM text has {len(ids)} tokens but block_size={block_size} needs at least "
            f"{block_size + 1}; use a smaller block size or more text"
        )
    return (len(ids) - 1) // block_size
