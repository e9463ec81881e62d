"""CPU milliseconds of one planes="optimized" bound pass per model (the minimum over 7 repeats
of 2 passes), at ε = 1.05 × the "exact" radius of the model's first input, p = 2. Run it once
per build, alternating builds, to compare them (bench/results/2026-12-13-response-lanes.md).

    PYTHONPATH=<build>/python python bench/optimized_pass.py tests/data/lstm_T8_h16.npz m/lstm_T8_h32.npz
"""
from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import sys  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

import popqorn_fast as pf  # noqa: E402
from popqorn_fast.certify import _problem  # noqa: E402


def main() -> None:
    out = []
    for path in sys.argv[1:]:
        m = pf.load_model(path)
        x = pf.load_inputs(path)[0][0]
        eps = pf.certify(m, x, 10.0, p=2, planes="exact").eps * 1.05
        pr = _problem(m, x, 2, None, None, "optimized")
        best = float("inf")
        for _ in range(7):
            t0 = time.process_time()
            pr.run(eps)
            pr.run(eps)
            best = min(best, (time.process_time() - t0) / 2)
        out.append(f"{os.path.basename(path).split('.')[0]} {best * 1e3:.1f}")
    print("  ".join(out))


if __name__ == "__main__":
    main()
