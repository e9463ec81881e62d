"""Thread scaling of certify_many: seconds for a batch with 1 and with k threads.

The core releases the GIL for a whole bound pass, so on an idle machine with k
free cores the speed-up should approach k. Run it on an idle machine: any other
job on the cores shows up as lost scaling, not as slower code.

    python bench/threads.py                     # shared test models, 40 inputs, 1 vs 2 threads
    python bench/threads.py --inputs 80 --threads 4
"""
from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse
import time
from pathlib import Path

import popqorn_fast as pf

DATA = Path(__file__).resolve().parent.parent / "tests" / "data"
MODELS = ("lstm_T8_h16", "gru_T8_h16", "rnn_tanh_T16_h16")


def best_time(fn, repeats: int) -> float:
    """Least wall-clock seconds of ``repeats`` calls (the least disturbed one)."""
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--inputs", type=int, default=40)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--p", type=float, default=2.0)
    args = ap.parse_args()
    print(f"# {os.cpu_count()} cpus, load average {os.getloadavg()[0]:.2f} at start, "
          f"{args.inputs} inputs, p = {args.p:g}, planes exact, best of {args.repeats}")
    print(f"| model | 1 thread (s) | {args.threads} threads (s) | speed-up |")
    print("|---|---|---|---|")
    for name in MODELS:
        path = DATA / f"{name}.npz"
        w = pf.load_model(path)
        X, y = pf.load_inputs(path)
        X, y = X[:args.inputs], y[:args.inputs]
        run = lambda k: pf.certify_many(w, X, eps_max=1.0, p=args.p, labels=y, threads=k)
        t1 = best_time(lambda: run(1), args.repeats)
        tk = best_time(lambda: run(args.threads), args.repeats)
        print(f"| {name} | {t1:.3f} | {tk:.3f} | {t1 / tk:.2f}x |")


if __name__ == "__main__":
    main()
