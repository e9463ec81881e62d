"""planes="optimized": the intermediate rows of a block start from one forward sweep of the
whole block (cpp/general_optimize.hpp ``sweep_block``, the cells' ``sweep_block`` /
``take_sweep``; docs/RECURRENCES.md §3b) instead of each row sweeping itself. The block's
sweep computes every row's values with the shared relaxations in block products, so the rows
see the same sweep values up to the order of the products' sums, choose the same planes and
end with the same bounds: every intermediate interval and margin of the pass with and without
it, on one-layer, stacked, bidirectional, frame-layer, mean-readout and MLP-head models.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

import popqorn_fast as pf
from popqorn_fast import _core
from popqorn_fast.backend import general_arguments
from popqorn_fast.general import as_general

DATA = Path(__file__).resolve().parent / "data"
MODELS = ["lstm_T8_h16", "gru_T4_h24", "rnn_tanh_T16_h16", "general/lstm_bi2_T8_h12", "general/front_gru_T4_h24",
          "general/gru2_mean_T4_h24", "general/lstm_mean_mlp_T4_h24", "general/lstm2_T4_h24"]


def margin_spec(m, x) -> tuple[np.ndarray, np.ndarray]:
    """The margins of the predicted class over every other class."""
    C = as_general(m).num_classes
    label = int(np.argmax(m.logits(x)))
    S = np.zeros((C - 1, C))
    S[:, label] = 1.0
    S[np.arange(C - 1), [j for j in range(C) if j != label]] = -1.0
    return S, np.zeros(C - 1)


def core_pass(m, x, eps, p, mask, planes: str, blocks: bool = True) -> dict:
    opts = _core.PassOptions(planes=planes, want_states=True, opt_blocks=blocks)
    return _core.general_bounds(*general_arguments(as_general(m)), x, eps, p, mask, *margin_spec(m, x), opts)


@pytest.mark.parametrize("name", MODELS)
def test_a_block_sweep_gives_every_row_its_own_sweep(name):
    m = pf.load_model(DATA / f"{name}.npz")
    X, _ = pf.load_inputs(DATA / f"{name}.npz")
    T = X.shape[1]
    some = np.arange(T) % 3 != 1  # some frames fixed: rows with no coefficients there
    for idx, p, mask in [(0, 2.0, np.ones(T, bool)), (1, math.inf, np.ones(T, bool)), (2, 1.0, some)]:
        x = X[idx]
        eps = pf.certify(m, x, 10.0, p=p).eps * 1.05
        own = core_pass(m, x, eps, p, mask, "optimized", blocks=False)
        block = core_pass(m, x, eps, p, mask, "optimized")
        assert set(own) == set(block)
        for key in own:
            np.testing.assert_allclose(block[key], own[key], rtol=1e-9, atol=1e-12, err_msg=f"{name}/{idx} {key}")
        # the refinement does tighten here (the comparison is not between two untouched passes)
        exact = core_pass(m, x, eps, p, mask, "exact")
        assert np.min(block["lower"]) > np.min(exact["lower"]), (name, idx)


@pytest.mark.parametrize("name", ["lstm_T8_h16", "gru_T4_h24", "rnn_tanh_T16_h16", "general/lstm_bi2_T8_h12"])
def test_rows_with_more_iterations_start_from_the_block_sweep(name):
    """With two iterations per intermediate row the rows are optimised one at a time again,
    each starting from its values in the block's sweep (take_sweep): the same bounds as each
    row sweeping itself."""
    m = pf.load_model(DATA / f"{name}.npz")
    X, _ = pf.load_inputs(DATA / f"{name}.npz")
    T = X.shape[1]
    x = X[1]
    eps = pf.certify(m, x, 10.0).eps * 1.05
    out = []
    for blocks in (True, False):
        opts = _core.PassOptions(planes="optimized", want_states=True, opt_blocks=blocks, opt_inter_iters=2)
        out.append(_core.general_bounds(*general_arguments(as_general(m)), x, eps, 2.0, np.ones(T, bool),
                                        *margin_spec(m, x), opts))
    for key in out[0]:
        np.testing.assert_allclose(out[0][key], out[1][key], rtol=1e-9, atol=1e-12, err_msg=f"{name} {key}")
    # the second iteration runs (not the blocked path of one iteration): other bounds
    one = core_pass(m, x, eps, 2.0, np.ones(T, bool), "optimized")
    assert not np.array_equal(out[0]["lower"], one["lower"])
