"""planes="optimized" with its best responses on a grid of each box (the core's opt_grid,
RECURRENCES.md §3b) against the tangent at each row's own sweep point (opt_grid=0), side by
side on the same inputs: certified radius and seconds per full search, both as ratios to
planes="exact" measured in the same run, for the trained models of the given folders
(first inputs, p = 2 and inf, one thread). Each grid size runs through the public certify;
the core's PassOptions is wrapped to pass opt_grid (restored in a finally).

    python bench/optimized_grid.py --models ../shared/models ../shared/models/general --inputs 5 --grids 0 8
"""
from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import popqorn_fast as pf  # noqa: E402
from popqorn_fast import _core  # noqa: E402
from search_passes import problems  # noqa: E402


def searches(m, X, p, planes: str, grid: int | None) -> tuple[np.ndarray, float]:
    """Radii of full searches over X and the seconds per search, with opt_grid=grid."""
    original = _core.PassOptions

    def options(**kw):
        if grid is not None and kw.get("planes") == "optimized":
            kw["opt_grid"] = grid
        return original(**kw)

    _core.PassOptions = options
    try:
        t0 = time.perf_counter()
        eps = np.array([pf.certify(m, x, 10.0, p=p, planes=planes).eps for x in X])
        return eps, (time.perf_counter() - t0) / len(X)
    finally:
        _core.PassOptions = original


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", nargs="+", help="folders of trained .npz models with inputs X")
    ap.add_argument("--inputs", type=int, default=5)
    ap.add_argument("--grids", type=int, nargs="+", default=[0, 8])
    args = ap.parse_args()
    by_model: dict[str, tuple] = {}
    for name, m, x in problems(args.models, args.inputs, 0):
        by_model.setdefault(name, (m, []))[1].append(x)
    head = "| model | p | exact s | " + " | ".join(f"grid {g}: ε / exact, × time" for g in args.grids) + " |"
    print(head)
    print("|---" * (3 + len(args.grids)) + "|")
    totals = {g: ([], []) for g in args.grids}
    for name, (m, X) in by_model.items():
        for p in (2, "inf"):
            e0, t0 = searches(m, X, p, "exact", None)
            cells = []
            for g in args.grids:
                e, t = searches(m, X, p, "optimized", g)
                totals[g][0].append(np.mean(e / e0))
                totals[g][1].append(t / t0)
                cells.append(f"{np.mean(e / e0):.4f}, {t / t0:.1f}×")
            print(f"| {name} | {p} | {t0:.4f} | " + " | ".join(cells) + " |", flush=True)
    print("| mean of rows | | | " + " | ".join(f"{np.mean(totals[g][0]):.4f}, {np.mean(totals[g][1]):.1f}×"
                                           for g in args.grids) + " |")


if __name__ == "__main__":
    main()
