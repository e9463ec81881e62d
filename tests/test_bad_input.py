"""Bad input gets a ValueError (or TypeError) naming the argument; odd-but-valid arrays work.

One test per case (shared/docs/API.md, issue "Never wrong, never crash").
"""
from __future__ import annotations

import numpy as np
import pytest

import popqorn_fast as pf
from conftest import random_weights


@pytest.fixture(scope="module")
def w():
    return random_weights("lstm", np.random.default_rng(11), s=3, n=2, C=4)


@pytest.fixture(scope="module")
def x():
    return np.random.default_rng(12).normal(size=(4, 2))


def _label(w, x):
    return int(np.argmax(w.logits(x)))


def test_nan_in_x(w, x):
    bad = x.copy(); bad[1, 0] = np.nan
    with pytest.raises(ValueError, match="x contains 1 NaN"):
        pf.certify(w, bad)


def test_inf_in_x(w, x):
    bad = x.copy(); bad[0, 1] = np.inf
    with pytest.raises(ValueError, match="x contains 1 NaN or infinite"):
        pf.bound_margins(w, bad, 0.1)


def test_x_wrong_ndim(w, x):
    with pytest.raises(ValueError, match=r"x must have shape \(T, 2\)"):
        pf.certify(w, x[None])


def test_x_wrong_frame_size(w):
    with pytest.raises(ValueError, match="x has 3 values per frame but the model's input size is 2"):
        pf.certify(w, np.zeros((4, 3)))


def test_empty_sequence(w):
    with pytest.raises(ValueError, match="empty sequence"):
        pf.certify(w, np.zeros((0, 2)))


def test_eps_zero(w, x):
    with pytest.raises(ValueError, match="eps must be finite and > 0"):
        pf.bound_margins(w, x, 0.0)


def test_eps_negative(w, x):
    with pytest.raises(ValueError, match="eps must be finite and > 0"):
        pf.bound_states(w, x, -1e-3)


def test_eps_nan(w, x):
    with pytest.raises(ValueError, match="eps must be finite"):
        pf.bound_margins(w, x, float("nan"))


def test_eps_max_nonpositive(w, x):
    with pytest.raises(ValueError, match="eps_max must be finite and > 0"):
        pf.certify(w, x, eps_max=0)


def test_unknown_p(w, x):
    with pytest.raises(ValueError, match="p must be 1, 2 or inf, got 3"):
        pf.certify(w, x, p=3)


def test_unknown_p_string(w, x):
    with pytest.raises(ValueError, match="p must be 1, 2 or inf"):
        pf.bound_margins(w, x, 0.1, p="two")


def test_frames_out_of_range(w, x):
    with pytest.raises(ValueError, match=r"frames \[4\] out of range.*T = 4"):
        pf.certify(w, x, frames=[0, 4])


def test_frames_negative(w, x):
    with pytest.raises(ValueError, match=r"frames \[-1\] out of range"):
        pf.certify(w, x, frames=[-1])


def test_frames_repeated(w, x):
    with pytest.raises(ValueError, match="frames contains repeated"):
        pf.certify(w, x, frames=[1, 1])


def test_frames_not_integers(w, x):
    with pytest.raises(ValueError, match="frames must be a list of integer"):
        pf.certify(w, x, frames=[0.5])


def test_target_equals_label(w, x):
    with pytest.raises(ValueError, match="target = .* equals the label"):
        pf.certify(w, x, target=_label(w, x))


def test_target_out_of_range(w, x):
    with pytest.raises(ValueError, match="target = 4 is out of range for a model with 4 classes"):
        pf.certify(w, x, target=4)


def test_label_out_of_range(w, x):
    with pytest.raises(ValueError, match="label = -1 is out of range"):
        pf.certify(w, x, label=-1)


def test_unknown_planes(w, x):
    with pytest.raises(ValueError, match="planes must be one of"):
        pf.certify(w, x, planes="grid")


def test_optimized_planes_refused_on_cuda(w, x):
    """"optimized" runs on the CPU core only: asking for it on the GPU names the problem
    (before any GPU is looked for, so this holds on machines without one)."""
    X = np.stack([x, x])
    with pytest.raises(ValueError, match="runs on the CPU only"):
        pf.certify_many(w, X, planes="optimized", device="cuda")


def test_rtol_out_of_range(w, x):
    with pytest.raises(ValueError, match="rtol"):
        pf.certify(w, x, rtol=0)


