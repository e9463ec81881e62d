"""Tests of the 1-D lines (ALGORITHM.md §2, RECURRENCES.md §2).

Validity is checked on a dense grid of every tested interval (plus its
endpoints) with NumPy's own tanh / a tail-accurate sigmoid (conftest.sig), i.e. independently of the
C++ evaluation; touching is checked where the construction says the line meets
the curve.
"""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from popqorn_fast.lines import Lines, bound_activation

from conftest import sig

FUNCS = {"tanh": np.tanh, "sigmoid": sig, "relu": lambda z: np.maximum(z, 0.0)}
DPHI = {"tanh": lambda z: 1.0 / np.cosh(z) ** 2, "sigmoid": lambda z: sig(z) * sig(-z)}


def grid(l: np.ndarray, u: np.ndarray, k: int = 401) -> np.ndarray:
    t = np.linspace(0.0, 1.0, k)
    z = l[:, None] + (u - l)[:, None] * t
    z[:, 0] = l
    z[:, -1] = u
    return np.clip(z, l[:, None], u[:, None])


def violations(fn: str, l: np.ndarray, u: np.ndarray, lines: Lines) -> tuple[float, float]:
    """Largest phi - upper and lower - phi on the grid (must be <= 0)."""
    z = grid(l, u)
    f = FUNCS[fn](z)
    up = lines.alpha_u[:, None] * z + lines.beta_u[:, None]
    lo = lines.alpha_l[:, None] * z + lines.beta_l[:, None]
    return float(np.max(f - up)), float(np.max(lo - f))


def random_intervals(rng: np.random.Generator, n: int, cmax: float = 30.0) -> tuple[np.ndarray, np.ndarray]:
    c = rng.uniform(-cmax, cmax, n)
    w = 10.0 ** rng.uniform(-12, np.log10(40.0), n)
    l = c - w * rng.uniform(0, 1, n)
    return l, l + w


FIXED = [
    (-1.0, 1.0), (-40.0, 0.0), (0.0, 40.0), (-20.0, 20.0), (-1e6, 1e6), (-1e6, -1e6 + 1.0),
    (1e6 - 40, 1e6), (25.0, 65.0), (-65.0, -25.0), (-0.3, 0.3), (0.0, 0.0), (-1e-12, 1e-12),
    (3.0, 3.0 + 1e-12), (-21.0, -20.0), (20.0, 21.0), (-1e-300, 1e-300), (-0.1, 39.9), (-39.9, 0.1),
    (-5.0, 1e-9), (-1e-9, 5.0), (0.5, 0.5 + 2e-12), (-800.0, 800.0), (-710.0, -709.0),
]


@pytest.mark.parametrize("fn", ["tanh", "sigmoid", "relu"])
def test_fixed_edge_cases_valid_and_finite(fn: str) -> None:
    l = np.array([a for a, _ in FIXED])
    u = np.array([b for _, b in FIXED])
    lines = bound_activation(fn, l, u)
    for arr in (lines.alpha_l, lines.beta_l, lines.alpha_u, lines.beta_u):
        assert np.all(np.isfinite(arr))
    vu, vl = violations(fn, l, u, lines)
    assert vu <= 0.0 and vl <= 0.0


@pytest.mark.parametrize("fn", ["tanh", "sigmoid", "relu"])
def test_random_intervals_valid(fn: str) -> None:
    rng = np.random.default_rng(1234)
    for cmax in (8.0, 30.0, 1e6):
        l, u = random_intervals(rng, 20000, cmax)
        lines = bound_activation(fn, l, u)
        vu, vl = violations(fn, l, u, lines)
        assert vu <= 0.0 and vl <= 0.0, (cmax, vu, vl)


@settings(max_examples=300, deadline=None)
@given(
    fn=st.sampled_from(["tanh", "sigmoid", "relu"]),
    l=st.floats(-1e6, 1e6),
    logw=st.floats(-12.0, np.log10(40.0)),
)
def test_hypothesis_valid(fn: str, l: float, logw: float) -> None:
    la = np.array([l])
    ua = la + 10.0**logw
    lines = bound_activation(fn, la, ua)
    vu, vl = violations(fn, la, ua, lines)
    assert vu <= 0.0 and vl <= 0.0


