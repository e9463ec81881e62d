"""The CUDA backend (device="cuda", popqorn_fast._cuda; issue 8).

Without a GPU (or CuPy, or a build with nvcc) every GPU test skips with its reason;
what runs everywhere: the error messages of device="cuda" without its pieces, the
_cuda module importing and reporting device_count() without crashing (when built),
and the batched certification driver (bound_pass_batch + search_steps in lock step)
against certify() on the CPU core.
With a GPU: every quantity of _cuda equals the CPU core's to 1e-9 relative on random
and trained RNN/LSTM/GRU models, and a sampled soundness check.
"""
from __future__ import annotations

import importlib
from pathlib import Path

import numpy as np
import pytest

import popqorn_fast as pf
from popqorn_fast import backend
certify_mod = importlib.import_module("popqorn_fast.certify")
from popqorn_fast.bisection import search_radius, search_steps

from conftest import DATA, MODEL_FILES, random_weights


def _cuda_module():
    try:
        return importlib.import_module("popqorn_fast._cuda")
    except ImportError:
        return None


def _gpu_skip_reason():
    m = _cuda_module()
    if m is None:
        return "popqorn_fast._cuda not built (no nvcc at build time)"
    try:
        importlib.import_module("cupy")
    except ImportError:
        return "CuPy not installed (pip install popqorn_fast[cuda])"
    if m.device_count() < 1:
        return f"no CUDA device visible ({m.device_error()})"
    return None


GPU_SKIP = _gpu_skip_reason()
needs_gpu = pytest.mark.skipif(GPU_SKIP is not None, reason=str(GPU_SKIP))
needs_module = pytest.mark.skipif(_cuda_module() is None, reason="popqorn_fast._cuda not built (no nvcc at build time)")


# ---------------------------------------------------------------- everywhere

def test_unknown_device_named():
    w = random_weights("rnn", np.random.default_rng(0))
    with pytest.raises(ValueError, match="device must be 'cpu' or 'cuda'"):
        pf.certify_many(w, np.zeros((2, 3, 3)), device="tpu")


@pytest.mark.skipif(GPU_SKIP is None, reason="a GPU is usable here: the error path is not taken")
def test_cuda_without_pieces_names_the_missing_piece():
    w = random_weights("lstm", np.random.default_rng(0))
    with pytest.raises(RuntimeError) as ei:
        pf.certify_many(w, np.zeros((2, 3, 3)), device="cuda", rounding="nearest")
    msg = str(ei.value)
    assert ("no CUDA backend" in msg or "install popqorn_fast[cuda]" in msg or "no CUDA device visible" in msg), msg


def test_cuda_refuses_sound_rounding():
    """The GPU path computes round-to-nearest only: asked for the (default) sound rounding it
    names the problem and both ways out, before any GPU is looked for."""
    w = random_weights("lstm", np.random.default_rng(0))
    with pytest.raises(ValueError, match="rounding='nearest' to use the GPU, or device='cpu'"):
        pf.certify_many(w, np.zeros((2, 3, 3)), device="cuda")
    with pytest.raises(ValueError, match="not floating-point sound"):
        backend.bound_pass(w, np.zeros((3, 3)), 0.1, 2.0, np.ones(3, bool), np.ones((1, 4)), np.zeros(1),
                           device="cuda")


def test_missing_module_message(monkeypatch):
    import sys
    monkeypatch.setitem(sys.modules, "popqorn_fast._cuda", None)  # import fails
    with pytest.raises(RuntimeError, match=r"no CUDA backend \(no nvcc at build time"):
        backend.check_device("cuda")


def test_missing_cupy_message(monkeypatch):
    import sys
    if _cuda_module() is None:
        pytest.skip("popqorn_fast._cuda not built: the CuPy check comes after it")
    monkeypatch.setitem(sys.modules, "cupy", None)
    with pytest.raises(RuntimeError, match=r"install popqorn_fast\[cuda\]"):
        backend.check_device("cuda")


def test_no_device_message(monkeypatch):
    import sys
    import types
    fake = types.SimpleNamespace(device_count=lambda: 0, device_error=lambda: "no CUDA device")
    monkeypatch.setitem(sys.modules, "popqorn_fast._cuda", fake)
    monkeypatch.setitem(sys.modules, "cupy", types.ModuleType("cupy"))
    with pytest.raises(RuntimeError, match="no CUDA device visible"):
        backend.check_device("cuda")


