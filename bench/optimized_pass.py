"""CPU milliseconds of one planes="optimized" bound pass per model (the minimum over the repeats
of 2 passes), at ε = 1.05 × the "exact" radius of the model's first input, p = 2. Run it once
per build, alternating builds, to compare them (bench/results/2026-12-13-response-lanes.md);
or compare settings of the core's hidden keywords in one process (--sets, each a list of
name=value, "" for the defaults; the sets alternate within every repeat, and each later set is
also given as a ratio to the first; bench/results/2026-12-14-issue-base.md).

    PYTHONPATH=<build>/python python bench/optimized_pass.py tests/data/lstm_T8_h16.npz m/lstm_T8_h32.npz
    python bench/optimized_pass.py --sets "" "opt_iters=6 opt_br=6" --repeats 15 m/rnn_T8_h64.npz
"""
from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import popqorn_fast as pf  # noqa: E402
from popqorn_fast.certify import _problem  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from optimized_grid import core_options, parse_options  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("models", nargs="+", help=".npz model files with their inputs X")
    ap.add_argument("--sets", nargs="+", default=[""], help='PassOptions sets, e.g. "" "opt_iters=6 opt_br=6"')
    ap.add_argument("--repeats", type=int, default=7)
    args = ap.parse_args()
    sets = [parse_options(s.split()) for s in args.sets]
    out = []
    for path in args.models:
        m = pf.load_model(path)
        x = pf.load_inputs(path)[0][0]
        eps = pf.certify(m, x, 10.0, p=2, planes="exact").eps * 1.05
        pr = _problem(m, x, 2, None, None, "optimized")
        best = [float("inf")] * len(sets)
        for _ in range(args.repeats):
            for i, extra in enumerate(sets):
                with core_options(**extra):
                    t0 = time.process_time()
                    pr.run(eps)
                    pr.run(eps)
                    best[i] = min(best[i], (time.process_time() - t0) / 2)
        cells = [f"{b * 1e3:.2f}" for b in best] + [f"{b / best[0]:.3f}" for b in best[1:]]
        out.append(f"{os.path.basename(path).split('.')[0]} " + " ".join(cells))
    print("  ".join(out))


if __name__ == "__main__":
    main()
