"""The radius search: returns a probed, certified ε, reaches rtol, and always stops."""
from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import popqorn_fast as pf
from conftest import random_weights
from popqorn_fast.bisection import EPS_FLOOR, MAX_PASSES, search_radius


@settings(max_examples=200, deadline=None)
@given(true_eps=st.floats(1e-6, 50.0), eps_max=st.floats(1e-3, 100.0), rtol=st.sampled_from([1e-1, 1e-3, 1e-6]))
def test_threshold_predicate(true_eps, eps_max, rtol):
    probes = []

    def certified(e):
        probes.append(e)
        return e <= true_eps

    r = search_radius(certified, eps_max, rtol)
    assert r.passes == len(probes) <= MAX_PASSES
    assert r.eps == 0.0 or (r.eps in probes and r.eps <= true_eps and r.eps <= eps_max)
    if true_eps >= eps_max:
        assert r.eps == eps_max and r.eps_upper is None
    elif true_eps >= EPS_FLOOR * 2:
        assert r.eps_upper is not None and r.eps_upper > true_eps
        assert r.eps_upper - r.eps <= rtol * r.eps
        assert r.eps_upper in probes


def test_non_monotone_predicate_never_returns_a_failed_probe():
    rng = np.random.default_rng(0)
    for _ in range(200):
        cuts = np.sort(rng.uniform(0, 1, size=6))
        ok = lambda e: bool(np.searchsorted(cuts, e) % 2 == 0)  # alternating certified/failed bands
        results = {}

        def certified(e):
            results[e] = ok(e)
            return results[e]

        r = search_radius(certified, 1.0, 1e-3)
        assert r.eps == 0.0 or results[r.eps]


def test_never_certified_stops_at_floor_and_pass_cap():
    r = search_radius(lambda e: False, 1.0)
    assert r.eps == 0.0 and r.passes < 40
    r = search_radius(lambda e: True, 1e300, max_passes=25)
    assert r.passes == 25 and r.eps > 0


# Margin-valued probes: the search aims with the values but must keep every guarantee.
MARGINS = {
    "linear": lambda e, r: 1.0 - e / r,
    "concave": lambda e, r: 1.0 - (e / r) ** 3,
    "convex": lambda e, r: math.exp(-3.0 * e / r) - math.exp(-3.0),
    "blowup": lambda e, r: 1.0 - math.expm1(min(8.0 * e / r, 700.0)) / math.expm1(8.0),
    "kinked": lambda e, r: (1.0 - e / r) if e < r else -1e6 * (e - r) - 1e-12,
    # a bound whose fall accelerates (as the shared models' do): value 1, slope -0.3/r at 0
    "cubic": lambda e, r: 1.0 - 0.3 * (e / r) - 0.7 * (e / r) ** 3,
    # a squashing network's bound: the loss grows as ε² and then stops, at 30x the clean margin
    "saturating": lambda e, r: 1.0 - 30.0 * math.tanh(math.atanh(1.0 / 30.0) * (e / r) ** 2),
}


@settings(max_examples=300, deadline=None)
@given(true_eps=st.floats(1e-5, 50.0), eps_max=st.floats(1e-3, 100.0), rtol=st.sampled_from([1e-1, 1e-3, 1e-6]),
       shape=st.sampled_from(sorted(MARGINS)), m0=st.sampled_from([None, "exact", "off"]))
def test_margin_valued_search_keeps_the_guarantees(true_eps, eps_max, rtol, shape, m0):
    f = MARGINS[shape]
    probes = {}

    def margin(e):
        probes[e] = f(e, true_eps)
        return probes[e]

    hint = None if m0 is None else (f(0.0, true_eps) if m0 == "exact" else 10.0 * f(0.0, true_eps))
    r = search_radius(margin, eps_max, rtol, margin_at_zero=hint)
    assert r.passes == len(probes) <= MAX_PASSES
    assert r.eps == 0.0 or (probes[r.eps] > 0 and r.eps <= eps_max)
    if r.eps_upper is None:  # certified up to the cap
        assert r.eps == eps_max and probes[eps_max] > 0 and true_eps >= eps_max * (1 - 1e-9)
    else:
        assert probes[r.eps_upper] <= 0 and true_eps <= eps_max * (1 + 1e-9)
        assert r.eps_upper - r.eps <= rtol * r.eps
    # never much worse than plain bisection on the same problem: the stall rule bisects once
    # whenever two aimed probes did not halve the bracket, so at worst three probes per
    # halving (bisection.py); e.g. rtol 1e-6, 'kinked', a hint 10x off: 59 probes vs 28
    plain = search_radius(lambda e: f(e, true_eps) > 0, eps_max, rtol)
    assert r.passes <= 3 * plain.passes + 2


