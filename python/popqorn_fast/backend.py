"""Where a bound pass runs: the single seam between *what* is computed and *where*.

``bound_pass`` runs one pass on the C++ CPU core (``popqorn_fast._core``);
``bound_pass_batch`` runs many (input, ε) pairs of one model at once, on the CUDA
backend (``popqorn_fast._cuda``, ``device="cuda"``) or, pair by pair, on the CPU core.
Both backends compute the same recurrences (docs/RECURRENCES.md); the choice is the
``device`` argument only.
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Iterator, Optional

import numpy as np

from .threat import DEFAULT, ThreatModel, refuse_threat

PLANE_METHODS = ("exact", "optimized", "1d", "constant")
# planes that the CUDA backend implements ("optimized" runs on the CPU core only)
CUDA_PLANE_METHODS = ("exact", "1d", "constant")
DEVICES = ("cpu", "cuda")
# "sound": the pass's floating-point error is part of the guarantee (docs/ROUNDING.md);
# "sound32": the same guarantee, the recurrent steps' products in float32 (ROUNDING.md §7);
# "nearest": plain round-to-nearest arithmetic, what the CUDA backend computes
ROUNDING_MODES = ("sound", "sound32", "nearest")


def check_rounding(rounding: Any, device: str = "cpu") -> str:
    """``rounding`` must be "sound", "sound32" or "nearest"; the CUDA backend computes "nearest" only."""
    if not isinstance(rounding, str) or rounding not in ROUNDING_MODES:
        raise ValueError(f"rounding must be one of {list(ROUNDING_MODES)}, got {rounding!r}")
    if device == "cuda" and rounding != "nearest":
        raise ValueError("device='cuda' computes with plain round-to-nearest arithmetic, which is not "
                         "floating-point sound (docs/ROUNDING.md): pass rounding='nearest' to use the GPU, "
                         "or device='cpu' for sound certificates")
    return rounding


class BoundOverflowError(ValueError):
    """A bound pass on valid (finite) inputs whose intermediate bounds left float64.

    Happens only for astronomically large ε, weights or inputs (``eps · ||A||``
    overflows) and a relaxation receives an infinite interval. Nothing is proven at such an ε;
    :func:`popqorn_fast.certify` treats it as "not certified" (always sound).
    """


@contextmanager
def product_threads(k: int) -> Iterator[None]:
    """For its scope, the bound passes run on this thread spread their dense products over
    k threads (row blocks fixed by the shape, cpp/row_pool.hpp): the same bounds as one
    thread, bit for bit. k = 1 starts none."""
    from . import _core

    prev = _core._product_threads(k)
    try:
        yield
    finally:
        _core._product_threads(prev)


def bound_pass(weights: Any, x: np.ndarray, eps: float, p: float, mask: np.ndarray,
               spec_w: np.ndarray, spec_b: np.ndarray, planes: str = "exact",
               want_states: bool = False, device: str = "cpu", threat: Optional[ThreatModel] = None,
               rounding: str = "sound") -> dict[str, np.ndarray]:
    """One bound computation (docs/RECURRENCES.md §0) on validated float64 inputs, over the
    per-frame balls or ``threat`` (docs/THREAT_MODELS.md), floating-point sound or not
    (``rounding``, docs/ROUNDING.md)."""
    check_rounding(rounding, device)
    check_device(device)
    threat = threat or DEFAULT
    if device == "cuda":
        refuse_threat(threat, "device='cuda'", "device='cpu'")
        out = bound_pass_batch(weights, x[None], np.array([eps], dtype=np.float64), p, mask,
                               spec_w[None], spec_b[None], planes, want_states, device="cuda", rounding=rounding)
        if out["status"][0] != 0:
            raise BoundOverflowError(
                f"intermediate bounds overflow float64 at eps = {eps!r}: eps, the weights or the "
                f"inputs are too large for float64 bounds; use a smaller eps")
        res = {k: v[0] for k, v in out.items() if k != "status"}
        return res
    try:
        # the per-frame ball keeps the nine-argument call (tests and benchmarks patch _core_pass)
        extra: dict[str, Any] = {} if threat.is_default else {"threat": threat}
        if rounding != "sound":
            extra["rounding"] = rounding
        return _core_pass(weights, x, eps, p, mask, spec_w, spec_b, planes, want_states, **extra)
    except ValueError as exc:
        # inputs were validated finite, so a "need finite" refusal inside the pass is overflow
        if "need finite" not in str(exc):
            raise
        raise BoundOverflowError(
            f"intermediate bounds overflow float64 at eps = {eps!r} ({exc}): eps, the weights "
            f"or the inputs are too large for float64 bounds; use a smaller eps") from exc


def _core_pass(weights: Any, x: np.ndarray, eps: float, p: float, mask: np.ndarray,
               spec_w: np.ndarray, spec_b: np.ndarray, planes: str,
               want_states: bool, threat: ThreatModel = DEFAULT, rounding: str = "sound") -> dict[str, np.ndarray]:
    """The C++ CPU core's bound pass for ``weights.kind``. A one-layer model's head arrives
    folded with the specification (spec_w = W_label − W_j, one rounding per entry): under
    rounding="sound" the head layer's charge covers that rounding (docs/ROUNDING.md §2)."""
    from . import _core

    tm = threat.core()
    if planes == "optimized":  # its sweep aims at the per-frame ball's worst case (general_optimize.hpp)
        refuse_threat(threat, "planes='optimized'", "planes='exact' (the default), '1d' or 'constant'")
    if weights.kind == "general":
        # "optimized": every bound refined by its rows' own relaxations (RECURRENCES.md §3b,
        # cpp/general_optimize.hpp); GRU layers then use shared z
        opts = _core.PassOptions(planes=planes, shared_z=False, want_states=want_states, rounding=rounding)
        return _core.general_bounds(*general_arguments(weights), x, eps, p, mask, spec_w, spec_b, opts, tm)
    # the one-layer model is the general model's simplest case: one layer, its head folded
    # with the specification (spec_w on h_T), margins read off with the identity
    K = spec_w.shape[0]
    frame, layers, readout, _ = general_arguments(weights.general)
    opts = _core.PassOptions(planes=planes, shared_z=False, want_states=want_states, rounding=rounding)
    out = _core.general_bounds(frame, layers, readout, [(spec_w, spec_b, None)], x, eps, p, mask,
                               np.eye(K), np.zeros(K), opts, tm)
    return {k[4:] if k.startswith("L0f_") else k: v for k, v in out.items()}


