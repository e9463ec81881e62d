"""Certified and attacked accuracy against ε, from a certificates file alone (needs the
optional ``matplotlib`` for the picture: ``pip install popqorn_fast[plot]``).

Certified accuracy at ε: the fraction of all inputs classified correctly with ε* >= ε (a
proven lower bound of the robust accuracy). Attacked accuracy at ε: the fraction classified
correctly for which PGD found no adversarial example at any probed radius <= ε (an upper
bound of the robust accuracy; needs records written with ``--attack``). The true robust
accuracy lies between the two curves: the gap is what verifiers are compared by.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Union

import numpy as np

from .records import open_certs


@dataclass(frozen=True)
class AccuracyCurves:
    """Per-input radii of one norm, read from a certificates file.

    Attributes
    ----------
    p : str
        "1", "2" or "inf".
    eps : numpy.ndarray
        Certified ε* per input (0 for misclassified ones).
    attack : numpy.ndarray or None
        Attack radius per input (0 misclassified, inf where PGD found nothing up to
        eps_max); None when the file has no attack radii.
    correct : numpy.ndarray of bool
    """
    p: str
    eps: np.ndarray
    attack: Optional[np.ndarray]
    correct: np.ndarray

    def certified(self, grid: np.ndarray) -> np.ndarray:
        """Certified accuracy at each ε of ``grid``."""
        return np.array([np.mean(self.correct & (self.eps >= e)) for e in grid]) if self.eps.size else \
            np.zeros(len(grid))

    def attacked(self, grid: np.ndarray) -> Optional[np.ndarray]:
        """Attacked accuracy at each ε of ``grid`` (None without attack radii)."""
        if self.attack is None:
            return None
        return np.array([np.mean(self.correct & (self.attack > e)) for e in grid])


def read_curves(path: Union[str, os.PathLike[str]]) -> list[AccuracyCurves]:
    """The certified (and attack) radii of every norm in a certificates file.

    Parameters
    ----------
    path : str or path-like
        A file written by ``popqorn-fast certify --out`` (either format).

    Returns
    -------
    list of AccuracyCurves
        One per norm, in the order the norms first appear.
    """
    per: dict[str, dict[int, tuple[float, float, bool]]] = {}
    has_attack: dict[str, bool] = {}
    for line in open_certs(path).lines():
        rec = line.record
        if rec is None or rec.get("type") != "certificate":
            continue
        p = str(rec.get("p"))
        table = per.setdefault(p, {})
        i = int(rec.get("input", len(table)))
        if i in table:
            continue
        correct = not bool(rec.get("misclassified", False))
        a = rec.get("attack_eps", np.nan) if "attack_eps" in rec else np.nan
        has_attack[p] = has_attack.get(p, False) or "attack_eps" in rec
        table[i] = (float(rec["eps"]), np.inf if a is None else float(a), correct)
    out = []
    for p, table in per.items():
        vals = np.array([table[i] for i in sorted(table)], dtype=np.float64).reshape(-1, 3)
        out.append(AccuracyCurves(p, vals[:, 0], vals[:, 1] if has_attack[p] else None, vals[:, 2] > 0))
    return out


def plot_accuracy(certs: Union[str, os.PathLike[str]], path: Union[str, os.PathLike[str]],
                  size: tuple[int, int] = (800, 480), title: Optional[str] = None) -> Path:
    """Draw certified and attacked accuracy against ε (one panel per norm) into PNG or SVG.

    Parameters
    ----------
    certs : str or path-like
        The certificates file.
    path : str or path-like
        The image; its suffix (``.png`` or ``.svg``) picks the format.
    size : (width, height)
        Pixels (SVG: at 100 dpi).
    title : str, optional

    Returns
    -------
    pathlib.Path
        ``path``.
    """
    from .plots import _matplotlib

    out = Path(path)
    fmt = out.suffix.lower().lstrip(".")
    if fmt not in ("png", "svg"):
        raise ValueError(f"--plot {out}: the image must end in .png or .svg, got {out.suffix!r}")
    curves = read_curves(certs)
    if not curves:
        raise ValueError(f"{certs} holds no certificate records to plot")
    Figure, Canvas = _matplotlib()
    dpi = 100
    fig = Figure(figsize=(size[0] / dpi, size[1] / dpi), dpi=dpi)
    Canvas(fig)
    for k, c in enumerate(curves):
        ax = fig.add_subplot(1, len(curves), k + 1)
        radii = np.concatenate([c.eps[c.correct], [] if c.attack is None else c.attack[c.correct]])
        radii = radii[np.isfinite(radii) & (radii > 0)]
        top = float(radii.max()) * 1.1 if radii.size else 1.0
        grid = np.linspace(0.0, top, 400)
        ax.plot(grid, c.certified(grid), color="tab:blue", label="certified (lower bound)", drawstyle="steps-post")
        att = c.attacked(grid)
        if att is not None:
            ax.plot(grid, att, color="tab:red", label="attacked, PGD (upper bound)", drawstyle="steps-post")
            ax.fill_between(grid, c.certified(grid), att, color="tab:gray", alpha=0.2, step="post")
        ax.set_xlabel(f"ε (p = {c.p})")
        ax.set_ylabel("accuracy" if k == 0 else "")
        ax.set_ylim(-0.02, 1.02)
        ax.set_xlim(0.0, top)
        ax.grid(alpha=0.3)
        ax.set_title(f"p = {c.p}: {c.eps.size} input(s)", fontsize=10)
        ax.legend(fontsize=8, loc="upper right")
    fig.suptitle(title or "robust accuracy against ε")
    fig.tight_layout()
    fig.savefig(out, dpi=dpi, format=fmt)
    return out
