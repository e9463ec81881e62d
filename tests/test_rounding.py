"""rounding="sound" (docs/ROUNDING.md): certificates that floating-point error cannot break.

* A model built in the spirit of Jia & Rinard (SAS 2021): huge head biases that cancel exactly
  in real arithmetic absorb a small term in round-to-nearest, so rounding="nearest" certifies a
  ball that holds an adversarial example (shown by an 80-digit evaluation with the standard
  library's decimal module); rounding="sound" refuses it.
* On ordinary models the sound pass costs no radius: its bounds are within ~1e-11 relative of
  the round-to-nearest ones where the relaxations depend continuously on the intervals.
* The relaxations are valid for the real tanh / sigmoid (an 80-digit evaluation), the
  assumption the charges rest on (ROUNDING.md §4).
The soundness battery (tests/soundness/) runs on the default, which is rounding="sound".
"""
from __future__ import annotations

from decimal import Decimal, localcontext

import numpy as np
import pytest

import popqorn_fast as pf
from popqorn_fast.general import Dense, RecurrentClassifier, RecurrentLayer

from conftest import DATA, random_weights

BIG = 2.0 ** 54  # ulp 4 above, 2 below: x − 0.9 rounds back to x


def _decimal_tanh(v: Decimal) -> Decimal:
    e = (2 * v).exp()
    return (e - 1) / (e + 1)


def _decimal_sigmoid(v: Decimal) -> Decimal:
    return 1 / (1 + (-v).exp())


def trap_model(beta: float = 0.9, c: float = 1.0) -> RecurrentClassifier:
    """h = tanh(x) (one frame, one feature); head ReLU(W0 h + b0) with b0 = [BIG, beta, BIG],
    logits [a0 − a1 − a2 + c, 0]. Real margin: c − beta − tanh(x) (the BIGs cancel exactly);
    round-to-nearest sums BIG − beta − BIG to 0 and loses beta."""
    layer = RecurrentLayer("rnn", np.array([[1.0]]), np.array([[0.0]]), np.array([0.0]), np.array([0.0]), "tanh")
    head = (Dense(np.array([[0.0], [1.0], [0.0]]), np.array([BIG, beta, BIG]), "relu"),
            Dense(np.array([[1.0, -1.0, -1.0], [0.0, 0.0, 0.0]]), np.array([c, 0.0])))
    return RecurrentClassifier((layer,), head)


def exact_margin(model: RecurrentClassifier, x: float) -> Decimal:
    """logit_0 − logit_1 of trap_model at the one-feature input x, in 80-digit arithmetic
    (every float converted exactly; the only inexact step, tanh, to ~1e-78)."""
    with localcontext() as ctx:
        ctx.prec = 80
        h = _decimal_tanh(Decimal(x))
        d0, d1 = model.head
        a = [max(Decimal(0), Decimal(float(d0.weight[i, 0])) * h + Decimal(float(d0.bias[i]))) for i in range(3)]
        logits = [sum((Decimal(float(d1.weight[k, i])) * a[i] for i in range(3)), Decimal(0)) +
                  Decimal(float(d1.bias[k])) for k in range(2)]
        return logits[0] - logits[1]


def test_trap_nearest_certifies_an_adversarial_ball_sound_refuses():
    m = trap_model()
    x = np.zeros((1, 1))
    assert exact_margin(m, 0.0) > 0  # x̂ itself is classified 0 in real arithmetic (margin 0.1)
    nearest = pf.certify(m, x, eps_max=0.5, p=2, rounding="nearest")
    sound = pf.certify(m, x, eps_max=0.5, p=2, rounding="sound")
    assert nearest.label == 0 and nearest.rounding == "nearest" and sound.rounding == "sound"
    adv = 0.2  # inside nearest's ball (p = 2, one feature: |x − x̂| <= eps)
    assert nearest.eps >= adv
    assert exact_margin(m, adv) < 0  # a real adversarial example inside the "certified" ball
    # the real robust radius is atanh(0.1) = 0.1003...: the sound pass never claims more
    assert exact_margin(m, 0.1004) < 0 < exact_margin(m, 0.1003)
    assert sound.eps < 0.1003
    lo, _ = pf.bound_margins(m, x, 0.05, rounding="sound")
    lo_n, _ = pf.bound_margins(m, x, 0.05, rounding="nearest")
    assert lo[0] <= float(exact_margin(m, 0.05))  # a lower bound of the real margin (0.05 is in the ball)
    assert lo_n[0] > float(exact_margin(m, 0.05))  # round-to-nearest's is above the real value


