"""The sign rule of a lower-bound back-substitution (docs/RECURRENCES.md §4, ALGORITHM.md §4).

Passing a relaxed node, entry ``lam = Lam[r, i]`` takes the LOWER relaxation of
neuron ``i`` when ``lam >= 0`` and the UPPER one when ``lam < 0``; it sends
``lam * slope`` to each input of the relaxation and ``lam * offset`` to the
constant.  Written entry by entry with ``np.where`` so it reads like the rule.
"""
from __future__ import annotations

from typing import Any

import numpy as np


def through_lines(lam: np.ndarray, alpha_l: np.ndarray, beta_l: np.ndarray,
                  alpha_u: np.ndarray, beta_u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pass ``lam`` (rows x m) on ``phi(z)`` to ``z``: returns (Lam_z, constant (rows,))."""
    pos = lam >= 0.0
    slope = np.where(pos, alpha_l[None, :], alpha_u[None, :])
    offset = np.where(pos, beta_l[None, :], beta_u[None, :])
    return lam * slope, np.sum(lam * offset, axis=1)


def through_plane(lam: np.ndarray, plane: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pass ``lam`` (rows x m) on ``F(x, y)`` through planes ``aL, bL, cL, aU, bU, cU``.

    Returns (Lam_x, Lam_y, constant (rows,)).
    """
    pos = lam >= 0.0
    a = np.where(pos, np.asarray(plane.aL)[None, :], np.asarray(plane.aU)[None, :])
    b = np.where(pos, np.asarray(plane.bL)[None, :], np.asarray(plane.bU)[None, :])
    c = np.where(pos, np.asarray(plane.cL)[None, :], np.asarray(plane.cU)[None, :])
    return lam * a, lam * b, np.sum(lam * c, axis=1)