def pass_arguments(weights: Any, x: np.ndarray, eps: float, p: float, mask: np.ndarray,
                   spec_w: np.ndarray, spec_b: np.ndarray, planes: str = "exact",
                   want_states: bool = False) -> tuple:
    """Positional arguments of ``_core.<kind>_bounds`` (and of the NumPy oracle
    ``popqorn_fast.reference.<kind>_bounds``, which has the same signature)."""
    w = weights
    if w.kind == "rnn":
        return (w.weight_ih, w.weight_hh, w.bias_ih + w.bias_hh, w.h0, w.activation,
                x, eps, p, mask, spec_w, spec_b, want_states)
    if w.kind == "lstm":
        return (w.weight_ih, w.weight_hh, w.bias_ih + w.bias_hh, w.h0, w.c0,
                x, eps, p, mask, spec_w, spec_b, planes, want_states)
    return (w.weight_ih, w.weight_hh, w.bias_ih, w.bias_hh, w.h0,
            x, eps, p, mask, spec_w, spec_b, planes, want_states)


def general_arguments(model: Any) -> tuple:
    """The model arguments of ``_core.general_bounds``: frame layers, recurrent layers,
    readout and head as nested tuples of arrays (cpp/bind_general.cpp)."""
    def dense(layers: Any) -> list:
        return [(d.weight, d.bias, d.activation) for d in layers]

    layers = [(l.kind, l.activation,
               [(d.weight_ih, d.weight_hh, d.bias_ih, d.bias_hh, l.h0 if k == 0 else None,
                 l.c0 if k == 0 else None) for k, d in enumerate(l.directions())])
              for l in model.layers]
    return dense(model.frame_layers), layers, model.readout, dense(model.head)


