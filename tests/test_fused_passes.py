"""The cells' fused sign-rule passes (cpp/sign_rule.hpp pass_hidden_cell, pass_gru_hidden,
pass_lines_charged: a step's planes or lines and their rounding charges in one read of the
coefficients) give the bounds of the separate passes, bit for bit, and their AVX-512 builds
those of their AVX2 builds: the separate passes (POPQORN_SEPARATE_PASSES) and the AVX2
builds (POPQORN_NO_AVX512), each selected in a fresh process, against this process's."""
from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

from popqorn_fast import bound_margins, bound_states

from soundness.models import random_general, random_weights


def _has_avx512() -> bool:
    try:
        with open("/proc/cpuinfo") as f:
            return "avx512dq" in f.read()
    except OSError:
        return False


def _bounds() -> np.ndarray:
    """Margin and state bounds of RNN, LSTM and GRU models whose widths take every lane path
    of the row functions (four lanes and the scalar tail: s = 3, 8, 13, 37; tanh and ReLU RNNs), in every rounding
    mode and plane method that runs the fused passes or the separate ones, with h0 / c0, and
    of general models (stacked, bidirectional, mean readout, an MLP head)."""
    rng = np.random.default_rng(17)
    out = []
    for kind in ("rnn_tanh", "rnn_relu", "lstm", "gru"):
        for s in (3, 8, 13, 37):
            w = random_weights(rng, kind, 5, s, 4, random_state=s > 8)
            x = rng.uniform(-1.0, 1.0, size=(5, 5))
            for rounding in ("sound", "nearest", "sound32"):
                for planes in (("exact",) if kind.startswith("rnn") else ("exact", "1d", "constant")):
                    out += list(bound_margins(w, x, 0.05, p=2, planes=planes, rounding=rounding))
            out += [np.ravel(v) for pair in bound_states(w, x, 0.1, p=np.inf).values() for v in pair]
            out += list(bound_margins(w, x, 0.02, p=1, planes="optimized"))
    for kinds, bi, readout, head in ((["lstm", "gru"], [True, False], "mean", [(9, "relu")]),
                                     (["rnn_tanh", "lstm"], [False, True], "last", []),
                                     (["gru", "rnn_relu"], [True, True], "last", [(5, "tanh")])):
        m = random_general(rng, kinds, bi, 4, [11, 6], 3, readout, head, [])
        x = rng.uniform(-1.0, 1.0, size=(4, 4))
        for rounding in ("sound", "nearest"):
            out += list(bound_margins(m, x, 0.04, rounding=rounding))
    return np.concatenate([np.ravel(v) for v in out])


@pytest.mark.parametrize("env_var", ["POPQORN_SEPARATE_PASSES", "POPQORN_NO_AVX512"])
def test_fused_passes_give_the_bits_of_the_separate_passes(env_var, tmp_path) -> None:
    if env_var == "POPQORN_NO_AVX512" and not _has_avx512():
        pytest.skip("the CPU has no AVX-512: one build of the fused passes only")
    code = f"""
import numpy as np, sys
sys.path.insert(0, {os.path.dirname(__file__)!r})
from test_fused_passes import _bounds
np.save(sys.argv[1], _bounds())
"""
    path = tmp_path / "separate.npy"
    subprocess.run([sys.executable, "-c", code, str(path)], check=True,
                   env=dict(os.environ, **{env_var: "1"}))
    separate = np.load(path)
    fused = _bounds()
    assert separate.shape == fused.shape and np.all(np.isfinite(fused))
    assert np.array_equal(separate, fused)
