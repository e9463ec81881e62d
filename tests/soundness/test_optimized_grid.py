"""planes="optimized" with its best responses on a grid (the core's opt_grid, RECURRENCES.md
§3b): the candidate planes / lines of each box are shared by every row that lands in the
same cell, so a wrong offset or a candidate kept past its box would show up as a bound that
a sample escapes. For random small RNN / LSTM / GRU models, every grid size from the point
itself (0) to a fine one, the margins' lower bounds are checked against sampled points of
the ball and against the "exact" pass they start from (a GRU's: with shared z)."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from popqorn_fast import _core, forward
from popqorn_fast.backend import pass_arguments
from popqorn_fast.specification import fold_specification, margin_classes

from .checks import assert_inside, samples_for
from .models import random_weights
from .test_random_networks import _SETTINGS

KINDS = ["rnn_tanh", "lstm", "gru"]


def _lower(w, x, eps, p, label, planes, **kw):
    classes = margin_classes(label, w.num_classes, None)
    sw, sb = fold_specification(w.out_weight, w.out_bias, label, classes)
    mask = np.ones(x.shape[0], bool)
    if w.kind == "rnn":  # the RNN core takes planes as a keyword
        kw = dict(kw, planes=planes)
    return np.asarray(getattr(_core, f"{w.kind}_bounds")(*pass_arguments(w, x, eps, p, mask, sw, sb, planes),
                                                         **kw)["lower"])


@pytest.mark.parametrize("kind", KINDS)
def test_grid_best_responses_are_sound(kind):
    @settings(max_examples=60, **_SETTINGS)
    @given(seed=st.integers(0, 2**32 - 1), T=st.integers(1, 4), s=st.integers(1, 5),
           scale=st.sampled_from([0.5, 1.0, 3.0]), p=st.sampled_from([1.0, 2.0, np.inf]),
           eps=st.sampled_from([0.05, 0.3, 1.5]), grid=st.sampled_from([0, 1, 2, 3, 8, 64]),
           adam=st.booleans())
    def run(seed, T, s, scale, p, eps, grid, adam):
        rng = np.random.default_rng(seed)
        w = random_weights(rng, kind, 3, s, 3, scale, 1.0, True)
        x = rng.normal(size=(T, 3))
        label = int(np.argmax(w.logits(x)))
        # adam: Adam steps on the tangent points after the best responses (planes only)
        kw = {"opt_iters": 10, "opt_br": 3, "opt_lr": 0.3} if adam and kind != "rnn_tanh" else {}
        lo = _lower(w, x, eps, p, label, "optimized", opt_grid=grid, **kw)
        S = samples_for(rng, x, eps, p, None, 4000, w)
        m = forward.margins(w, S, label)
        assert_inside(f"optimized margins, grid {grid}", m, lo, np.full_like(lo, np.inf))

    run()


def test_grid_keeps_the_tangent_radius_on_a_trained_lstm():
    """At a fixed ε on a trained LSTM, the grid's margin bounds stay within a small fraction
    of the margin's drop that the tangent at the sweep point itself recovers (measured: radii
    within 0.3 % on the 13 shared models), and above the exact planes'."""
    from .models import load_trained

    w, X, y = load_trained("lstm_T8_h16.npz")
    for i in range(2):
        label = int(y[i])
        exact = _lower(w, X[i], 0.03, 2.0, label, "exact")
        point = _lower(w, X[i], 0.03, 2.0, label, "optimized", opt_grid=0)
        grid = _lower(w, X[i], 0.03, 2.0, label, "optimized", opt_grid=8)
        gain = point - exact
        assert np.all(gain > 0), gain
        assert np.all(grid >= exact + 0.9 * gain), (grid - exact) / gain


def test_opt_grid_out_of_range_is_refused():
    w = random_weights(np.random.default_rng(0), "lstm", 3, 2, 3)
    x = np.zeros((2, 3))
    for g in (-1, 65):
        with pytest.raises(ValueError, match="opt_grid"):
            _lower(w, x, 0.1, 2.0, 0, "optimized", opt_grid=g)
        with pytest.raises(ValueError, match="opt_grid"):
            _core.PassOptions(planes="optimized", opt_grid=g)


@pytest.mark.parametrize("kind,s_cap", [("lstm", 8), ("rnn_tanh", 512)])  # (a GRU's z lines keep theirs)
def test_a_grid_over_the_memory_cap_falls_back_to_the_point(kind, s_cap):
    """A layer whose grid would keep more than 2^16 candidate slots (planes: 2 G^2 per neuron,
    lines: 2 G) takes the tangent at each row's own point, as opt_grid=0 does; one neuron fewer
    keeps its grid."""
    rng = np.random.default_rng(3)
    for s, over in ((s_cap + 1, True), (s_cap, False)):
        w = random_weights(rng, kind, 3, s, 3, 1.0, 1.0, True)
        x = rng.normal(size=(2, 3))
        label = int(np.argmax(w.logits(x)))
        eps = 0.3 if kind != "rnn_tanh" else 0.05
        fine = _lower(w, x, eps, 2.0, label, "optimized", opt_grid=64)
        point = _lower(w, x, eps, 2.0, label, "optimized", opt_grid=0)
        assert np.array_equal(fine, point) == over, (s, fine - point)
