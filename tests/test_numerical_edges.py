"""Adversarial networks for the relaxations and numerical edges ("never wrong, never crash").

Saturated gates (|pre-activation| > 40), nearly degenerate intervals (eps = 1e-13),
huge radii (eps = 1e3), inputs at 1e6, float32 weights, weights whose squares leave
float64, radii whose bounds overflow, and the bounded radius search: no NaN/inf in
bounds, no crash, every bound still encloses sampled values, every search stops.
"""
from __future__ import annotations

import numpy as np
import pytest

import popqorn_fast as pf
from popqorn_fast import forward
from popqorn_fast.backend import BoundOverflowError
from popqorn_fast.bisection import MAX_PASSES, search_radius
from soundness.checks import check_bounds_at, samples_for
from soundness.models import KINDS, random_weights

PLANES = ("exact", "optimized", "1d", "constant")
PS = (1.0, 2.0, np.inf)


def _finite_and_sound(w, x, eps, p, planes, n=1500, seed=0):
    """Bounds are finite and enclose ``n`` sampled perturbations (states and margins)."""
    rng = np.random.default_rng(seed)
    label = int(np.argmax(forward.logits(w, x)))
    states = pf.bound_states(w, x, eps, p=p, planes=planes)
    for name, (lo, hi) in states.items():
        assert np.all(np.isfinite(lo)) and np.all(np.isfinite(hi)), (name, eps, p, planes)
        assert np.all(lo <= hi), (name, eps, p, planes)
    lo, hi = pf.bound_margins(w, x, eps, p=p, planes=planes)
    assert np.all(np.isfinite(lo)) and np.all(np.isfinite(hi))
    S = samples_for(rng, x, eps, p, None, n, w)
    check_bounds_at(pf, w, x, eps, p, None, None, label, S)
    return states


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("planes", PLANES)
def test_saturated_gates(kind, planes):
    """Weights and biases that drive every gate deep into saturation (|pre| > 40)."""
    rng = np.random.default_rng(1)
    w = random_weights(rng, kind, 3, 4, 3, scale=60.0, bias_scale=40.0, random_state=True)
    x = rng.normal(size=(4, 3))
    pre = forward.states(w, x[None])["pre" if kind.startswith("rnn") else "gates"]
    assert np.abs(pre).max() > 40          # the network really saturates
    for p in PS:
        _finite_and_sound(w, x, 0.05, p, planes)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("planes", PLANES)
def test_nearly_degenerate_intervals(kind, planes):
    """eps = 1e-13: intervals of width ~1e-13 stay ordered, finite and enclosing."""
    rng = np.random.default_rng(2)
    w = random_weights(rng, kind, 3, 4, 3, scale=2.0, random_state=True)
    x = rng.normal(size=(5, 3))
    for p in PS:
        states = _finite_and_sound(w, x, 1e-13, p, planes, n=300)
        assert max(float((hi - lo).max()) for lo, hi in states.values()) < 1e-6


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("planes", PLANES)
def test_huge_eps(kind, planes):
    rng = np.random.default_rng(3)
    w = random_weights(rng, kind, 3, 4, 3, random_state=True)
    x = rng.normal(size=(4, 3))
    for p in PS:
        _finite_and_sound(w, x, 1e3, p, planes)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("planes", PLANES)
def test_inputs_at_1e6(kind, planes):
    rng = np.random.default_rng(4)
    w = random_weights(rng, kind, 3, 4, 3)
    x = rng.normal(size=(4, 3)) * 1e6
    for p in PS:
        for eps in (0.1, 1e3):
            _finite_and_sound(w, x, eps, p, planes, n=600)