@pytest.mark.parametrize("shape, ratio", [("linear", 0.4), ("concave", 0.8), ("blowup", 0.9), ("kinked", 0.8)])
def test_margin_values_save_probes(shape, ratio):
    """On smooth margins the values cut the probes below plain bisection."""
    rng = np.random.default_rng(1)
    aimed = plain = 0
    for true_eps in 10.0 ** rng.uniform(-4, 0.5, 40):
        f = lambda e: MARGINS[shape](e, true_eps)
        aimed += search_radius(f, 10.0, 1e-3, margin_at_zero=f(0.0)).passes
        plain += search_radius(lambda e: f(e) > 0, 10.0, 1e-3).passes
    assert aimed < ratio * plain


def test_a_saturated_failure_aims_past_the_chord():
    """A first probe past the root whose margin has saturated (far below −m(0)): the chord
    from ε = 0 falls short of the root; aiming between it and a square law saves probes
    (0.40x plain bisection with the chord alone, 0.32x with the rule, bisection.py §5)."""
    rng = np.random.default_rng(1)
    aimed = plain = 0
    for true_eps in 10.0 ** rng.uniform(-4, 0.5, 40):
        f = lambda e: MARGINS["saturating"](e, true_eps)  # noqa: E731
        start = true_eps * 10.0 ** rng.uniform(0.0, 1.0)
        aimed += search_radius(f, 10.0, 1e-3, eps_start=start, margin_at_zero=f(0.0)).passes
        plain += search_radius(lambda e: f(e) > 0, 10.0, 1e-3).passes
    assert aimed < 0.36 * plain


HINT = st.floats(-1.0, 1e3) | st.just(math.nan) | st.none()  # slopes in units of 1 / true_eps


@settings(max_examples=500, deadline=None)
@given(true_eps=st.floats(1e-4, 10.0), start=st.floats(0.05, 3.0), rtol=st.sampled_from([1e-1, 1e-3, 1e-6]),
       shape=st.sampled_from(sorted(MARGINS)), slope=HINT, slope_at_zero=HINT)
def test_slope_hints_keep_the_guarantees(true_eps, start, rtol, shape, slope, slope_at_zero):
    """Whatever slopes it is told, near the root or at ε = 0 (wrong by orders of magnitude,
    negative, NaN), the search returns a certified probe, brackets to rtol, and stays within
    3x plain bisection."""
    f = MARGINS[shape]
    probes = {}

    def margin(e):
        probes[e] = f(e, true_eps)
        return probes[e]

    scaled = [None if v is None else v / true_eps for v in (slope, slope_at_zero)]
    r = search_radius(margin, 100.0, rtol, eps_start=start * true_eps, margin_at_zero=f(0.0, true_eps),
                      slope=scaled[0], slope_at_zero=scaled[1])
    assert r.passes == len(probes) <= MAX_PASSES
    assert r.eps == 0.0 or probes[r.eps] > 0
    assert r.eps_upper is not None and probes[r.eps_upper] <= 0 and r.eps_upper - r.eps <= rtol * r.eps
    assert r.passes <= 3 * search_radius(lambda e: f(e, true_eps) > 0, 100.0, rtol).passes + 2


def test_the_slope_at_zero_finds_a_cubic_root_at_the_first_bracket():
    """On a margin that is a cubic in ε, m(0), m'(0) and the first two probes determine it:
    the next probe lands on the root (to the search's offset) and two more close the bracket;
    without the slope the parabola needs more. The slope also aims the second probe (the
    parabola through m(0), m'(0) and the first probe, where the fall accelerates): fewer
    probes on the cubic and the saturating margins; on the other shapes it costs nothing."""
    rng = np.random.default_rng(4)
    for shape in MARGINS:
        hinted = plain = 0
        for true_eps in 10.0 ** rng.uniform(-3, 0, 30):
            f = lambda e: MARGINS[shape](e, true_eps)  # noqa: E731
            s0 = (f(0.0) - f(1e-7 * true_eps)) / (1e-7 * true_eps)
            for start in (0.4 * true_eps, 0.7 * true_eps, 1.5 * true_eps):
                kw = dict(eps_start=start, margin_at_zero=f(0.0))
                hinted += search_radius(f, 10.0, 1e-3, slope_at_zero=s0, **kw).passes
                plain += search_radius(f, 10.0, 1e-3, **kw).passes
        if shape in ("cubic", "saturating"):  # 360 / 600 and 300 / 390 probes (480 / 600 and
            assert hinted < 0.8 * plain         # 390 / 390 with the chord as the second step)
        else:
            assert hinted <= plain


