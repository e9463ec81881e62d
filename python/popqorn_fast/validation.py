"""Input validation with errors that name the argument and say what to fix."""
from __future__ import annotations

from typing import Any

import numpy as np


def as_real_array(value: Any, name: str) -> np.ndarray:
    """Return a read-only float64 C-contiguous copy of ``value``.

    Raises ``ValueError`` naming ``name`` if it is not a finite real array.
    """
    if value is None:
        raise ValueError(f"{name} is None; expected an array")
    try:
        arr = np.asarray(value)
    except Exception as exc:  # noqa: BLE001 - any conversion failure is the user's input
        raise ValueError(f"{name} could not be converted to an array: {exc}") from exc
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
        raise ValueError(f"{name} must be a real numeric array, got dtype {arr.dtype}")
    if np.iscomplexobj(arr):
        raise ValueError(f"{name} must be real, got complex dtype {arr.dtype}")
    out = np.array(arr, dtype=np.float64, order="C", copy=True)
    if not np.all(np.isfinite(out)):
        bad = int(np.size(out) - np.count_nonzero(np.isfinite(out)))
        raise ValueError(f"{name} contains {bad} NaN or infinite value(s)")
    out.setflags(write=False)
    return out


def parse_p(p: Any) -> float:
    """Normalise the norm order: 1, 2 or inf (ints, floats, "inf", np.inf) -> 1.0, 2.0, inf."""
    if isinstance(p, str):
        key = p.strip().lower()
        table = {"1": 1.0, "2": 2.0, "inf": np.inf, "infinity": np.inf, "linf": np.inf, "l1": 1.0, "l2": 2.0}
        if key in table:
            return table[key]
        raise ValueError(f"p must be 1, 2 or inf, got {p!r}")
    if isinstance(p, bool):
        raise ValueError(f"p must be 1, 2 or inf, got {p!r}")
    try:
        val = float(p)
    except (TypeError, ValueError):
        raise ValueError(f"p must be 1, 2 or inf, got {p!r}") from None
    if val in (1.0, 2.0) or val == np.inf:
        return val
    raise ValueError(f"p must be 1, 2 or inf, got {p!r}")


def p_name(p: float) -> str:
    """The display/serialisation name of a parsed norm order."""
    return "inf" if p == np.inf else str(int(p))


def check_eps(eps: Any, name: str = "eps", allow_zero: bool = False) -> float:
    """A finite radius, strictly positive (or >= 0 with ``allow_zero``)."""
    bound = ">= 0" if allow_zero else "> 0"
    try:
        val = float(eps)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number {bound}, got {eps!r}") from None
    if not np.isfinite(val) or val < 0.0 or (val == 0.0 and not allow_zero):
        raise ValueError(f"{name} must be finite and {bound}, got {eps!r}")
    return val


def check_sequence(x: Any, input_size: int | None, name: str = "x") -> np.ndarray:
    """One input sequence of shape (T, n) with T >= 1, converted to float64
    (``input_size=None``: any n >= 1)."""
    arr = as_real_array(x, name)
    if input_size is None and arr.ndim == 2 and arr.shape[1] >= 1:
        input_size = arr.shape[1]
    if arr.ndim != 2:
        raise ValueError(f"{name} must have shape (T, {input_size}) (T frames of {input_size} values), "
                         f"got shape {arr.shape}")
    if arr.shape[0] == 0:
        raise ValueError(f"{name} is an empty sequence (T = 0); at least one frame is needed")
    if arr.shape[1] != input_size:
        raise ValueError(f"{name} has {arr.shape[1]} values per frame but the model's input size is "
                         f"{input_size} (x must have shape (T, {input_size}))")
    return arr


def check_batch(X: Any, input_size: int, name: str = "X") -> np.ndarray:
    """A batch of sequences of shape (N, T, n), converted to float64."""
    arr = as_real_array(X, name)
    if arr.ndim != 3 or arr.shape[2] != input_size or arr.shape[1] == 0:
        raise ValueError(f"{name} must have shape (N, T, {input_size}) with T >= 1, got shape {arr.shape}")
    return arr


def frame_mask(frames: Any, T: int) -> tuple[np.ndarray, tuple[int, ...] | None]:
    """Boolean mask of perturbed frames from ``frames`` (None = all; else 0-based indices)."""
    if frames is None:
        return np.ones(T, dtype=bool), None
    try:
        idx = [operator_index(f) for f in np.atleast_1d(np.asarray(frames, dtype=object)).tolist()]
    except TypeError:
        raise ValueError(f"frames must be a list of integer frame indices, got {frames!r}") from None
    if not idx:
        raise ValueError("frames is empty; pass None to perturb every frame or a non-empty list of indices")
    bad = [f for f in idx if not 0 <= f < T]
    if bad:
        raise ValueError(f"frames {bad} out of range for a sequence of T = {T} frames (valid: 0..{T - 1})")
    if len(set(idx)) != len(idx):
        raise ValueError(f"frames contains repeated indices: {idx}")
    mask = np.zeros(T, dtype=bool)
    mask[idx] = True
    return mask, tuple(sorted(idx))


def operator_index(v: Any) -> int:
    """An integer index (rejects floats with a fractional part, bools and non-numbers)."""
    if isinstance(v, (bool, np.bool_)):
        raise TypeError
    if isinstance(v, (int, np.integer)):
        return int(v)
    if isinstance(v, (float, np.floating)) and float(v).is_integer():
        return int(v)
    raise TypeError


def check_class(value: Any, num_classes: int, name: str) -> int:
    """A class index in range."""
    try:
        c = operator_index(value)
    except TypeError:
        raise ValueError(f"{name} must be an integer class index, got {value!r}") from None
    if not 0 <= c < num_classes:
        raise ValueError(f"{name} = {c} is out of range for a model with {num_classes} classes "
                         f"(valid: 0..{num_classes - 1})")
    return c
