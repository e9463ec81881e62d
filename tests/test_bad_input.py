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
