"""Pictures of per-frame sensitivity (needs the optional ``matplotlib``: ``pip install popqorn_fast[plot]``).

Drawn on a private ``matplotlib.figure.Figure`` with the Agg canvas (no pyplot,
no global backend switch), so it is safe in scripts, servers and threads.
"""
from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any, Optional, Union

import numpy as np

PLOT_INSTALL_HINT = "pip install popqorn_fast[plot]"


def _matplotlib() -> tuple[Any, Any]:
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise ImportError(f"plotting needs matplotlib, which is not installed: {PLOT_INSTALL_HINT}") from None
    return Figure, FigureCanvasAgg


def image_layout(T: int, n: int, image_shape: Optional[tuple[int, int]] = None) -> Optional[tuple[int, int]]:
    """The (H, W) picture a (T, n) input is a row-major cut of, or None if it is not image-like.

    With ``image_shape`` given it is checked (H·W = T·n and each frame made of whole
    rows: n a multiple of W). Otherwise a square picture is assumed: T·n = W² with n a
    multiple of W (e.g. the 8x8 digits as 8 frames of one row or 4 frames of two rows).
    A single frame or a single value per frame is never image-like.
    """
    if image_shape is not None:
        H, W = (int(v) for v in image_shape)
        if H < 1 or W < 1 or H * W != T * n or n % W:
            raise ValueError(f"image shape {H}x{W} does not fit {T} frames of {n} values "
                             f"(need H*W = {T * n} and n a multiple of W)")
        return H, W
    if T < 2 or n < 2:
        return None
    side = math.isqrt(T * n)
    if side * side == T * n and n % side == 0:
        return side, side
    return None


def plot_sensitivity(x: Any, eps: Any, path: Union[str, os.PathLike], *, p: Any = 2,
                     kind: str = "auto", image_shape: Optional[tuple[int, int]] = None,
                     size: tuple[int, int] = (800, 480), title: Optional[str] = None) -> Path:
    """Write a PNG of the per-frame certified radii of one input.

    Parameters
    ----------
    x : array_like, shape (T, n)
        The input sequence.
    eps : array_like, shape (T,)
        Certified ε of each frame alone (:func:`popqorn_fast.sensitivity`).
    path : str or path-like
        Where to write the PNG.
    p : {1, 2, inf}
        Norm order, for the labels.
    kind : {"auto", "image", "bar"}
        ``"image"``: the input drawn as a picture, each frame's rows shaded by its ε
        (with a colour bar); ``"bar"``: a bar chart of ε per frame; ``"auto"``: image
        when the input is image-like (see :func:`image_layout`), else bar.
    image_shape : (H, W), optional
        The picture's shape (default: square, see :func:`image_layout`).
    size : (width, height)
        Size of the PNG in pixels.
    title : str, optional

    Returns
    -------
    pathlib.Path
        ``path``.

    Raises
    ------
    ImportError
        matplotlib is missing (the message says ``pip install popqorn_fast[plot]``).
    ValueError
        Shapes that do not match, non-finite ε, an unknown ``kind`` or a bad ``size``.
    """
    from .validation import p_name, parse_p

    xv = np.asarray(x, dtype=np.float64)
    ev = np.asarray(eps, dtype=np.float64)
    if xv.ndim != 2:
        raise ValueError(f"x must have shape (T, n), got {xv.shape}")
    T, n = xv.shape
    if ev.shape != (T,):
        raise ValueError(f"eps must have shape ({T},) (one radius per frame), got {ev.shape}")
    if not np.all(np.isfinite(ev)) or np.any(ev < 0):
        raise ValueError("eps must be finite and >= 0")
    if kind not in ("auto", "image", "bar"):
        raise ValueError(f"kind must be 'auto', 'image' or 'bar', got {kind!r}")
    w_px, h_px = (int(v) for v in size)
    if not (16 <= w_px <= 10000 and 16 <= h_px <= 10000):
        raise ValueError(f"size must be between 16 and 10000 pixels per side, got {size}")
    layout = image_layout(T, n, image_shape)
    if kind == "image" and layout is None:
        raise ValueError(f"a (T={T}, n={n}) input is not image-like; pass image_shape=(H, W) or kind='bar'")
    pname = p_name(parse_p(p))
    Figure, Canvas = _matplotlib()
    dpi = 100
    fig = Figure(figsize=(w_px / dpi, h_px / dpi), dpi=dpi)
    Canvas(fig)
    label = f"certified ε of the frame alone (p = {pname})"
    if kind == "bar" or layout is None:
        ax = fig.add_subplot(1, 1, 1)
        ax.bar(np.arange(T), ev, color="tab:blue")
        ax.set_xlabel("frame")
        ax.set_ylabel(label)
        ax.set_xticks(np.arange(T) if T <= 32 else np.linspace(0, T - 1, 9).round().astype(int))
        ax.grid(axis="y", alpha=0.3)
    else:
        from matplotlib import colormaps
        from matplotlib.cm import ScalarMappable
        from matplotlib.colors import Normalize

        H, W = layout
        rows = n // W
        ax = fig.add_subplot(1, 1, 1)
        ax.imshow(xv.reshape(H, W), cmap="gray_r", interpolation="nearest", extent=(-0.5, W - 0.5, H - 0.5, -0.5))
        hi = float(ev.max()) if ev.max() > 0 else 1.0
        norm = Normalize(vmin=0.0, vmax=hi)
        cmap = colormaps["plasma"]
        for t in range(T):
            ax.axhspan(t * rows - 0.5, (t + 1) * rows - 0.5, color=cmap(norm(ev[t])), alpha=0.45, lw=0)
            ax.text(W - 0.4, t * rows + (rows - 1) / 2, f" {ev[t]:.3g}", va="center", ha="left", fontsize=8)
        ax.set_xlim(-0.5, W - 0.5)
        ax.set_ylim(H - 0.5, -0.5)
        ax.set_yticks([t * rows + (rows - 1) / 2 for t in range(T)], [str(t) for t in range(T)])
        ax.set_ylabel("frame")
        ax.set_xticks([])
        fig.colorbar(ScalarMappable(norm=norm, cmap=cmap), ax=ax, label=label, pad=0.12)
    ax.set_title(title or f"per-frame sensitivity (T = {T}, n = {n})")
    out = Path(path)
    fig.savefig(out, dpi=dpi, format="png")
    return out
