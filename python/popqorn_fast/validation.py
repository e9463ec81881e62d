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