def test_weights_wrong_type(x):
    with pytest.raises(TypeError, match="weights must be"):
        pf.certify({"weight_ih_l0": 1}, x)


def test_typed_entry_point_wrong_kind(w, x):
    with pytest.raises(TypeError, match="certify_gru needs GRUWeights"):
        pf.certify_gru(w, x, 1.0)


def test_certify_many_labels_shape(w, x):
    with pytest.raises(ValueError, match=r"labels must have shape \(2,\)"):
        pf.certify_many(w, np.stack([x, x]), labels=[0, 1, 2])


def test_certify_many_threads(w, x):
    with pytest.raises(ValueError, match="threads must be a positive integer"):
        pf.certify_many(w, np.stack([x, x]), threads=0)


def test_unknown_device(w, x):
    with pytest.raises(ValueError, match="device"):
        pf.certify_many(w, np.stack([x, x]), device="tpu")


# --- odd but valid arrays must work and give the same answer --------------------------------

def _same(w, x, variant):
    a = pf.bound_margins(w, x, 0.05)
    b = pf.bound_margins(w, variant, 0.05)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])


def test_fortran_order_works(w, x):
    _same(w, x, np.asfortranarray(x))


def test_read_only_works(w, x):
    ro = x.copy(); ro.setflags(write=False)
    _same(w, x, ro)


def test_non_contiguous_works(w, x):
    big = np.zeros((4, 4)); big[:, ::2] = x
    _same(w, x, big[:, ::2])


def test_float32_works(w, x):
    x32 = x.astype(np.float32)
    _same(w, x32.astype(np.float64), x32)


def test_integer_array_works(w):
    xi = np.arange(8).reshape(4, 2) % 3
    _same(w, xi.astype(np.float64), xi)


def test_misclassified_label_gives_zero(w, x):
    other = (_label(w, x) + 1) % 4
    c = pf.certify(w, x, label=other)
    assert c.misclassified and c.eps == 0.0 and c.label == other


# --- weights: NaN/inf anywhere, shapes that do not fit ----------------------------------------

def _fields(w, **change):
    f = dict(weight_ih=w.weight_ih, weight_hh=w.weight_hh, bias_ih=w.bias_ih, bias_hh=w.bias_hh,
             out_weight=w.out_weight, out_bias=w.out_bias)
    f.update(change)
    return f


def _poisoned(a, value=np.nan):
    b = np.array(a, dtype=np.float64)
    b.flat[b.size // 2] = value
    return b


@pytest.mark.parametrize("field", ["weight_ih", "weight_hh", "bias_ih", "bias_hh", "out_weight", "out_bias"])
@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_nonfinite_weight(w, field, value):
    with pytest.raises(ValueError, match=f"{field} contains 1 NaN or infinite"):
        pf.LSTMWeights(**_fields(w, **{field: _poisoned(getattr(w, field), value)}))


@pytest.mark.parametrize("field", ["h0", "c0"])
def test_nonfinite_initial_state(w, field):
    with pytest.raises(ValueError, match=f"{field} contains 1 NaN or infinite"):
        pf.LSTMWeights(**_fields(w), **{field: np.array([0.0, np.nan, 0.0])})


def test_gru_nonfinite_h0():
    g = random_weights("gru", np.random.default_rng(3), s=3, n=2, C=3)
    with pytest.raises(ValueError, match="h0 contains 1 NaN or infinite"):
        pf.GRUWeights(**_fields(g), h0=np.array([0.0, 0.0, np.inf]))


def test_gate_rows_do_not_divide(w):
    with pytest.raises(ValueError, match=r"weight_hh has shape \(11, 3\).*needs \(12, 3\)"):
        pf.LSTMWeights(**_fields(w, weight_hh=np.zeros((11, 3))))


def test_weight_ih_rows_do_not_match(w):
    with pytest.raises(ValueError, match=r"weight_ih has shape \(9, 2\)"):
        pf.LSTMWeights(**_fields(w, weight_ih=np.zeros((9, 2))))


def test_bias_wrong_length(w):
    with pytest.raises(ValueError, match=r"bias_ih has shape \(11,\); expected \(12,\)"):
        pf.LSTMWeights(**_fields(w, bias_ih=np.zeros(11)))


def test_head_hidden_size_mismatch(w):
    with pytest.raises(ValueError, match=r"out_weight has shape \(4, 5\).*hidden size 3"):
        pf.LSTMWeights(**_fields(w, out_weight=np.zeros((4, 5))))


def test_head_bias_mismatch(w):
    with pytest.raises(ValueError, match=r"out_bias has shape \(3,\); expected \(4,\)"):
        pf.LSTMWeights(**_fields(w, out_bias=np.zeros(3)))


def test_head_single_class(w):
    with pytest.raises(ValueError, match="num_classes >= 2"):
        pf.LSTMWeights(**_fields(w, out_weight=np.zeros((1, 3)), out_bias=np.zeros(1)))


def test_initial_state_wrong_size(w):
    with pytest.raises(ValueError, match=r"c0 has shape \(4,\); expected \(3,\)"):
        pf.LSTMWeights(**_fields(w), c0=np.zeros(4))


def test_non_numeric_weights(w):
    with pytest.raises(ValueError, match="weight_ih must be a real numeric array"):
        pf.LSTMWeights(**_fields(w, weight_ih=np.full((12, 2), "a")))


def test_complex_weights(w):
    with pytest.raises(ValueError, match="weight_hh must be real"):
        pf.LSTMWeights(**_fields(w, weight_hh=w.weight_hh + 0j))


def test_odd_weight_arrays_work(w, x):
    """Fortran-ordered, read-only, non-contiguous, float32 and integer weights are accepted."""
    f = _fields(w)
    ro = np.array(f["weight_hh"]); ro.setflags(write=False)
    big = np.zeros((12, 4)); big[:, ::2] = f["weight_ih"]
    w2 = pf.LSTMWeights(**dict(f, weight_ih=big[:, ::2], weight_hh=np.asfortranarray(ro)))
    _same_model(w, w2, x)


def _same_model(w, w2, x):
    a, b = pf.bound_margins(w, x, 0.05), pf.bound_margins(w2, x, 0.05)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])


