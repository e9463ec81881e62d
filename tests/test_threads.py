"""Thread safety: threads certifying different inputs with one weights object (the core
releases the GIL) give exactly the certificates and bounds of a serial run."""
from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

import popqorn_fast as pf
from soundness.models import load_trained, random_weights

THREADS = 4


def _key(c):
    return (c.eps, c.eps_upper, c.label, c.bound_passes, tuple(np.asarray(c.margin_lower).tolist()))


@pytest.mark.parametrize("kind, planes", [("rnn_tanh", "exact"), ("lstm", "exact"), ("gru", "1d"),
                                          ("lstm", "constant")])
def test_four_threads_match_serial(kind, planes):
    rng = np.random.default_rng(21)
    w = random_weights(rng, kind, 4, 8, 5, scale=1.5, random_state=True)
    X = rng.normal(size=(12, 6, 4))
    args = [(X[i], [1.0, 2.0, np.inf][i % 3], None if i % 2 else [i % 6]) for i in range(len(X))]

    def one(a):
        return pf.certify(w, a[0], eps_max=2.0, p=a[1], frames=a[2], planes=planes)

    serial = [_key(one(a)) for a in args]
    barrier = threading.Barrier(THREADS)

    def start_together(i):
        if i < THREADS:
            barrier.wait(timeout=30)   # the first four start at once: real overlap
        return one(args[i])

    with ThreadPoolExecutor(THREADS) as ex:
        threaded = [_key(c) for c in ex.map(start_together, range(len(args)))]
    assert threaded == serial


def test_threads_bound_states_match_serial():
    """Per-step state bounds (the biggest outputs of the core) are bitwise equal under threads."""
    w, X, _ = load_trained("lstm_T8_h16.npz")
    X = X[:8]
    serial = [pf.bound_states(w, x, 0.05, p="inf") for x in X]
    for _ in range(2):
        with ThreadPoolExecutor(THREADS) as ex:
            threaded = list(ex.map(lambda x: pf.bound_states(w, x, 0.05, p="inf"), X))
        for a, b in zip(serial, threaded):
            assert a.keys() == b.keys()
            for k in a:
                np.testing.assert_array_equal(a[k][0], b[k][0])
                np.testing.assert_array_equal(a[k][1], b[k][1])


def test_certify_many_threads_match_serial():
    w, X, y = load_trained("gru_T4_h24.npz")
    X, y = X[:8], y[:8]
    serial = pf.certify_many(w, X, labels=y, eps_max=1.0, p=2)
    threaded = pf.certify_many(w, X, labels=y, eps_max=1.0, p=2, threads=THREADS, chunk_size=1)
    assert [_key(c) for c in threaded] == [_key(c) for c in serial]
