"""The plain-NumPy oracle of POPQORN (slow, literal, float64).

``rnn_bounds``, ``lstm_bounds`` and ``gru_bounds`` have exactly the signature
and return value of ``popqorn_fast._core`` (docs/RECURRENCES.md §0) and compute
§1, §2 and §4 with Python loops, independently of the C++ core except for the
2-D planes (§3), which come from ``popqorn_fast.planes.bound_product``.
``general_bounds`` is the same for the general model (:mod:`.general`).
"""
from __future__ import annotations

from .general import general_bounds, general_bounds_with
from .gru import gru_bounds, gru_bounds_with
from .lines import Lines, bound_activation
from .lstm import lstm_bounds, lstm_bounds_with
from .rnn import rnn_bounds

__all__ = ["rnn_bounds", "lstm_bounds", "gru_bounds", "lstm_bounds_with", "gru_bounds_with",
           "bound_activation", "Lines",
           "general_bounds", "general_bounds_with"]
