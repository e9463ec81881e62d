"""Shared fixtures: the trained models in tests/data and small random networks."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from hypothesis import settings

import popqorn_fast as pf

# The README's test command (and CI) draws a fixed set of hypothesis examples, so that a run
# is reproducible; HYPOTHESIS_PROFILE=explore draws new ones on every run (for finding cases).
settings.register_profile("fixed", derandomize=True)
settings.register_profile("explore", derandomize=False)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "fixed"))

DATA = Path(__file__).resolve().parent / "data"
MODEL_FILES = sorted(p.name for p in DATA.glob("*.npz"))


def sig(z: np.ndarray) -> np.ndarray:
    """Sigmoid with small relative error on both tails, subnormal values included (scipy's
    expit returns 0 below z = -709, where the true value is still a positive subnormal)."""
    z = np.asarray(z, dtype=np.float64)
    e = np.exp(-np.abs(z))
    return np.where(z >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def sample_unit_ball(rng: np.random.Generator, N: int, n: int, p: float) -> np.ndarray:
    """N points of the unit lp ball in R^n: half on the surface, half inside, plus vertices."""
    if p == np.inf:
        d = rng.uniform(-1, 1, size=(N, n))
        d[: N // 2] = np.sign(d[: N // 2])  # cube vertices
    elif p == 2.0:
        d = rng.normal(size=(N, n))
        d /= np.linalg.norm(d, axis=1, keepdims=True)
        d[N // 2:] *= rng.uniform(size=(N - N // 2, 1)) ** (1.0 / n)
    else:
        e = rng.exponential(size=(N, n)) * rng.choice([-1.0, 1.0], size=(N, n))
        d = e / np.sum(np.abs(e), axis=1, keepdims=True)
        d[N // 2:] *= rng.uniform(size=(N - N // 2, 1)) ** (1.0 / n)
        k = min(N // 4, 2 * n)  # the vertices +-e_i, where l1 extremes sit
        d[:k] = 0.0
        d[np.arange(k), np.arange(k) % n] = np.where(np.arange(k) < n, 1.0, -1.0)
    return d


def random_weights(kind: str, rng: np.random.Generator, s: int = 4, n: int = 3, C: int = 4,
                   scale: float = 1.0, activation: str = "tanh", states: bool = False):
    """A random network of the given kind (PyTorch layout)."""
    G = {"rnn": 1, "lstm": 4, "gru": 3}[kind]
    args = [rng.normal(scale=scale, size=(G * s, n)), rng.normal(scale=scale, size=(G * s, s)),
            rng.normal(scale=scale, size=G * s), rng.normal(scale=scale, size=G * s),
            rng.normal(size=(C, s)), rng.normal(size=C)]
    kw = {}
    if states:
        kw["h0"] = rng.uniform(-1, 1, size=s)
        if kind == "lstm":
            kw["c0"] = rng.normal(size=s)
    if kind == "rnn":
        return pf.RNNWeights(*args, activation=activation, **kw)
    return (pf.LSTMWeights if kind == "lstm" else pf.GRUWeights)(*args, **kw)


@pytest.fixture(params=MODEL_FILES)
def trained(request):
    """(weights, X, y) of each trained model in tests/data."""
    path = DATA / request.param
    with np.load(path) as d:
        X, y = np.array(d["X"], dtype=np.float64), np.array(d["y"])
    return pf.load_model(path), X, y