@pytest.mark.parametrize("kind", KINDS)
def test_float32_weights(kind):
    """Weights that went through float32 (as from a GPU-trained model) are used exactly as float64."""
    rng = np.random.default_rng(5)
    w64 = random_weights(rng, kind, 3, 6, 4, scale=2.0)
    fields = ("weight_ih", "weight_hh", "bias_ih", "bias_hh", "out_weight", "out_bias")
    kw = {"activation": w64.activation} if kind.startswith("rnn") else {}
    w32 = type(w64)(*(getattr(w64, f).astype(np.float32) for f in fields), **kw)
    assert all(getattr(w32, f).dtype == np.float64 for f in fields)
    assert np.array_equal(w32.weight_hh, w64.weight_hh.astype(np.float32).astype(np.float64))
    x = rng.normal(size=(5, 3)).astype(np.float32)
    for p in PS:
        _finite_and_sound(w32, x.astype(np.float64), 0.1, p, "exact")
    c = pf.certify(w32, x, eps_max=1.0)
    assert c.eps == pf.certify(w32, x.astype(np.float64), eps_max=1.0).eps


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("magnitude", [1e200, 1e-170])
def test_l2_dual_norm_outside_the_square_range(kind, magnitude):
    """Weights whose squares overflow (1e200) or underflow (1e-170) float64: the l2 ball is
    neither infinite (a crash) nor collapsed to a point (unsound)."""
    rng = np.random.default_rng(6)
    base = random_weights(rng, kind, 3, 4, 3)
    kw = {"activation": base.activation} if kind.startswith("rnn") else {}
    w = type(base)(base.weight_ih * magnitude, base.weight_hh, base.bias_ih * 0, base.bias_hh * 0,
                   base.out_weight, base.out_bias, **kw)
    x = np.zeros((2, 3))
    states = pf.bound_states(w, x, 1.0, p=2)
    name = "pre" if kind.startswith("rnn") else "gates"
    lo, hi = states[name]
    assert np.all(np.isfinite(lo)) and np.all(np.isfinite(hi))
    # frame 0 only sees W_ih: its interval is exactly ±||row||_2 (x = 0, zero biases, h0 = 0);
    # the GRU's third block v = W_hn h + b_hn does not see x (RECURRENCES.md §4)
    rows = w.weight_ih[: 2 * w.hidden_size] if kind == "gru" else w.weight_ih
    radius = np.sqrt(np.sum((rows / magnitude) ** 2, axis=1)) * magnitude
    np.testing.assert_allclose(hi[0, : len(rows)], radius, rtol=1e-12)
    np.testing.assert_allclose(lo[0, : len(rows)], -radius, rtol=1e-12)


@pytest.mark.parametrize("kind", KINDS)
def test_eps_whose_bounds_overflow_is_a_value_error_naming_eps(kind):
    rng = np.random.default_rng(7)
    w = random_weights(rng, kind, 3, 4, 3)
    x = rng.normal(size=(3, 3))
    with pytest.raises(BoundOverflowError, match=r"overflow float64 at eps = 1\.7e\+308"):
        pf.bound_margins(w, x, 1.7e308, p=np.inf)
    with pytest.raises(ValueError, match="eps"):
        pf.bound_states(w, x, 1.7e308, p=np.inf)


def _robust_rnn(weight_scale):
    """A tanh RNN whose head bias makes class 0 win whatever the input (robust for every eps);
    ``W_ih`` entries are ±0.9·weight_scale, the input moves only its first coordinate."""
    rng = np.random.default_rng(8)
    s, n = 3, 4
    x = np.zeros((4, n))
    x[:, 0] = rng.uniform(-0.5, 0.5, size=4)
    return pf.RNNWeights(np.sign(rng.normal(size=(s, n))) * 0.9 * weight_scale, rng.normal(size=(s, s)),
                         np.zeros(s), np.zeros(s), rng.normal(size=(3, s)),
                         np.array([100.0, 0.0, 0.0])), x


