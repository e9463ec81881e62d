"""One-variable linear relaxations of tanh, sigmoid and ReLU (ALGORITHM.md §2).

Thin NumPy layer over ``popqorn_fast._core.bound_activation``; the choices
(chord / midpoint tangent / tangent through an endpoint, exact offsets plus a
few-ulp margin) are fixed in docs/RECURRENCES.md §2.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from . import _core
from .validation import as_real_array

ACTIVATIONS = ("tanh", "sigmoid", "relu")


@dataclass(frozen=True)
class Lines:
    """Lines ``alpha_l*z + beta_l <= fn(z) <= alpha_u*z + beta_u`` on ``[l, u]``.

    All four fields are float64 arrays of the broadcast shape of ``l`` and ``u``.
    """

    alpha_l: np.ndarray
    beta_l: np.ndarray
    alpha_u: np.ndarray
    beta_u: np.ndarray


def _broadcast(named: dict[str, Any]) -> tuple[tuple[int, ...], list[np.ndarray]]:
    arrays = {k: as_real_array(v, k) for k, v in named.items()}
    try:
        shape = np.broadcast_shapes(*(a.shape for a in arrays.values()))
    except ValueError as exc:
        names = ", ".join(f"{k} {a.shape}" for k, a in arrays.items())
        raise ValueError(f"shapes do not broadcast: {names}") from exc
    flat = [np.ascontiguousarray(np.broadcast_to(a, shape), dtype=np.float64).ravel() for a in arrays.values()]
    return shape, flat


def _check_ordered(lo: np.ndarray, hi: np.ndarray, lo_name: str, hi_name: str) -> None:
    bad = ~(lo <= hi)
    if np.any(bad):
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(
            f"{lo_name} must be <= {hi_name} elementwise; {np.count_nonzero(bad)} violation(s), "
            f"first at flat index {i}: {lo_name}={lo[i]!r} > {hi_name}={hi[i]!r}"
        )


def bound_activation(fn: str, l: Any, u: Any) -> Lines:
    """Linear lower and upper bounds of an activation on intervals.

    Parameters
    ----------
    fn : {"tanh", "sigmoid", "relu"}
        The activation.
    l, u : array_like
        Interval endpoints (finite, ``l <= u`` elementwise); broadcast together.

    Returns
    -------
    Lines
        Slopes and offsets with ``alpha_l*z + beta_l <= fn(z) <= alpha_u*z + beta_u``
        for every ``z`` in ``[l, u]``, guaranteed in float64 (offsets exact for the
        slope plus a few-ulp margin).

    Raises
    ------
    ValueError
        Unknown ``fn``, non-finite or non-numeric ``l``/``u``, ``l > u``, or
        shapes that do not broadcast.
    """
    if not isinstance(fn, str) or fn not in ACTIVATIONS:
        raise ValueError(f"fn must be one of {ACTIVATIONS}, got {fn!r}")
    shape, (lf, uf) = _broadcast({"l": l, "u": u})
    _check_ordered(lf, uf, "l", "u")
    out = _core.bound_activation(fn, lf, uf)
    return Lines(*(np.asarray(o).reshape(shape) for o in out))