def _tol(l: np.ndarray, u: np.ndarray) -> np.ndarray:
    return 1e-12 * np.maximum(1.0, np.maximum(np.abs(l), np.abs(u)))


@pytest.mark.parametrize("fn", ["tanh", "sigmoid"])
def test_touching(fn: str) -> None:
    """Chords touch both endpoints, midpoint tangents touch the midpoint,
    crossing-case upper (lower) lines pass through (l, phi(l)) ((u, phi(u)))."""
    phi = FUNCS[fn]
    rng = np.random.default_rng(7)
    l, u = random_intervals(rng, 20000, 10.0)
    keep = (u - l) > 1e-9
    l, u = l[keep], u[keep]
    ln = bound_activation(fn, l, u)
    up = lambda z: ln.alpha_u * z + ln.beta_u - phi(z)  # noqa: E731
    lo = lambda z: phi(z) - (ln.alpha_l * z + ln.beta_l)  # noqa: E731
    tol = _tol(l, u)
    neg, pos, cross = u <= 0, l >= 0, (l < 0) & (u > 0)
    mid = 0.5 * (l + u)
    assert np.all(up(l)[neg] <= tol[neg]) and np.all(up(u)[neg] <= tol[neg])
    assert np.all(lo(mid)[neg] <= tol[neg])
    assert np.all(lo(l)[pos] <= tol[pos]) and np.all(lo(u)[pos] <= tol[pos])
    assert np.all(up(mid)[pos] <= tol[pos])
    # crossing case: the upper line passes through (l, phi(l)) (tangent through it, or the
    # chord), unless that tangent point lies left of the midpoint: then it is the midpoint
    # tangent (least area among the valid tangents). Lower line: the mirror image.
    dmid = DPHI[fn](mid)
    up_mid = np.isclose(ln.alpha_u, dmid, rtol=1e-12, atol=0) & (up(mid) <= tol)
    lo_mid = np.isclose(ln.alpha_l, dmid, rtol=1e-12, atol=0) & (lo(mid) <= tol)
    assert np.all(((up(l) <= tol) | up_mid)[cross]) and np.all(((lo(u) <= tol) | lo_mid)[cross])
    assert np.any(up_mid[cross] & (up(l) > 1e-6)[cross])  # both branches occur in this sample
    # midpoint tangent slope is phi'(mid) itself
    np.testing.assert_allclose(ln.alpha_l[neg], DPHI[fn](mid[neg]), rtol=1e-12, atol=1e-300)
    np.testing.assert_allclose(ln.alpha_u[pos], DPHI[fn](mid[pos]), rtol=1e-12, atol=1e-300)


@pytest.mark.parametrize("fn", ["tanh", "sigmoid"])
def test_crossing_tangent_point_solved(fn: str) -> None:
    """In the crossing case the upper line is either the chord (tangent point beyond u)
    or a tangent at d in [(l+u)/2, u] with d > 0: phi'(d) = alpha_u has such a solution,
    the line touches the curve at d, and it passes through (l, phi(l)) unless d is the
    midpoint."""
    phi, dphi = FUNCS[fn], DPHI[fn]
    rng = np.random.default_rng(11)
    l = -(10.0 ** rng.uniform(-3, 1.3, 5000))
    u = 10.0 ** rng.uniform(-3, 1.3, 5000)
    ln = bound_activation(fn, l, u)
    chord = (phi(u) - phi(l)) / (u - l)
    is_chord = np.abs(ln.alpha_u - chord) <= 1e-12 * np.abs(chord)
    t = ~is_chord
    # tangent point from the slope: phi'(d) = alpha, d > 0
    if fn == "tanh":
        d = np.arccosh(1.0 / np.sqrt(ln.alpha_u[t]))
    else:
        d = 2.0 * np.arccosh(1.0 / np.sqrt(4.0 * ln.alpha_u[t]))
    assert np.all(d <= u[t] * (1 + 1e-9) + 1e-9)
    m = 0.5 * (l[t] + u[t])
    assert np.all(d >= m - 1e-6 * np.maximum(1, np.abs(m)))
    through_l = np.abs(ln.alpha_u[t] * l[t] + ln.beta_u[t] - phi(l[t])) <= 1e-9
    assert np.all(through_l | np.isclose(d, m, rtol=1e-6, atol=1e-9))
    gap = ln.alpha_u[t] * d + ln.beta_u[t] - phi(d)
    assert np.all(gap <= 1e-9) and np.all(gap >= -1e-15)
    np.testing.assert_allclose(dphi(d), ln.alpha_u[t], rtol=1e-9)
    # the chord case is only used where the chord is valid (tangent point beyond u)
    assert np.all(dphi(u[is_chord]) * (u[is_chord] - l[is_chord]) >= phi(u[is_chord]) - phi(l[is_chord]) - 1e-12)


