"""The radius search's first probe (first_probe.py): the linearised distance to the decision
boundary is the clean margin over the threat model's dual norm of the margin's gradient."""
from __future__ import annotations

import sys
import zlib

import numpy as np
import pytest

import popqorn_fast as pf
from conftest import random_weights
from popqorn_fast.bisection import EPS_FLOOR, EPS_START
from popqorn_fast.first_probe import LINEAR_FRACTION, SearchStart, first_probe, linear_radius
from popqorn_fast.forward import logits_vjp
from popqorn_fast.sampling import frame_mask, sample_threat, threat_norms
from popqorn_fast.threat import ThreatModel, check_threat

THREATS = [  # (p, frames, threat keywords)
    (2.0, None, {}), (np.inf, None, {}), (1.0, None, {}), (2.0, [0, 2], {}),
    (2.0, None, {"ball": "joint"}), (1.0, None, {"ball": "joint"}),
    (2.0, None, {"frame_weights": [0.5, 2.0, 0.0, 1.0]}),
    (np.inf, None, {"ball": "joint", "frame_weights": [1.0, 0.25, 3.0, 0.0]}),
]


def _model(kind: str, rng: np.random.Generator):
    if kind != "general":
        return random_weights(kind, rng, s=5, n=3, C=4, scale=0.8)
    h, n = 4, 3
    u = lambda *shape: rng.normal(scale=0.6, size=shape)  # noqa: E731
    fwd = (u(4 * h, n), u(4 * h, h), u(4 * h), u(4 * h))
    bwd = (u(4 * h, n), u(4 * h, h), u(4 * h), u(4 * h))
    layer = pf.RecurrentLayer("lstm", *fwd, reverse=bwd)
    head = [pf.Dense(u(6, 2 * h), u(6), activation="tanh"), pf.Dense(u(4, 6), u(4))]
    return pf.RecurrentClassifier([layer], head, readout="mean")


def _argmax_unit(v: np.ndarray, p: float) -> np.ndarray:
    """argmax of v . u over ||u||_p <= 1 (the last axis)."""
    if p == np.inf:
        return np.sign(v)
    if p == 2.0:
        return v / max(np.linalg.norm(v), 1e-300)
    u = np.zeros_like(v)
    i = int(np.argmax(np.abs(v)))
    u[i] = np.sign(v[i])
    return u


def _steepest(g: np.ndarray, p: float, mask: np.ndarray, tm: ThreatModel) -> np.ndarray:
    """The perturbation of threat norm 1 that increases g . d most (written out per threat model)."""
    w = np.where(mask, 1.0 if tm.frame_weights is None else tm.frame_weights, 0.0)
    G = g * w[:, None]
    if tm.ball == "joint":
        U = _argmax_unit(G.ravel(), p).reshape(G.shape)
    else:
        U = np.stack([_argmax_unit(G[t], p) for t in range(G.shape[0])])
    return U * w[:, None]


def _margin(w, x, label, j):
    z, _ = logits_vjp(w, x, np.zeros(w.num_classes))
    return z[label] - z[j]


def _case(kind, p, frames, kw, salt):
    """A model and input of the parametrised tests: (rng, w, x, mask, threat, clean logits,
    label, margin classes)."""
    rng = np.random.default_rng(zlib.crc32(repr((kind, p, frames, kw)).encode()) + salt)
    w = _model(kind, rng)
    x = rng.normal(size=(4, 3))
    mask = frame_mask(frames, 4)
    tm = check_threat(x, mask, **kw)
    z, _ = logits_vjp(w, x, np.zeros(w.num_classes))
    label = int(np.argmax(z))
    return rng, w, x, mask, tm, z, label, np.array([j for j in range(w.num_classes) if j != label])


@pytest.mark.parametrize("kind", ["rnn", "lstm", "gru", "general"])
@pytest.mark.parametrize("p, frames, kw", THREATS)
def test_linear_radius_is_the_margin_over_the_dual_norm(kind, p, frames, kw):
    """For the margin that sets ε_lin, S = m / ε_lin is the largest first-order decrease over
    the threat model's set of radius 1: no point of the set decreases it faster (sampled,
    its norm checked by threat_norms), the steepest direction attains S, and the margin's
    finite difference along that direction matches S."""
    rng, w, x, mask, tm, z, label, classes = _case(kind, p, frames, kw, 0)
    lin = linear_radius(w, x, label, classes, p, mask, tm)
    assert np.isfinite(lin) and lin > 0
    margins = z[label] - z[classes]
    ct = np.zeros((len(classes), w.num_classes))
    ct[:, label], ct[np.arange(len(classes)), classes] = 1.0, -1.0
    _, g = logits_vjp(w, np.repeat(x[None], len(classes), 0), ct)
    S = np.zeros(len(classes))
    for k, j in enumerate(classes):
        d = -_steepest(g[k], p, mask, tm)  # the steepest decrease of margin j, threat norm 1
        assert threat_norms(d, p, mask, tm) <= 1.0 + 1e-12
        S[k] = -np.sum(g[k] * d)
        samples = sample_threat(rng, np.zeros_like(x), 1.0, p, mask, tm, 400, kind="surface")
        assert np.max(-np.einsum("tn,ktn->k", g[k], samples)) <= S[k] * (1 + 1e-9) + 1e-12
        h = 1e-6
        fd = (_margin(w, x, label, j) - _margin(w, x + h * d, label, j)) / h
        assert abs(fd - S[k]) <= 1e-4 * max(1.0, abs(S[k]))
    assert lin == pytest.approx(np.min(margins / S), rel=1e-9)
    # the search's slope at ε = 0: the rate of the smallest clean margin
    assert first_probe(w, x, label, classes, p, mask, tm, 10.0).slope == pytest.approx(S[np.argmin(margins)],
                                                                                       rel=1e-9)


