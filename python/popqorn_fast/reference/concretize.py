"""Concretisation of linear forms over the per-frame lp balls (docs/RECURRENCES.md §1).

A back-substitution ends with coefficients ``A[t]`` (rows x n) on every input
frame ``x_t`` and a constant ``d`` (rows,).  Its lower bound over the threat
model is ``d + sum_t A[t] x_hat_t - eps * sum_{t in S} ||A[t]||_q`` (row-wise
dual norm).  Upper bounds are never concretised separately: intermediate
bounds come from one stacked objective ``[Lam; -Lam]`` (see ``split_stacked``).
"""
from __future__ import annotations

import numpy as np


def dual_norm_rows(a: np.ndarray, p: float) -> np.ndarray:
    """Row-wise dual norm ``||a_r||_q`` with ``1/p + 1/q = 1`` (p = 1, 2, inf -> q = inf, 2, 1)."""
    if p == 1.0:
        return np.max(np.abs(a), axis=1) if a.shape[1] else np.zeros(a.shape[0])
    if p == 2.0:
        return np.sqrt(np.sum(a * a, axis=1))
    if p == np.inf:
        return np.sum(np.abs(a), axis=1)
    raise ValueError(f"p must be 1, 2 or inf, got {p!r}")


def concretize_lower(A: np.ndarray, d: np.ndarray, x: np.ndarray, eps: float, p: float,
                     frame_mask: np.ndarray) -> np.ndarray:
    """Lower bound of ``sum_t A[t] x_t + d`` over ``||x_t - x[t]||_p <= eps`` for masked frames.

    Parameters
    ----------
    A : ndarray, shape (T, rows, n)
        Coefficients collected on each input frame.
    d : ndarray, shape (rows,)
        Constant term.
    x : ndarray, shape (T, n)
        Clean input (ball centres).
    eps : float
        Ball radius (>= 0).
    p : float
        1.0, 2.0 or inf.
    frame_mask : ndarray of bool, shape (T,)
        True where the frame moves; other frames are fixed at ``x[t]``.

    Returns
    -------
    ndarray, shape (rows,)
    """
    lower = d.copy()
    for t in range(x.shape[0]):
        lower += A[t] @ x[t]
        if frame_mask[t]:
            lower -= eps * dual_norm_rows(A[t], p)
    return lower


def split_stacked(lower_stacked: np.ndarray, rows: int) -> tuple[np.ndarray, np.ndarray]:
    """From lower bounds of ``[Lam; -Lam]`` return (lower of Lam, upper of Lam = -lower of -Lam).

    Exactly, lower <= upper.  Where rounding alone crosses them (an ulp-level width,
    e.g. at eps = 0) the pair is ordered, so that the relaxations downstream get a
    proper interval.  (Not in §1; the core does the same, cpp/linear_form.hpp.)
    """
    lo, up = lower_stacked[:rows], -lower_stacked[rows:]
    return np.minimum(lo, up), np.maximum(lo, up)


def stack_objective(lam: np.ndarray) -> np.ndarray:
    """The stacked objective ``[Lam; -Lam]`` (§1)."""
    return np.concatenate([lam, -lam], axis=0)
