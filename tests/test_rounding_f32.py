"""rounding="sound32" (docs/ROUNDING.md §7): the recurrent steps' products in float32, their
error charged to the bounds.

* A trap: a recurrent weight 1 + 2^-26 that float32 rounds to 1 while the head multiplies the
  lost term by 2^26; float32 arithmetic alone would prove the margin at its clean value
  whatever eps, past real adversarial examples (an 80-digit evaluation); the charged pass
  never certifies past the real robust radius, while float64 ("sound") finds it.
* On the trained models the radius costs a few parts in 10^4 to 2e-3 (the charges multiply
  the states' own magnitudes, not 1; bench/results/2026-12-06-sound32.md has the figures)
  and never exceeds what the float64 pass would give by more than the search's tolerance.
* Certificates record the mode; verify recomputes with it; the CUDA backend refuses it.
"""
from __future__ import annotations

from decimal import Decimal, localcontext

import numpy as np
import pytest

import popqorn_fast as pf
from popqorn_fast.backend import check_rounding
from popqorn_fast.general import Dense, RecurrentClassifier, RecurrentLayer

from conftest import DATA

K = 2.0 ** 26
DELTA = 2.0 ** -26  # float32 rounds 1 + DELTA to 1; float64 keeps it


def trap32(c: float = 1.1) -> RecurrentClassifier:
    """ReLU RNN, two units, one feature, T = 2 (only frame 0 moves): h_1 = (x_1, x_1) for
    x_1 > 0, z_2[0] = x_2 + (1 + DELTA) h_1[0] − h_1[1] = DELTA x_1 at x_2 = 0; logits
    [c − K relu(z_2[0]), 0]. Real margin c − K DELTA x_1 = c − x_1."""
    layer = RecurrentLayer("rnn", np.array([[1.0], [1.0]]), np.array([[1.0 + DELTA, -1.0], [0.0, 0.0]]),
                           np.zeros(2), np.zeros(2), "relu")
    head = (Dense(np.array([[-K, 0.0], [0.0, 0.0]]), np.array([c, 0.0])),)
    return RecurrentClassifier((layer,), head)


def exact_margin32(x1: float, c: float = 1.1) -> Decimal:
    """trap32's logit_0 − logit_1 at x = [[x1], [0]], in 80-digit arithmetic."""
    with localcontext() as ctx:
        ctx.prec = 80
        h = max(Decimal(0), Decimal(x1))
        z = (Decimal(1) + Decimal(DELTA)) * h - h
        return Decimal(c) - Decimal(K) * max(Decimal(0), z)


def test_trap_float32_products_lose_a_term_the_charge_refuses():
    m = trap32()
    x = np.array([[1.0], [0.0]])
    assert np.float32(1.0 + DELTA) == np.float32(1.0)  # the term float32 loses
    assert exact_margin32(1.0) > 0 and exact_margin32(1.1) == 0 and exact_margin32(1.2) < 0
    s64 = pf.certify(m, x, eps_max=0.5, p=2, frames=[0], rounding="sound")
    s32 = pf.certify(m, x, eps_max=0.5, p=2, frames=[0], rounding="sound32")
    assert s64.label == s32.label == 0 and s32.rounding == "sound32"
    assert 0.099 <= s64.eps < 0.1  # float64 sees the real radius 0.1
    assert s32.eps < 0.1  # never past it (float32 alone: margin 1.1 at every eps, eps* = 0.5)
    for eps in (0.01, 0.05, 0.2):
        lo, hi = pf.bound_margins(m, x, eps, p=2, frames=[0], rounding="sound32")
        for x1 in (1.0 - eps, 1.0, 1.0 + eps):
            assert lo[0] <= float(exact_margin32(x1)) <= hi[0]


@pytest.mark.parametrize("name", ["lstm_T8_h16.npz", "gru_T8_h16.npz", "lstm_T4_h24.npz", "rnn_tanh_T16_h16.npz"])
def test_sound32_radius_close_to_float64(name):
    model = pf.load_model(DATA / name)
    with np.load(DATA / name) as d:
        X = np.array(d["X"][:3], dtype=np.float64)
    for x in X:
        a = pf.certify(model, x, eps_max=10.0, p=2, rounding="sound")
        b = pf.certify(model, x, eps_max=10.0, p=2, rounding="sound32")
        assert b.label == a.label and b.rounding == "sound32"
        # the float32 charge costs radius, 0.03-0.2 % here; the search's brackets (rtol 1e-3)
        # may land either side of a near-equal root
        assert 0.995 * a.eps <= b.eps <= a.eps * (1 + 2e-3)
        lo, _ = pf.bound_margins(model, x, b.eps, p=2, rounding="sound32")
        assert np.all(lo > 0)


def test_sound32_recorded_and_verified():
    from popqorn_fast.cli import _check_one
    model = pf.load_model(DATA / "gru_T4_h24.npz")
    with np.load(DATA / "gru_T4_h24.npz") as d:
        x = np.array(d["X"][0], dtype=np.float64)
    cert = pf.certify(model, x, eps_max=10.0, p=2, rounding="sound32")
    rec = cert.to_dict()
    assert rec["rounding"] == "sound32" and pf.Certificate.from_dict(rec).rounding == "sound32"
    assert _check_one(model, model.sha256, rec, x, 1e-9, 1e-12) is None
    grown = dict(rec, eps=rec["eps"] * 1.05)
    assert _check_one(model, model.sha256, grown, x, 1e-9, 1e-12) is not None


def test_sound32_refused_on_cuda():
    assert check_rounding("sound32") == "sound32"
    with pytest.raises(ValueError, match="rounding='nearest'"):
        check_rounding("sound32", "cuda")


@pytest.mark.parametrize("kind", ["lstm", "gru", "rnn"])
@pytest.mark.parametrize("scale,x_scale", [(1e-42, 1e40), (1e70, 1.0)])
def test_sound32_keeps_float64_for_weights_float32_cannot_hold(kind, scale, x_scale):
    """Weights outside [2^-100, 2^60] (float32 subnormals: charged per term at the underflow
    level times the inputs' magnitude, here 1e40) keep the cell's products in float64: the
    bounds are then those of "sound", bit for bit."""
    from conftest import random_weights
    rng = np.random.default_rng(3)
    w = random_weights(kind, rng, s=20, n=3, C=3, scale=scale)
    x = rng.normal(size=(3, 3)) * x_scale
    for eps in (1e-3 * x_scale, 0.3 * x_scale):
        a = pf.bound_margins(w, x, eps, rounding="sound")
        b = pf.bound_margins(w, x, eps, rounding="sound32")
        assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
