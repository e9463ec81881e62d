"""Weight containers: validation errors, loaders, and the Keras converters."""
from __future__ import annotations

import numpy as np
import pytest

import popqorn_fast as pf
from conftest import DATA, random_weights


def _sig(z):
    return 1.0 / (1.0 + np.exp(-z))


@pytest.mark.parametrize("kind", ["rnn", "lstm", "gru"])
def test_fields_are_float64_read_only_copies(kind):
    w = random_weights(kind, np.random.default_rng(0))
    for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh", "out_weight", "out_bias", "h0"):
        arr = getattr(w, name)
        assert arr.dtype == np.float64 and not arr.flags.writeable
    with pytest.raises(Exception):
        w.weight_ih = np.zeros(1)  # frozen dataclass


@pytest.mark.parametrize("field,shape,msg", [
    ("weight_hh", (8, 3), "weight_hh"),       # 8 rows is not 4 * 3
    ("weight_ih", (12, 0), "weight_ih"),
    ("bias_ih", (11,), "bias_ih"),
    ("bias_hh", (12, 1), "bias_hh"),
    ("out_weight", (10, 4), "out_weight"),    # head size does not match hidden size 3
    ("out_bias", (9,), "out_bias"),
])
def test_shape_errors_name_the_field(field, shape, msg):
    rng = np.random.default_rng(1)
    args = dict(weight_ih=rng.normal(size=(12, 5)), weight_hh=rng.normal(size=(12, 3)),
                bias_ih=np.zeros(12), bias_hh=np.zeros(12), out_weight=rng.normal(size=(10, 3)),
                out_bias=np.zeros(10))
    args[field] = np.zeros(shape)
    with pytest.raises(ValueError, match=msg):
        pf.LSTMWeights(**args)


def test_nan_and_gate_mismatch_and_activation():
    rng = np.random.default_rng(2)
    good = [rng.normal(size=(9, 2)), rng.normal(size=(9, 3)), np.zeros(9), np.zeros(9),
            rng.normal(size=(4, 3)), np.zeros(4)]
    pf.GRUWeights(*good)
    bad = list(good)
    bad[1] = bad[1].copy()
    bad[1][0, 0] = np.nan
    with pytest.raises(ValueError, match="weight_hh contains 1 NaN"):
        pf.GRUWeights(*bad)
    with pytest.raises(ValueError, match="needs \\(12, 3\\)"):
        pf.LSTMWeights(*good)  # 9 rows cannot be an LSTM with s = 3
    with pytest.raises(ValueError, match="activation"):
        pf.RNNWeights(rng.normal(size=(3, 2)), rng.normal(size=(3, 3)), np.zeros(3), np.zeros(3),
                      rng.normal(size=(4, 3)), np.zeros(4), activation="sigmoid")
    with pytest.raises(ValueError, match="h0 has shape"):
        pf.GRUWeights(*good, h0=np.zeros(4))
    with pytest.raises(ValueError, match="must be a real numeric array"):
        pf.GRUWeights(good[0].astype(str), *good[1:])


def test_from_pytorch_missing_keys_lists_found_and_expected():
    with pytest.raises(ValueError, match="missing keys.*found.*expected"):
        pf.LSTMWeights.from_pytorch({"weight_ih_l0": np.zeros((4, 1))})


@pytest.mark.parametrize("name", ["lstm_T8_h16.npz", "gru_T4_h24.npz", "rnn_relu_T4_h16.npz"])
def test_load_model_infers_kind_and_reproduces_accuracy(name, tmp_path):
    w = pf.load_model(DATA / name)
    with np.load(DATA / name) as d:
        X, y = d["X"], d["y"]
        stripped = {k: d[k] for k in d.files if k not in ("kind",)}
    acc = float(np.mean(np.argmax(w.logits(X), axis=1) == y))
    assert acc > 0.9
    # without the 'kind' key the kind is inferred from the shapes (RNN activation kept)
    np.savez(tmp_path / "m.npz", **stripped)
    w2 = pf.load_model(tmp_path / "m.npz")
    assert type(w2) is type(w)
    np.testing.assert_array_equal(w2.logits(X[:5]), w.logits(X[:5]))


def test_load_model_errors(tmp_path):
    with pytest.raises(FileNotFoundError):
        pf.load_model(tmp_path / "nope.npz")
    np.savez(tmp_path / "bad.npz", weight_ih_l0=np.zeros((4, 2)), X=np.zeros(3))
    with pytest.raises(ValueError, match=r"missing keys.*found \['X', 'weight_ih_l0'\]"):
        pf.load_model(tmp_path / "bad.npz")


def test_logits_batch_matches_single():
    w = random_weights("lstm", np.random.default_rng(3))
    X = np.random.default_rng(4).normal(size=(6, 5, 3))
    batch = w.logits(X)
    assert batch.shape == (6, 4)
    for i in range(6):
        np.testing.assert_allclose(w.logits(X[i]), batch[i], rtol=0, atol=1e-14)


# --- Keras layouts: an independent Keras-semantics forward in NumPy -----------------------------

def _keras_lstm(kernel, rk, bias, dense_k, dense_b, x):
    s = rk.shape[0]
    h, c = np.zeros(s), np.zeros(s)
    for xt in x:
        z = xt @ kernel + h @ rk + bias
        i, f, cc, o = z[:s], z[s:2 * s], z[2 * s:3 * s], z[3 * s:]
        c = _sig(f) * c + _sig(i) * np.tanh(cc)
        h = _sig(o) * np.tanh(c)
    return h @ dense_k + dense_b


def _keras_gru(kernel, rk, bias, dense_k, dense_b, x):
    s = rk.shape[0]
    h = np.zeros(s)
    for xt in x:
        mx = xt @ kernel + bias[0]
        mh = h @ rk + bias[1]
        z = _sig(mx[:s] + mh[:s])
        r = _sig(mx[s:2 * s] + mh[s:2 * s])
        hh = np.tanh(mx[2 * s:] + r * mh[2 * s:])
        h = z * h + (1 - z) * hh
    return h @ dense_k + dense_b


def _keras_rnn(kernel, rk, bias, dense_k, dense_b, x):
    h = np.zeros(rk.shape[0])
    for xt in x:
        h = np.tanh(xt @ kernel + h @ rk + bias)
    return h @ dense_k + dense_b


@pytest.mark.parametrize("kind", ["rnn", "lstm", "gru"])
def test_from_keras_gives_the_keras_logits(kind):
    rng = np.random.default_rng(5)
    n, s, C = 3, 4, 5
    G = {"rnn": 1, "lstm": 4, "gru": 3}[kind]
    kernel, rk = rng.normal(size=(n, G * s)), rng.normal(size=(s, G * s))
    bias = rng.normal(size=(2, G * s)) if kind == "gru" else rng.normal(size=G * s)
    dk, db = rng.normal(size=(s, C)), rng.normal(size=C)
    cls = {"rnn": pf.RNNWeights, "lstm": pf.LSTMWeights, "gru": pf.GRUWeights}[kind]
    w = cls.from_keras(kernel, rk, bias, dk, db)
    ref = {"rnn": _keras_rnn, "lstm": _keras_lstm, "gru": _keras_gru}[kind]
    for _ in range(3):
        x = rng.normal(size=(6, n))
        np.testing.assert_allclose(w.logits(x), ref(kernel, rk, bias, dk, db, x), rtol=1e-12, atol=1e-12)