@pytest.mark.parametrize("kind", ["rnn", "lstm", "gru", "general"])
@pytest.mark.parametrize("p, frames, kw", THREATS)
def test_the_bound_falls_at_the_first_probes_slope(kind, p, frames, kw):
    """The slope the search is told is the bound's own at ε = 0: as ε -> 0 the relaxations
    become tangents, so the smallest margin bound falls at ‖∇m‖_* of the smallest clean
    margin (its finite difference at ε = 1e-7 ε_lin, within 1e-3)."""
    _, w, x, mask, tm, z, label, classes = _case(kind, p, frames, kw, 1)
    start = first_probe(w, x, label, classes, p, mask, tm, 10.0)
    eps = 1e-7 * linear_radius(w, x, label, classes, p, mask, tm)
    lower, _ = pf.bound_margins(w, x, eps, p=p, frames=frames, rounding="nearest", **kw)
    fd = (np.min(z[label] - z[classes]) - np.min(lower)) / eps
    assert fd == pytest.approx(start.slope, rel=1e-3)


def test_first_probe_falls_back_and_stays_in_range():
    rng = np.random.default_rng(3)
    w = random_weights("lstm", rng, s=5, n=3, C=4, scale=0.8)
    x = rng.normal(size=(4, 3))
    mask = frame_mask(None, 4)
    tm = ThreatModel()
    z, _ = logits_vjp(w, x, np.zeros(4))
    lab = int(np.argmax(z))
    cls = np.array([j for j in range(4) if j != lab])
    lin = linear_radius(w, x, lab, cls, 2.0, mask, tm)
    assert first_probe(w, x, lab, cls, 2.0, mask, tm, 10.0).eps == pytest.approx(LINEAR_FRACTION * lin, rel=1e-12)
    assert first_probe(w, x, lab, cls, 2.0, mask, tm, 1e-3 * lin).eps == 1e-3 * lin  # capped at eps_max
    # a model whose logits do not depend on x: nothing moves to first order
    flat = pf.LSTMWeights(np.zeros_like(w.weight_ih), w.weight_hh, w.bias_ih, w.bias_hh, w.out_weight, w.out_bias)
    zf, _ = logits_vjp(flat, x, np.zeros(4))
    lf = int(np.argmax(zf))
    cf = np.array([j for j in range(4) if j != lf])
    assert linear_radius(flat, x, lf, cf, 2.0, mask, tm) == np.inf
    assert first_probe(flat, x, lf, cf, 2.0, mask, tm, 10.0) == SearchStart(EPS_START, None)
    assert first_probe(flat, x, lf, cf, 2.0, mask, tm, 0.01).eps == 0.01
    # a substitution threat model has no ball to linearise over
    subs = ThreatModel(substitutions=tuple(x[t:t + 1] + 1.0 for t in range(4)), budget=1)
    assert first_probe(w, x, lab, cls, 2.0, mask, subs, 10.0) == SearchStart(EPS_START, None)
    # never below the search's floor
    tiny = pf.LSTMWeights(w.weight_ih * 1e12, w.weight_hh, w.bias_ih, w.bias_hh, w.out_weight, w.out_bias)
    zt, _ = logits_vjp(tiny, x, np.zeros(4))
    lt = int(np.argmax(zt))
    ct = np.array([j for j in range(4) if j != lt])
    assert first_probe(tiny, x, lt, ct, 2.0, mask, tm, 10.0).eps >= EPS_FLOOR


@pytest.mark.parametrize("kind", ["rnn", "lstm", "gru"])
def test_certify_starts_at_the_first_probe(kind, monkeypatch):
    """certify's search (and the optimized mode's exact search) opens at the first probe."""
    rng = np.random.default_rng(5)
    w = random_weights(kind, rng, s=5, n=3, C=4, scale=0.8)
    x = rng.normal(size=(4, 3))
    mod = sys.modules["popqorn_fast.certify"]
    seen = []
    real = mod.search_radius

    def spy(certified, eps_max, rtol, eps_start, margin_at_zero, slope, slope_at_zero):
        seen.append((eps_start, slope_at_zero))
        return real(certified, eps_max, rtol, eps_start=eps_start, margin_at_zero=margin_at_zero, slope=slope,
                    slope_at_zero=slope_at_zero)

    monkeypatch.setattr(mod, "search_radius", spy)
    c = pf.certify(w, x, p=2)
    z, _ = logits_vjp(w, x, np.zeros(4))
    lab = int(np.argmax(z))
    cls = np.array([j for j in range(4) if j != lab])
    want = first_probe(w, x, lab, cls, 2.0, frame_mask(None, 4), ThreatModel(), 10.0)
    assert seen == [(want.eps, want.slope)] and want.eps != EPS_START and want.slope > 0
    assert c.eps > 0 and np.all(pf.bound_margins(w, x, c.eps)[0] > 0)
