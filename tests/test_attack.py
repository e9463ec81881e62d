"""Tests of popqorn_fast.attack.pgd and popqorn_fast.sampling.sample_ball."""
from __future__ import annotations

import numpy as np
import pytest

from popqorn_fast import forward
from popqorn_fast.attack import AttackResult, pgd
from popqorn_fast.sampling import frame_norms, project_l1, sample_ball
from soundness.models import KINDS, TRAINED, load_trained, random_weights

PS = [1, 2, np.inf]


def _frame_dist(a, b, p):
    return frame_norms(np.asarray(a) - np.asarray(b), float(p))


# ---------------------------------------------------------------- sampling

@pytest.mark.parametrize("p", PS)
@pytest.mark.parametrize("kind", ["interior", "surface", "vertices"])
def test_sample_ball_constraints(p, kind):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(5, 4))
    if kind == "vertices" and p == 2:
        with pytest.raises(ValueError, match="vertices"):
            sample_ball(rng, x, 0.3, p, None, 10, kind)
        return
    S = sample_ball(rng, x, 0.3, p, [1, 3], 2000, kind)
    assert S.shape == (2000, 5, 4)
    d = _frame_dist(S, x, p)
    assert np.all(d <= 0.3)                                       # inside, exactly in float64
    np.testing.assert_array_equal(S[:, [0, 2, 4]], np.broadcast_to(x[[0, 2, 4]], (2000, 3, 4)))
    if kind in ("surface", "vertices"):
        np.testing.assert_allclose(d[:, [1, 3]], 0.3, rtol=1e-13)
    else:
        # uniform in any norm ball: P(||d|| <= r eps) = r^n, so E||d|| = n/(n+1) eps
        assert abs(d[:, [1, 3]].mean() - 0.3 * 4 / 5) < 0.3 * 0.01
    if kind == "vertices" and p == np.inf:
        np.testing.assert_allclose(np.abs(S[:, [1, 3]] - x[[1, 3]]), 0.3, rtol=1e-13)
    # the samples spread over the ball: every coordinate moves both ways
    dd = S[:, [1, 3]] - x[[1, 3]]
    assert np.all(dd.max(axis=0) > 0) and np.all(dd.min(axis=0) < 0)


@pytest.mark.parametrize("p", PS)
def test_sample_surface_tiny_eps_on_large_x(p):
    """Rounding of x + d is far above ulp(eps) here; samples must still reach the surface."""
    rng = np.random.default_rng(5)
    x = 1000.0 + rng.normal(size=(3, 4))
    S = sample_ball(rng, x, 1e-9, p, None, 500, "surface")
    d = _frame_dist(S, x, p)
    assert np.all(d <= 1e-9)
    assert np.all(d >= 1e-9 * (1 - 1e-3))   # rounding of x + d is ~1e-4 of eps here


def test_sample_interior_uniform_l2_radius():
    # uniform in an n-ball: P(||d|| <= r eps) = r^n
    rng = np.random.default_rng(1)
    x = np.zeros((1, 3))
    S = sample_ball(rng, x, 2.0, 2, None, 20000, "interior")
    r = np.linalg.norm(S[:, 0], axis=1) / 2.0
    assert abs(np.mean(r <= 0.5) - 0.125) < 0.01


def test_sample_ball_bad_input():
    rng = np.random.default_rng(0)
    x = np.zeros((3, 2))
    with pytest.raises(ValueError, match="eps"):
        sample_ball(rng, x, -1.0, 2, None, 3)
    with pytest.raises(ValueError, match="p"):
        sample_ball(rng, x, 1.0, 3, None, 3)
    with pytest.raises(ValueError, match="frames"):
        sample_ball(rng, x, 1.0, 2, [3], 3)
    with pytest.raises(ValueError, match="kind"):
        sample_ball(rng, x, 1.0, 2, None, 3, kind="edge")
    with pytest.raises(ValueError, match="rng"):
        sample_ball(0, x, 1.0, 2, None, 3)


def test_project_l1_is_the_projection():
    rng = np.random.default_rng(2)
    V = rng.normal(size=(200, 6)) * 2
    P = project_l1(V, 1.5)
    assert np.all(np.abs(P).sum(axis=1) <= 1.5 + 1e-12)
    inside = np.abs(V).sum(axis=1) <= 1.5
    np.testing.assert_array_equal(P[inside], V[inside])
    # optimality: no sampled point of the ball is closer to v than P(v)
    Q = sample_ball(rng, np.zeros((1, 6)), 1.5, 1, None, 5000, "interior")[:, 0]
    for v, pv in zip(V[:20], P[:20]):
        assert np.linalg.norm(v - pv) <= np.min(np.linalg.norm(Q - v, axis=1)) + 1e-12


# ---------------------------------------------------------------- pgd