def test_a_slope_hint_with_a_yes_no_predicate_is_plain_bisection():
    """A bool predicate carries no margin values: the slope must not steer (its Newton step
    would read the ±1 that stand for yes / no as margins)."""
    for true_eps in (0.013, 0.3, 2.0):
        pred = lambda e: e <= true_eps  # noqa: E731
        for start in (0.5 * true_eps, 3.0 * true_eps):
            plain = search_radius(pred, 10.0, 1e-3, eps_start=start)
            for slope in (1e-3, 3.0, 1e3):
                assert search_radius(pred, 10.0, 1e-3, eps_start=start, slope=slope) == plain


@pytest.mark.parametrize("shape, ratio", [("concave", 0.85), ("convex", 0.65), ("blowup", 0.85),
                                          ("saturating", 0.95)])
def test_a_slope_from_a_similar_bound_saves_probes(shape, ratio):
    """A first probe near the root and the slope of a similar, lower curve at its root (as the
    "exact" search gives planes="optimized"): a Newton step instead of the chord from 0.
    (On a straight line the chord is exact and the hint costs 1.17x the probes.)"""
    rng = np.random.default_rng(3)
    hinted = chord = 0
    for true_eps in 10.0 ** rng.uniform(-3, 0, 30):
        f = lambda e: MARGINS[shape](e, true_eps)  # noqa: E731
        other = 0.9 * true_eps                       # the lower curve's root, its slope there
        s = (MARGINS[shape](other * (1 - 1e-6), other) - MARGINS[shape](other * (1 + 1e-6), other)) / (2e-6 * other)
        for start in (1.12 * other, 1.3 * other):
            kw = dict(eps_start=start, margin_at_zero=f(0.0))
            hinted += search_radius(f, 10.0, 1e-3, slope=s, **kw).passes
            chord += search_radius(f, 10.0, 1e-3, **kw).passes
    assert hinted < ratio * chord


def test_the_slope_scaled_by_the_expected_stretch_saves_probes():
    """planes="optimized" passes the exact search's slope divided by OPTIMIZED_FIRST_STEP: a
    margin curve stretched in ε by the ratio of the radii (1.05-1.25 on the shared models)
    falls that much slower at its root. On curves stretched by a random ratio in that range,
    that scaled hint takes fewer probes than the unscaled one."""
    from popqorn_fast.certify import OPTIMIZED_FIRST_STEP as k
    rng = np.random.default_rng(5)
    scaled = unscaled = 0
    for shape in ("linear", "concave", "convex", "blowup", "cubic", "saturating"):
        for true_eps in 10.0 ** rng.uniform(-3, 0, 40):
            other = true_eps / rng.uniform(1.05, 1.25)  # the exact curve's root
            f = lambda e: MARGINS[shape](e, true_eps)  # noqa: E731
            s = (MARGINS[shape](other * (1 - 1e-6), other) - MARGINS[shape](other * (1 + 1e-6), other)) / (2e-6 * other)
            kw = dict(eps_start=k * other, margin_at_zero=f(0.0))
            scaled += search_radius(f, 10.0, 1e-3, slope=s / k, **kw).passes
            unscaled += search_radius(f, 10.0, 1e-3, slope=s, **kw).passes
    assert scaled < 0.98 * unscaled


def test_non_monotone_margins_never_return_a_failed_probe():
    rng = np.random.default_rng(2)
    for _ in range(200):
        cuts = np.sort(rng.uniform(0, 1, size=6))
        seen = {}

        def margin(e):  # alternating certified/failed bands, values that mislead the secant
            k = int(np.searchsorted(cuts, e))
            seen[e] = (1.0 if k % 2 == 0 else -1.0) * (1.0 + 10.0 * abs(np.sin(40.0 * e)))
            return seen[e]

        r = search_radius(margin, 1.0, 1e-3, margin_at_zero=1.0)
        assert r.eps == 0.0 or seen[r.eps] > 0
        assert r.eps_upper is None or seen[r.eps_upper] <= 0


