"""A failed probe's own certificate (smaller_ball.py, RECURRENCES.md §5): the core's "slope"
against the plain-NumPy oracle, the carried bound against the oracle's concretisation of the
same relaxations over the smaller set, the radius it certifies, and the certificates that
use it (their bounds reproduced by ``bound_margins(..., relaxed_at=...)``)."""
from __future__ import annotations

import math

import numpy as np
import pytest

import popqorn_fast as pf
from popqorn_fast import _core, reference
from popqorn_fast.backend import general_arguments
from popqorn_fast.smaller_ball import certified_within, margins_within
from popqorn_fast.threat import check_threat

from conftest import DATA, random_weights
from soundness.models import random_general


def _threats(rng: np.random.Generator, x: np.ndarray) -> list[tuple[dict, bool]]:
    """(threat keywords, whether its sets grow linearly with the radius)."""
    T = x.shape[0]
    return [(dict(), True), (dict(ball="joint"), True), (dict(frame_weights=rng.uniform(0, 2, T)), True),
            (dict(domain=(x - 50.0, x + 50.0)), True),  # a box that never clips: linear
            (dict(domain=(x - rng.uniform(0, 0.3, x.shape), x + rng.uniform(0, 0.3, x.shape))), False)]


@pytest.mark.parametrize("p", (1.0, 2.0, math.inf))
@pytest.mark.parametrize("seed", range(3))
def test_the_carried_bound_is_the_same_relaxations_over_the_smaller_set(seed, p):
    """lower(ε) + slope (ε − ε') against the oracle's margins with every relaxation fixed at ε
    and concretised at ε': equal (to 1e-9) where the sets grow linearly, at most it under a
    box that clips (the slope then counts only what stays linear)."""
    rng = np.random.default_rng(seed)
    kinds = [["lstm"], ["gru", "rnn_tanh"], ["rnn_relu", "lstm"]][seed]
    w = random_general(rng, kinds, [seed % 2 == 0] * len(kinds), 3, [3] * len(kinds), 3, "mean",
                       [(3, "relu")], [], scale=1.0)
    x = rng.normal(size=(4, 3))
    mask = np.array([True, seed != 1, True, True])
    sw, sb = rng.normal(size=(2, 3)), rng.normal(size=2)
    eps, small = 0.4, 0.25
    differs = []
    for kw, linear in _threats(rng, x):
        tm = check_threat(x, mask, **kw)
        opts = _core.PassOptions(planes="exact", rounding="nearest")
        core = _core.general_bounds(*general_arguments(w), x, eps, p, mask, sw, sb, opts, tm.core())
        carried = core["lower"] + core["slope"] * (eps - small)
        ref = reference.general_bounds(w, x, eps, p, mask, sw, sb, planes="exact", threat=tm, margins_eps=small)
        own = reference.general_bounds(w, x, small, p, mask, sw, sb, planes="exact", threat=tm)
        assert np.all(core["slope"] >= 0.0)
        if linear:
            np.testing.assert_allclose(carried, ref["lower"], rtol=1e-9, atol=1e-9, err_msg=str(sorted(kw)))
        else:
            assert np.all(carried <= ref["lower"] + 1e-9), sorted(kw)
        differs.append(not np.allclose(ref["lower"], own["lower"], rtol=1e-6, atol=1e-9))
    # where a relaxation changes with the radius, the smaller ball's own pass gives other bounds
    assert any(differs)


def test_substitutions_have_no_slope():
    rng = np.random.default_rng(0)
    w = random_general(rng, ["lstm"], [False], 3, [3], 3, "last", [], [], scale=1.0)
    x = rng.normal(size=(3, 3))
    tm = check_threat(x, np.ones(3, bool), substitutions=[rng.normal(size=(2, 3)) for _ in range(3)], budget=1)
    out = _core.general_bounds(*general_arguments(w), x, 0.0, 2.0, np.ones(3, bool), np.eye(3)[:2],
                               np.zeros(2), _core.PassOptions(planes="exact"), tm.core())
    assert np.all(out["slope"] == 0.0)


def test_certified_within_is_the_root_of_the_carried_bound():
    lower = np.array([-0.02, 0.5, -0.01])
    slope = np.array([1.0, 3.0, 2.0])
    r = certified_within(0.1, lower, slope)
    assert r == pytest.approx(0.08, rel=1e-8) and r < 0.08          # row 0 decides, a hair below
    assert np.all(margins_within(0.1, lower, slope, r) > 0.0)
    assert np.min(margins_within(0.1, lower, slope, 0.08 * (1 + 1e-6))) < 0.0
    assert certified_within(0.1, np.abs(lower), slope) == 0.1          # the probe itself certified
    assert certified_within(0.1, lower, np.array([1.0, 3.0, 0.0])) is None  # a failing row that never rises
    assert certified_within(0.1, np.array([-1.0]), np.array([1.0])) is None  # its root at ε' <= 0
    assert certified_within(0.1, lower, None) is None
    with pytest.raises(ValueError, match="eps_small must lie in"):
        margins_within(0.1, lower, slope, 0.2)


@pytest.mark.parametrize("kind", ["rnn", "lstm", "gru"])
def test_certificates_from_a_failed_probe_reproduce_and_hold(kind):
    """Random one-layer models: searches that end at a failed probe give certificates whose
    margins ``bound_margins(..., relaxed_at=eps_relaxed)`` reproduces bit for bit, positive,
    below that probe; no sampled perturbation at the certified radius flips the label."""
    rng = np.random.default_rng(5)
    seen = 0
    for _ in range(12):
        w = random_weights(kind, rng, s=8, n=3, C=4)
        x = rng.normal(size=(5, 3))
        c = pf.certify(w, x, 10.0, p=2)
        if c.eps_relaxed is None:
            continue
        seen += 1
        assert c.eps < c.eps_relaxed and c.eps_upper is not None and c.eps_upper <= c.eps_relaxed
        lo, _ = pf.bound_margins(w, x, c.eps, p=2, relaxed_at=c.eps_relaxed)
        np.testing.assert_array_equal(lo, c.margin_lower)
        assert np.all(lo > 0.0)
        d = rng.normal(size=(4000,) + x.shape)
        d *= c.eps / np.linalg.norm(d, axis=-1, keepdims=True)  # every frame on its sphere
        assert np.all(np.argmax(w.logits(x + d), axis=-1) == c.label)
    assert seen >= 3, f"only {seen} searches ended at a failed probe"


def test_relaxed_at_below_eps_is_refused():
    w = pf.load_model(DATA / "rnn_relu_T4_h16.npz")
    x = pf.load_inputs(DATA / "rnn_relu_T4_h16.npz")[0][0]
    with pytest.raises(ValueError, match="relaxed_at must be at least eps"):
        pf.bound_margins(w, x, 0.1, relaxed_at=0.05)
    with pytest.raises(ValueError, match="relaxed_at must be"):
        pf.bound_margins(w, x, 0.1, relaxed_at=float("nan"))