def check_device(device: Any) -> None:
    """``device`` must be "cpu" or "cuda"; "cuda" needs CuPy, a visible GPU and a build
    with the compiled ``_cuda`` module (each missing piece is named)."""
    if device not in DEVICES:
        raise ValueError(f"device must be 'cpu' or 'cuda', got {device!r}")
    if device == "cuda":
        cuda_module()


def cuda_module() -> Any:
    """The ``popqorn_fast._cuda`` module, after checking every piece device="cuda" needs."""
    import importlib
    try:
        _cuda = importlib.import_module(f"{__package__}._cuda")
    except ImportError as exc:
        raise RuntimeError(
            "device='cuda': this build has no CUDA backend (no nvcc at build time: the module "
            "popqorn_fast._cuda was not compiled). Rebuild with the CUDA toolkit (nvcc) on PATH: "
            f"pip install 'popqorn_fast[cuda]' from source ({exc})") from None
    try:
        import cupy  # noqa: F401  (the optional extra; brings the CUDA runtime libraries)
    except ImportError:
        raise RuntimeError("device='cuda' needs CuPy: install popqorn_fast[cuda] "
                           "(pip install 'popqorn_fast[cuda]')") from None
    if _cuda.device_count() < 1:
        raise RuntimeError(f"device='cuda': no CUDA device visible ({_cuda.device_error()})")
    return _cuda


def _host(a: Any) -> np.ndarray:
    """A float64 C-contiguous host array from a NumPy or CuPy (``__cuda_array_interface__``) array."""
    if hasattr(a, "__cuda_array_interface__"):
        import cupy
        a = cupy.asnumpy(a)
    return np.ascontiguousarray(a, dtype=np.float64)


def bound_pass_batch(weights: Any, X: Any, eps: Any, p: float, mask: np.ndarray, spec_w: Any,
                     spec_b: Any, planes: str = "exact", want_states: bool = False,
                     device: str = "cuda", rounding: str = "sound") -> dict[str, np.ndarray]:
    """N bound passes of one model: pair i is (X[i] (T, n), eps[i], spec_w[i] (K, s), spec_b[i] (K,)).

    Returns the dict of :func:`bound_pass` with a leading batch axis on every array, plus
    ``"status"`` (N,) int: 0 = bounds valid, 1 = the bounds overflowed float64 (nothing
    proven for that pair; :func:`bound_pass` would raise BoundOverflowError). ``device="cuda"``
    runs all pairs in one call of ``popqorn_fast._cuda``; ``device="cpu"`` loops over the
    CPU core (the same numbers with rounding="nearest", used to test the batched drivers
    without a GPU). The CUDA backend computes rounding="nearest" only (check_rounding).
    """
    check_rounding(rounding, device)
    check_device(device)
    Xh, eh, Wh, bh = _host(X), _host(eps), _host(spec_w), _host(spec_b)
    if device == "cuda":
        if weights.kind == "general":
            raise ValueError("device='cuda' runs the one-layer models only; certify a "
                             "RecurrentClassifier with device='cpu'")
        if planes not in CUDA_PLANE_METHODS:
            raise ValueError(f"planes={planes!r} runs on the CPU only; the CUDA backend implements "
                             f"{list(CUDA_PLANE_METHODS)}")
        _cuda = cuda_module()
        args = list(pass_arguments(weights, Xh, eh, p, mask, Wh, bh, planes, want_states))
        fn = getattr(_cuda, f"{weights.kind}_bounds_batch")
        return fn(*args)
    outs, status = [], np.zeros(len(Xh), dtype=np.int32)
    for i in range(len(Xh)):
        try:
            outs.append(_core_pass(weights, Xh[i], float(eh[i]), p, mask, Wh[i], bh[i], planes, want_states,
                                   rounding=rounding))
        except ValueError as exc:
            if "need finite" not in str(exc):
                raise
            status[i] = 1
            outs.append(None)
    ok = next((o for o in outs if o is not None), None)
    res: dict[str, np.ndarray] = {"status": status}
    if ok is None:
        res["lower"] = np.zeros((len(Xh), Wh.shape[1]))
        res["upper"] = np.zeros((len(Xh), Wh.shape[1]))
        return res
    for k, v in ok.items():
        res[k] = np.stack([o[k] if o is not None else np.zeros_like(v) for o in outs])
    return res
