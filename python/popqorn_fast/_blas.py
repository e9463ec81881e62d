"""Loads the BLAS of the core's dense products (scipy-openblas32 from PyPI; see
cpp/blas.hpp) before the core, with OpenBLAS's own threads off.

OpenBLAS starts its worker threads when the library is loaded (one per core unless
OPENBLAS_NUM_THREADS says otherwise). The core calls it from one thread per row block
(certify's ``threads``), so the library is loaded here with OPENBLAS_NUM_THREADS=1 and
the variable is put back at once. A build tree's ``_core`` also finds the library this
way (an installed one has an RPATH to it). Nothing happens without the package: the
core then has the hand-written kernels only.
"""
from __future__ import annotations

import os
import sys


def preload() -> None:
    if "scipy_openblas32" in sys.modules:  # loaded already (its threads are set by the core)
        return
    old = os.environ.get("OPENBLAS_NUM_THREADS")
    os.environ["OPENBLAS_NUM_THREADS"] = "1"
    try:
        import scipy_openblas32  # noqa: F401  (its import loads the library)
    except ImportError:
        pass
    finally:
        if old is None:
            del os.environ["OPENBLAS_NUM_THREADS"]
        else:
            os.environ["OPENBLAS_NUM_THREADS"] = old


preload()
