"""Command line: ``python -m transformer {train,eval,translate,generate,classify,answer,gradcheck}``.

The `train` flags are generated from the `TrainConfig` and `TransformerConfig`
dataclasses (a field ``batch_size`` becomes ``--batch-size``; its help text is the
field's), with defaults of None so that the preset fills in whatever is not given.

Errors a user can fix (unknown task, bad flag value, missing or mismatched
checkpoint, empty text file) print one line, ``error: ...``, to stderr and exit
with status 2. A NaN loss exits 1, Ctrl-C exits 130 after saving a checkpoint (and
says the `--resume --out DIR` that continues it). `translate` and `classify` print
``input -> output`` lines (``--plain``: outputs only); an input the model cannot read is
reported on stderr by its position and text and skipped, the others are answered, and
the exit status is 1.
Anything else is a bug and keeps its traceback.

Heavy modules (the trainer, the model code, matplotlib) are imported inside the
commands that need them, so that `--help` and flag errors answer fast.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import shlex
import sys
from pathlib import Path
from typing import Any, Sequence

import minitensor as mt
from minitensor import kernels

from .checkpoint import CheckpointError
from .data.tsv import DataFileError
from .config import (LM_TASK, ConfigError, Range, TrainConfig, TransformerConfig, flag_name,
                     resolve_configs)
from .distributed import launched_rank
from .pretrained.commands import add_commands as add_pretrained_commands

EXIT_USAGE = 2
EXIT_NONFINITE = 1
EXIT_SKIPPED = 1  # translate/classify: some inputs could not be read (the others were answered)
EXIT_INTERRUPT = 130


class UsageError(ValueError):
    """Bad input from the command line; printed as one line, exit status 2."""


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line: ``error: ...`` (exit 2)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        sys.stderr.write(f"error: {message} (see `{self.prog} --help`)\n")
        raise SystemExit(EXIT_USAGE)


# ---- typed flag values -------------------------------------------------------------------


def _number(kind: type, allowed: Range | None = None, name: str | None = None):
    """An argparse type: parse an int or float and check it against `allowed` (config.Range).

    The train flags take `allowed` from their config field's metadata, so a value is
    refused with the same words here and in `TrainConfig.validate`.
    """
    def parse(text: str):
        try:
            v = kind(text)
        except ValueError:
            what = "an integer" if kind is int else "a number"
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
        problem = allowed.problem(v) if allowed is not None else None
        if problem is not None:
            raise argparse.ArgumentTypeError(problem)
        return v
    parse.__name__ = name or kind.__name__
    return parse


def _int_at_least(lo: int):
    return _number(int, Range(min=lo))


def _field_flag(f: dataclasses.Field) -> dict:
    """add_argument's type, choices and metavar for a config field, from its metadata."""
    kind = type(f.default)
    choices = f.metadata.get("choices")
    if kind is bool:
        return {"type": _bool, "metavar": "BOOL"}
    if kind in (int, float):
        metavar = {"lr": "LR", "seed": "S"}.get(f.name, "N" if kind is int else "X")
        return {"type": _number(kind, f.metadata.get("range")), "metavar": metavar}
    return {"type": str, "choices": choices, "metavar": "|".join(choices) if choices else "NAME"}


# Fields the CLI sets through dedicated flags (or not at all).
_TRAIN_SKIP = {"task", "preset", "task_options", "text", "plots", "progress", "data", "valid_data",
               "test_data"}
# Your own data: the flags whose values are files (see problems/files.py).
_DATA_FLAGS = ("data", "valid_data", "test_data")
# The TransformerConfig fields that are flags: those with a help text.
_MODEL_FLAGS = [f for f in dataclasses.fields(TransformerConfig) if "help" in f.metadata]


def _bool(text: str) -> bool:
    t = text.lower()
    if t in ("1", "true", "yes", "on"):
        return True
    if t in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


def _task_option(text: str) -> tuple[str, Any]:
    if "=" not in text:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    key, raw = text.split("=", 1)
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        value = raw  # a bare string
    return key.strip(), value


# ---- the parser ------------------------------------------------------------------------------


def _plain_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument("--plain", action="store_true",
                   help="print only the outputs, one a line, without 'input ->' (for scripts)")


