"""rounding="sound32" (docs/ROUNDING.md §7: the recurrent steps' products in float32, their
error charged) through the soundness battery: the random general models of
test_general_networks (every kind, layout, readout, head, plane method "optimized" included), and
layers wide enough that every product runs as several float32 blocks (K > 64), two layers
deep so that a layer's input coefficients go through float32 too. Sampling inside the balls
at every state, the margins, and PGD at eps*."""
from __future__ import annotations

import functools
import types

import numpy as np
import pytest
from hypothesis import given, settings

import popqorn_fast as pf

from .checks import check_point
from .conftest import arch_of
from .models import random_general
from .test_general_networks import _SETTINGS, _run_case, general_cases_every_plane


@pytest.fixture(scope="module")
def api32() -> types.SimpleNamespace:
    """The public API with rounding="sound32" in every call the battery makes."""
    return types.SimpleNamespace(**{f: functools.partial(getattr(pf, f), rounding="sound32")
                                    for f in ("certify", "bound_states", "bound_margins")})


def test_random_general_networks_sound32(api32, tally):
    reports = []

    @settings(max_examples=60, **_SETTINGS)
    @given(c=general_cases_every_plane())
    def run(c):
        reports.append(_run_case(api32, tally, c, n_samples=2_000))

    run()
    assert len(reports) >= 60
    assert sum(r.eps_cert > 0 for r in reports) >= 15


@pytest.mark.parametrize("kinds,widths", [(["rnn_tanh"], [70]), (["lstm"], [20]), (["gru"], [24]),
                                          (["lstm", "gru"], [18, 24]), (["rnn_relu", "lstm"], [70, 17])])
@pytest.mark.parametrize("p", [2.0, np.inf])
def test_wide_layers_sound32(api32, tally, kinds, widths, p):
    rng = np.random.default_rng(sum(widths) + int(p == 2.0))
    for _ in range(2):
        w = random_general(rng, kinds, [False] * len(kinds), 3, widths, 3, "last", [], [])
        x = rng.normal(size=(3, 3))
        rep = tally.run(arch_of(w), check_point, api32, w, x, p, None, None, rng, n_samples=2_000,
                        eps_probe=0.3, pgd_steps=30, pgd_restarts=4)
        assert rep.eps_cert > 0, "nothing certified: the check would not have run at eps*"
