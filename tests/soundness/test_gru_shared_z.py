"""Soundness battery for the GRU's shared-z relaxation and "optimized" planes (RECURRENCES.md
§4 "GRU, shared z (optimized)"), hidden core options not (yet) offered by the public API:
every GRU bound pass of the public API is routed through ``_core.gru_bounds`` with
``gru_shared_z=True`` (any plane method) or ``planes="optimized"`` by patching
``backend._core_pass`` for the test; the checks are the battery's (checks.check_point).
A direct sampling check of the margins' lower bounds comes last.
"""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings

from popqorn_fast import _core, backend, forward
from popqorn_fast.sampling import sample_ball

from .checks import check_point
from .conftest import arch_of
from .models import load_trained, random_weights
from .test_random_networks import _SETTINGS, cases

# mode -> (planes given to the core, extra keywords)
MODES = {"shared_z_exact": ("exact", {"gru_shared_z": True}),
         "shared_z_1d": ("1d", {"gru_shared_z": True}),
         "shared_z_constant": ("constant", {"gru_shared_z": True}),
         "optimized": ("optimized", {})}


@pytest.fixture
def gru_mode(monkeypatch):
    """Call with a mode name: from then on GRU passes of the public API use that mode."""
    original = backend._core_pass

    def set_mode(mode: str) -> None:
        planes_mode, kw = MODES[mode]

        def patched(weights, x, eps, p, mask, spec_w, spec_b, planes, want_states):
            if weights.kind != "gru":
                return original(weights, x, eps, p, mask, spec_w, spec_b, planes, want_states)
            args = backend.pass_arguments(weights, x, eps, p, mask, spec_w, spec_b, planes_mode, want_states)
            return _core.gru_bounds(*args, **kw)

        monkeypatch.setattr(backend, "_core_pass", patched)
    return set_mode


@pytest.mark.parametrize("mode", list(MODES))
def test_random_gru_shared_z(api, tally, gru_mode, mode):
    gru_mode(mode)
    reports = []

    @settings(max_examples=25, **_SETTINGS)
    @given(c=cases("gru"))
    def run(c):
        rng = np.random.default_rng(c["seed"])
        w = random_weights(rng, "gru", c["n"], c["s"], c["C"], c["scale"], c["bias_scale"], c["random_state"])
        x = rng.normal(size=(c["T"], c["n"])) * c["x_scale"]
        label = int(np.argmax(w.logits(x)))
        target = int(rng.choice([j for j in range(c["C"]) if j != label])) if c["targeted"] else None
        reports.append(tally.run(arch_of(w), check_point, api, w, x, c["p"], c["frames"], target, rng,
                                 n_samples=6_000, eps_probe=c["eps_probe"], pgd_steps=30, pgd_restarts=4))

    run()
    assert len(reports) >= 25
    assert sum(r.eps_cert > 0 for r in reports) >= 5


@pytest.mark.parametrize("mode", ["shared_z_exact", "optimized"])
@pytest.mark.parametrize("name", ["gru_T8_h16.npz", "gru_T4_h24.npz"])
def test_trained_gru_shared_z(api, tally, gru_mode, mode, name):
    gru_mode(mode)
    w, X, y = load_trained(name)
    T = X.shape[1]
    rng = np.random.default_rng(4)
    for i, p, frames, target in [(0, 2.0, None, None), (1, np.inf, None, None), (2, 1.0, [T - 1], None),
                                 (3, 2.0, None, (int(y[3]) + 1) % 10)]:
        rep = tally.run(arch_of(w), check_point, api, w, X[i], p, frames, target, rng, n_samples=6_000,
                        eps_max=8.0, eps_probe=0.05)
        assert rep.eps_cert > 0


@pytest.mark.parametrize("planes,kw", [("exact", {"gru_shared_z": True}), ("1d", {"gru_shared_z": True}),
                                       ("optimized", {}), ("optimized", {"opt_iters": 40, "opt_lr": 0.05})])
def test_sampled_margins_above_lower_bounds(planes, kw):
    """Random small GRUs (ordinary and saturated), several radii: every sampled margin is >= the
    lower bound of the core (direct, no certify), up to rounding."""
    rng = np.random.default_rng(sum(map(ord, planes)) + len(kw))
    for trial in range(30):
        s, n, T, C = int(rng.integers(1, 6)), int(rng.integers(1, 4)), int(rng.integers(1, 6)), 4
        w = random_weights(rng, "gru", n, s, C, scale=float(rng.choice([0.5, 1.5, 4.0])),
                           bias_scale=float(rng.choice([0.1, 1.0, 3.0])), random_state=bool(trial % 2))
        x = rng.normal(size=(T, n))
        label = int(np.argmax(w.logits(x)))
        others = [j for j in range(C) if j != label]
        S = np.zeros((C - 1, C))
        S[:, label] = 1.0
        S[np.arange(C - 1), others] = -1.0
        sw, sb = S @ w.out_weight, S @ w.out_bias
        p = float(rng.choice([1.0, 2.0, np.inf]))
        for eps in (0.02, 0.2, 1.0):
            mask = np.ones(T, bool)
            args = backend.pass_arguments(w, x, eps, p, mask, sw, sb, planes, False)
            out = _core.gru_bounds(*args, **kw)
            P = np.concatenate([sample_ball(rng, x, eps, p, None, 600, k) for k in ("interior", "surface")])
            m = forward.margins(w, P, label)
            assert np.all(m >= out["lower"] - 1e-9 * np.maximum(1, np.abs(out["lower"]))), (trial, eps, p)
            assert np.all(m <= out["upper"] + 1e-9 * np.maximum(1, np.abs(out["upper"]))), (trial, eps, p)
