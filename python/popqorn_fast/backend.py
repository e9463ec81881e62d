"""Where a bound pass runs: the single seam between *what* is computed and *where*.

``bound_pass`` calls the C++ CPU core (``popqorn_fast._core``) today; the CUDA
backend plugs in here behind the same arguments (``device="cuda"``).
"""
from __future__ import annotations

from typing import Any

import numpy as np

PLANE_METHODS = ("exact", "1d", "constant")
# Experimental, not part of the public API (issue 11, unfinished): the core's LSTM pass
# accepts planes="optimized" (cpp/optim_planes.hpp); certify/bound_margins reject it.
EXPERIMENTAL_PLANE_METHODS = ("optimized",)


class BoundOverflowError(ValueError):
    """A bound pass on valid (finite) inputs whose intermediate bounds left float64.

    Happens only for astronomically large ε, weights or inputs (``eps · ||A||``
    overflows) and a relaxation receives an infinite interval. Nothing is proven at such an ε;
    :func:`popqorn_fast.certify` treats it as "not certified" (always sound).
    """


def bound_pass(weights: Any, x: np.ndarray, eps: float, p: float, mask: np.ndarray,
               spec_w: np.ndarray, spec_b: np.ndarray, planes: str = "exact",
               want_states: bool = False, device: str = "cpu") -> dict[str, np.ndarray]:
    """One bound computation (docs/RECURRENCES.md §0) on validated float64 inputs."""
    if device != "cpu":
        raise ValueError(f"device must be 'cpu' (the CUDA backend is not built into this package), got {device!r}")
    try:
        return _core_pass(weights, x, eps, p, mask, spec_w, spec_b, planes, want_states)
    except ValueError as exc:
        # inputs were validated finite, so a "need finite" refusal inside the pass is overflow
        if "need finite" not in str(exc):
            raise
        raise BoundOverflowError(
            f"intermediate bounds overflow float64 at eps = {eps!r} ({exc}): eps, the weights "
            f"or the inputs are too large for float64 bounds; use a smaller eps") from exc


def _core_pass(weights: Any, x: np.ndarray, eps: float, p: float, mask: np.ndarray,
               spec_w: np.ndarray, spec_b: np.ndarray, planes: str,
               want_states: bool) -> dict[str, np.ndarray]:
    """The C++ CPU core's bound pass for ``weights.kind``."""
    from . import _core

    fn = getattr(_core, f"{weights.kind}_bounds")
    return fn(*pass_arguments(weights, x, eps, p, mask, spec_w, spec_b, planes, want_states))


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