def build_parser() -> argparse.ArgumentParser:
    train_fields = {f.name: f for f in dataclasses.fields(TrainConfig)}
    tasks = train_fields["task"].metadata["choices"]
    presets = train_fields["preset"].metadata["choices"]
    parser = _Parser(prog="python -m transformer",
                     description="Train and use small Transformers (Vaswani et al., 2017) on a CPU, "
                                 "built on the minitensor autograd engine.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    # train
    p = sub.add_parser("train", help="train a model on a task (default: dates at the small preset)",
                       description="Train a Transformer. With no arguments: the dates task at the small "
                                   "preset, into runs/dates. Flags not given come from the preset.")
    p.add_argument("--task", default=None, choices=tasks, metavar="TASK",
                   help=f"the task: {', '.join(tasks)} (default: dates)")
    p.add_argument("--preset", default="small", choices=presets, metavar="PRESET",
                   help="tiny (seconds, for tests) | small (reaches the targets, default) | base")
    p.add_argument("--out", metavar="DIR", help="run directory for checkpoints, metrics.jsonl and "
                                                "plots (default: runs/TASK)")
    p.add_argument("--resume", action="store_true",
                   help="continue the run in --out from its latest checkpoint, bit-exact (only "
                        "--steps and a few display/eval flags may change)")
    p.add_argument("--text", nargs="+", metavar="FILE",
                   help="UTF-8 text files for the lm task (default: the packaged text)")
    for name in _DATA_FLAGS:
        p.add_argument(flag_name(name), dest=name, metavar="FILE",
                       help=train_fields[name].metadata["help"].replace("%", "%%"))
    p.add_argument("--task-opt", action="append", type=_task_option, metavar="KEY=VALUE", default=[],
                   help="a task option, e.g. --task-opt max_len=10 (repeatable; values are JSON)")
    p.add_argument("--plots", action=argparse.BooleanOptionalAction, default=None,
                   help="write PNG plots: loss curves, attention heatmaps (default: on)")
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                   help="show a progress bar on stderr (default: on)")
    p.add_argument("--samples", type=_int_at_least(0), default=8, metavar="N",
                   help="test examples to print after training (default: 8)")
    p.add_argument("--profile", type=_int_at_least(1), default=None, metavar="N",
                   help="after warm-up, profile N steps, print the per-op table, write trace.json "
                        "into the run directory, and stop (transformer/profile_step.py)")
    p.add_argument("--distributed", action="store_true",
                   help="use MPI (mpi4py) even with one rank; under `mpiexec -n N` (N > 1) it is on anyway")
    g = p.add_argument_group("training options (default: from the preset)")
    for f in train_fields.values():
        if f.name not in _TRAIN_SKIP:
            g.add_argument(flag_name(f.name), dest=f.name, default=None, **_field_flag(f),
                           help=f.metadata["help"].replace("%", "%%"))
    m = p.add_argument_group("model options (default: from the preset)")
    for f in _MODEL_FLAGS:
        m.add_argument(flag_name(f.name), dest=f"model_{f.name}", default=None, **_field_flag(f),
                       help=f.metadata["help"])
    p.set_defaults(func=cmd_train)

    # eval
    p = sub.add_parser("eval", help="evaluate a checkpoint on its task's test split",
                       description="Rebuild a saved model and report its metrics on a split of its task "
                                   "(regenerated from the run's seed).")
    p.add_argument("--checkpoint", required=True, metavar="DIR", help="run directory (or checkpoint folder)")
    p.add_argument("--split", choices=("test", "val"), default="test", help="which split (default: test)")
    p.add_argument("--limit", type=_int_at_least(1), metavar="N",
                   help="decode only the first N examples (seq2seq; default: all)")
    p.set_defaults(func=cmd_eval)

    # translate
    p = sub.add_parser("translate", help="run a seq2seq model (dates, reverse, add, ...) on inputs",
                       description="Translate each TEXT with a seq2seq checkpoint; prints 'TEXT -> "
                                   "output', one line per input. An input the model cannot read "
                                   "is reported on stderr and skipped (exit status 1).")
    p.add_argument("--checkpoint", required=True, metavar="DIR", help="run directory of a seq2seq task")
    p.add_argument("--beam", type=_int_at_least(1), default=1, metavar="K",
                   help="beam size (default: 1, greedy decoding)")
    _plain_flag(p)
    p.add_argument("text", nargs="+", metavar="TEXT", help="input strings, e.g. 'March 5th, 2024'")
    p.set_defaults(func=cmd_translate)

    # generate
    p = sub.add_parser("generate", help="sample text from a language model (task lm)",
                       description="Continue a prompt with a character-level LM checkpoint.")
    p.add_argument("--checkpoint", required=True, metavar="DIR", help="run directory of an lm task")
    p.add_argument("--prompt", required=True, metavar="TEXT", help="the text to continue")
    p.add_argument("--temperature", type=_number(float, Range(0, min_open=True)), default=1.0, metavar="T",
                   help="sampling temperature (> 0; default 1.0)")
    p.add_argument("--top-k", type=_int_at_least(1), default=None, metavar="K",
                   help="sample among the K most likely characters (default: all)")
    p.add_argument("--max-new-tokens", type=_int_at_least(1), default=200, metavar="N",
                   help="characters to generate (default: 200)")
    p.add_argument("--seed", type=_int_at_least(0), default=0, metavar="S", help="sampling seed (default: 0)")
    p.set_defaults(func=cmd_generate)

    # classify
    p = sub.add_parser("classify", help="run a classifier (brackets, your classify data, intents) on inputs",
                       description="Classify each TEXT with a classification checkpoint; prints "
                                   "'TEXT -> label (probability)', one line per input. An input the "
                                   "model cannot read is reported on stderr and skipped (exit status 1).")
    p.add_argument("--checkpoint", required=True, metavar="DIR", help="run directory of a classify task")
    _plain_flag(p)
    p.add_argument("text", nargs="+", metavar="TEXT", help="input strings, e.g. '([]{})'")
    p.set_defaults(func=cmd_classify)

    # answer
    p = sub.add_parser("answer", help="extract an answer span (task kv_span)",
                       description="Find the answer to --query in --context with a span checkpoint; "
                                   "prints 'QUERY|CONTEXT -> answer'.")
    p.add_argument("--checkpoint", required=True, metavar="DIR", help="run directory of a span task")
    _plain_flag(p)
    p.add_argument("--context", required=True, metavar="C", help="e.g. 'a=17;qx=5;b=203'")
    p.add_argument("--query", required=True, metavar="Q", help="e.g. 'qx'")
    p.set_defaults(func=cmd_answer)

    # gradcheck
    p = sub.add_parser("gradcheck", help="self-test: gradcheck every op and a tiny encoder/decoder layer",
                       description="Gradcheck (float64, central differences) every op in "
                                   "minitensor.ops.REGISTRY and a tiny encoder and decoder layer; "
                                   "prints op | max abs err | ok. Exit status 1 if any check fails.")
    p.add_argument("--no-layers", action="store_true", help="skip the encoder/decoder layer checks")
    p.add_argument("--seed", type=_int_at_least(0), default=0, metavar="S", help="seed of the samples")
    p.set_defaults(func=cmd_gradcheck)

    add_pretrained_commands(sub)  # embed, search (transformer/pretrained/commands.py)
    return parser