@pytest.mark.parametrize("fn", ["tanh", "sigmoid"])
def test_mirror_symmetry(fn: str) -> None:
    """phi(-z) = const - phi(z): the lower slope on [l, u] is the upper slope on [-u, -l]."""
    rng = np.random.default_rng(3)
    l, u = random_intervals(rng, 5000, 10.0)
    a = bound_activation(fn, l, u)
    b = bound_activation(fn, -u, -l)
    np.testing.assert_allclose(a.alpha_l, b.alpha_u, rtol=1e-12, atol=1e-300)
    np.testing.assert_allclose(a.alpha_u, b.alpha_l, rtol=1e-12, atol=1e-300)


def test_degenerate_intervals_are_horizontal() -> None:
    l = np.array([-3.0, 0.0, 2.5, 1e6])
    u = l + 1e-13 * np.maximum(1, np.abs(l))
    for fn in ("tanh", "sigmoid"):
        ln = bound_activation(fn, l, u)
        assert np.all(ln.alpha_l == 0) and np.all(ln.alpha_u == 0)
        assert np.all(ln.beta_l <= FUNCS[fn](l)) and np.all(ln.beta_u >= FUNCS[fn](u))
        assert np.all(ln.beta_u - ln.beta_l <= 1e-12)


def test_saturated_lines_are_nearly_flat_and_tight() -> None:
    for fn, top in (("tanh", 1.0), ("sigmoid", 1.0)):
        ln = bound_activation(fn, np.array([25.0, 100.0, 1e5]), np.array([60.0, 1e6, 1e6]))
        assert np.all(np.abs(ln.alpha_u) < 1e-9) and np.all(np.abs(ln.alpha_l) < 1e-9)
        assert np.all(np.abs(ln.beta_u - top) < 1e-9)


def test_relu_crown() -> None:
    l = np.array([-1.0, -3.0, 0.5, -4.0, -2.0])
    u = np.array([2.0, 1.0, 3.0, -1.0, 2.0])
    ln = bound_activation("relu", l, u)
    np.testing.assert_allclose(ln.alpha_u, [2 / 3, 1 / 4, 1, 0, 0.5])
    np.testing.assert_allclose(ln.beta_u, [2 / 3, 3 / 4, 0, 0, 1.0], atol=1e-14)
    np.testing.assert_array_equal(ln.alpha_l, [1, 0, 1, 0, 0])
    np.testing.assert_array_equal(ln.beta_l, [0, 0, 0, 0, 0])


def test_broadcast_and_shape() -> None:
    ln = bound_activation("tanh", np.zeros((2, 1)) - 1.0, np.array([0.5, 1.0, 2.0]))
    assert ln.alpha_u.shape == (2, 3)


@pytest.mark.parametrize(
    "args, word",
    [
        (("softplus", 0.0, 1.0), "fn"),
        (("tanh", np.nan, 1.0), "l"),
        (("tanh", 0.0, np.inf), "u"),
        (("tanh", 2.0, 1.0), "l must be <= u"),
        (("tanh", "a", 1.0), "l"),
        (("tanh", np.zeros(2), np.zeros(3)), "broadcast"),
    ],
)
def test_bad_input(args: tuple, word: str) -> None:
    with pytest.raises(ValueError, match=word):
        bound_activation(*args)