@pytest.mark.parametrize("kind", ["rnn", "lstm", "gru"])
def test_certify_search_on_real_bounds(kind):
    """certify's aimed search on real bound passes: a certified probe, within rtol of plain
    bisection's radius, in fewer passes."""
    rng = np.random.default_rng(11)
    w = random_weights(kind, rng, s=6, n=3, C=3, scale=0.5)
    aimed = plain = 0
    for _ in range(3):
        x = rng.normal(size=(4, 3))
        c = pf.certify(w, x, rtol=1e-3, planes="constant")
        lower, _ = pf.bound_margins(w, x, c.eps, planes="constant")
        assert np.all(lower > 0)
        if c.eps_upper is not None:
            assert not np.all(pf.bound_margins(w, x, c.eps_upper, planes="constant")[0] > 0)
        ref = search_radius(lambda e: bool(np.all(pf.bound_margins(w, x, e, planes="constant")[0] > 0)), 10.0, 1e-3)
        assert abs(c.eps - ref.eps) <= 2e-3 * ref.eps
        aimed += c.bound_passes
        plain += ref.passes
    assert aimed < plain


def test_parabola_root_is_exact_on_a_parabola():
    from popqorn_fast.bisection import _parabola_root
    f = lambda e: 0.8 - 2.0 * e - 5.0 * e * e  # noqa: E731  (root 0.2282...)
    root = (-2.0 + (4.0 + 16.0) ** 0.5) / 10.0
    for pts in [(0.0, 0.1), (0.1, 0.3), (0.3, 0.0)]:
        r = _parabola_root(0.2, f(0.2), 0.25, *[(e, f(e)) for e in pts])
        assert r is not None and abs(r - root) <= 1e-12
    # no crossing inside (lo, hi): None
    assert _parabola_root(0.0, 0.8, 0.1, (0.05, f(0.05)), (0.3, f(0.3))) is None


def _with_own_radius(f, true_eps: float, kappa: float, probes: dict, within: dict):
    """A probe that also reports the radius its own relaxations certify: the root of the line
    through (e, f(e)) falling kappa times slower than the chord from the true root, as the
    bound with fixed relaxations does (kappa >= 1: it lies at or below the true root)."""

    def probe(e):
        v = probes[e] = f(e, true_eps)
        if v > 0.0:
            within[e] = e
            return v, e
        w = e - kappa * (e - true_eps) if math.isfinite(v) else None
        within[e] = w if w is not None and 0.0 < w < e else None
        return v, within[e]

    return probe


@settings(max_examples=300, deadline=None)
@given(true_eps=st.floats(1e-4, 10.0), rtol=st.sampled_from([1e-1, 1e-3, 1e-6]),
       shape=st.sampled_from(sorted(MARGINS)), kappa=st.sampled_from([1.0, 1.2, 3.0, 13.0, 1e3]))
def test_a_failed_probe_may_end_the_search(true_eps, rtol, shape, kappa):
    """Probes that also report what their own relaxations certify below them: the result is a
    certified probe, or exactly the radius a failed probe reported (then ``relaxed_at`` names
    that probe), never above the true root, and bracketed to rtol."""
    f = MARGINS[shape]
    probes, within = {}, {}
    r = search_radius(_with_own_radius(f, true_eps, kappa, probes, within), 10.0, rtol,
                      margin_at_zero=f(0.0, true_eps), slope_at_zero=0.3 / true_eps)
    assert r.passes == len(probes) <= MAX_PASSES
    if r.relaxed_at is None:
        assert r.eps == 0.0 or probes[r.eps] > 0
    else:
        assert probes[r.relaxed_at] <= 0 and within[r.relaxed_at] == r.eps < r.relaxed_at
    assert r.eps <= true_eps * (1 + 1e-9)
    if r.eps_upper is not None and true_eps < 10.0 * (1 - 1e-9):
        assert probes[r.eps_upper] <= 0 and r.eps_upper - r.eps <= rtol * r.eps


def test_own_radius_saves_probes_where_the_ball_drives_the_margin():
    """Where the bound with its relaxations fixed falls almost as fast as the bound itself
    (kappa near 1, as on random vanilla RNNs), a probe just above the root ends the search:
    fewer probes than the values alone."""
    rng = np.random.default_rng(3)
    own = alone = 0
    for true_eps in 10.0 ** rng.uniform(-3, 0, 40):
        f = MARGINS["cubic"]
        kw = dict(margin_at_zero=f(0.0, true_eps), slope_at_zero=0.3 / true_eps)
        own += search_radius(_with_own_radius(f, true_eps, 1.2, {}, {}), 10.0, 1e-3, **kw).passes
        alone += search_radius(lambda e: f(e, true_eps), 10.0, 1e-3, **kw).passes
    assert own < 0.85 * alone