def test_integer_weights_work(x):
    rng = np.random.default_rng(5)
    f = dict(weight_ih=rng.integers(-2, 3, (12, 2)), weight_hh=rng.integers(-1, 2, (12, 3)),
             bias_ih=rng.integers(-1, 2, 12), bias_hh=np.zeros(12, dtype=np.int64),
             out_weight=rng.integers(-3, 4, (4, 3)), out_bias=np.arange(4))
    w_int = pf.LSTMWeights(**f)
    w_flt = pf.LSTMWeights(**{k: np.asarray(v, dtype=np.float64) for k, v in f.items()})
    assert w_int.weight_ih.dtype == np.float64
    _same_model(w_flt, w_int, x)


# --- arguments of the entry points ------------------------------------------------------------

def test_eps_inf(w, x):
    with pytest.raises(ValueError, match="eps must be finite and > 0, got inf"):
        pf.bound_margins(w, x, np.inf)


def test_eps_not_a_number(w, x):
    with pytest.raises(ValueError, match="eps must be a number"):
        pf.bound_states(w, x, "0.1x")


def test_eps_array(w, x):
    with pytest.raises(ValueError, match="eps must be a number"):
        pf.bound_margins(w, x, np.array([0.1, 0.2]))


def test_eps_max_nan(w, x):
    with pytest.raises(ValueError, match="eps_max must be finite and > 0, got nan"):
        pf.certify(w, x, eps_max=float("nan"))


def test_eps_max_inf(w, x):
    with pytest.raises(ValueError, match="eps_max must be finite and > 0, got inf"):
        pf.certify(w, x, eps_max=np.inf)


def test_sensitivity_eps_max_negative(w, x):
    with pytest.raises(ValueError, match="eps_max must be finite and > 0"):
        pf.sensitivity(w, x, eps_max=-1.0)


@pytest.mark.parametrize("p", [0, -1, 1.5, float("nan"), -np.inf, None, True])
def test_p_invalid_values(w, x, p):
    with pytest.raises(ValueError, match="p must be 1, 2 or inf"):
        pf.bound_margins(w, x, 0.1, p=p)


def test_x_one_dimensional(w, x):
    with pytest.raises(ValueError, match=r"x must have shape \(T, 2\).*got shape \(2,\)"):
        pf.certify(w, x[0])


def test_x_none(w):
    with pytest.raises(ValueError, match="x is None"):
        pf.bound_margins(w, None, 0.1)


