"""What a failed probe certifies below itself (docs/RECURRENCES.md §5, smaller_ball.py), and the
passes per exact search of the package on PYTHONPATH.

``kappa``: for each (model, input, p) a search's radius r, then one pass at r (1 + k·1e-3) for
k = 1, 3, 10, 30; prints per model the mean of ρ / r, ρ the radius that failed pass certifies
with its own relaxations (0 where it certifies none). ``passes``: bound passes per
``certify`` (planes="exact"), per model and over all searches (run it once per build to
compare builds).

    python bench/smaller_ball.py kappa --models tests/data --random rnn:8:64 lstm:8:32 --inputs 5
    python bench/smaller_ball.py passes --models tests/data tests/data/general --inputs 10 \\
        --random lstm:8:32 gru:8:32 lstm:8:64 rnn:8:64 --random-inputs 8
"""
from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import popqorn_fast as pf  # noqa: E402
from run import random_model  # noqa: E402

KS = (1, 3, 10, 30)


def cases(folders: list[str], inputs: int, randoms: list[str], random_inputs: int):
    """(name, model, inputs) of each model file in the folders and each random model."""
    for folder in folders:
        for f in sorted(Path(folder).glob("*.npz")):
            try:
                m = pf.load_model(f)
                X, _ = pf.load_inputs(f)
            except ValueError:
                continue  # not a model with inputs (e.g. stored logits)
            yield f.stem, m, X[:inputs]
    for spec in randoms:
        kind, T, h = spec.split(":")
        w, X = random_model(kind, int(T), int(h), 8)
        yield f"random {kind} T{T} h{h}", w, X[:random_inputs]


def kappa_row(m, X) -> np.ndarray:
    """Mean ρ / r per k over the inputs and both norms."""
    from popqorn_fast.certify import _problem
    from popqorn_fast.smaller_ball import certified_within
    out = []
    for x in X:
        for p in (2, "inf"):
            r = pf.certify(m, x, 10.0, p=p).eps
            if r <= 0.0:
                continue
            pr = _problem(m, x, p, None, None, "exact")
            row = []
            for k in KS:
                e = r * (1.0 + k * 1e-3)
                o = pr.run(e)
                rho = certified_within(e, o["lower"], o["slope"])
                row.append((rho or 0.0) / r)
            out.append(row)
    return np.mean(out, axis=0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("what", choices=("kappa", "passes"))
    ap.add_argument("--models", nargs="*", default=[], help="folders of .npz models with inputs X")
    ap.add_argument("--inputs", type=int, default=5)
    ap.add_argument("--random", nargs="*", default=[], help="bench/run.py random models, kind:T:h")
    ap.add_argument("--random-inputs", type=int, default=5)
    args = ap.parse_args()
    allp: list[int] = []
    if args.what == "kappa":
        print(f"{'model':28s} " + " ".join(f"{'rho/r k=' + str(k):>12s}" for k in KS))
    for name, m, X in cases(args.models, args.inputs, args.random, args.random_inputs):
        if args.what == "kappa":
            print(f"{name:28s} " + " ".join(f"{v:12.5f}" for v in kappa_row(m, X)), flush=True)
            continue
        passes = [pf.certify(m, x, 10.0, p=p).bound_passes for x in X for p in (2, "inf")]
        allp += passes
        print(f"{name:28s} {np.mean(passes):6.2f}", flush=True)
    if allp:
        print(f"{'all ' + str(len(allp)) + ' searches':28s} {np.mean(allp):6.2f}")


if __name__ == "__main__":
    main()
