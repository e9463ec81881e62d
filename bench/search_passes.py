"""Bound passes per radius search, with the search's first probe at 0.25 × the linearised
distance (first_probe.py, the default) and at the fixed ε = 0.1 of earlier versions, side by
side on the same inputs: the trained models of a folder (each .npz with its inputs X), first
inputs, p = 2 and inf, planes="exact"; and random models (bench/run.py) at T = 8-16, h = 32-64.

    python bench/search_passes.py --models ../shared/models ../shared/models/general --inputs 4
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import popqorn_fast as pf  # noqa: E402
from popqorn_fast.bisection import EPS_START  # noqa: E402
from popqorn_fast.first_probe import SearchStart  # noqa: E402
from run import random_model  # noqa: E402

RANDOM = [("lstm", 8, 32), ("gru", 8, 32), ("rnn", 8, 64), ("lstm", 16, 32), ("lstm", 8, 64), ("gru", 8, 64)]


def problems(folders: list[str], inputs: int, random_inputs: int):
    """(name, model, input) of the first inputs of each model file in the folders (files that
    are not a model with inputs, such as stored logits, are skipped with a line), then of the
    random models."""
    for folder in folders:
        for f in sorted(Path(folder).glob("*.npz")):
            try:
                m = pf.load_model(f)
                X, _ = pf.load_inputs(f)
            except ValueError as exc:
                print(f"skipped {f.name}: {str(exc)[:80]}")
                continue
            for x in X[:inputs]:
                yield f.stem, m, x
    for kind, T, h in RANDOM:
        w, X = random_model(kind, T, h, 8)
        for x in X[:random_inputs]:
            yield f"random {kind} T{T} h{h}", w, x


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", nargs="*", default=[], help="folders of trained .npz models with inputs X")
    ap.add_argument("--inputs", type=int, default=4)
    ap.add_argument("--random-inputs", type=int, default=3)
    args = ap.parse_args()
    problem_cls = sys.modules["popqorn_fast.certify"]._Problem
    linear = problem_cls.first_probe
    fixed = lambda self, eps_max: SearchStart(min(EPS_START, eps_max), None)  # noqa: E731  (earlier versions')
    rows: dict[str, list[tuple[int, int, float]]] = {}
    try:
        for name, m, x in problems(args.models, args.inputs, args.random_inputs):
            for p in (2, "inf"):
                got = []
                for start in (linear, fixed):
                    problem_cls.first_probe = start
                    got.append(pf.certify(m, x, 10.0, p=p))
                rows.setdefault(name, []).append((got[0].bound_passes, got[1].bound_passes,
                                                  got[0].eps / max(got[1].eps, 1e-300)))
    finally:
        problem_cls.first_probe = linear
    print(f"{'model':28s} {'searches':>8s} {'passes (linear start)':>22s} {'passes (0.1 start)':>19s} "
          f"{'eps ratio range':>18s}")
    allp = np.array([r for v in rows.values() for r in v])
    for name, v in list(rows.items()) + [("all", allp.tolist())]:
        a = np.array(v)
        print(f"{name:28s} {len(a):8d} {a[:, 0].mean():22.2f} {a[:, 1].mean():19.2f} "
              f"{a[:, 2].min():8.4f}-{a[:, 2].max():.4f}")


if __name__ == "__main__":
    main()
