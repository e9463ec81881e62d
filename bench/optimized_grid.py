"""planes="optimized" with its best responses on a grid of each box (the core's opt_grid,
RECURRENCES.md §3b) against the tangent at each row's own sweep point (opt_grid=0), side by
side on the same inputs: certified radius and seconds per full search, both as ratios to
planes="exact" measured in the same run, for the trained models of the given folders
(first inputs, p = 2 and inf, one thread). Each grid size runs through the public certify;
the core's PassOptions is wrapped to pass opt_grid and any --options (core_options).

    python bench/optimized_grid.py --models ../shared/models ../shared/models/general --inputs 5 --grids 0 8
    python bench/optimized_grid.py --models tests/data --grids 8 --options opt_iters=6 opt_br=6
"""
from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse
import contextlib
import sys
import time
from pathlib import Path
from typing import Iterator

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import popqorn_fast as pf  # noqa: E402
from popqorn_fast import _core  # noqa: E402
from search_passes import problems  # noqa: E402


@contextlib.contextmanager
def core_options(**extra: int) -> Iterator[None]:
    """Within it, every planes="optimized" PassOptions the package builds also gets ``extra``
    (the core's hidden keywords: opt_grid, opt_iters, opt_br, ...)."""
    original = _core.PassOptions

    def options(**kw):
        if kw.get("planes") == "optimized":
            kw.update(extra)
        return original(**kw)

    _core.PassOptions = options
    try:
        yield
    finally:
        _core.PassOptions = original


def parse_options(items: list[str]) -> dict[str, int]:
    """``name=value`` pairs (integer values) of --options."""
    return {k: int(v) for k, v in (item.split("=", 1) for item in items)}


def searches(m, X, p, planes: str, grid: int | None, extra: dict[str, int]) -> tuple[np.ndarray, float]:
    """Radii of full searches over X and the seconds per search, with opt_grid=grid and ``extra``."""
    with core_options(**extra, **({} if grid is None else {"opt_grid": grid})):
        t0 = time.perf_counter()
        eps = np.array([pf.certify(m, x, 10.0, p=p, planes=planes).eps for x in X])
        return eps, (time.perf_counter() - t0) / len(X)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", nargs="+", help="folders of trained .npz models with inputs X")
    ap.add_argument("--inputs", type=int, default=5)
    ap.add_argument("--grids", type=int, nargs="+", default=[0, 8])
    ap.add_argument("--options", nargs="*", default=[], help="more PassOptions of every optimised run, name=value")
    args = ap.parse_args()
    extra = parse_options(args.options)
    by_model: dict[str, tuple] = {}
    for name, m, x in problems(args.models, args.inputs, 0):
        by_model.setdefault(name, (m, []))[1].append(x)
    head = "| model | p | exact s | " + " | ".join(f"grid {g}: ε / exact, × time" for g in args.grids) + " |"
    print(head)
    print("|---" * (3 + len(args.grids)) + "|")
    totals = {g: ([], []) for g in args.grids}
    for name, (m, X) in by_model.items():
        for p in (2, "inf"):
            e0, t0 = searches(m, X, p, "exact", None, {})
            cells = []
            for g in args.grids:
                e, t = searches(m, X, p, "optimized", g, extra)
                totals[g][0].append(np.mean(e / e0))
                totals[g][1].append(t / t0)
                cells.append(f"{np.mean(e / e0):.4f}, {t / t0:.1f}×")
            print(f"| {name} | {p} | {t0:.4f} | " + " | ".join(cells) + " |", flush=True)
    print("| mean of rows | | | " + " | ".join(f"{np.mean(totals[g][0]):.4f}, {np.mean(totals[g][1]):.1f}×"
                                           for g in args.grids) + " |")


if __name__ == "__main__":
    main()
