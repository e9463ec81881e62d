"""Bounding planes for the 2-D products of LSTM/GRU cells (ALGORITHM.md §3).

``F1(x, y) = tanh(x)·σ(y)`` (``"tanh_sigmoid"``) and ``F2(x, y) = x·σ(y)``
(``"x_sigmoid"``) on boxes ``[xl, xu] × [yl, yu]``. Thin NumPy layer over
``popqorn_fast._core.bound_product``: the offsets are always the exact extremes
of ``F − a x − b y`` over the box plus a few-ulp margin, whatever the method
chose as slopes (see cpp/planes.hpp for the methods).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from . import _core
from .lines import _broadcast, _check_ordered

SURFACES = ("tanh_sigmoid", "x_sigmoid")
METHODS = ("exact", "1d", "constant")


@dataclass(frozen=True)
class Planes:
    """Planes ``aL x + bL y + cL <= F(x, y) <= aU x + bU y + cU`` on each box.

    All six fields are float64 arrays of the broadcast shape of the box bounds.
    """

    aL: np.ndarray
    bL: np.ndarray
    cL: np.ndarray
    aU: np.ndarray
    bU: np.ndarray
    cU: np.ndarray


def bound_product(surface: str, xl: Any, xu: Any, yl: Any, yu: Any, method: str = "exact") -> Planes:
    """Linear lower and upper planes of ``F(x, y)`` on boxes.

    Parameters
    ----------
    surface : {"tanh_sigmoid", "x_sigmoid"}
        ``tanh(x)·σ(y)`` or ``x·σ(y)``.
    xl, xu, yl, yu : array_like
        Box bounds (finite, ``xl <= xu``, ``yl <= yu``), broadcast together.
        Degenerate boxes (``xl == xu`` and/or ``yl == yu``) are allowed.
    method : {"exact", "1d", "constant"}, default "exact"
        ``"exact"``: the volume-minimising planes (supporting planes of the
        concave / convex envelope at the box centre); ``"1d"``: the paper's
        appendix-B.1 baseline (σ(y) by 1-D lines, the other factor by its
        interval endpoint); ``"constant"``: horizontal planes at the corner
        min / max.

    Returns
    -------
    Planes
        Slopes and offsets, valid in float64 for every point of each box.

    Raises
    ------
    ValueError
        Unknown ``surface`` or ``method``, non-finite bounds, ``xl > xu`` or
        ``yl > yu``, or shapes that do not broadcast.
    """
    if not isinstance(surface, str) or surface not in SURFACES:
        raise ValueError(f"surface must be one of {SURFACES}, got {surface!r}")
    if not isinstance(method, str) or method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    shape, (xlf, xuf, ylf, yuf) = _broadcast({"xl": xl, "xu": xu, "yl": yl, "yu": yu})
    _check_ordered(xlf, xuf, "xl", "xu")
    _check_ordered(ylf, yuf, "yl", "yu")
    out = _core.bound_product(surface, method, xlf, xuf, ylf, yuf)
    return Planes(*(np.asarray(o).reshape(shape) for o in out))
