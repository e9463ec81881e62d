"""Planes of the GRU shared-z surfaces (ALGORITHM.md §3, RECURRENCES.md §3, §4 "GRU, shared z"):
F3(x, y) = tanh(x)·y ("tanh_linear") and F4(x, y) = x·y ("bilinear"), through the raw
binding ``_core.bound_product`` (internal surfaces; the public ``planes.bound_product``
offers F1, F2 only).

As in test_planes.py, validity is checked independently of the C++ evaluation on a dense
grid of every box and at every candidate point the core reports; each plane must touch
(gap at its best candidate within the documented margin); the exact offset is compared
with a dense-grid + local-optimiser extreme.
"""
from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import minimize

import plane_grid
from popqorn_fast import _core

SURFACES = ("tanh_linear", "bilinear")
FACTOR = {"tanh_linear": np.tanh, "bilinear": lambda x: x}
METHODS = ("exact", "1d", "constant")
EPS = np.finfo(np.float64).eps


def F(surface: str, x, y):
    return FACTOR[surface](x) * y


def random_boxes(rng: np.random.Generator, n: int, positive_y: bool):
    """x centres in [-8, 8], y centres in [-3, 3] (or boxes inside (0, 1): the GRU's w, z),
    widths log-uniform down to 1e-12, 10 % of boxes degenerate in x, y or both."""
    xc = rng.uniform(-8, 8, n)
    wx = 10.0 ** rng.uniform(-12, np.log10(20.0), n)
    if positive_y:
        a, b = np.sort(rng.uniform(0, 1, (2, n)), axis=0)
        yl, yu = a, b
        yl[: n // 20] = yu[: n // 20] - 10.0 ** rng.uniform(-12, -3, n // 20)
    else:
        yc = rng.uniform(-3, 3, n)
        wy = 10.0 ** rng.uniform(-12, np.log10(6.0), n)
        yl, yu = yc - 0.5 * wy, yc + 0.5 * wy
    kind = rng.uniform(0, 1, n)
    wx[kind < 0.05] = 0.0
    deg_y = (kind >= 0.05) & (kind < 0.1)
    yu = np.where(deg_y, yl, yu)
    xl = xc - 0.5 * wx
    return xl, xl + wx, yl, yu


def planes(surface, method, boxes):
    return _core.bound_product(surface, method, *[np.ascontiguousarray(b) for b in boxes])


def grid_violation(surface, boxes, pl, k=101):
    """Max of F - upper and of lower - F over a k x k grid of every box (plane_grid.py)."""
    return plane_grid.grid_violation(FACTOR[surface], lambda y: y, boxes, pl, k)


def candidate_gaps(surface, boxes, pl):
    xl, xu, yl, yu = boxes
    aL, bL, cL, aU, bU, cU = pl
    out = []
    for a, b, c, sgn in ((aU, bU, cU, 1.0), (aL, bL, cL, -1.0)):
        idx, x, y = _core.product_candidates(surface, a, b, xl, xu, yl, yu)
        assert np.all((x >= xl[idx]) & (x <= xu[idx]) & (y >= yl[idx]) & (y <= yu[idx]))
        out.append((idx, sgn * (F(surface, x, y) - (a[idx] * x + b[idx] * y + c[idx]))))
    return out


@pytest.mark.parametrize("surface", SURFACES)
@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("positive_y", [True, False])
def test_planes_valid_and_touching(surface, method, positive_y):
    rng = np.random.default_rng(7 + len(surface) + 3 * len(method) + positive_y)
    boxes = random_boxes(rng, 4000, positive_y)
    pl = planes(surface, method, boxes)
    vu, vl = grid_violation(surface, boxes, pl)
    assert vu <= 0 and vl <= 0, (surface, method, vu, vl)
    xl, xu, yl, yu = boxes
    corners = np.stack([F(surface, x, y) for x in (xl, xu) for y in (yl, yu)])
    rng_f = corners.max(axis=0) - corners.min(axis=0)
    for (idx, g), (a, b) in zip(candidate_gaps(surface, boxes, pl), ((pl[3], pl[4]), (pl[0], pl[1]))):
        assert np.all(g <= 0), (surface, method, g.max())
        # touching: the gap at the best candidate is within the margin (+1e-9 of the range)
        best = np.full(xl.size, -np.inf)
        np.maximum.at(best, idx, g)
        mag = (np.abs(corners).max(axis=0) + np.abs(a) * np.maximum(np.abs(xl), np.abs(xu))
               + np.abs(b) * np.maximum(np.abs(yl), np.abs(yu)))
        assert np.all(best >= -(1e-9 * rng_f + 16 * EPS * mag + 1e-300)), (surface, method, best.min())


@pytest.mark.parametrize("surface", SURFACES)
def test_plane_offset_is_the_true_extreme(surface):
    """The exact offset (no margin) equals the extreme of F − a x − b y found by a dense grid
    polished with a local optimiser, for random slopes (including those with edge critical points)."""
    rng = np.random.default_rng(11 + len(surface))
    m = 150
    xl, xu, yl, yu = random_boxes(rng, m, positive_y=bool(rng.integers(2)))
    a = rng.uniform(-0.2, 1.2, m) * np.maximum(np.abs(yu), 0.1)
    b = rng.uniform(-1.2, 1.2, m)
    cmin, cmax = _core.plane_offset(surface, a, b, xl, xu, yl, yu)
    t = np.linspace(0, 1, 401)
    for i in range(m):
        X, Y = np.meshgrid(xl[i] + (xu[i] - xl[i]) * t, yl[i] + (yu[i] - yl[i]) * t)
        G = F(surface, X, Y) - a[i] * X - b[i] * Y
        for sgn, c in ((1.0, cmax[i]), (-1.0, cmin[i])):
            j = np.argmax(sgn * G)
            res = minimize(lambda q: -sgn * (F(surface, q[0], q[1]) - a[i] * q[0] - b[i] * q[1]),
                           [X.flat[j], Y.flat[j]], bounds=[(xl[i], xu[i]), (yl[i], yu[i])], method="L-BFGS-B")
            best = max(sgn * G.flat[j], -res.fun)
            scale = 1e-12 * (1 + abs(c))
            assert sgn * c >= best - scale, (surface, i, sgn, c, best)      # never beaten: valid
            assert sgn * c <= best + 1e-7 * (1 + abs(c)), (surface, i, sgn, c, best)  # attained


def test_mccormick_exact():
    """F4's "exact" planes are McCormick planes: exact at three corners of the box."""
    rng = np.random.default_rng(5)
    boxes = random_boxes(rng, 500, positive_y=True)
    aL, bL, cL, aU, bU, cU = planes("bilinear", "exact", boxes)
    xl, xu, yl, yu = boxes
    for a, b, c in ((aL, bL, cL), (aU, bU, cU)):
        gaps = np.stack([np.abs(F("bilinear", x, y) - (a * x + b * y + c)) for x in (xl, xu) for y in (yl, yu)])
        touching = np.sum(gaps <= 1e-12 * (1 + np.abs(xl) + np.abs(xu)), axis=0)
        assert np.all(touching >= 3)


def test_one_sided_offsets_keep_every_extreme() -> None:
    """tanh_linear (the only one of the two with candidates off the corners: the stationary
    points of the edges y = y0): plane_offset's one-sided searches, which visit only the
    edge point of the kind they want, give the min / max over EVERY candidate of the
    two-sided enumeration (product_candidates), on boxes where those points decide."""
    rng = np.random.default_rng(41)
    n = 40_000
    xl, xu, yl, yu = random_boxes(rng, n, positive_y=False)
    mx, my = xl + (xu - xl) * rng.uniform(size=n), yl + (yu - yl) * rng.uniform(size=n)
    t = np.tanh(mx)
    tangent = rng.uniform(size=n) < 0.5
    a = np.where(tangent, (1 - t * t) * my, rng.uniform(-0.5, 1, n))
    b = np.where(tangent, t, rng.uniform(-1, 1, n))
    decided = plane_grid.one_sided_against_every_candidate("tanh_linear", lambda x, y: F("tanh_linear", x, y),
                                                           a, b, (xl, xu, yl, yu))
    # a point off the corners beats every corner on many boxes, on both sides
    assert decided["min"] >= 100 and decided["max"] >= 100, decided
