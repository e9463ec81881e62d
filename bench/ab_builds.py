"""Two builds of the package side by side on the same workloads: each workload runs in a
fresh process per build, the builds alternating (A B A B ...), and the seconds inside the
process (imports excluded) are compared pair by pair (median of the ratios new / base).

    python bench/ab_builds.py --base /path/to/old/python --new python [--runs 5]
        [--workloads search optimized random32 random64 rnn64] [--rounding sound32]

Workloads (one thread): ``search`` - certify, planes "exact", p = 2, first 3 inputs of the
trained LSTM/GRU models (tests/data); ``optimized`` - the same with planes="optimized", first
input of lstm_T8_h16 and gru_T8_h16; ``randomH`` - bench/run.py's random LSTM and GRU at
T = 8, h = H, n = 8, first input, planes "exact" (``optimizedH``: planes "optimized");
``rnn64`` - its vanilla RNN at T = 8, h = 64, first 8 inputs. ``--rounding`` applies to every workload
(default: certify's).
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
DATA = HERE.parent / "tests" / "data"
TRAINED = ("lstm_T8_h16", "lstm_T4_h24", "gru_T8_h16", "gru_T4_h24")


def workload(name: str, rounding: str = "sound") -> float:
    """Runs one workload in this process; returns its seconds."""
    import popqorn_fast as pf
    sys.path.insert(0, str(HERE))
    from run import random_model
    t0 = time.perf_counter()
    if name in ("search", "optimized"):
        models = TRAINED if name == "search" else ("lstm_T8_h16", "gru_T8_h16")
        for m in models:
            w = pf.load_model(DATA / f"{m}.npz")
            X, _ = pf.load_inputs(DATA / f"{m}.npz")
            for i in range(3 if name == "search" else 1):
                pf.certify(w, X[i], 10.0, p=2, planes="exact" if name == "search" else "optimized",
                           rounding=rounding)
    elif name == "rnn64":  # vanilla RNN, T = 8, h = 64: the first 8 inputs (a search is ~4 ms)
        w, X = random_model("rnn", 8, 64, 8)
        for x in X[:8]:
            pf.certify(w, x, 10.0, p=2, rounding=rounding)
    elif name.startswith(("random", "optimized")):
        planes = "exact" if name.startswith("random") else "optimized"
        h = int(name[len("random"):] if planes == "exact" else name[len("optimized"):])
        for kind in ("lstm", "gru"):
            w, X = random_model(kind, 8, h, 8)
            pf.certify(w, X[0], 10.0, p=2, planes=planes, rounding=rounding)
    else:
        raise SystemExit(f"unknown workload {name!r}")
    return time.perf_counter() - t0


def timed(pythonpath: str, name: str, rounding: str) -> float:
    env = dict(os.environ, PYTHONPATH=pythonpath, OPENBLAS_NUM_THREADS="1")
    out = subprocess.run([sys.executable, __file__, "--one", name, "--rounding", rounding], env=env, capture_output=True, text=True,
                         check=True)
    return float(out.stdout.split()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--base", help="PYTHONPATH of the base build")
    ap.add_argument("--new", help="PYTHONPATH of the new build")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--workloads", nargs="+", default=["search", "optimized", "random32", "random64"])
    ap.add_argument("--rounding", default="sound", help="certify's rounding for every workload")
    ap.add_argument("--one", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one:
        print(f"{workload(args.one, args.rounding):.6f}")
        return
    if not (args.base and args.new):
        ap.error("--base and --new are required")
    print("| workload | base s (median) | new s (median) | new / base (median of pairs) | min | max |")
    print("|---|---|---|---|---|---|")
    for name in args.workloads:
        base, new = [], []
        for _ in range(args.runs):
            base.append(timed(args.base, name, args.rounding))
            new.append(timed(args.new, name, args.rounding))
        r = [n / b for n, b in zip(new, base)]
        print(f"| {name} | {statistics.median(base):.4f} | {statistics.median(new):.4f} | "
              f"{statistics.median(r):.3f} | {min(r):.3f} | {max(r):.3f} |", flush=True)


if __name__ == "__main__":
    main()
