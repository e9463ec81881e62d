"""Concretisation of linear forms over the per-frame lp balls (docs/RECURRENCES.md §1).

A back-substitution ends with coefficients ``A[t]`` (rows x n) on every input
frame ``x_t`` and a constant ``d`` (rows,).  Its lower bound over the threat
model is ``d + sum_t A[t] x_hat_t - eps * sum_{t in S} ||A[t]||_q`` (row-wise
dual norm).  Upper bounds are never concretised separately: intermediate
bounds come from one stacked objective ``[Lam; -Lam]`` (see ``split_stacked``).
"""
from __future__ import annotations

from typing import Any

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
                     frame_mask: np.ndarray, threat: Any = None) -> np.ndarray:
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
    threat : popqorn_fast.threat.ThreatModel, optional
        Another input set than the per-frame balls (:func:`threat_lower`).

    Returns
    -------
    ndarray, shape (rows,)
    """
    if threat is not None and not threat.is_default:
        return threat_lower(A, d, x, eps, p, frame_mask, threat)
    lower = d.copy()
    for t in range(x.shape[0]):
        lower += A[t] @ x[t]
        if frame_mask[t]:
            lower -= eps * dual_norm_rows(A[t], p)
    return lower


def concretize_slope(A: np.ndarray, x: np.ndarray, eps: float, p: float, frame_mask: np.ndarray,
                     threat: Any = None) -> np.ndarray:
    """How fast :func:`concretize_lower` of these ``A`` rises as the radius shrinks below
    ``eps`` (docs/RECURRENCES.md §5, a smaller ball from a failed probe), counting only the
    sets linear in the radius, as the core does: a frame's ball (weighted), or the joint
    ball, where no box domain clips it at ``eps`` (the box then contains it: every
    coordinate's room in both directions at least the frame's radius); substitutions 0.

    Returns
    -------
    ndarray, shape (rows,)
    """
    T, rows = x.shape[0], A.shape[1]
    threat_on = threat is not None and not threat.is_default
    if threat_on and threat.substitutions is not None:
        return np.zeros(rows)
    w = np.ones(T) if not threat_on or threat.frame_weights is None else threat.frame_weights
    moving = [t for t in range(T) if frame_mask[t] and w[t] * eps != 0.0]
    slack = np.full(T, np.inf)
    if threat_on and threat.lo is not None:
        slack = np.minimum(x - threat.lo, threat.hi - x).min(axis=1)
    norms = np.stack([w[t] * dual_norm_rows(A[t], p) for t in moving]) if moving else np.zeros((0, rows))
    if threat_on and threat.ball == "joint" and p != np.inf:
        if any(eps > slack[t] / w[t] for t in moving):
            return np.zeros(rows)
        return dual_norm_rows(norms.T, p) if moving else np.zeros(rows)
    inside = np.array([eps * w[t] <= slack[t] for t in moving], dtype=bool)
    return norms[inside].sum(axis=0) if moving else np.zeros(rows)


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


def threat_lower(A: np.ndarray, d: np.ndarray, x: np.ndarray, eps: float, p: float,
                 frame_mask: np.ndarray, threat: Any) -> np.ndarray:
    """Lower bound of ``sum_t A[t] x_t + d`` over a threat model (docs/THREAT_MODELS.md), row by
    row with plain loops: the joint ball's dual norm over all moving coordinates (weighted),
    a box domain by bisection on the water level (p = 2), a greedy fill (p = 1) or per-axis
    clipping (p = inf), and substitutions by enumerating the candidates."""
    T = x.shape[0]
    lower = d + np.einsum("trn,tn->r", A, x)
    if threat.substitutions is not None:
        moving = [t for t in range(T) if frame_mask[t] and len(threat.substitutions[t]) and threat.budget > 0]
        for r in range(len(d)):
            v = sorted(min(0.0, float(np.min(threat.substitutions[t] @ A[t, r] - A[t, r] @ x[t])))
                       for t in moving)
            lower[r] += sum(v[:threat.budget])
        return lower
    w = np.ones(T) if threat.frame_weights is None else threat.frame_weights
    moving = [t for t in range(T) if frame_mask[t] and w[t] * eps != 0.0]
    joint = threat.ball == "joint" and p != np.inf
    for r in range(len(d)):
        if joint:  # u = delta / w: one ball of radius eps over every moving coordinate
            a = np.concatenate([w[t] * A[t, r] for t in moving]) if moving else np.zeros(0)
            room = _rooms(A, x, threat, moving, r, w)
            lower[r] -= _gain(a, room, eps, p)
        else:
            for t in moving:
                lower[r] -= _gain(A[t, r], _rooms(A, x, threat, [t], r, None), eps * w[t], p)
    return lower


def _rooms(A: np.ndarray, x: np.ndarray, threat: Any, frames: list, r: int, w: Any) -> np.ndarray:
    """Room of each coordinate towards -sign(a) inside the domain (inf without one), / w_t."""
    out = []
    for t in frames:
        a = A[t, r]
        if threat.lo is None:
            room = np.full(a.shape, np.inf)
        else:
            room = np.where(a > 0, x[t] - threat.lo[t], threat.hi[t] - x[t])
        out.append(room if w is None else room / w[t])
    return np.concatenate(out) if out else np.zeros(0)


def _gain(a: np.ndarray, room: np.ndarray, r: float, p: float) -> float:
    """max of -a.delta over ||delta||_p <= r, |delta_j| <= room_j on the side that lowers a.delta."""
    m = np.abs(a)
    keep = (m > 0) & (room > 0)
    m, room = m[keep], room[keep]
    if m.size == 0:
        return 0.0
    if not np.any(np.isfinite(room)) or np.all(room >= r):  # the ball alone decides
        return r * float(dual_norm_rows(m[None, :], p)[0])
    if p == np.inf:
        return float(np.sum(m * np.minimum(room, r)))
    if p == 1.0:
        left, gain = r, 0.0
        for j in np.argsort(-m, kind="stable"):
            v = min(room[j], left)
            gain += m[j] * v
            left -= v
            if left <= 0:
                break
        return gain
    if np.sum(room ** 2) <= r * r:  # the box lies inside the ball
        return float(np.sum(m * room))
    lo, hi = 0.0, 1.0  # water level tau: v_j = min(room_j, tau m_j), ||v|| = r
    while np.linalg.norm(np.minimum(room, hi * m)) < r:
        hi *= 2.0
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if np.linalg.norm(np.minimum(room, mid * m)) < r:
            lo = mid
        else:
            hi = mid
    return float(np.sum(m * np.minimum(room, lo * m)))
