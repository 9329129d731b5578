"""Data for the Transformer: vocabularies, seeded synthetic tasks, LM text, batches.

Depends only on NumPy and the standard library; every batch holds NumPy int64 id
arrays (and bool pad masks, True = PAD) that the model code wraps in tensors.

    vocab.py     Vocab, PAD_ID/BOS_ID/EOS_ID/UNK_ID, tokenize_words
    tasks.py     the TASKS registry, make_task, make_splits; one module per task family:
    task_base.py   Task, the base class
    strings.py     copy, reverse, sort, add
    dates.py       dates (many human formats -> ISO)
    brackets.py    brackets (balanced or not)
    span.py        kv_span, SpanExample, SPAN_SEPARATOR
    text.py      UTF-8 text files -> char-level LMCorpus, lm_windows
    tsv.py       your own pairs: TSV files (source<TAB>target, text<TAB>label), checked by line
    examples/    small example TSV files (numbers.tsv, sentiment.tsv)
    batching.py  Seq2Seq/Classify/Span/LM batches and the bucketing BatchLoader
    stream.py    BatchStream: endless batches with a resumable position
"""

from .batching import (
    BatchLoader,
    ClassifyBatch,
    EncodedSpan,
    LMBatch,
    Seq2SeqBatch,
    SpanBatch,
    bucket_indices,
    classify_loader,
    collate_classify,
    collate_seq2seq,
    collate_span,
    encode_span,
    lm_loader,
    pad_sequences,
    sample_lm_batch,
    seq2seq_loader,
    span_loader,
)
from .stream import BatchStream
from .brackets import BracketsTask, is_balanced
from .dates import DATE_FORMATS, DatesTask
from .span import SPAN_SEPARATOR, KvSpanTask, SpanExample
from .strings import AddTask, CopyTask, ReverseTask, SortTask
from .task_base import Task
from .tasks import TASKS, Splits, make_splits, make_task
from .tsv import DataFileError, carve_splits, check_pairs, example_file, read_pairs
from .text import LMCorpus, default_text, lm_windows, load_corpus, read_text_file, read_texts
from .vocab import BOS_ID, EOS_ID, PAD_ID, SPECIAL_TOKENS, UNK_ID, Vocab, tokenize_words

__all__ = [
    "BOS_ID", "EOS_ID", "PAD_ID", "UNK_ID", "SPECIAL_TOKENS", "Vocab", "tokenize_words",
    "TASKS", "Task", "make_task", "make_splits", "Splits", "SpanExample", "SPAN_SEPARATOR",
    "CopyTask", "ReverseTask", "SortTask", "AddTask", "DatesTask", "BracketsTask", "KvSpanTask",
    "DATE_FORMATS", "is_balanced",
    "DataFileError", "read_pairs", "check_pairs", "carve_splits", "example_file",
    "LMCorpus", "load_corpus", "read_texts", "read_text_file", "default_text", "lm_windows",
    "Seq2SeqBatch", "ClassifyBatch", "SpanBatch", "LMBatch", "EncodedSpan", "BatchLoader", "BatchStream",
    "pad_sequences", "bucket_indices", "collate_seq2seq", "collate_classify", "collate_span",
    "encode_span", "seq2seq_loader", "classify_loader", "span_loader", "lm_loader", "sample_lm_batch",
]  # fmt: skip
