"""Soundness battery on random general models (hypothesis): 1-3 recurrent layers of mixed
kinds, bidirectional or not, every readout, 0-2 hidden head layers with each activation,
frame layers, p = 1, 2, inf, frame subsets, targeted and untargeted, every plane method
the general pass takes. Sampling inside the balls at every intermediate node (frame and
head pre-activations, every state of every layer and direction) and PGD at eps*."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from .checks import check_point
from .conftest import arch_of
from .models import KINDS, random_general

_SETTINGS = dict(deadline=None, derandomize=True, database=None,
                 suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
_ACTS = st.sampled_from([None, "relu", "tanh", "sigmoid"])


@st.composite
def general_cases(draw):
    L = draw(st.integers(1, 3))
    T = draw(st.integers(1, 4))
    return dict(
        seed=draw(st.integers(0, 2**32 - 1)),
        kinds=draw(st.lists(st.sampled_from(KINDS), min_size=L, max_size=L)),
        bidirectional=draw(st.lists(st.booleans(), min_size=L, max_size=L)),
        widths=draw(st.lists(st.integers(1, 4), min_size=L, max_size=L)),
        T=T, n=draw(st.integers(1, 3)), C=draw(st.integers(2, 4)),
        readout=draw(st.sampled_from(["last", "last_step", "mean"])),
        head=draw(st.lists(st.tuples(st.integers(1, 4), _ACTS), max_size=2)),
        frame=draw(st.lists(st.tuples(st.integers(1, 4), _ACTS), max_size=1)),
        scale=draw(st.sampled_from([0.5, 1.0, 3.0])),
        x_scale=draw(st.sampled_from([0.5, 2.0])),
        p=draw(st.sampled_from([1.0, 2.0, np.inf])),
        frames=draw(st.none() | st.lists(st.integers(0, T - 1), min_size=1, max_size=T, unique=True)),
        targeted=draw(st.booleans()),
        eps_probe=draw(st.sampled_from([0.01, 0.3, 2.0])),
        planes=draw(st.sampled_from(["exact", "1d", "constant"])),
    )


@st.composite
def general_cases_every_plane(draw):
    """general_cases with "optimized" among the plane methods (the per-frame ball's battery;
    the threat-model battery draws general_cases, whose methods every threat model takes)."""
    c = draw(general_cases())
    c["planes"] = draw(st.sampled_from(["exact", "1d", "constant", "optimized"]))
    return c


def _run_case(api, tally, c, n_samples):
    rng = np.random.default_rng(c["seed"])
    w = random_general(rng, c["kinds"], c["bidirectional"], c["n"], c["widths"], c["C"], c["readout"],
                       c["head"], c["frame"], scale=c["scale"])
    x = rng.normal(size=(c["T"], c["n"])) * c["x_scale"]
    label = int(np.argmax(w.logits(x)))
    target = None
    if c["targeted"]:
        target = int(rng.choice([j for j in range(c["C"]) if j != label]))
    return tally.run(arch_of(w), check_point, api, w, x, c["p"], c["frames"], target, rng,
                     n_samples=n_samples, eps_probe=c["eps_probe"], pgd_steps=30, pgd_restarts=4,
                     planes=c["planes"])


def test_random_general_networks(api, tally):
    reports = []

    @settings(max_examples=200, **_SETTINGS)
    @given(c=general_cases_every_plane())
    def run(c):
        reports.append(_run_case(api, tally, c, n_samples=4_000))

    run()
    assert len(reports) >= 200
    certified = [r for r in reports if r.eps_cert > 0]
    assert len(certified) >= 50, [r.eps_cert for r in reports]


@pytest.mark.slow
def test_random_general_networks_large(api, tally):
    @settings(max_examples=400, **_SETTINGS)
    @given(c=general_cases_every_plane())
    def run(c):
        _run_case(api, tally, c, n_samples=20_000)

    run()
