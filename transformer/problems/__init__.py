"""The task kinds a `Trainer` can train, one per module, behind the `Problem` interface.

    base.py      Problem: data -> model -> loss -> metrics -> predict
    seq2seq.py   copy/reverse/sort/add/dates: encoder-decoder, exact match, BLEU
    classify.py  brackets: encoder + classifier head, accuracy
    span.py      kv_span: encoder + span head, exact span match
    lm.py        character LM over text files: decoder-only, perplexity
    files.py     translate / classify on your own TSV file (or list of pairs)
"""
from __future__ import annotations

from ..config import FILE_TASKS, LM_TASK, PRETRAINED_TASKS, ConfigError, TrainConfig
from ..data import Vocab, make_task
from .base import Problem
from .classify import ClassifyProblem
from .files import FileClassifyProblem, FileSeq2SeqProblem
from .lm import LMProblem
from .seq2seq import Seq2SeqProblem
from .span import SpanProblem

KINDS = {"seq2seq": Seq2SeqProblem, "classify": ClassifyProblem, "span": SpanProblem, "lm": LMProblem}


def make_problem(cfg: TrainConfig, vocab: Vocab | None = None) -> Problem:
    """The Problem for cfg.task, with its task options applied (data not loaded yet)."""
    if cfg.task == LM_TASK:
        return LMProblem(LM_TASK, vocab or Vocab.from_alphabet(""), cfg)
    if cfg.task in FILE_TASKS:  # the vocabulary comes from the data (load_data) or the checkpoint
        cls = FileSeq2SeqProblem if FILE_TASKS[cfg.task] == "seq2seq" else FileClassifyProblem
        return cls(cfg.task, vocab or Vocab.from_alphabet(""), cfg)
    if cfg.task in PRETRAINED_TASKS:  # transformer/pretrained/problem.py
        from ..pretrained.problem import make_pretrained_problem
        return make_pretrained_problem(cfg, vocab)
    try:
        task = make_task(cfg.task, **cfg.task_options)
    except (TypeError, ValueError) as exc:
        raise ConfigError(str(exc)) from None
    return KINDS[task.kind](cfg.task, vocab or task.vocab(), cfg, task)


__all__ = ["Problem", "Seq2SeqProblem", "ClassifyProblem", "SpanProblem", "LMProblem", "KINDS",
           "FileSeq2SeqProblem", "FileClassifyProblem", "make_problem"]
