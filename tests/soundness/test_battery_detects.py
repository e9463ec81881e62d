"""The battery must be able to fail: deliberately unsound variants of the stand-in are caught.

These tests run the battery's checks against broken APIs and expect AssertionError; a
battery that passes them is known to have teeth (on these models and radii)."""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from . import ibp_standin
from .checks import check_point
from .models import load_trained, random_weights


def _shrunk(frac):
    """bound_states with every interval shrunk by ``frac`` of its width at each end."""
    def bound_states(*a, **k):
        out = ibp_standin.bound_states(*a, **k)
        return {n: (lo + frac * (hi - lo), hi - frac * (hi - lo)) for n, (lo, hi) in out.items()}
    return SimpleNamespace(bound_states=bound_states, bound_margins=ibp_standin.bound_margins,
                           certify=ibp_standin.certify)


def _overclaiming(factor, lie_margins):
    """certify returns factor * eps*; optionally bound_margins claims every margin is >= 1e-3."""
    def certify(w, x, eps_max, **k):
        c = ibp_standin.certify(w, x, eps_max, **k)
        return ibp_standin.Certificate(min(eps_max, c.eps * factor), c.label, c.target, c.p,
                                       c.bound_passes)

    def bound_margins(*a, **k):
        lo, hi = ibp_standin.bound_margins(*a, **k)
        return (np.maximum(lo, 1e-3), np.maximum(hi, 1e-3)) if lie_margins else (lo, hi)

    return SimpleNamespace(bound_states=ibp_standin.bound_states, bound_margins=bound_margins,
                           certify=certify)


@pytest.mark.parametrize("name", ["rnn_tanh_T16_h16.npz", "lstm_T4_h24.npz", "gru_T8_h16.npz"])
@pytest.mark.parametrize("p", [2.0, np.inf, 1.0])
def test_shrunk_state_bounds_are_caught(name, p):
    w, X, _ = load_trained(name)
    with pytest.raises(AssertionError, match="escapes"):
        check_point(_shrunk(0.05), w, X[0], p, None, None, np.random.default_rng(0), n_samples=3000,
                    eps_max=1.0)


def test_overclaimed_radius_is_caught_by_bound_consistency():
    w, X, _ = load_trained("lstm_T8_h16.npz")
    with pytest.raises(AssertionError, match="not > 0"):
        check_point(_overclaiming(1000.0, False), w, X[0], 2.0, None, None,
                    np.random.default_rng(0), n_samples=2000, eps_max=1.0)


@pytest.mark.parametrize("name", ["rnn_relu_T4_h16.npz", "gru_T4_h24.npz"])
def test_overclaimed_radius_with_lying_margins_is_caught(name):
    """Bounds that lie about the margins and a radius far above the truth: samples or pgd expose it."""
    w, X, _ = load_trained(name)
    with pytest.raises(AssertionError, match="escapes|flipped|PGD"):
        check_point(_overclaiming(1000.0, True), w, X[0], 2.0, None, None,
                    np.random.default_rng(0), n_samples=3000, eps_max=1.0)


def test_random_network_unsound_first_step_is_caught():
    """IBP is exact on the first pre-activation; shrinking it 1% is caught by vertex samples."""
    rng = np.random.default_rng(4)
    w = random_weights(rng, "rnn_tanh", 3, 4, 3)
    x = rng.normal(size=(3, 3))
    with pytest.raises(AssertionError, match="escapes"):
        check_point(_shrunk(0.01), w, x, np.inf, [0], None, rng, n_samples=3000, eps_max=1.0,
                    eps_probe=0.5)
