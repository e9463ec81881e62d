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


def test_the_response_and_sweep_kernels_give_the_same_pass_in_the_baseline_build(tmp_path):
    """The block's best responses and sweep run four neurons at a time through selects
    (cpp/envelope_kernels.hpp envelope_cells / envelope_take / line_take, cpp/sweep_kernels.hpp),
    built for AVX2 (this process, where the CPU has it) and the baseline ISA (POPQORN_NO_AVX2,
    a fresh process): every bound of an optimised pass agrees in both, on tangent planes
    (LSTM), McCormick's planes and lines (GRU) and lines alone (RNN), with a scalar tail
    (h = 12, 16, 24) and some frames fixed."""
    import os
    import subprocess
    import sys

    names = ["lstm_T8_h16", "gru_T4_h24", "rnn_tanh_T16_h16", "general/lstm_bi2_T8_h12"]
    code = f"""
import math, sys
import numpy as np
sys.path.insert(0, {str(Path(__file__).resolve().parent)!r})
from test_block_sweep import DATA, core_pass
import popqorn_fast as pf
out = []
for name in {names!r}:
    m = pf.load_model(DATA / f"{{name}}.npz")
    X, _ = pf.load_inputs(DATA / f"{{name}}.npz")
    T = X.shape[1]
    for idx, p, mask in [(0, 2.0, np.ones(T, bool)), (1, math.inf, np.arange(T) % 3 != 1)]:
        eps = pf.certify(m, X[idx], 10.0, p=p).eps * 1.05
        res = core_pass(m, X[idx], eps, p, mask, "optimized")
        out += [np.ravel(res[k]) for k in sorted(res)]
np.save(sys.argv[1], np.concatenate(out))
"""
    here, base = tmp_path / "here.npy", tmp_path / "baseline.npy"
    subprocess.run([sys.executable, "-c", code, str(here)], check=True)
    subprocess.run([sys.executable, "-c", code, str(base)], check=True, env=dict(os.environ, POPQORN_NO_AVX2="1"))
    a, b = np.load(here), np.load(base)
    assert a.size > 1000 and np.all(np.isfinite(a))
    # (other kernels of the pass round differently by ISA, ~1e-9 relative; a plane chosen
    # differently moves a bound by far more)
    np.testing.assert_allclose(a, b, rtol=1e-7, atol=1e-12)


@pytest.mark.parametrize("name", ["lstm_T8_h16", "gru_T4_h24", "rnn_tanh_T16_h16", "general/lstm2_T4_h24"])
def test_the_four_lane_take_chooses_the_planes_of_the_scalar_take(name):
    """Without gradients a row's best responses take their winners four neurons at a time
    (envelope_kernels.hpp envelope_take / line_take, every row of the default pass); with
    gradients (opt_iters > opt_br: the margins end with an Adam step, which needs the points
    of contact) every row takes them one at a time (OptPlaneSet::take_if_tighter, OptLineSet's
    improve) and sweeps itself. The intermediate bounds, refined with one best response
    either way, are the same; the margins differ by the Adam step only."""
    m = pf.load_model(DATA / f"{name}.npz")
    X, _ = pf.load_inputs(DATA / f"{name}.npz")
    T = X.shape[1]
    for idx, p in [(0, 2.0), (1, math.inf)]:
        x = X[idx]
        eps = pf.certify(m, x, 10.0, p=p).eps * 1.05

        def run(**kw):
            opts = _core.PassOptions(planes="optimized", want_states=True, **kw)
            return _core.general_bounds(*general_arguments(as_general(m)), x, eps, p, np.ones(T, bool),
                                        *margin_spec(m, x), opts)

        lanes, scalar, exact = run(), run(opt_iters=7), core_pass(m, x, eps, p, np.ones(T, bool), "exact")
        states = [k for k in lanes if k not in ("lower", "upper", "slope")]
        assert states
        for key in states:
            np.testing.assert_allclose(lanes[key], scalar[key], rtol=1e-9, atol=1e-12, err_msg=f"{name}/{idx} {key}")
        # (the refinement moved the intermediate bounds: the takes chose planes)
        assert any(np.max(np.abs(lanes[k] - exact[k])) > 1e-6 for k in states), (name, idx)
