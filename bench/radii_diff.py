"""Certified radii of two builds, search by search: how far a change of the relaxations moved
them. ``run`` writes, for the package on PYTHONPATH, every search's radius and seconds (the
trained models of the given folders and bench/run.py's random models, first inputs, p = 2 and
inf, one thread) to a JSON file; ``compare`` prints, per model and norm, the ratios new / base
of the radii (mean, min, max) and of the seconds, then over all searches.

    PYTHONPATH=<base build> python bench/radii_diff.py run base.json --inputs 10
    PYTHONPATH=python python bench/radii_diff.py run new.json --inputs 10
    python bench/radii_diff.py compare base.json new.json

Default models: the trained ones of tests/data and tests/data/general (the shared models),
random LSTM and GRU at T = 8, h = 32 (``--random lstm:8:32 gru:8:32``).
"""
from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
DATA = HERE.parent / "tests" / "data"


def run(out: str, folders: list[str], inputs: int, random: list[str], planes: str) -> None:
    import popqorn_fast as pf
    sys.path.insert(0, str(HERE))
    from run import random_model
    from search_passes import problems

    cases: list[tuple[str, object, np.ndarray]] = list(problems(folders, inputs, 0))
    for spec in random:
        kind, T, h = spec.split(":")
        w, X = random_model(kind, int(T), int(h), 8)
        cases += [(f"random_{kind}_T{T}_h{h}", w, x) for x in X[:inputs]]
    rows: dict[str, dict[str, list[float]]] = {}
    for name, m, x in cases:
        for p in ("2", "inf"):
            t0 = time.perf_counter()
            c = pf.certify(m, x, 10.0, p=2.0 if p == "2" else "inf", planes=planes)
            r = rows.setdefault(f"{name} p={p}", {"eps": [], "seconds": []})
            r["eps"].append(c.eps)
            r["seconds"].append(time.perf_counter() - t0)
    Path(out).write_text(json.dumps({"version": pf.__version__, "planes": planes, "rows": rows}, indent=1))
    print(f"{sum(len(r['eps']) for r in rows.values())} searches, "
          f"{sum(sum(r['seconds']) for r in rows.values()):.2f} s -> {out}")


def compare(base: str, new: str) -> None:
    a, b = (json.loads(Path(f).read_text())["rows"] for f in (base, new))
    every, ta, tb = [], 0.0, 0.0
    print("| model, norm | radius new / base: mean | min | max | seconds new / base |")
    print("|---|---|---|---|---|")
    for key in a:
        ea, eb = np.array(a[key]["eps"]), np.array(b[key]["eps"])
        ok = ea > 0
        r = eb[ok] / ea[ok]
        every += list(r)
        sa, sb = sum(a[key]["seconds"]), sum(b[key]["seconds"])
        ta, tb = ta + sa, tb + sb
        if r.size:
            print(f"| {key} | {r.mean():.5f} | {r.min():.5f} | {r.max():.5f} | {sb / sa:.3f} |")
    e = np.array(every)
    print(f"| all {e.size} searches | {e.mean():.5f} | {e.min():.5f} | {e.max():.5f} | {tb / ta:.3f} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run")
    r.add_argument("out")
    r.add_argument("--models", nargs="*", default=[str(DATA), str(DATA / "general")])
    r.add_argument("--inputs", type=int, default=10)
    r.add_argument("--random", nargs="*", default=["lstm:8:32", "gru:8:32"])
    r.add_argument("--planes", default="exact")
    c = sub.add_parser("compare")
    c.add_argument("base")
    c.add_argument("new")
    args = ap.parse_args()
    if args.cmd == "run":
        run(args.out, args.models, args.inputs, args.random, args.planes)
    else:
        compare(args.base, args.new)


if __name__ == "__main__":
    main()
