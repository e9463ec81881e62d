"""The one shared piece: the oracle's 2-D planes are the core's (docs/RECURRENCES.md §3).

``ProductBounds`` is the callable type ``(surface, xl, xu, yl, yu, method) ->
object with aL, bL, cL, aU, bU, cU``.  The shipped oracle uses
``popqorn_fast.planes.bound_product``; the LSTM/GRU implementations take the
callable as an argument so the recurrences can be tested on their own with
any valid plane (e.g. a corner min/max "constant" plane).
"""
from __future__ import annotations

from types import SimpleNamespace
from typing import Any, Callable

import numpy as np

ProductBounds = Callable[[str, np.ndarray, np.ndarray, np.ndarray, np.ndarray, str], Any]


def core_bound_product(surface: str, xl: np.ndarray, xu: np.ndarray, yl: np.ndarray,
                       yu: np.ndarray, method: str) -> Any:
    """Planes from the C++ core: ``popqorn_fast.planes.bound_product``.

    Until that Python wrapper exists, and for the GRU shared-z surfaces ``"tanh_linear"``
    (tanh(x)·y) and ``"bilinear"`` (x·y) that the public wrapper does not offer, the raw
    binding ``_core.bound_product(surface, method, xl, xu, yl, yu) -> (aL, bL, cL, aU, bU, cU)``
    (the same C++ planes) is used.
    """
    args = [np.ascontiguousarray(v, dtype=np.float64) for v in (xl, xu, yl, yu)]
    try:
        from popqorn_fast.planes import bound_product  # imported late: only this touches the core
        if surface in ("tanh_linear", "bilinear"):
            raise ImportError("internal surface")
    except ImportError:
        from popqorn_fast import _core

        aL, bL, cL, aU, bU, cU = _core.bound_product(surface, method, *args)
        return SimpleNamespace(aL=aL, bL=bL, cL=cL, aU=aU, bU=bU, cU=cU)
    return bound_product(surface, *args, method)