def test_trap_verify_rechecks_with_the_recorded_rounding(tmp_path):
    """A certificate records its rounding; re-checking a "nearest" certificate recomputes with
    nearest (and so reproduces it), while a tampered "sound" record fails."""
    from popqorn_fast.cli import _check_one
    m = trap_model()
    x = np.zeros((1, 1))
    cert = pf.certify(m, x, eps_max=0.5, p=2, rounding="nearest")
    rec = cert.to_dict()
    assert rec["rounding"] == "nearest"
    assert pf.Certificate.from_dict(rec).rounding == "nearest"
    assert _check_one(m, m.sha256, rec, x, 1e-9, 1e-12) is None
    forged = dict(rec, rounding="sound")
    assert "not certified" in str(_check_one(m, m.sha256, forged, x, 1e-9, 1e-12))


def _eps_pairs(model, X, p, **kw):
    out = []
    for x in X:
        a = pf.certify(model, x, eps_max=10.0, p=p, rounding="nearest", **kw)
        b = pf.certify(model, x, eps_max=10.0, p=p, rounding="sound", **kw)
        out.append((a.eps, b.eps))
    return np.array(out)


@pytest.mark.parametrize("name", ["rnn_tanh_T16_h16.npz", "rnn_relu_T4_h16.npz"])
@pytest.mark.parametrize("p", [2.0, np.inf])
def test_sound_costs_no_radius_on_rnns(name, p):
    """Lines depend continuously on the intervals: at the radius found, the sound margins are
    the round-to-nearest ones less the charges, ~2e-9 of their scale at T = 16 (here at most
    1e-8). The two searches' radii agree to 1e-5:
    each is a probe aimed from margins 1e-12 apart, and a probe the aim puts on the root
    (a ReLU network's margin is piecewise linear, so the estimate can be exact) is certified
    or not by that difference (test_sound_costs_no_radius_on_continuous_planes)."""
    model = pf.load_model(DATA / name)
    with np.load(DATA / name) as d:
        X = np.array(d["X"][:3], dtype=np.float64)
    e = _eps_pairs(model, X, p)
    assert np.all(e[:, 0] > 0)
    np.testing.assert_allclose(e[:, 1], e[:, 0], rtol=1e-5)
    for x, eps in zip(X, e[:, 0]):
        ln, _ = pf.bound_margins(model, x, eps, p=p, rounding="nearest")
        ls, _ = pf.bound_margins(model, x, eps, p=p, rounding="sound")
        assert np.all(ls <= ln) and np.all(ln - ls <= 1e-8 * np.maximum(1.0, np.abs(ln)))


@pytest.mark.parametrize("kind", ["lstm", "gru"])
@pytest.mark.parametrize("planes", ["1d", "constant"])
def test_sound_costs_no_radius_on_continuous_planes(kind, planes):
    """Planes that move continuously with their boxes: the margins at a fixed ε are today's to
    1e-9 of their scale, so the sound margins change sign inside the bracket today's search
    ends with (its certified ε and its failed one, rtol apart). The returned radii are probes
    of two searches whose aimed steps see margins 1e-9 apart; a step aimed from a steep
    parabola can then land 1e-6 (relative) apart, so they are not compared directly."""
    rng = np.random.default_rng(5)
    w = random_weights(kind, rng, s=8, n=3, C=3)
    X = rng.normal(size=(3, 4, 3))
    for x in X:
        for eps in (1e-3, 1e-2, 0.1):
            ln, _ = pf.bound_margins(w, x, eps, planes=planes, rounding="nearest")
            ls, _ = pf.bound_margins(w, x, eps, planes=planes, rounding="sound")
            assert np.all(np.abs(ls - ln) <= 1e-9 * np.maximum(1.0, np.abs(ln)))
    for x in X:
        a = pf.certify(w, x, eps_max=10.0, p=2.0, rounding="nearest", planes=planes)
        assert a.eps > 0 and a.eps_upper is not None
        assert np.all(pf.bound_margins(w, x, a.eps, planes=planes, rounding="sound")[0] > 0)
        assert not np.all(pf.bound_margins(w, x, a.eps_upper, planes=planes, rounding="sound")[0] > 0)


