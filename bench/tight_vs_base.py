"""Seconds per full radius search of this build's planes="optimized" and planes="exact" next to
another build's "exact" (issue 17 measures the tight mode's cost against the "exact" search of
the day it was filed: build that commit in a worktree and pass its python folder as --base).

Each (build, planes) runs in a fresh process per model file and repeat, the three alternating
(base exact, new optimized, new exact, then again), one thread; a process certifies the file's
first inputs at p = 2 and inf through the public ``certify`` (the API every version has) and
reports the CPU seconds of each search and its radius. The table gives, per model and p, the
smallest of the repeats' mean CPU seconds per search (the machine's noise only adds time) and
the ratios, with the mean radii of each.

    git worktree add /tmp/base 07855e4   # then build its _core into /tmp/base/python/popqorn_fast
    python bench/tight_vs_base.py --base /tmp/base/python --new python --inputs 10 --runs 3 \\
        --models m/digits_lstm_T8_h32.npz m/digits_gru_T8_h32.npz
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

import numpy as np


def searches(path: str, planes: str, inputs: int) -> dict[str, list[float]]:
    """In this process: CPU seconds and radius of each search of the file's first inputs."""
    import popqorn_fast as pf
    m = pf.load_model(path)
    X = pf.load_inputs(path)[0][:inputs]
    out: dict[str, list[float]] = {}
    for p in (2, "inf"):
        pf.certify(m, X[0], 10.0, p=p, planes=planes)  # first call's imports and allocations
        secs, eps = [], []
        for x in X:
            t0 = time.process_time()
            eps.append(pf.certify(m, x, 10.0, p=p, planes=planes).eps)
            secs.append(time.process_time() - t0)
        out[f"{p}"] = [float(np.mean(secs)), float(np.mean(eps))]
    return out


def measured(pythonpath: str, path: str, planes: str, inputs: int) -> dict[str, list[float]]:
    env = dict(os.environ, PYTHONPATH=os.path.abspath(pythonpath), OPENBLAS_NUM_THREADS="1")
    cmd = [sys.executable, os.path.abspath(__file__), "--one", path, planes, str(inputs)]
    return json.loads(subprocess.run(cmd, env=env, capture_output=True, text=True, check=True).stdout)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--base", help="python folder (PYTHONPATH) of the base build")
    ap.add_argument("--new", default="python", help="python folder of this build")
    ap.add_argument("--models", nargs="+", help=".npz model files with their inputs X")
    ap.add_argument("--inputs", type=int, default=10)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--one", nargs=3, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one:
        print(json.dumps(searches(args.one[0], args.one[1], int(args.one[2]))))
        return
    if not (args.base and args.models):
        ap.error("--base and --models are required")
    runs = (("base", args.base, "exact"), ("new", args.new, "optimized"), ("new", args.new, "exact"))
    print("| model | p | base exact s | new exact s | new optimized s | opt / base exact | opt / new exact "
          "| ε opt / base exact | ε new exact / base exact |")
    print("|---|---|---|---|---|---|---|---|---|")
    for path in args.models:
        got: dict[int, list[dict[str, list[float]]]] = {i: [] for i in range(len(runs))}
        for _ in range(args.runs):
            for i, (_, pp, planes) in enumerate(runs):
                got[i].append(measured(pp, path, planes, args.inputs))
        name = os.path.basename(path).rsplit(".", 1)[0]
        for p in ("2", "inf"):
            s = [min(r[p][0] for r in got[i]) for i in range(len(runs))]
            e = [got[i][0][p][1] for i in range(len(runs))]
            print(f"| {name} | {p} | {s[0]:.4f} | {s[2]:.4f} | {s[1]:.4f} | {s[1] / s[0]:.2f} | {s[1] / s[2]:.2f} "
                  f"| {e[1] / e[0]:.4f} | {e[2] / e[0]:.4f} |", flush=True)


if __name__ == "__main__":
    main()