# ---- commands -------------------------------------------------------------------------------------


def cmd_train(args: argparse.Namespace) -> int:
    from .distributed import world  # deferred with the trainer (mpi4py only if MPI is used)
    from .run_report import print_run_files  # deferred, as the trainer
    from .trainer import Trainer  # deferred: model code, matplotlib, tqdm (see the module docstring)

    train_over = {f.name: getattr(args, f.name) for f in dataclasses.fields(TrainConfig)
                  if f.name not in _TRAIN_SKIP and getattr(args, f.name, None) is not None}
    if args.plots is not None:
        train_over["plots"] = args.plots
    if args.progress is not None:
        train_over["progress"] = args.progress
    if args.text:
        if args.task != LM_TASK:
            raise UsageError(f"--text is for the lm task, not {args.task or 'dates'!r}")
        train_over["text"] = list(args.text)
    for name in _DATA_FLAGS:
        if getattr(args, name):
            train_over[name] = getattr(args, name)
    if args.task_opt:
        train_over["task_options"] = dict(args.task_opt)
    model_over = {f.name: getattr(args, f"model_{f.name}") for f in _MODEL_FLAGS
                  if getattr(args, f"model_{f.name}") is not None}
    if args.resume:
        out = Path(args.out) if args.out else Path("runs") / (args.task or "dates")
        if model_over:
            raise UsageError("model options cannot change when resuming")
        trainer = Trainer.resume(out, {"task": args.task, **train_over}, log=sys.stdout,
                                 world=world(force=args.distributed))
    else:
        task = args.task or "dates"
        cfg, model_cfg = resolve_configs(task, args.preset, train_over, model_over)
        out = Path(args.out) if args.out else Path("runs") / task
        trainer = Trainer(cfg, model_cfg, out, log=sys.stdout, world=world(force=args.distributed))
    args.run_dir = out  # for the Ctrl-C message's resume hint (see main)
    c = trainer.cfg
    n_params = sum(p.data.size for p in trainer.model.parameters())
    print(f"{'resuming' if args.resume else 'training'} {c.task} ({c.preset}): "
          f"{n_params:,} parameters, steps {trainer.step} -> {c.steps}, batch {c.batch_size}, "
          f"lr {c.lr:g} ({c.schedule}, warmup {c.warmup}), run dir {out}", flush=True)
    if args.profile:
        from .profile_step import profile_training  # deferred, like the trainer
        profile_training(trainer, args.profile)
        return 0
    result = trainer.fit()
    if args.samples:
        print("\nsamples (test split):")
        with mt.no_grad():
            for line in trainer.problem.show(trainer.model, args.samples):
                print("  " + line)
    print(f"\nfinal ({result.step} steps, {result.wall_time:.0f} s wall, {result.cpu_time:.0f} s CPU, "
          f"{result.tokens_per_sec:,.0f} tokens/s"
          f"{', target reached early' if result.stopped_early else ''}):")
    print("  val:  " + _metrics_line(result.val))
    print("  test: " + _metrics_line(result.test))
    print_run_files(trainer, out, result.checkpoint)
    return 0


