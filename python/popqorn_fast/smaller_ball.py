"""A failed probe's own certificate: the bound of a smaller ball from the relaxations of a
larger one (docs/RECURRENCES.md §5, "a smaller ball from a failed probe").

A bound pass at radius ε fixes every relaxation from intervals that hold over the ball of
radius ε, so they hold over any ball of radius ε' ≤ ε inside it, and the pass's final
linear form of margin j is a valid lower bound there too. Only its concretisation depends
on the radius: over a ball (per-frame or joint, weighted or not) it is linear in the radius,
so the pass reports, with each margin's lower bound ``lower_j`` at ε, a lower bound
``slope_j`` of that rate (the core's ``"slope"``, 0 where the set is clipped by a box), and

    margin_j >= lower_j + slope_j (ε − ε')   over the ball of radius ε' <= ε.

A probe that fails at ε thereby certifies every ε' below the root of that line, for free.
How far below ε that is depends on how much of the margin's fall comes from the ball
itself rather than from the intermediate intervals widening: on random models a probe
1 % above the certified radius still certifies within 0.2 % of it, on trained ones within
about 1.3 % only at 0.1 % above (bench/results/2026-12-11-smaller-ball.md).
"""
from __future__ import annotations

from typing import Optional

import numpy as np

# the root is taken this much smaller (relative): the margins at it are then positive by
# far more than the rounding of the few operations below (checked, not assumed)
_SHRINK = 1e-9
_U = np.finfo(np.float64).eps
_TINY = 8.0 * np.finfo(np.float64).smallest_subnormal  # what underflowing products can lose


def margins_within(eps: float, lower: np.ndarray, slope: np.ndarray, eps_small: float) -> np.ndarray:
    """Proven lower bounds of the margins over the ball of radius ``eps_small`` <= ``eps``,
    from the pass at ``eps`` (its ``lower`` and ``slope``), the rounding of this arithmetic
    taken off (a few ulps of the terms, and what underflow can lose)."""
    if not 0.0 <= eps_small <= eps:
        raise ValueError(f"eps_small must lie in [0, eps = {eps!r}], got {eps_small!r}")
    lower = np.asarray(lower, dtype=np.float64)
    gain = np.maximum(np.asarray(slope, dtype=np.float64), 0.0) * (eps - eps_small)
    return lower + gain - 8.0 * _U * (np.abs(lower) + gain) - _TINY


def certified_within(eps: float, lower: np.ndarray, slope: Optional[np.ndarray]) -> Optional[float]:
    """The largest radius ε' <= ``eps`` (to a relative 1e-9) at which
    :func:`margins_within` proves every margin positive; None if none (or no ``slope``)."""
    if slope is None:
        return None
    lower = np.asarray(lower, dtype=np.float64)
    slope = np.asarray(slope, dtype=np.float64)
    if lower.size == 0 or not np.all(np.isfinite(lower)):
        return None
    if np.all(lower > 0.0):
        return eps
    neg = lower <= 0.0
    if not np.all(slope[neg] > 0.0):
        return None
    with np.errstate(over="ignore", divide="ignore"):
        root = float(np.min(eps + lower[neg] / slope[neg])) * (1.0 - _SHRINK)
    if not (np.isfinite(root) and 0.0 < root < eps):
        return None
    return root if np.all(margins_within(eps, lower, slope, root) > 0.0) else None