def test_x_ragged(w):
    with pytest.raises(ValueError, match="x could not be converted to an array"):
        pf.certify(w, [[1.0, 2.0], [3.0]])


def test_x_strings(w):
    with pytest.raises(ValueError, match="x must be a real numeric array"):
        pf.certify(w, np.array([["a", "b"]]))


def test_nan_in_x_for_bound_states(w, x):
    bad = x.copy(); bad[-1, -1] = -np.inf
    with pytest.raises(ValueError, match="x contains 1 NaN or infinite"):
        pf.bound_states(w, bad, 0.1)


def test_frames_empty(w, x):
    with pytest.raises(ValueError, match="frames is empty"):
        pf.certify(w, x, frames=[])


def test_frames_string(w, x):
    with pytest.raises(ValueError, match="frames must be a list of integer"):
        pf.bound_margins(w, x, 0.1, frames="0")


def test_target_negative(w, x):
    with pytest.raises(ValueError, match="target = -1 is out of range"):
        pf.bound_margins(w, x, 0.1, target=-1)


def test_target_not_integer(w, x):
    with pytest.raises(ValueError, match="target must be an integer class index"):
        pf.certify(w, x, target=1.5)


def test_label_nan(w, x):
    with pytest.raises(ValueError, match="label must be an integer class index"):
        pf.certify(w, x, label=float("nan"))


def test_rtol_not_a_number(w, x):
    with pytest.raises(ValueError, match="rtol must be a number"):
        pf.certify(w, x, rtol="tight")


def test_rtol_nan(w, x):
    with pytest.raises(ValueError, match="rtol must be in"):
        pf.certify(w, x, rtol=float("nan"))


def test_planes_none(w, x):
    with pytest.raises(ValueError, match="planes must be one of"):
        pf.bound_margins(w, x, 0.1, planes=None)


def test_certify_many_empty_sequences(w):
    with pytest.raises(ValueError, match=r"X must have shape \(N, T, 2\) with T >= 1"):
        pf.certify_many(w, np.zeros((2, 0, 2)))


def test_certify_many_single_sequence(w, x):
    with pytest.raises(ValueError, match=r"X must have shape \(N, T, 2\)"):
        pf.certify_many(w, x)


# --- the raw core: bad shapes and values are ValueError naming the argument, never an abort ---

def _core_lstm_args(**change):
    a = dict(weight_ih=np.zeros((12, 2)), weight_hh=np.zeros((12, 3)), bias=np.zeros(12),
             h0=np.zeros(3), c0=np.zeros(3), x=np.zeros((4, 2)), eps=0.1, p=2.0,
             frame_mask=np.ones(4, bool), spec_weight=np.zeros((3, 3)), spec_bias=np.zeros(3))
    a.update(change)
    return a


def test_core_accepts_good_arguments():
    from popqorn_fast import _core
    out = _core.lstm_bounds(**_core_lstm_args())
    assert out["lower"].shape == (3,)


@pytest.mark.parametrize("change, match", [
    (dict(weight_hh=np.zeros((11, 3))), r"weight_hh has shape \(11, 3\)"),
    (dict(weight_hh=np.zeros(12)), r"weight_hh has shape \(12,\)"),
    (dict(weight_hh=np.zeros((12, 3, 1))), r"weight_hh has shape \(12, 3, 1\)"),
    (dict(weight_hh=np.zeros((0, 0))), r"weight_hh has shape \(0, 0\)"),
    (dict(weight_ih=np.zeros((11, 2))), r"weight_ih has shape \(11, 2\)"),
    (dict(bias=np.zeros(11)), r"bias has shape \(11,\)"),
    (dict(h0=np.zeros(2)), r"h0 has shape \(2,\)"),
    (dict(c0=np.zeros((3, 1))), r"c0 has shape \(3, 1\)"),
    (dict(x=np.zeros((4, 3))), r"x has shape \(4, 3\)"),
    (dict(x=np.zeros((0, 2)), frame_mask=np.ones(0, bool)), r"x has shape \(0, 2\)"),
    (dict(x=np.zeros(2)), r"x has shape \(2,\)"),
    (dict(x=np.full((4, 2), np.nan)), "x contains NaN"),
    (dict(weight_hh=np.full((12, 3), np.inf)), "weight_hh contains NaN"),
    (dict(frame_mask=np.ones(3, bool)), r"frame_mask has shape \(3,\)"),
    (dict(frame_mask=np.ones((4, 1), bool)), r"frame_mask has shape \(4, 1\)"),
    (dict(spec_weight=np.zeros((3, 2))), r"spec_weight has shape \(3, 2\)"),
    (dict(spec_weight=np.zeros((0, 3)), spec_bias=np.zeros(0)), r"spec_weight has shape \(0, 3\)"),
    (dict(spec_bias=np.zeros(2)), r"spec_bias has shape \(2,\)"),
    (dict(eps=float("nan")), "eps must be finite"),
    (dict(eps=-1.0), "eps must be finite and >= 0"),
    (dict(p=3.0), "p must be 1.0, 2.0 or inf"),
    (dict(p=float("nan")), "p must be 1.0, 2.0 or inf"),
    (dict(planes="grid"), "planes must be"),
])
def test_core_lstm_bad_argument(change, match):
    from popqorn_fast import _core
    with pytest.raises(ValueError, match=match):
        _core.lstm_bounds(**_core_lstm_args(**change))


