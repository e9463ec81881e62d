"""Plain-NumPy 1-D linear relaxations of tanh, sigmoid and ReLU (the oracle's own).

Implements docs/RECURRENCES.md §2 literally, one neuron at a time, so that it
can be read against the spec line by line; the fast C++ ``lines.hpp`` is
checked against it.  For every neuron ``i`` and every ``z`` in ``[l[i], u[i]]``::

    alpha_l[i] * z + beta_l[i] <= phi(z) <= alpha_u[i] * z + beta_u[i]
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np

EPS_MACH = float(np.finfo(np.float64).eps)
DEGENERATE_RTOL = 1e-12  # §2: u - l <= 1e-12 * max(1, |l|, |u|) is a point


@dataclass(frozen=True)
class Lines:
    """Slopes and offsets of the lower and upper lines, one entry per neuron."""

    alpha_l: np.ndarray
    beta_l: np.ndarray
    alpha_u: np.ndarray
    beta_u: np.ndarray


def sigmoid(z: float) -> float:
    """Logistic sigmoid to a few ulps RELATIVE accuracy on both tails (the §2 margin assumes it;
    ``0.5 (1 + tanh(z/2))`` loses relative accuracy for z << 0)."""
    if z >= 0.0:
        return 1.0 / (1.0 + math.exp(-z))
    e = math.exp(z)
    return e / (1.0 + e)


def _dtanh(z: float) -> float:
    t = math.tanh(z)
    return 1.0 - t * t


def _dsigmoid(z: float) -> float:
    s = sigmoid(z)
    return s * (1.0 - s)


_PHI: dict[str, tuple[Callable[[float], float], Callable[[float], float]]] = {
    "tanh": (math.tanh, _dtanh),
    "sigmoid": (sigmoid, _dsigmoid),
}


def _stationary_points(fn: str, alpha: float) -> list[float]:
    """All z with phi'(z) = alpha (closed forms of §2: tanh 1 - t^2 = alpha, sigma s(1-s) = alpha)."""
    if fn == "tanh":
        if not (0.0 < alpha <= 1.0):
            return []
        t = math.sqrt(1.0 - alpha)
        if t >= 1.0:
            return []
        z = math.atanh(t)
        return [z, -z]
    if not (0.0 < alpha <= 0.25):
        return []
    r = math.sqrt(max(0.0, 1.0 - 4.0 * alpha))
    out = []
    for s in ((1.0 + r) / 2.0, (1.0 - r) / 2.0):
        if 0.0 < s < 1.0:
            out.append(math.log(s / (1.0 - s)))
    return out


def _bisect_decreasing_root(f: Callable[[float], float], lo: float, hi: float) -> float:
    """Root of f on [lo, hi] where f(lo) > 0 >= f(hi), by plain bisection to machine precision."""
    while True:
        mid = 0.5 * (lo + hi)
        if mid <= lo or mid >= hi:
            return hi  # f(hi) <= 0: the tangent point at or just past the root (see below)
        if f(mid) > 0.0:
            lo = mid
        else:
            hi = mid


def _bisect_increasing_root(f: Callable[[float], float], lo: float, hi: float) -> float:
    """Root of f on [lo, hi] where f(lo) <= 0 < f(hi), by plain bisection to machine precision."""
    while True:
        mid = 0.5 * (lo + hi)
        if mid <= lo or mid >= hi:
            return lo
        if f(mid) > 0.0:
            hi = mid
        else:
            lo = mid


def chord_slope(fn: str, l: float, u: float) -> float:
    """(phi(u) - phi(l)) / (u - l), computed without cancellation.

    DEVIATION (accuracy only) from the literal §2 formula, which loses about
    eps_mach / (u - l) relative accuracy on narrow intervals (4e-9 at width 6e-8,
    enough to break 1e-9 agreement).  Identities used:
    tanh u - tanh l = sinh(u - l) / (cosh u cosh l) and sigma(z) = (1 + tanh(z/2)) / 2.
    Validity never depends on it: the offsets are exact for whatever slope results.
    """
    w = u - l
    if fn == "tanh" and max(abs(l), abs(u)) < 300.0 and w < 600.0:
        return math.sinh(w) / (w * math.cosh(u) * math.cosh(l))
    if fn == "sigmoid" and max(abs(l), abs(u)) < 600.0 and w < 1200.0:
        return 0.5 * math.sinh(0.5 * w) / (w * math.cosh(0.5 * u) * math.cosh(0.5 * l))
    phi = _PHI[fn][0]
    return (phi(u) - phi(l)) / w


