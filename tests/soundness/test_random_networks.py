"""Soundness battery on random small networks (hypothesis): every architecture, every p,
frame subsets, targeted and untargeted, ordinary and saturated (large) weights, every
plane method of the LSTM/GRU products."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from .checks import check_point
from .conftest import arch_of
from .models import KINDS, random_weights

_SETTINGS = dict(deadline=None, derandomize=True, database=None,
                 suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@st.composite
def cases(draw, kind: str):
    T = draw(st.integers(1, 4))
    return dict(
        kind=kind,
        seed=draw(st.integers(0, 2**32 - 1)),
        T=T, n=draw(st.integers(1, 3)), s=draw(st.integers(1, 4)), C=draw(st.integers(2, 4)),
        scale=draw(st.sampled_from([0.3, 1.0, 3.0, 8.0])),         # 3, 8: saturated gates
        bias_scale=draw(st.sampled_from([0.1, 1.0, 5.0])),
        random_state=draw(st.booleans()),
        x_scale=draw(st.sampled_from([0.5, 2.0])),
        p=draw(st.sampled_from([1.0, 2.0, np.inf])),
        frames=draw(st.none() | st.lists(st.integers(0, T - 1), min_size=1, max_size=T, unique=True)),
        targeted=draw(st.booleans()),
        eps_probe=draw(st.sampled_from([0.01, 0.3, 2.0])),
        planes=draw(st.sampled_from(["exact", "optimized", "1d", "constant"])),
    )


def _run_case(api, tally, c, n_samples):
    rng = np.random.default_rng(c["seed"])
    w = random_weights(rng, c["kind"], c["n"], c["s"], c["C"], c["scale"], c["bias_scale"],
                       c["random_state"])
    x = rng.normal(size=(c["T"], c["n"])) * c["x_scale"]
    label = int(np.argmax(w.logits(x)))
    target = None
    if c["targeted"]:
        target = int(rng.choice([j for j in range(c["C"]) if j != label]))
    return tally.run(arch_of(w), check_point, api, w, x, c["p"], c["frames"], target, rng,
                     n_samples=n_samples, eps_probe=c["eps_probe"], pgd_steps=30, pgd_restarts=4,
                     planes=c["planes"])


@pytest.mark.parametrize("kind", KINDS)
def test_random_networks(api, tally, kind):
    reports = []

    @settings(max_examples=50, **_SETTINGS)
    @given(c=cases(kind))
    def run(c):
        reports.append(_run_case(api, tally, c, n_samples=10_000))

    run()
    assert len(reports) >= 50
    # the battery really exercised certified balls, not only eps* = 0
    certified = [r for r in reports if r.eps_cert > 0]
    assert len(certified) >= 10, [r.eps_cert for r in reports]
    assert sum(r.samples for r in reports) >= 50 * 10_000 // 2


@pytest.mark.slow
@pytest.mark.parametrize("kind", KINDS)
def test_random_networks_large(api, tally, kind):
    @settings(max_examples=400, **_SETTINGS)
    @given(c=cases(kind))
    def run(c):
        _run_case(api, tally, c, n_samples=30_000)

    run()
