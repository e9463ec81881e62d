"""The specification matrix folded into the head (ALGORITHM.md §1).

Rows ``e_label − e_j`` (untargeted: every j ≠ label in increasing order;
targeted: only j = target), so that the bounded quantities are the margins
``logit_label − logit_j`` themselves.
"""
from __future__ import annotations

from typing import Optional

import numpy as np


def margin_classes(label: int, num_classes: int, target: Optional[int]) -> np.ndarray:
    """The classes j whose margins ``logit_label − logit_j`` are bounded."""
    if target is not None:
        return np.array([target])
    return np.array([j for j in range(num_classes) if j != label])


def fold_specification(out_weight: np.ndarray, out_bias: np.ndarray, label: int,
                       classes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(C W_out, C b_out)`` for C with rows ``e_label − e_j``, j in ``classes``."""
    spec_w = out_weight[label][None, :] - out_weight[classes]
    spec_b = out_bias[label] - out_bias[classes]
    return np.ascontiguousarray(spec_w), np.ascontiguousarray(spec_b)