def _metrics_line(d: dict) -> str:
    out = []
    for k, v in d.items():
        if k == "n_decoded":
            continue
        if isinstance(v, float):
            pct = k in ("exact_match", "accuracy", "token_accuracy", "span_exact_match")
            out.append(f"{k} {100 * v:.2f}%" if pct else f"{k} {v:.4g}")
        else:
            out.append(f"{k} {v}")
    return ", ".join(out)


def _load(path: str, kind: str | tuple[str, ...] | None = None, load_data: bool = False):
    from .runs import load_model  # deferred: the model code (see the module docstring)

    loaded = load_model(path, load_data=load_data)
    kinds = (kind,) if isinstance(kind, str) else kind
    if kind is not None and loaded.kind not in kinds:
        hint = {"seq2seq": "translate", "classify": "classify", "sentence_classify": "classify",
                "span": "answer", "lm": "generate"}[loaded.kind]
        raise UsageError(f"checkpoint {path!r} holds a {loaded.kind} model (task "
                         f"{loaded.checkpoint.task_name!r}); use `{hint}` instead")
    return loaded


def _threads(loaded):
    """The run's thread limit (TrainConfig.threads) for inference too."""
    return kernels.threads(loaded.problem.cfg.threads)


def _input_problem(loaded, text: str, extra: int = 0) -> str | None:
    """Why the model cannot read `text` (empty, unknown tokens, too long), or None."""
    vocab = loaded.problem.vocab
    tokens = vocab.split(text)
    if not tokens:
        return "it is empty"
    unknown = "".join(dict.fromkeys(t for t in tokens if t not in vocab)) if vocab.level == "char" \
        else " ".join(dict.fromkeys(t for t in tokens if t not in vocab))
    if unknown:
        what = "characters" if vocab.level == "char" else "words"
        return f"it has {what} the model never saw: {unknown!r}"
    limit = loaded.model.cfg.max_len - extra
    if len(tokens) > limit:
        return f"it is longer than the model's limit of {limit} tokens"
    return None


def _check_inputs(loaded, texts: Sequence[str], extra: int = 0) -> None:
    """Refuse (UsageError) the first input the model cannot read."""
    for text in texts:
        problem = _input_problem(loaded, text, extra)
        if problem is not None:
            raise UsageError(f"input {text[:40]!r}: {problem}")


def _readable(loaded, texts: Sequence[str], extra: int = 0) -> list[int]:
    """The positions of the inputs the model can read; each other one is reported on stderr
    by its position (1-based) and text, and skipped."""
    keep = []
    for i, text in enumerate(texts):
        problem = _input_problem(loaded, text, extra)
        if problem is None:
            keep.append(i)
        else:
            print(f"error: input {i + 1} {text[:40]!r} skipped: {problem}", file=sys.stderr)
    return keep


def cmd_eval(args: argparse.Namespace) -> int:
    loaded = _load(args.checkpoint, load_data=True)
    with mt.no_grad(), _threads(loaded):
        result = loaded.problem.evaluate(loaded.model, args.split, args.limit)
    print(f"{loaded.checkpoint.task_name} ({loaded.kind}), step {loaded.checkpoint.step}, {args.split} split:")
    print("  " + _metrics_line(result))
    return 0