@pytest.mark.parametrize("change, match", [
    (dict(weight_hh=np.zeros((3, 4))), r"weight_hh has shape \(3, 4\)"),
    (dict(activation="sigmoid"), "activation must be"),
    (dict(h0=np.zeros(4)), r"h0 has shape \(4,\)"),
])
def test_core_rnn_bad_argument(change, match):
    from popqorn_fast import _core
    a = dict(weight_ih=np.zeros((3, 2)), weight_hh=np.zeros((3, 3)), bias=np.zeros(3), h0=np.zeros(3),
             activation="tanh", x=np.zeros((4, 2)), eps=0.1, p=2.0, frame_mask=np.ones(4, bool),
             spec_weight=np.zeros((1, 3)), spec_bias=np.zeros(1))
    a.update(change)
    with pytest.raises(ValueError, match=match):
        _core.rnn_bounds(**a)


@pytest.mark.parametrize("change, match", [
    (dict(bias_ih=np.zeros(8)), r"bias_ih has shape \(8,\)"),
    (dict(bias_hh=np.zeros((9, 1))), r"bias_hh has shape \(9, 1\)"),
    (dict(weight_hh=np.zeros((8, 3))), r"weight_hh has shape \(8, 3\)"),
])
def test_core_gru_bad_argument(change, match):
    from popqorn_fast import _core
    a = dict(weight_ih=np.zeros((9, 2)), weight_hh=np.zeros((9, 3)), bias_ih=np.zeros(9),
             bias_hh=np.zeros(9), h0=np.zeros(3), x=np.zeros((4, 2)), eps=0.1, p=2.0,
             frame_mask=np.ones(4, bool), spec_weight=np.zeros((1, 3)), spec_bias=np.zeros(1))
    a.update(change)
    with pytest.raises(ValueError, match=match):
        _core.gru_bounds(**a)


def test_core_wrong_argument_type():
    from popqorn_fast import _core
    with pytest.raises(TypeError):
        _core.lstm_bounds(**_core_lstm_args(x="abc"))


def test_core_non_contiguous_and_fortran_arrays_work():
    from popqorn_fast import _core
    rng = np.random.default_rng(9)
    a = _core_lstm_args(weight_ih=rng.normal(size=(12, 2)), weight_hh=rng.normal(size=(12, 3)),
                        x=rng.normal(size=(4, 2)), spec_weight=rng.normal(size=(3, 3)))
    ref = _core.lstm_bounds(**a)
    big = np.zeros((4, 6)); big[:, ::3] = a["x"]
    odd = dict(a, weight_ih=np.asfortranarray(a["weight_ih"]), weight_hh=a["weight_hh"].T.copy().T,
               x=big[:, ::3])
    out = _core.lstm_bounds(**odd)
    np.testing.assert_array_equal(ref["lower"], out["lower"])
    np.testing.assert_array_equal(ref["upper"], out["upper"])


def test_x_whose_forward_pass_overflows():
    """A relu RNN on inputs near DBL_MAX: NaN logits are no prediction to certify."""
    g = random_weights("rnn", np.random.default_rng(13), s=3, n=4, C=3, activation="relu")
    big = np.full((3, 4), 1.5e308) * np.array([1.0, -1.0, 1.0, -1.0])
    with pytest.raises(ValueError, match="x is too large for this model"):
        pf.certify(g, big)
