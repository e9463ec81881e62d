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


# ---- threads inside one input: certify(..., threads=k) splits each dense product into row
# blocks fixed by its shape (cpp/matmul.hpp, cpp/row_pool.hpp), so the bounds are those
# of one thread, bit for bit.

@pytest.mark.parametrize("kind, planes", [("lstm", "exact"), ("gru", "exact"), ("rnn_tanh", "exact"),
                                          ("lstm", "optimized")])
def test_threads_inside_one_input_match_one_thread(kind, planes):
    rng = np.random.default_rng(5)
    # h = 48: the gate products (384 x 192 x 48 for the LSTM) have several row blocks and
    # enough flops for the pool to take them
    w = random_weights(rng, kind, 6, 48, 5, scale=1.0, random_state=True)
    x = rng.normal(size=(3, 6))
    one = pf.certify(w, x, eps_max=2.0, p=2, planes=planes)
    for k in (2, 3):
        got = pf.certify(w, x, eps_max=2.0, p=2, planes=planes, threads=k)
        assert _key(got) == _key(one)


@pytest.mark.parametrize("rounding", ["sound", "sound32"])
@pytest.mark.parametrize("kind", ["lstm", "gru", "rnn_tanh"])
@pytest.mark.parametrize("hidden", [96, 160])
def test_threads_inside_one_input_row_blocks_match_one_thread(kind, rounding, hidden):
    """At h = 96 the passes that are not products also run in blocks on the pass's threads
    (row_pool.hpp for_blocks: the sign-rule passes over 768 rows, the charges and row dots,
    the planes of 96 boxes): the same bounds, bit for bit, with the rows and boxes split
    between 2 and 3 threads; with the products in float32 (rounding="sound32") too. The
    products' row blocks grow with their width (matmul.hpp block_rows: 128 rows at h = 96,
    256 at h = 160, 64 for the products with W_ih and the head): the same bits."""
    rng = np.random.default_rng(7)
    w = random_weights(rng, kind, 6, hidden, 5, scale=1.0, random_state=True)
    x = rng.normal(size=(3, 6))
    one = pf.certify(w, x, eps_max=2.0, p=2, rounding=rounding)
    for k in (2, 3):
        assert _key(pf.certify(w, x, eps_max=2.0, p=2, threads=k, rounding=rounding)) == _key(one)


@pytest.mark.parametrize("kind", ["lstm", "gru", "rnn_tanh"])
def test_more_threads_than_row_blocks_match_one_thread(kind):
    """At h = 16 an objective chunk has 32-128 rows, fewer 64-row blocks than threads: each
    thread's share of a sign-rule pass starts at a multiple of 64 rows (matmul.hpp
    for_row_blocks), so some threads get no rows there, while the boxes of the relaxations
    (and the products of more than one block: LSTM, GRU) are still split; the same bounds,
    bit for bit, with 2, 3 and 4 threads."""
    rng = np.random.default_rng(11)
    w = random_weights(rng, kind, 4, 16, 5, scale=1.0, random_state=True)
    x = rng.normal(size=(5, 4))
    one = pf.certify(w, x, eps_max=2.0, p=2)
    for k in (2, 3, 4):
        assert _key(pf.certify(w, x, eps_max=2.0, p=2, threads=k)) == _key(one)


def test_product_threads_are_per_calling_thread_and_restored():
    from popqorn_fast import _core
    from popqorn_fast.backend import product_threads

    assert _core._product_threads(1) == 1
    with product_threads(3):
        assert _core._product_threads(3) == 3
        seen = []
        t = threading.Thread(target=lambda: seen.append(_core._product_threads(1)))
        t.start()
        t.join()
        assert seen == [1]  # another thread: its own count
    assert _core._product_threads(1) == 1


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, "2"])
def test_certify_threads_validated(bad):
    rng = np.random.default_rng(0)
    w = random_weights(rng, "lstm", 3, 4, 3)
    with pytest.raises(ValueError, match="threads"):
        pf.certify(w, rng.normal(size=(2, 3)), threads=bad)