@pytest.mark.parametrize("p", PS + ["inf"])
@pytest.mark.parametrize("kind", KINDS)
def test_pgd_stays_in_ball(p, kind):
    rng = np.random.default_rng(3)
    w = random_weights(rng, kind, n=4, s=5, C=3, scale=2.0)
    x = rng.normal(size=(4, 4))
    for eps in (0.05, 0.7):
        r = pgd(w, x, eps, p=p, steps=20, restarts=4, seed=1)
        assert isinstance(r, AttackResult)
        pf = np.inf if p == "inf" else p
        assert np.all(_frame_dist(r.x_adv, x, pf) <= eps)
        lab = int(np.argmax(forward.logits(w, x)))
        z = forward.logits(w, r.x_adv)
        assert r.margin == pytest.approx(z[lab] - np.max(np.delete(z, lab)), abs=1e-12)
        assert r.success == (r.margin < 0)
        assert r.margin <= z[lab] - np.max(np.delete(z, lab)) + 1e-12
        # never worse than the clean point (it is one of the starts)
        m0 = forward.margins(w, x, lab).min()
        assert r.margin <= m0 + 1e-12


@pytest.mark.parametrize("name", TRAINED)
@pytest.mark.parametrize("p,eps", [(2, 1.0), (np.inf, 0.2), (1, 2.0)])
def test_pgd_flips_trained_models(name, p, eps):
    w, X, y = load_trained(name)
    flips = 0
    for i in range(10):
        r = pgd(w, X[i], eps, p=p, steps=50, restarts=4, seed=0)
        assert r.label == y[i]
        if r.success:
            assert np.argmax(forward.logits(w, r.x_adv)) != y[i]   # a real adversarial example
            flips += 1
        assert np.all(_frame_dist(r.x_adv, X[i], p) <= eps)
    assert flips >= 8


@pytest.mark.parametrize("name", TRAINED[:3])
def test_pgd_beats_random_sampling(name):
    """At a small eps the gradient finds a lower margin than 2000 random surface points."""
    w, X, y = load_trained(name)
    x = X[0]
    eps = 0.1
    r = pgd(w, x, eps, p=2, steps=60, restarts=4, seed=0)
    S = sample_ball(np.random.default_rng(0), x, eps, 2, None, 2000, "surface")
    m_rand = forward.margins(w, S, int(y[0])).min()
    assert r.margin < m_rand


@pytest.mark.parametrize("p", PS)
def test_pgd_frames_only_those_move(p):
    w, X, y = load_trained("lstm_T8_h16.npz")
    x = X[1]
    for t in (0, 5):
        r = pgd(w, x, 0.5, p=p, frames=[t], steps=30, restarts=4, seed=0)
        moved = np.flatnonzero(np.any(r.x_adv != x, axis=1))
        assert set(moved) <= {t}
        assert np.any(r.x_adv[t] != x[t])        # the attacked frame really moves
        assert _frame_dist(r.x_adv[t], x[t], p) <= 0.5


def test_pgd_targeted():
    w, X, y = load_trained("gru_T4_h24.npz")
    x, lab = X[2], int(y[2])
    tgt = (lab + 3) % 10
    r = pgd(w, x, 1.5, p=2, target=tgt, steps=80, restarts=4, seed=0)
    z = forward.logits(w, r.x_adv)
    assert r.margin == pytest.approx(z[lab] - z[tgt], abs=1e-12)
    assert r.success and z[tgt] > z[lab]


@pytest.mark.parametrize("p", PS)
def test_pgd_deterministic(p):
    w, X, y = load_trained("rnn_tanh_T16_h16.npz")
    a = pgd(w, X[3], 0.05, p=p, steps=30, restarts=6, seed=5)
    b = pgd(w, X[3], 0.05, p=p, steps=30, restarts=6, seed=5)
    np.testing.assert_array_equal(a.x_adv, b.x_adv)
    assert a.margin == b.margin and a.success == b.success


def test_pgd_eps_zero_and_label():
    w, X, y = load_trained("rnn_relu_T4_h16.npz")
    r = pgd(w, X[0], 0.0, p=2)
    np.testing.assert_array_equal(r.x_adv, X[0])
    assert not r.success
    # a wrong label is "already flipped"
    wrong = (int(y[0]) + 1) % 10
    r = pgd(w, X[0], 0.0, p=2, label=wrong)
    assert r.success and r.margin < 0


def test_pgd_bad_input():
    w, X, y = load_trained("rnn_relu_T4_h16.npz")
    x = X[0]
    for kwargs, name in [({"eps": -0.1}, "eps"), ({"eps": np.nan}, "eps"), ({"p": 3}, "p"),
                         ({"frames": [9]}, "frames"), ({"frames": []}, "frames"),
                         ({"target": int(y[0])}, "target"), ({"target": 10}, "target"),
                         ({"steps": -1}, "steps"), ({"restarts": 0}, "restarts"),
                         ({"label": 12}, "label")]:
        args = {"eps": 0.1, **kwargs}
        with pytest.raises(ValueError, match=name):
            pgd(w, x, **args)
    with pytest.raises(ValueError, match="x"):
        pgd(w, x[:, :3], 0.1)
