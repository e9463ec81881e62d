"""The radius search: returns a probed, certified ε, reaches rtol, and always stops."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from popqorn_fast.bisection import EPS_FLOOR, MAX_PASSES, search_radius


@settings(max_examples=200, deadline=None)
@given(true_eps=st.floats(1e-6, 50.0), eps_max=st.floats(1e-3, 100.0), rtol=st.sampled_from([1e-1, 1e-3, 1e-6]))
def test_threshold_predicate(true_eps, eps_max, rtol):
    probes = []

    def certified(e):
        probes.append(e)
        return e <= true_eps

    r = search_radius(certified, eps_max, rtol)
    assert r.passes == len(probes) <= MAX_PASSES
    assert r.eps == 0.0 or (r.eps in probes and r.eps <= true_eps and r.eps <= eps_max)
    if true_eps >= eps_max:
        assert r.eps == eps_max and r.eps_upper is None
    elif true_eps >= EPS_FLOOR * 2:
        assert r.eps_upper is not None and r.eps_upper > true_eps
        assert r.eps_upper - r.eps <= rtol * r.eps
        assert r.eps_upper in probes


def test_non_monotone_predicate_never_returns_a_failed_probe():
    rng = np.random.default_rng(0)
    for _ in range(200):
        cuts = np.sort(rng.uniform(0, 1, size=6))
        ok = lambda e: bool(np.searchsorted(cuts, e) % 2 == 0)  # alternating certified/failed bands
        results = {}

        def certified(e):
            results[e] = ok(e)
            return results[e]

        r = search_radius(certified, 1.0, 1e-3)
        assert r.eps == 0.0 or results[r.eps]


def test_never_certified_stops_at_floor_and_pass_cap():
    r = search_radius(lambda e: False, 1.0)
    assert r.eps == 0.0 and r.passes < 40
    r = search_radius(lambda e: True, 1e300, max_passes=25)
    assert r.passes == 25 and r.eps > 0
