"""The core's concretisation over each threat model (cpp/threat_model.hpp) against the plain-NumPy
oracle (reference/concretize.py: its own algorithms, a bisection on the water level for a box
under an l2 ball, enumeration for substitutions): every bound and state agrees to 1e-9 on random
general models (frame layers, stacked, bidirectional), for the joint ball, frame weights, box
domains (alone and under the joint ball) and word substitutions."""
from __future__ import annotations

import math

import numpy as np
import pytest

pytest.importorskip("popqorn_fast._core")

from popqorn_fast import _core, reference  # noqa: E402
from popqorn_fast.backend import general_arguments  # noqa: E402
from popqorn_fast.reference.concretize import _gain  # noqa: E402
from popqorn_fast.threat import check_threat  # noqa: E402

from soundness.models import random_general  # noqa: E402

P_VALUES = (1.0, 2.0, math.inf)


def _threats(rng: np.random.Generator, x: np.ndarray) -> list[dict]:
    T = x.shape[0]
    box = (x - rng.uniform(0, 0.3, x.shape), x + rng.uniform(0, 0.3, x.shape))
    return [dict(ball="joint"), dict(frame_weights=rng.uniform(0, 2, T)), dict(domain=box),
            dict(ball="joint", domain=box, frame_weights=rng.uniform(0.5, 2, T)),
            dict(substitutions=[rng.normal(size=(int(rng.integers(0, 3)), x.shape[1])) for _ in range(T)],
                 budget=int(rng.integers(0, T + 1)))]


@pytest.mark.parametrize("p", P_VALUES)
@pytest.mark.parametrize("seed", range(4))
def test_core_agrees_with_oracle(seed, p):
    rng = np.random.default_rng(seed)
    kinds = [["lstm"], ["gru", "rnn_tanh"], ["rnn_relu", "lstm"], ["gru"]][seed]
    w = random_general(rng, kinds, [seed % 2 == 0] * len(kinds), 3, [3] * len(kinds), 3, "mean",
                       [(3, "relu")], [(3, "tanh")] if seed % 2 else [], scale=1.0)
    x = rng.normal(size=(3, 3))
    mask = np.array([True, seed != 1, True])
    sw, sb = rng.normal(size=(2, 3)), rng.normal(size=2)
    for kw in _threats(rng, x):
        tm = check_threat(x, mask, **kw)
        eps = 0.0 if tm.substitutions is not None else 0.5
        opts = _core.PassOptions(planes="1d", want_states=True)
        core = _core.general_bounds(*general_arguments(w), x, eps, p, mask, sw, sb, opts, tm.core())
        ref = reference.general_bounds(w, x, eps, p, mask, sw, sb, planes="1d", want_states=True, threat=tm)
        assert set(core) == set(ref)
        for k in core:
            np.testing.assert_allclose(core[k], ref[k], rtol=1e-9, atol=1e-9, err_msg=f"{k} {sorted(kw)}")


@pytest.mark.parametrize("p", P_VALUES)
def test_oracle_box_gain_is_the_lp_optimum(p):
    """The oracle's box-under-ball gain against a brute-force grid in 2-D."""
    rng = np.random.default_rng(0)
    for _ in range(20):
        a, room, r = rng.normal(size=2), rng.uniform(0, 1, 2), rng.uniform(0.1, 1.5)
        g = np.linspace(0, 1, 401)
        V = np.stack(np.meshgrid(g * room[0], g * room[1]), -1).reshape(-1, 2)
        ok = np.linalg.norm(V, ord=p, axis=1) <= r
        best = np.max(V[ok] @ np.abs(a))
        got = _gain(a, room, r, p)
        assert best - 1e-12 <= got <= best + 0.01 * (1 + best)