@pytest.mark.parametrize("name", ["lstm_T8_h16.npz", "gru_T8_h16.npz"])
def test_sound_exact_planes_within_their_own_noise(name):
    """"exact" planes are an LP optimum with ties: the member found moves with the box at the
    1e-7 level (a 1e-15 relative change of x̂ moves round-to-nearest's margins as much,
    ROUNDING.md §5), so the sound radius equals today's to that level, not to 1e-9."""
    model = pf.load_model(DATA / name)
    with np.load(DATA / name) as d:
        X = np.array(d["X"][:3], dtype=np.float64)
    e = _eps_pairs(model, X, 2.0)
    np.testing.assert_allclose(e[:, 1], e[:, 0], rtol=1e-5)


def test_sound_bounds_are_nearest_bounds_minus_a_tiny_charge():
    """With lines fixed by continuous rules, sound lower bounds sit below round-to-nearest's by
    a relative amount of the order of Γ (far below 1e-9) and upper bounds above."""
    model = pf.load_model(DATA / "rnn_tanh_T16_h16.npz")
    with np.load(DATA / "rnn_tanh_T16_h16.npz") as d:
        x = np.array(d["X"][0], dtype=np.float64)
    for eps in (0.001, 0.01, 0.05):
        ln, un = pf.bound_margins(model, x, eps, rounding="nearest")
        ls, us = pf.bound_margins(model, x, eps, rounding="sound")
        scale = np.maximum(np.abs(ln), 1.0)
        assert np.all((ln - ls) / scale < 1e-9) and np.all((us - un) / scale < 1e-9)
        assert np.any(ls < ln)  # something is charged


@pytest.mark.parametrize("ball,kw", [("joint", {}), ("frame", {"domain": (-1.5, 1.5)}),
                                     ("joint", {"domain": (-1.5, 1.5)}), ("frame", {"frame_weights": [1, 0.5, 2, 0]})])
@pytest.mark.parametrize("p", [1.0, 2.0, np.inf])
def test_sound_threat_models_stay_below_nearest(ball, kw, p):
    """Every threat model's concretisation is charged (ROUNDING.md §3): sound bounds are valid
    lower bounds that differ from round-to-nearest's at the 1e-9 level only."""
    rng = np.random.default_rng(8)
    w = random_weights("rnn", rng, s=6, n=3, C=3)
    x = np.clip(rng.normal(size=(4, 3)), -1.4, 1.4)
    for eps in (0.05, 0.3, 1.0):
        ln, _ = pf.bound_margins(w, x, eps, p=p, ball=ball, rounding="nearest", **kw)
        ls, _ = pf.bound_margins(w, x, eps, p=p, ball=ball, rounding="sound", **kw)
        np.testing.assert_allclose(ls, ln, rtol=1e-9, atol=1e-9)


def test_rounding_argument_is_validated():
    w = random_weights("rnn", np.random.default_rng(0))
    x = np.zeros((3, 3))
    with pytest.raises(ValueError, match="rounding must be one of \\['sound', 'sound32', 'nearest'\\], got 'up'"):
        pf.certify(w, x, rounding="up")
    with pytest.raises(ValueError, match="rounding must be one of"):
        pf.bound_margins(w, x, 0.1, rounding=None)
    with pytest.raises(ValueError, match="rounding must be"):
        pf.certify_many(w, x[None], rounding="toward_zero")


def test_lines_hold_for_the_real_functions():
    """The lines of tanh and σ (lines.hpp: exact offsets plus the §2 margin) lie on the right
    side of the REAL function, evaluated to 80 digits, at the points where the gap is
    smallest (the endpoints and the tangent points) and at random points: what the charges
    of ROUNDING.md assume of the relaxations (libm's error inside the margin)."""
    rng = np.random.default_rng(1)
    worst = np.inf
    with localcontext() as ctx:
        ctx.prec = 80
        for fn, real in (("tanh", _decimal_tanh), ("sigmoid", _decimal_sigmoid)):
            for _ in range(150):
                c, w = rng.normal(0, 3), 10.0 ** rng.uniform(-8, 1)
                l, u = c - w * rng.uniform(), c + w * rng.uniform()
                lines = pf.lines.bound_activation(fn, np.array([l]), np.array([u]))
                al, bl, au, bu = (float(np.asarray(getattr(lines, k))[0]) for k in ("alpha_l", "beta_l",
                                                                                     "alpha_u", "beta_u"))
                zs = np.concatenate([[l, u], rng.uniform(l, u, 12)])
                for z in zs:
                    fz = real(Decimal(float(z)))
                    lo = Decimal(al) * Decimal(float(z)) + Decimal(bl)
                    up = Decimal(au) * Decimal(float(z)) + Decimal(bu)
                    assert lo <= fz <= up, (fn, l, u, z)
                    worst = min(worst, float(fz - lo), float(up - fz))
    assert worst >= 0.0