@needs_module
def test_module_imports_and_counts_devices():
    m = _cuda_module()
    n = m.device_count()
    assert isinstance(n, int) and n >= 0
    assert isinstance(m.device_error(), str)
    for name in ("rnn_bounds_batch", "lstm_bounds_batch", "gru_bounds_batch"):
        assert callable(getattr(m, name))


@needs_module
@pytest.mark.skipif(GPU_SKIP is None, reason="a GPU is usable here")
def test_module_refuses_without_device():
    m = _cuda_module()
    w = random_weights("rnn", np.random.default_rng(0))
    args = list(backend.pass_arguments(w, np.zeros((1, 2, 3)), np.array([0.1]), 2.0, np.ones(2, bool),
                                       np.ones((1, 3, 4)), np.zeros((1, 3))))
    with pytest.raises(RuntimeError, match="no CUDA device visible"):
        m.rnn_bounds_batch(*args)


def test_kernels_on_host_emulation_equal_cpu_core(tmp_path):
    """The CUDA kernels' device code (cpp/cuda/batch_pass.cuh) compiled by the host compiler
    for one thread per block (tests/cuda_emulation.cpp) equals the CPU core on every bound
    and state (RNN tanh/ReLU, LSTM, GRU; all plane methods; p = 1, 2, inf; eps = 0, an
    overflowing eps; exact LSTM/GRU planes to the LP's tolerance, since the CPU core now
    sums in the generic driver's order): the recurrences, indexing and workspace of the
    kernels, without a GPU."""
    import os
    import shutil
    import subprocess
    root = Path(__file__).resolve().parent.parent
    cxx = os.environ.get("CXX") or shutil.which("c++") or shutil.which("g++") or shutil.which("clang++")
    if not cxx:
        pytest.skip("no C++ compiler")
    exe = tmp_path / "cuda_emulation"
    subprocess.run([cxx, "-std=c++17", "-O1", f"-I{root / 'cpp'}", f"-I{root / 'cpp' / 'cuda'}",
                    str(root / "tests" / "cuda_emulation.cpp"), "-o", str(exe)], check=True,
                   capture_output=True)
    run = subprocess.run([str(exe)], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0 and run.stdout.startswith("OK"), run.stdout + run.stderr


def test_search_steps_is_search_radius():
    """The generator form drives the very same search."""
    for root in (0.003, 0.5, 3.0, 50.0):
        seen = []

        def f(e, root=root):
            seen.append(e)
            return root - e

        r1 = search_radius(f, 10.0, 1e-3, margin_at_zero=root)
        gen = search_steps(10.0, 1e-3, margin_at_zero=root)
        probes = []
        try:
            e = next(gen)
            while True:
                probes.append(e)
                e = gen.send(root - e)
        except StopIteration as fin:
            r2 = fin.value
        assert r1 == r2 and probes == seen


@pytest.mark.parametrize("kind", ["rnn", "lstm", "gru"])
def test_batched_driver_equals_certify_on_cpu(kind):
    """certify_many's GPU driver, run on the CPU core (bound_pass_batch(device="cpu")),
    gives exactly certify()'s certificates: same searches, same probes."""
    rng = np.random.default_rng(1)
    w = random_weights(kind, rng, s=5, n=3, C=3)
    X = rng.normal(size=(5, 4, 3))
    labels = [None, None, 0, 1, None]
    kw = dict(eps_max=10.0, p=2, target=None, frames=None, rtol=1e-3, planes="1d", rounding="sound")
    got = certify_mod._certify_batched(w, X, labels, kw, "cpu", lambda done: None)
    for i in range(len(X)):
        ref = pf.certify(w, X[i], label=labels[i], eps_max=10.0, p=2, rtol=1e-3, planes="1d")
        assert got[i].eps == ref.eps and got[i].eps_upper == ref.eps_upper
        assert got[i].bound_passes == ref.bound_passes and got[i].misclassified == ref.misclassified
        np.testing.assert_array_equal(got[i].margin_lower, ref.margin_lower)


class _FakeCuda:
    """Stands in for popqorn_fast._cuda: the batched signature, served pair by pair by _core."""

    @staticmethod
    def device_count():
        return 1

    def __getattr__(self, name):
        from popqorn_fast import _core
        kind = name.split("_")[0]

        def fn(*args):
            outs, status = [], []
            for i in range(len(args[5])):
                a = list(args)
                a[5], a[6], a[9], a[10] = args[5][i], float(args[6][i]), args[9][i], args[10][i]
                try:
                    outs.append(getattr(_core, f"{kind}_bounds")(*a))
                    status.append(0)
                except ValueError:
                    outs.append(None)
                    status.append(1)
            N, K = args[9].shape[:2]
            ok = next((o for o in outs if o is not None), {"lower": np.zeros(K), "upper": np.zeros(K)})
            res = {k: np.stack([o[k] if o is not None else np.zeros_like(v) for o in outs]) for k, v in ok.items()}
            res["status"] = np.array(status, dtype=np.int32)
            return res
        return fn


@pytest.mark.parametrize("kind", ["rnn", "lstm", "gru"])
def test_device_cuda_plumbing_with_a_fake_module(monkeypatch, kind):
    """certify_many(device="cuda") and bound_pass(device="cuda") through the _cuda batched
    signature (argument order, batch axes, status, states) equal the CPU path exactly."""
    monkeypatch.setattr(backend, "cuda_module", lambda: _FakeCuda())
    rng = np.random.default_rng(4)
    w = random_weights(kind, rng, s=4, n=3, C=3, states=True)
    X = rng.normal(size=(4, 3, 3))
    gpu = pf.certify_many(w, X, device="cuda", planes="1d", p=np.inf, rounding="nearest")
    cpu = pf.certify_many(w, X, device="cpu", planes="1d", p=np.inf, rounding="nearest")
    # the fake serves pairs with _core.<kind>_bounds (the folded head as the driver's head),
    # the CPU path folds it into the specification instead: the same bounds up to the order of
    # a few sums, so the two searches may take a different
    # last probe; both end within the search's tolerance (rtol 1e-3) of the same radius
    np.testing.assert_allclose([c.eps for c in gpu], [c.eps for c in cpu], rtol=2e-3)
    assert all(c.eps > 0 for c in cpu)
    sw, sb = rng.normal(size=(2, 4)), rng.normal(size=2)
    mask = np.ones(3, bool)
    a = backend.bound_pass(w, X[0], 0.1, 2.0, mask, sw, sb, "exact", True, device="cuda", rounding="nearest")
    b = backend.bound_pass(w, X[0], 0.1, 2.0, mask, sw, sb, "exact", True, device="cpu", rounding="nearest")
    assert a.keys() == b.keys()
    for k in a:  # exact planes: an LP optimum with ties, unique up to its tolerance
        np.testing.assert_allclose(a[k], b[k], rtol=1e-6, atol=1e-9, err_msg=k)
    with pytest.raises(backend.BoundOverflowError):
        backend.bound_pass(w, X[0], 1.7e308, np.inf, mask, sw, sb, "exact", False, device="cuda", rounding="nearest")


def test_bound_pass_batch_cpu_matches_bound_pass():
    rng = np.random.default_rng(2)
    w = random_weights("lstm", rng, s=4, n=3, C=3)
    X = rng.normal(size=(3, 4, 3))
    sw = rng.normal(size=(3, 2, 4))
    sb = rng.normal(size=(3, 2))
    eps = np.array([0.0, 0.05, 1.7e308])  # the last overflows: status 1
    mask = np.ones(4, bool)
    out = backend.bound_pass_batch(w, X, eps, np.inf, mask, sw, sb, "exact", True, device="cpu")
    assert list(out["status"]) == [0, 0, 1]
    for i in range(2):
        ref = backend.bound_pass(w, X[i], eps[i], np.inf, mask, sw[i], sb[i], "exact", True)
        for k, v in ref.items():
            np.testing.assert_array_equal(out[k][i], v)


# ---------------------------------------------------------------- with a GPU

def _models():
    out = []
    rng = np.random.default_rng(7)
    for kind in ("rnn", "lstm", "gru"):
        out.append((f"random-{kind}", random_weights(kind, rng, s=6, n=3, C=4, states=True),
                    rng.normal(size=(6, 5, 3))))
    out.append(("random-rnn-relu", random_weights("rnn", rng, s=6, n=3, C=4, activation="relu"),
                rng.normal(size=(6, 5, 3))))
    for f in MODEL_FILES:
        with np.load(DATA / f) as d:
            X = np.array(d["X"], dtype=np.float64)[:6]
        out.append((f, pf.load_model(DATA / f), X))
    return out


def _close(a, b, rtol=1e-9):
    a, b = np.asarray(a), np.asarray(b)
    scale = np.maximum(np.maximum(np.abs(a), np.abs(b)), 1.0)
    assert np.all(np.abs(a - b) <= rtol * scale), float(np.max(np.abs(a - b) / scale))


@needs_gpu
@pytest.mark.parametrize("name,w,X", _models(), ids=[m[0] for m in _models()])
@pytest.mark.parametrize("p", [1.0, 2.0, np.inf])
@pytest.mark.parametrize("planes", ["exact", "1d", "constant"])
def test_cuda_equals_cpu(name, w, X, p, planes):
    if w.kind == "rnn" and planes != "exact":
        pytest.skip("planes do not apply to RNNs")
    rng = np.random.default_rng(3)
    N, T = len(X), X.shape[1]
    K = 3
    sw = rng.normal(size=(N, K, w.hidden_size))
    sb = rng.normal(size=(N, K))
    eps = np.array([0.0, 1e-3, 0.01, 0.05, 0.2, 1.0][:N])
    mask = np.ones(T, bool)
    mask[0] = False
    out = backend.bound_pass_batch(w, X, eps, p, mask, sw, sb, planes, True, device="cuda", rounding="nearest")
    for i in range(N):
        ref = backend.bound_pass_batch(w, X[i:i + 1], eps[i:i + 1], p, mask, sw[i:i + 1], sb[i:i + 1],
                                       planes, True, device="cpu", rounding="nearest")
        assert out["status"][i] == ref["status"][0]
        if ref["status"][0]:
            continue
        for k in ref:
            if k == "status":
                continue
            # exact planes: the device's tanh/exp/log1p differ from glibc's by an ulp, and the
            # volume-minimal plane is often one of a family of optimal planes (RECURRENCES.md §3),
            # so the column generation may stop on another (valid) member: GPU and CPU are each
            # sound, not equal. Measured on an H200 (2026-11-30): at most 3.7e-6 relative over
            # these cases; 1d/constant planes and RNNs agree to 1e-9.
            _close(out[k][i], ref[k][0], 1e-9 if (planes != "exact" or w.kind == "rnn") else 1e-4)


@needs_gpu
@pytest.mark.parametrize("kind", ["rnn", "lstm", "gru"])
def test_cuda_certify_many_equals_cpu(kind):
    path = DATA / {"rnn": "rnn_tanh_T16_h16.npz", "lstm": "lstm_T8_h16.npz", "gru": "gru_T8_h16.npz"}[kind]
    w = pf.load_model(path)
    with np.load(path) as d:
        X, y = np.array(d["X"], dtype=np.float64)[:16], np.array(d["y"])[:16]
    gpu = pf.certify_many(w, X, labels=y, device="cuda", planes="1d", rounding="nearest")
    cpu = pf.certify_many(w, X, labels=y, device="cpu", planes="1d", rounding="nearest")
    for g, c in zip(gpu, cpu):
        assert g.misclassified == c.misclassified
        _close(g.eps, c.eps, 1e-6)  # same searches; the probes follow the margins, equal to rounding


@needs_gpu
@pytest.mark.parametrize("kind", ["rnn", "lstm", "gru"])
def test_cuda_soundness_sample(kind):
    """Sampled points of the ball stay inside the GPU's bounds (margins and states)."""
    rng = np.random.default_rng(11)
    w = random_weights(kind, rng, s=6, n=3, C=4)
    X = rng.normal(size=(4, 5, 3))
    eps = np.array([0.01, 0.1, 0.3, 1.0])
    for i in range(len(X)):
        lab = int(np.argmax(w.logits(X[i])))
        cls = np.array([j for j in range(4) if j != lab])
        from popqorn_fast.specification import fold_specification
        sw, sb = fold_specification(w.out_weight, w.out_bias, lab, cls)
        out = backend.bound_pass_batch(w, X[i:i + 1], eps[i:i + 1], 2.0, np.ones(5, bool), sw[None], sb[None],
                                       "exact", False, device="cuda", rounding="nearest")
        lo, up = out["lower"][0], out["upper"][0]
        for _ in range(200):
            d = rng.normal(size=X[i].shape)
            d *= eps[i] * rng.uniform() ** (1 / 3) / np.linalg.norm(d, axis=1, keepdims=True)
            lg = w.logits(X[i] + d)
            m = lg[lab] - lg[cls]
            assert np.all(m >= lo - 1e-12) and np.all(m <= up + 1e-12)
