"""Every committed export (tests/data/exports, tools/make_export_fixtures.py): does it load,
how far are its logits from the framework's, how long load_model takes, and the certified
ε (p = 2, exact planes) of its first input. One row per file; a markdown table on stdout.

    PYTHONPATH=python python bench/exports_table.py
"""
from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

import popqorn_fast as pf

EXPORTS = Path(__file__).resolve().parent.parent / "tests" / "data" / "exports"


def shape_of(meta: dict) -> str:
    if meta["producer"] != "torch":
        return "keras"
    parts = [meta["kind"], f"L{meta['layers']}", "bi" if meta["bidirectional"] else "uni",
             meta["readout"], meta["head"]]
    return " ".join(str(p) for p in parts)


def main() -> None:
    index = json.loads((EXPORTS / "index.json").read_text())
    print("| file | shape | loads | max rel. logit error | load_model ms | ε* (p=2) input 0 |")
    print("|---|---|---|---|---|---|")
    n = ok = 0
    for name, meta in sorted(index.items()):
        with np.load(EXPORTS / f"{name}.expected.npz") as d:
            X, ref = np.array(d["X"]), np.array(d["logits"])
        for f in meta["files"]:
            n += 1
            kw = {"readout": meta["readout"], "activation": meta["activation"]} if f.endswith(".npz") else {}
            t0 = time.perf_counter()
            try:
                model = pf.load_model(EXPORTS / f, **kw)
            except ValueError as exc:
                print(f"| {f} | {shape_of(meta)} | refused: {str(exc)[:80]} | | | |")
                continue
            ms = 1e3 * (time.perf_counter() - t0)
            err = float(np.max(np.abs(model.logits(X) - ref)) / np.max(np.abs(ref)))
            eps = pf.certify(model, X[0], eps_max=10.0, p=2).eps
            ok += err <= 1e-5
            print(f"| {f} | {shape_of(meta)} | yes | {err:.1e} | {ms:.1f} | {eps:.5g} |")
    print(f"\n{ok} of {n} files load and match their framework's logits to 1e-5")


if __name__ == "__main__":
    main()
