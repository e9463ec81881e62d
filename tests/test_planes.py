"""Tests of the 2-D bounding planes (ALGORITHM.md §3).

Validity is checked independently of the C++ evaluation: F is evaluated in
NumPy (np.tanh) and conftest.sig on a 101x101 grid of every box and
at every candidate point that the core reports (corners, edge and interior
critical points). "Violation" means F - upper > 0 or lower - F > 0 in float64.
"""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.optimize import linprog, minimize

import plane_grid
from popqorn_fast import _core
from popqorn_fast.planes import Planes, bound_product

from conftest import sig

SURFACES = ("tanh_sigmoid", "x_sigmoid")
FACTOR = {"tanh_sigmoid": np.tanh, "x_sigmoid": lambda x: x}
EPS = np.finfo(np.float64).eps


def F(surface: str, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    return FACTOR[surface](x) * sig(y)


def random_boxes(rng: np.random.Generator, n: int, degenerate_frac: float = 0.1):
    """Centres uniform in [-8, 8]^2, widths log-uniform in [1e-12, 40]; a fraction of
    boxes degenerate in x, in y, or in both."""
    xc, yc = rng.uniform(-8, 8, n), rng.uniform(-8, 8, n)
    wx = 10.0 ** rng.uniform(-12, np.log10(40.0), n)
    wy = 10.0 ** rng.uniform(-12, np.log10(40.0), n)
    kind = rng.uniform(0, 1, n)
    wx[kind < degenerate_frac / 3] = 0.0
    wy[(kind >= degenerate_frac / 3) & (kind < 2 * degenerate_frac / 3)] = 0.0
    both = (kind >= 2 * degenerate_frac / 3) & (kind < degenerate_frac)
    wx[both] = 0.0
    wy[both] = 0.0
    xl = xc - 0.5 * wx
    yl = yc - 0.5 * wy
    return xl, xl + wx, yl, yl + wy


def grid_violation(surface: str, boxes, pl: Planes, k: int = 101) -> tuple[float, float]:
    """Max of F - upper and of lower - F over a k x k grid of every box (plane_grid.py)."""
    return plane_grid.grid_violation(FACTOR[surface], sig, boxes, (pl.aL, pl.bL, pl.cL, pl.aU, pl.bU, pl.cU), k)


def candidate_gaps(surface: str, boxes, pl: Planes):
    """F - plane at every candidate point of each plane: (idx, gaps) for upper and lower."""
    xl, xu, yl, yu = boxes
    out = []
    for a, b, c, sgn in ((pl.aU, pl.bU, pl.cU, 1.0), (pl.aL, pl.bL, pl.cL, -1.0)):
        idx, x, y = _core.product_candidates(surface, a, b, xl, xu, yl, yu)
        assert np.all((x >= xl[idx]) & (x <= xu[idx]) & (y >= yl[idx]) & (y <= yu[idx]))
        g = sgn * (F(surface, x, y) - (a[idx] * x + b[idx] * y + c[idx]))  # must be <= 0
        out.append((idx, g))
    return out


@pytest.mark.parametrize("surface", SURFACES)
def test_exact_planes_valid_on_1e5_boxes(surface: str) -> None:
    rng = np.random.default_rng(2024 + len(surface))
    boxes = random_boxes(rng, 100_000)
    pl = bound_product(surface, *boxes, method="exact")
    vu, vl = grid_violation(surface, boxes, pl)
    assert vu <= 0.0 and vl <= 0.0, (vu, vl)
    for _, g in candidate_gaps(surface, boxes, pl):
        assert np.max(g) <= 0.0


@pytest.mark.parametrize("method", ["1d", "constant"])
@pytest.mark.parametrize("surface", SURFACES)
def test_baseline_planes_valid(surface: str, method: str) -> None:
    rng = np.random.default_rng(99)
    boxes = random_boxes(rng, 10_000)
    pl = bound_product(surface, *boxes, method=method)
    vu, vl = grid_violation(surface, boxes, pl)
    assert vu <= 0.0 and vl <= 0.0, (vu, vl)
    for _, g in candidate_gaps(surface, boxes, pl):
        assert np.max(g) <= 0.0


@pytest.mark.slow
@pytest.mark.parametrize("surface", SURFACES)
def test_exact_planes_valid_on_1e6_boxes(surface: str) -> None:
    rng = np.random.default_rng(7)
    for _ in range(10):
        boxes = random_boxes(rng, 100_000)
        pl = bound_product(surface, *boxes, method="exact")
        vu, vl = grid_violation(surface, boxes, pl)
        assert vu <= 0.0 and vl <= 0.0, (vu, vl)


FIXED_BOXES = [
    (-1.0, 1.0, -1.0, 1.0), (-20.0, 20.0, -20.0, 20.0), (-8.0, 32.0, 30.0, 70.0), (-70.0, -30.0, -70.0, -30.0),
    (0.0, 0.0, -3.0, 3.0), (-3.0, 3.0, 0.5, 0.5), (2.0, 2.0, 1.0, 1.0), (-1e-12, 1e-12, -1e-12, 1e-12),
    (5.0, 5.0 + 1e-12, -40.0, 0.0), (-40.0, 0.0, 7.0, 7.0 + 1e-12), (-1e6, 1e6, -1e6, 1e6), (0.0, 1e-300, 0.0, 1e-300),
    (-0.5, 39.5, -35.0, -31.0), (1e5, 1e5 + 40, 31.0, 71.0), (-2.0, 2.0, -40.0, 40.0), (-1e-6, 1e-6, 2.0, 2.0 + 1e-6),
]


@pytest.mark.parametrize("method", ["exact", "1d", "constant"])
@pytest.mark.parametrize("surface", SURFACES)
def test_fixed_edge_boxes(surface: str, method: str) -> None:
    boxes = tuple(np.array(c, dtype=np.float64) for c in zip(*FIXED_BOXES))
    pl = bound_product(surface, *boxes, method=method)
    for f in (pl.aL, pl.bL, pl.cL, pl.aU, pl.bU, pl.cU):
        assert np.all(np.isfinite(f))
    vu, vl = grid_violation(surface, boxes, pl, k=201)
    assert vu <= 0.0 and vl <= 0.0, (vu, vl)
    for _, g in candidate_gaps(surface, boxes, pl):
        assert np.max(g) <= 0.0


def _range_and_scale(surface: str, boxes, a, b):
    xl, xu, yl, yu = boxes
    corners = np.stack([F(surface, x, y) for x in (xl, xu) for y in (yl, yu)])
    rng_f = corners.max(0) - corners.min(0)
    mag = np.abs(corners).max(0) + np.abs(a) * np.maximum(abs(xl), abs(xu)) + np.abs(b) * np.maximum(abs(yl), abs(yu))
    return rng_f, mag


@pytest.mark.parametrize("method", ["exact", "1d", "constant"])
@pytest.mark.parametrize("surface", SURFACES)
def test_planes_touch(surface: str, method: str) -> None:
    """Each plane's gap to the surface at its own maximiser (the best candidate) is
    <= 1e-9 of the surface's range on the box, plus the documented safety margin
    (8 eps of the magnitudes, which dominates on boxes narrower than ~1e-7)."""
    rng = np.random.default_rng(5)
    boxes = random_boxes(rng, 20_000)
    pl = bound_product(surface, *boxes, method=method)
    n = boxes[0].size
    for (idx, g), (a, b) in zip(candidate_gaps(surface, boxes, pl), ((pl.aU, pl.bU), (pl.aL, pl.bL))):
        best = np.full(n, -np.inf)
        np.maximum.at(best, idx, g)
        rng_f, mag = _range_and_scale(surface, boxes, a, b)
        assert np.all(-best <= 1e-9 * rng_f + 32 * EPS * mag + 1e-300)


@pytest.mark.parametrize("surface", SURFACES)
def test_plane_offset_is_the_true_extreme(surface: str) -> None:
    """c_max (c_min) of plane_offset equals max (min) of F - a x - b y found by an
    independent search: best point of a 101x101 grid refined by L-BFGS-B."""
    rng = np.random.default_rng(17)
    n = 150
    xl, xu, yl, yu = random_boxes(rng, n, degenerate_frac=0.0)
    wide = (xu - xl > 1e-2) & (yu - yl > 1e-2)
    xl, xu, yl, yu = xl[wide], xu[wide], yl[wide], yu[wide]
    a = rng.uniform(-0.2, 1.0, xl.size)
    b = rng.uniform(-0.3, 0.3, xl.size) * (1 if surface == "tanh_sigmoid" else 4)
    cmin, cmax = _core.plane_offset(surface, a, b, xl, xu, yl, yu)
    t = np.linspace(0, 1, 101)
    for i in range(xl.size):
        for sgn, c in ((1.0, cmax[i]), (-1.0, cmin[i])):
            g = lambda p: -sgn * (F(surface, p[0], p[1]) - a[i] * p[0] - b[i] * p[1])  # noqa: E731
            X, Y = np.meshgrid(xl[i] + (xu[i] - xl[i]) * t, yl[i] + (yu[i] - yl[i]) * t, indexing="ij")
            vals = -sgn * (F(surface, X, Y) - a[i] * X - b[i] * Y)
            j = np.unravel_index(np.argmin(vals), vals.shape)
            res = minimize(g, [X[j], Y[j]], method="L-BFGS-B", bounds=[(xl[i], xu[i]), (yl[i], yu[i])],
                           options={"ftol": 1e-15, "gtol": 1e-12})
            best = -sgn * min(res.fun, vals.min())
            scale = 1e-10 * max(1.0, abs(best))
            if sgn > 0:
                assert c >= best - 1e-15 * max(1, abs(best)) and c <= best + scale
            else:
                assert c <= best + 1e-15 * max(1, abs(best)) and c >= best - scale


@pytest.mark.parametrize("surface", SURFACES)
def test_one_sided_offsets_keep_every_extreme(surface: str) -> None:
    """plane_offset's one-sided searches (planes_offset.hpp: the saddle branch, the falling
    branch for the sign of b that cannot give the wanted extreme, and each edge's stationary
    point of the other kind are left out) give the min / max of F - a x - b y over EVERY
    candidate of the two-sided enumeration (product_candidates), on boxes where the points
    off the corners decide: tangent slopes at a random point of the box (what the optimised
    planes' best responses use) and random slopes (0 < a < 1 for tanh_sigmoid's interior
    points), b of either sign."""
    rng = np.random.default_rng(31)
    n = 40_000
    xl, xu, yl, yu = random_boxes(rng, n, degenerate_frac=0.0)
    mx, my = xl + (xu - xl) * rng.uniform(size=n), yl + (yu - yl) * rng.uniform(size=n)
    f, s = FACTOR[surface](mx), sig(my)
    df = 1 - f * f if surface == "tanh_sigmoid" else np.ones(n)
    tangent = rng.uniform(size=n) < 0.5
    a = np.where(tangent, df * s, rng.uniform(0, 1, n))
    b = np.where(tangent, f * s * (1 - s), rng.uniform(-0.3, 0.3, n))
    decided = plane_grid.one_sided_against_every_candidate(surface, lambda x, y: F(surface, x, y), a, b,
                                                           (xl, xu, yl, yu))
    # a point off the corners beats every corner on many boxes, on both sides
    assert decided["min"] >= 100 and decided["max"] >= 100, decided


@settings(max_examples=200, deadline=None)
@given(
    surface=st.sampled_from(SURFACES),
    xc=st.floats(-30, 30), yc=st.floats(-40, 40),
    lwx=st.floats(-12, np.log10(40)), lwy=st.floats(-12, np.log10(40)),
    a=st.floats(-2, 2), b=st.floats(-2, 2),
)
def test_hypothesis_offset_and_planes_valid(surface, xc, yc, lwx, lwy, a, b) -> None:
    boxes = (np.array([xc]), np.array([xc + 10**lwx]), np.array([yc]), np.array([yc + 10**lwy]))
    cmin, cmax = _core.plane_offset(surface, np.array([a]), np.array([b]), *boxes)
    m = 8 * EPS * (1 + abs(a) * abs(boxes[1][0]) + abs(b) * abs(boxes[3][0]) + abs(xc) + 40)
    given_planes = Planes(np.array([a]), np.array([b]), cmin - m, np.array([a]), np.array([b]), cmax + m)
    vu, vl = grid_violation(surface, boxes, given_planes, k=201)
    assert vu <= 0 and vl <= 0
    for method in ("exact", "1d", "constant"):
        pl = bound_product(surface, *boxes, method=method)
        vu, vl = grid_violation(surface, boxes, pl, k=201)
        assert vu <= 0 and vl <= 0


def lp_centre_value(U: np.ndarray, V: np.ndarray, G: np.ndarray, upper: bool, seed: np.ndarray) -> float:
    """Brute-force LP on grid points (U, V, G): the least (upper) / greatest (lower) value
    at (0, 0) of a plane above (below) EVERY point, solved by scipy's HiGHS with constraint
    generation: start from ``seed`` indices, add the most violated grid points, repeat until
    no grid point is violated by more than 1e-9 (G is normalised to range 1). The answer is
    the full-grid LP optimum; the seed only saves LP calls."""
    s = 1.0 if upper else -1.0
    idx = np.unique(seed)
    opts = {"primal_feasibility_tolerance": 1e-10, "dual_feasibility_tolerance": 1e-10}
    for _ in range(200):
        A = -s * np.column_stack([U[idx], V[idx], np.ones(idx.size)])
        res = linprog(s * np.array([0.0, 0.0, 1.0]), A_ub=A, b_ub=-s * G[idx], bounds=[(None, None)] * 3,
                      method="highs", options=opts)
        assert res.status == 0
        a, b, c = res.x
        viol = s * (G - (a * U + b * V + c))
        j = np.argpartition(viol, -20)[-20:]
        j = j[viol[j] > 1e-9]
        if j.size == 0:
            return float(c)
        idx = np.union1d(idx, j)
    raise AssertionError("constraint generation did not terminate")


def test_exact_planes_tightness_vs_lp() -> None:
    """Volume between plane and surface, compared with the optimum of a brute-force LP
    on a 200x200 grid (scipy linprog, test only).

    Per unit area, the volume between a plane and F is (plane value at the centre) - mean(F).
    The LP only constrains grid points, so its plane may cut the surface between them and
    its optimum is a LOWER bound of the true optimum (volume_lp <= volume_opt <= volume_exact).
    "Within 0.5 %" is therefore measured as volume_exact <= 1.005 * volume_lp (+ 1e-9 of the
    residual's range, the LP's own tolerance): it bounds the distance to the true optimum
    from above, with the grid's error counted against us. For a well-conditioned LP the
    least-squares plane is subtracted from F on the grid and the residual is scaled to range 1
    (planes are affine, so this changes no volume). mean(F) is the 2-D trapezoid mean on the
    same grid, common to all methods. Boxes have widths >= 1e-2 in both variables: below that
    the volume (~w^2) is at the level of the LP's tolerances. Exact planes must also have,
    on average, strictly less volume than "1d" and "constant" (and never more than "constant").
    """
    rng = np.random.default_rng(31)
    nbox = 500
    xc, yc = rng.uniform(-8, 8, nbox), rng.uniform(-8, 8, nbox)
    wx, wy = 10 ** rng.uniform(-2, np.log10(40), nbox), 10 ** rng.uniform(-2, np.log10(40), nbox)
    boxes = (xc - wx / 2, xc + wx / 2, yc - wy / 2, yc + wy / 2)
    k = 200
    t = np.linspace(-1.0, 1.0, k)
    Ug, Vg = (a.ravel() for a in np.meshgrid(t, t, indexing="ij"))
    wts = np.ones(k)
    wts[[0, -1]] = 0.5
    W = (np.outer(wts, wts) / np.outer(wts, wts).sum()).ravel()
    M = np.column_stack([Ug, Vg, np.ones(Ug.size)])
    M_pinv = np.linalg.pinv(M)  # least-squares plane on the (normalised, shared) grid
    coarse = np.flatnonzero((np.arange(k) % 14 == 0)[:, None].repeat(k, 1).ravel() & np.tile(np.arange(k) % 14 == 0, k))
    corners = np.array([0, k - 1, k * (k - 1), k * k - 1])
    for surface in SURFACES:
        pls = {m: bound_product(surface, *boxes, method=m) for m in ("exact", "1d", "constant")}
        vols = {m: np.zeros(nbox) for m in pls}
        ratios = np.zeros(nbox)
        for i in range(nbox):
            X, Y = xc[i] + 0.5 * wx[i] * Ug, yc[i] + 0.5 * wy[i] * Vg
            Fg = F(surface, X, Y)
            coef = M_pinv @ Fg
            R = Fg - M @ coef
            sc = max(float(np.ptp(R)), 1e-300)
            G = R / sc
            mean_r = float(W @ R)
            val = {}
            for m, pl in pls.items():
                up = pl.aU[i] * xc[i] + pl.bU[i] * yc[i] + pl.cU[i] - coef[2]
                lo = pl.aL[i] * xc[i] + pl.bL[i] * yc[i] + pl.cL[i] - coef[2]
                vols[m][i] = (up - mean_r) + (mean_r - lo)
                val[m] = (pl.aU[i], pl.bU[i], pl.cU[i], pl.aL[i], pl.bL[i], pl.cL[i])
            # seed constraint generation with the grid points closest to the exact planes
            aU, bU, cU, aL, bL, cL = val["exact"]
            near_u = np.argpartition(aU * X + bU * Y + cU - Fg, 30)[:30]
            near_l = np.argpartition(Fg - (aL * X + bL * Y + cL), 30)[:30]
            cu = lp_centre_value(Ug, Vg, G, True, np.concatenate([coarse, corners, near_u])) * sc
            cl = lp_centre_value(Ug, Vg, G, False, np.concatenate([coarse, corners, near_l])) * sc
            vol_lp = (cu - mean_r) + (mean_r - cl)
            ratios[i] = (vols["exact"][i] - 1e-9 * sc) / vol_lp
        assert np.all(ratios <= 1.005), (surface, ratios.max())
        assert vols["exact"].mean() < vols["1d"].mean() and vols["exact"].mean() < vols["constant"].mean()
        assert np.all(vols["exact"] <= vols["constant"] + 1e-9 * np.abs(vols["constant"]) + 1e-12)


@pytest.mark.parametrize("surface", SURFACES)
def test_degenerate_boxes(surface: str) -> None:
    """Collapsed variables get slope 0 (exact method); a point box gives constants
    bracketing F; x_sigmoid with fixed y is linear in x, so its exact planes coincide."""
    x0, y0 = np.array([-1.5, 0.0, 2.0]), np.array([0.3, -2.0, 4.0])
    pl = bound_product(surface, x0, x0, -3.0, 3.0)
    assert np.all(pl.aU == 0) and np.all(pl.aL == 0)
    pl = bound_product(surface, -3.0, 3.0, y0, y0)
    assert np.all(pl.bU == 0) and np.all(pl.bL == 0)
    if surface == "x_sigmoid":
        np.testing.assert_allclose(pl.aU, sig(y0), rtol=1e-12)
        np.testing.assert_allclose(pl.aL, sig(y0), rtol=1e-12)
        assert np.all(pl.cU - pl.cL <= 2 * 8 * EPS * (1 + 2 * 3.0))  # only the two safety margins
    pl = bound_product(surface, x0, x0, y0, y0)
    f = F(surface, x0, y0)
    assert np.all(pl.cL <= f) and np.all(f <= pl.cU) and np.all(pl.cU - pl.cL <= 1e-14)


def test_broadcast_shape_and_bad_input() -> None:
    pl = bound_product("x_sigmoid", np.zeros((3, 1)) - 1, 1.0, -1.0, np.array([0.0, 1.0]))
    assert pl.aU.shape == (3, 2)
    for args, kw, word in [
        (("tanh_sigmod", 0, 1, 0, 1), {}, "surface"),
        (("x_sigmoid", 0, 1, 0, 1), {"method": "adam"}, "method"),
        (("x_sigmoid", 1, 0, 0, 1), {}, "xl must be <= xu"),
        (("x_sigmoid", 0, 1, 1, 0), {}, "yl must be <= yu"),
        (("x_sigmoid", np.nan, 1, 0, 1), {}, "xl"),
        (("x_sigmoid", 0, 1, 0, np.inf), {}, "yu"),
        (("x_sigmoid", np.zeros(2), np.ones(3), 0, 1), {}, "broadcast"),
    ]:
        with pytest.raises(ValueError, match=word):
            bound_product(*args, **kw)
    with pytest.raises(ValueError, match="surface"):
        _core.bound_product("nope", "exact", np.zeros(1), np.ones(1), np.zeros(1), np.ones(1))
    with pytest.raises(ValueError):
        _core.bound_product("x_sigmoid", "exact", np.ones(1), np.zeros(1), np.zeros(1), np.ones(1))


@pytest.mark.parametrize("surface", SURFACES)
def test_exact_never_worse_than_baselines_per_box(surface: str) -> None:
    """The exact upper (lower) plane minimises (maximises) its value at the box centre,
    i.e. its volume above (below) the box, over ALL valid planes; "1d" and "constant" give
    valid planes, so on every box and each side exact must be at least as good, up to a slack
    of 1e-8 of F's range (the solver stops at a gap of 1e-8 of it, planes.hpp kExactRelTol,
    which bounds its plane's excess over the optimum) plus the safety margins (8 eps of the
    magnitudes each)."""
    rng = np.random.default_rng(77)
    boxes = random_boxes(rng, 100_000)
    xl, xu, yl, yu = boxes
    xc, yc = 0.5 * (xl + xu), 0.5 * (yl + yu)
    pls = {m: bound_product(surface, *boxes, method=m) for m in ("exact", "1d", "constant")}
    rng_f, _ = _range_and_scale(surface, boxes, 0.0, 0.0)
    for other in ("1d", "constant"):
        for side in "UL":
            ex, ot = pls["exact"], pls[other]
            a_e, b_e, c_e = (getattr(ex, f"{k}{side}") for k in "abc")
            a_o, b_o, c_o = (getattr(ot, f"{k}{side}") for k in "abc")
            v_e = a_e * xc + b_e * yc + c_e
            v_o = a_o * xc + b_o * yc + c_o
            _, mag_e = _range_and_scale(surface, boxes, a_e, b_e)
            _, mag_o = _range_and_scale(surface, boxes, a_o, b_o)
            slack = 1e-8 * rng_f + 32 * EPS * (mag_e + mag_o) + 1e-300
            worse = (v_e - v_o) if side == "U" else (v_o - v_e)
            assert np.all(worse <= slack), (other, side, float(np.max(worse - slack)))
