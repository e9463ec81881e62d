"""rounding="sound" against rounding="nearest" (docs/ROUNDING.md), side by side in one run,
one thread: seconds per full ε search (best of --reps, the two modes interleaved), the ratio,
and how far the certified radii differ; then the trap model's figures.

    PYTHONPATH=python python bench/rounding_cost.py            # shared models + random sizes
    PYTHONPATH=python python bench/rounding_cost.py --quick    # fewer inputs, no h = 256
    PYTHONPATH=python python bench/rounding_cost.py --modes sound sound32   # any two modes

Random sizes: one-layer LSTM / GRU / RNN (bench/run.py) and stacks of the generic driver
(2-layer LSTM h = 128, 2-layer bidirectional GRU h = 64, 4-layer LSTM h = 64; T = 8, n = 8).
"""
from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT / "tests"))
import popqorn_fast as pf  # noqa: E402
from run import random_model  # noqa: E402
from soundness.models import random_general  # noqa: E402

MODELS = ROOT.parent / "shared" / "models"


def timed_searches(model, X, p, reps: int, modes: tuple[str, str]) -> dict[str, tuple[float, list[float]]]:
    """Per mode: (best total seconds over reps, the radii)."""
    best = {m: np.inf for m in modes}
    eps: dict[str, list[float]] = {}
    for _ in range(reps):
        for mode in modes:
            t0 = time.perf_counter()
            eps[mode] = [pf.certify(model, x, eps_max=10.0, p=p, rounding=mode).eps for x in X]
            best[mode] = min(best[mode], time.perf_counter() - t0)
    return {m: (best[m], eps[m]) for m in best}


def row(name: str, n: int, p: float, res: dict) -> None:
    (tn, en), (ts, es) = res.values()
    en, es = np.array(en), np.array(es)
    ok = en > 0
    rel = np.abs(es[ok] - en[ok]) / en[ok] if ok.any() else np.zeros(1)
    print(f"{name:<26} {n:>3} {pf.validation.p_name(p):>4} {tn / n:>10.4f} {ts / n:>10.4f} {ts / tn:>6.3f} "
          f"{np.mean(es[ok] / en[ok]) if ok.any() else float('nan'):>10.8f} {rel.max():>9.1e} "
          f"{np.median(rel):>9.1e}", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--inputs", type=int, default=10)
    ap.add_argument("--modes", nargs=2, default=["nearest", "sound"], help="the base mode, then the one compared")
    args = ap.parse_args()
    n_in = 3 if args.quick else args.inputs
    modes = tuple(args.modes)
    print(f"{'model':<26} {'n':>3} {'p':>4} {'s ' + modes[0]:>10} {'s ' + modes[1]:>10} {'ratio':>6} "
          f"{'eps s/n':>10} {'max |d|':>9} {'median':>9}")
    files = sorted(MODELS.glob("*.npz")) + sorted((MODELS / "general").glob("*.npz"))
    for f in files:
        model = pf.load_model(f)
        with np.load(f) as d:
            X = np.array(d["X"][:n_in], dtype=np.float64)
        for p in (2.0, np.inf):
            row(f.stem, len(X), p, timed_searches(model, X, p, args.reps, modes))
    sizes = [("lstm", 8, 32), ("gru", 8, 32), ("rnn", 8, 64), ("lstm", 8, 128), ("gru", 8, 128)]
    if not args.quick:
        sizes += [("lstm", 8, 256), ("gru", 8, 256)]
    for kind, T, h in sizes:
        w, X = random_model(kind, T, h, 8)
        k = 3 if h <= 64 else 1
        row(f"random {kind} T={T} h={h}", k, 2.0, timed_searches(w, X[:k], 2.0, args.reps if h <= 128 else 1, modes))
    for kind, L, bi, h in [("lstm", 2, False, 128), ("gru", 2, True, 64), ("lstm", 4, False, 64)]:
        rng = np.random.default_rng(0)
        g = random_general(rng, [kind] * L, [bi] * L, 8, [h] * L, 10, "last", [], [], scale=0.5)
        X = rng.normal(size=(1, 8, 8))
        name = f"random {L}x{kind}{' bi' if bi else ''} T=8 h={h}"
        row(name, 1, 2.0, timed_searches(g, X, 2.0, 1, modes))
    # the trap model of tests/test_rounding.py (Jia & Rinard's construction)
    from test_rounding import exact_margin, trap_model
    m, x = trap_model(), np.zeros((1, 1))
    a = pf.certify(m, x, eps_max=0.5, rounding="nearest")
    b = pf.certify(m, x, eps_max=0.5, rounding="sound")
    print(f"\ntrap: nearest certifies eps = {a.eps:g} (margin bound {a.margin_lower[0]:.4g}); sound eps = {b.eps:g} "
          f"(margin bound at its smallest probe {b.margin_lower[0]:.4g}); real margin at x̂: "
          f"{float(exact_margin(m, 0.0)):.4g}, at distance 0.2: {float(exact_margin(m, 0.2)):.4g} "
          f"(robust radius atanh(0.1) = {np.arctanh(0.1):.6g})")


if __name__ == "__main__":
    main()