def cmd_translate(args: argparse.Namespace) -> int:
    loaded = _load(args.checkpoint, "seq2seq")
    keep = _readable(loaded, args.text)
    texts = [args.text[i] for i in keep]
    with mt.no_grad(), _threads(loaded):
        outs = loaded.problem.decode(loaded.model, texts, beam=args.beam) if texts else []
    for text, out in zip(texts, outs):
        print(out if args.plain else f"{text} -> {out}")
    return EXIT_SKIPPED if len(keep) < len(args.text) else 0


def cmd_generate(args: argparse.Namespace) -> int:
    loaded = _load(args.checkpoint, "lm")
    _check_inputs(loaded, [args.prompt])
    mt.manual_seed(args.seed)
    with mt.no_grad(), _threads(loaded):
        text = loaded.problem.generate(loaded.model, args.prompt, args.max_new_tokens,
                                       args.temperature, args.top_k)
    print(args.prompt + text)
    return 0


def cmd_classify(args: argparse.Namespace) -> int:
    loaded = _load(args.checkpoint, ("classify", "sentence_classify"))
    if loaded.kind == "sentence_classify":  # a fine-tuned pretrained encoder: WordPiece reads any text
        keep = list(range(len(args.text)))
    else:
        keep = _readable(loaded, args.text, extra=1)  # + the BOS position
    texts = [args.text[i] for i in keep]
    names = getattr(loaded.problem, "label_names", ())
    with mt.no_grad(), _threads(loaded):
        preds = loaded.problem.predict(loaded.model, texts) if texts else []
    for text, (label, prob) in zip(texts, preds):
        # predict gives a label id (our classifiers) or its name (the pretrained one)
        name = label if isinstance(label, str) else names[label] if label < len(names) else str(label)
        print(f"{name}\t{prob:.3f}" if args.plain else f"{text} -> {name} ({prob:.3f})")
    return EXIT_SKIPPED if len(keep) < len(args.text) else 0


def cmd_answer(args: argparse.Namespace) -> int:
    from .data import SPAN_SEPARATOR

    loaded = _load(args.checkpoint, "span")
    _check_inputs(loaded, [args.context, args.query])
    _check_inputs(loaded, [args.query + args.context], extra=1)  # + the separator
    with mt.no_grad(), _threads(loaded):
        answer = loaded.problem.answer(loaded.model, [args.context], [args.query])[0]
    print(answer if args.plain else f"{args.query}{SPAN_SEPARATOR}{args.context} -> {answer}")
    return 0


def cmd_gradcheck(args: argparse.Namespace) -> int:
    from .selftest import format_table, run_gradchecks  # deferred: only this command needs it

    results = run_gradchecks(seed=args.seed, layers=not args.no_layers)
    print(format_table(results))
    return 0 if all(r.ok for r in results) else 1


# ---- entry point ------------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit status (see the module docstring)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if launched_rank() > 0:  # under mpiexec every rank runs this; rank 0 speaks for all of them
        with open(os.devnull, "w") as devnull, contextlib.redirect_stdout(devnull), \
                contextlib.redirect_stderr(devnull):
            return _run(args)  # an uncaught traceback still shows: it leaves the redirection
    return _run(args)


def _run(args: argparse.Namespace) -> int:
    # Deferred past parsing, so that `--help` and flag errors stay fast (model code, matplotlib).
    from .trainer import NonFiniteLossError, TrainingInterrupted

    try:
        return args.func(args)
    except (UsageError, ConfigError, CheckpointError, DataFileError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except NonFiniteLossError as exc:
        where = f"; last good checkpoint: {exc.checkpoint}" if exc.checkpoint else "; no checkpoint was written"
        print(f"error: training stopped: {exc}{where}", file=sys.stderr)
        return EXIT_NONFINITE
    except TrainingInterrupted as exc:
        resume = f"python -m transformer train --resume --out {shlex.quote(str(getattr(args, 'run_dir', '')))}"
        saved = f"checkpoint saved to {exc.checkpoint}; continue with `{resume}`" if exc.checkpoint \
            else "no checkpoint written"
        print(f"interrupted at step {exc.step}; {saved}", file=sys.stderr)
        return EXIT_INTERRUPT
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPT


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