def test_certify_survives_overflowing_probes():
    """Weights at 1e250: the search's probes overflow float64 at large eps; certify
    returns a finite, sound certificate instead of crashing."""
    w, x = _robust_rnn(1e250)
    c = pf.certify(w, x, eps_max=1e300)
    assert 0 < c.eps < 1e300 and c.eps_upper is not None and c.eps < c.eps_upper
    assert 0 < c.bound_passes <= MAX_PASSES
    lo, _ = pf.bound_margins(w, x, c.eps)
    assert np.all(lo > 0)


def test_optimized_search_survives_an_overflowing_exact_bracket():
    """planes="optimized" aims with the slope across the exact search's final bracket; when
    that bracket's failed end overflowed float64 (no margins recorded there) it aims
    without it instead of failing."""
    w, x = _robust_rnn(1e250)
    exact = pf.certify(w, x, eps_max=1e300)
    assert not np.isfinite(np.min(_margins_or_inf(w, x, exact.eps_upper)))  # the overflow case
    c = pf.certify(w, x, eps_max=1e300, planes="optimized")
    assert c.eps >= exact.eps * (1 - 1e-3) and c.eps_upper is not None
    assert np.all(pf.bound_margins(w, x, c.eps, planes="optimized")[0] > 0)


def _margins_or_inf(w, x, eps):
    try:
        return pf.bound_margins(w, x, eps)[0]
    except BoundOverflowError:
        return np.array([-np.inf])


def test_certify_every_probe_overflows():
    """|W_ih| = 0.9e308 and p = inf (dual norm: the row sums overflow): even the smallest probe
    overflows; nothing is certified, no margins are claimed, and the certificate serialises."""
    w, x = _robust_rnn(1e308)
    c = pf.certify(w, x, eps_max=1.0, p=np.inf)
    assert c.eps == 0.0 and c.margin_lower.size == 0
    assert c.bound_passes <= MAX_PASSES
    assert '"eps": 0.0' in c.to_json()


@pytest.mark.parametrize("eps_max", [1e300, 1.7976931348623157e308])
def test_certify_huge_eps_max_stops(eps_max):
    """A network robust at every radius: the doubling never reaches eps_max; the search stops
    at MAX_PASSES and says so in the certificate."""
    w, x = _robust_rnn(1.0)
    c = pf.certify(w, x, eps_max=eps_max)
    assert c.bound_passes <= MAX_PASSES
    assert c.eps > 1e10
    lo, _ = pf.bound_margins(w, x, c.eps)
    assert np.all(lo > 0)


@pytest.mark.parametrize("name, predicate", [
    ("always true", lambda e: True),
    ("always false", lambda e: False),
    ("true only below 1e-300", lambda e: e < 1e-300),
    ("true above 1 only (non-monotone)", lambda e: e > 1.0),
    ("alternating", None),
    ("random", None),
])
@pytest.mark.parametrize("eps_max", [1e-300, 1e-6, 1.0, 1e300, 1.7976931348623157e308])
def test_search_is_bounded_for_pathological_predicates(name, predicate, eps_max):
    rng = np.random.default_rng(0)
    calls = []
    if name == "alternating":
        predicate = lambda e: len(calls) % 2 == 0            # noqa: E731
    elif name == "random":
        predicate = lambda e: bool(rng.integers(2))          # noqa: E731
    answers: dict[float, bool] = {}

    def certified(e):
        assert 0.0 < e <= eps_max and np.isfinite(e)
        calls.append(e)
        answers[e] = predicate(e)
        return answers[e]

    res = search_radius(certified, eps_max, rtol=1e-3)
    assert res.passes == len(calls) <= MAX_PASSES
    assert res.eps == 0.0 or answers[res.eps]              # the result was a certified probe
    assert res.eps_upper is None or not answers[res.eps_upper]
    assert 0.0 <= res.eps <= eps_max


def test_search_with_tiny_rtol_stops():
    res = search_radius(lambda e: e < 0.3, 10.0, rtol=1e-300)
    assert res.passes <= MAX_PASSES and res.eps < 0.3 <= res.eps_upper