def _slopes(fn: str, l: float, u: float) -> tuple[float, float]:
    """(alpha_l, alpha_u) for an S-shaped phi on a non-degenerate [l, u] (§2)."""
    phi, dphi = _PHI[fn]
    chord = chord_slope(fn, l, u)
    mid = 0.5 * (l + u)
    if u <= 0.0:  # convex piece: upper chord, lower midpoint tangent
        return dphi(mid), chord
    if l >= 0.0:  # concave piece: lower chord, upper midpoint tangent
        return chord, dphi(mid)
    # l < 0 < u. Upper: root d in (0, u] of phi'(d)(d - l) = phi(d) - phi(l).
    # f_up is strictly decreasing on d > 0 (f_up' = phi''(d)(d - l) < 0) and f_up(0) > 0.
    pl, pu = phi(l), phi(u)

    def f_up(d: float) -> float:
        return dphi(d) * (d - l) - (phi(d) - pl)

    if f_up(u) >= 0.0:  # root at or beyond u: the chord is valid and tighter
        alpha_u = chord
    else:
        # any tangent at d' in [d, u] is valid; the least-area one touches at max(d, mid)
        alpha_u = dphi(max(_bisect_decreasing_root(f_up, 0.0, u), mid))
    # Lower (mirror): root d in [l, 0) of phi'(d)(u - d) = phi(u) - phi(d); f_lo increasing on d < 0.

    def f_lo(d: float) -> float:
        return dphi(d) * (u - d) - (pu - phi(d))

    if f_lo(l) >= 0.0:  # root at or below l: chord
        alpha_l = chord
    else:
        alpha_l = dphi(min(_bisect_increasing_root(f_lo, l, 0.0), mid))
    return alpha_l, alpha_u


def _exact_offsets(fn: str, l: float, u: float, alpha_l: float, alpha_u: float) -> tuple[float, float]:
    """beta_l = min, beta_u = max of phi(z) - alpha z over [l, u] (candidates: l, u, stationary
    points inside), widened by delta = 4 eps_mach (max|phi| + |alpha| max(|l|,|u|) + 1e-300) (§2)."""
    phi, _ = _PHI[fn]
    maxphi = max(abs(phi(l)), abs(phi(u)))  # phi is monotone: its max |.| is at an endpoint
    zmax = max(abs(l), abs(u))

    def extreme(alpha: float, pick: Callable[..., float]) -> float:
        cands = [l, u] + [z for z in _stationary_points(fn, alpha) if l < z < u]
        return pick(phi(z) - alpha * z for z in cands)

    delta_l = 4.0 * EPS_MACH * (maxphi + abs(alpha_l) * zmax + 1e-300)
    delta_u = 4.0 * EPS_MACH * (maxphi + abs(alpha_u) * zmax + 1e-300)
    return extreme(alpha_l, min) - delta_l, extreme(alpha_u, max) + delta_u


def line_pair(fn: str, l: float, u: float) -> tuple[float, float, float, float]:
    """(alpha_l, beta_l, alpha_u, beta_u) for one neuron with pre-activation in [l, u]."""
    if fn == "relu":  # CROWN lines, §2
        if l >= 0.0:
            return 1.0, 0.0, 1.0, 0.0
        if u <= 0.0:
            return 0.0, 0.0, 0.0, 0.0
        a_u = u / (u - l)
        # DEVIATION from §2 (which gives offset -a_u l with no margin): the rounded a_u, -a_u l
        # can undershoot relu(u) = u by an ulp, so widen by the §2 delta (phi = relu, max|phi| = u).
        delta = 4.0 * EPS_MACH * (u + a_u * max(-l, u) + 1e-300)
        return (1.0 if u > -l else 0.0), 0.0, a_u, -a_u * l + delta
    if fn not in _PHI:
        raise ValueError(f"fn must be 'tanh', 'sigmoid' or 'relu', got {fn!r}")
    if u - l <= DEGENERATE_RTOL * max(1.0, abs(l), abs(u)):
        alpha_l = alpha_u = 0.0  # a point: horizontal lines at phi(l), phi(u) (then the margin)
    else:
        alpha_l, alpha_u = _slopes(fn, l, u)
    beta_l, beta_u = _exact_offsets(fn, l, u, alpha_l, alpha_u)
    return alpha_l, beta_l, alpha_u, beta_u


def bound_activation(fn: str, l: np.ndarray, u: np.ndarray) -> Lines:
    """Lower and upper lines of ``fn`` on every interval ``[l[i], u[i]]``.

    Parameters
    ----------
    fn : {"tanh", "sigmoid", "relu"}
        The activation.
    l, u : array_like, shape (m,)
        Interval ends, ``l <= u`` up to rounding (a back-substitution can return
        ``l`` an ulp above ``u`` at eps = 0; such an interval is a point for
        tanh/sigmoid and is handled by the ReLU cases as written).

    Returns
    -------
    Lines
        ``alpha_l, beta_l, alpha_u, beta_u`` arrays of shape (m,) with
        ``alpha_l z + beta_l <= fn(z) <= alpha_u z + beta_u`` on each interval.
    """
    l = np.asarray(l, dtype=np.float64).ravel()
    u = np.asarray(u, dtype=np.float64).ravel()
    if l.shape != u.shape:
        raise ValueError(f"l and u must have the same shape, got {l.shape} and {u.shape}")
    if np.any(~np.isfinite(l)) or np.any(~np.isfinite(u)):
        raise ValueError("interval ends must be finite")
    out = np.array([line_pair(fn, float(a), float(b)) for a, b in zip(l, u)]).reshape(-1, 4)
    return Lines(out[:, 0].copy(), out[:, 1].copy(), out[:, 2].copy(), out[:, 3].copy())
