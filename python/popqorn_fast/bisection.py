"""Bisection over ε (ALGORITHM.md §1, docs/RECURRENCES.md §5).

Sound whatever the bound does between probes: the returned ε is always one
at which certification succeeded (or 0), since a certified ball certifies
every smaller ball.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional

MAX_PASSES = 200
EPS_FLOOR = 1e-7
EPS_START = 0.1


@dataclass(frozen=True)
class SearchResult:
    """Outcome of a radius search."""
    eps: float                      # largest probed ε that certified (0.0 if none)
    eps_upper: Optional[float]      # smallest probed ε that failed, None if none failed
    passes: int                     # bound computations spent


def search_radius(certified: Callable[[float], bool], eps_max: float, rtol: float = 1e-3,
                  eps_start: float = EPS_START, max_passes: int = MAX_PASSES) -> SearchResult:
    """Largest certified ε in ``(0, eps_max]`` to relative accuracy ``rtol``.

    Parameters
    ----------
    certified : callable
        ``certified(eps)`` runs one bound pass and says whether every margin's
        lower bound is > 0 at ``eps``.
    eps_max : float
        The search never probes above it; returning it means "certified up to the cap".
    rtol : float
        Stop when ``hi - lo <= rtol * lo``.
    """
    passes = 0
    lo, hi = 0.0, None
    eps = min(eps_start, eps_max)

    def probe(e: float) -> bool:
        nonlocal passes
        passes += 1
        return certified(e)

    if probe(eps):
        lo = eps
        while lo < eps_max and passes < max_passes:
            nxt = min(2.0 * lo, eps_max)
            if probe(nxt):
                lo = nxt
            else:
                hi = nxt
                break
        if hi is None:  # certified at eps_max (or out of passes)
            return SearchResult(lo, None, passes)
    else:
        hi = eps
        while passes < max_passes:
            nxt = 0.5 * hi
            if nxt < EPS_FLOOR:
                return SearchResult(0.0, hi, passes)
            if probe(nxt):
                lo = nxt
                break
            hi = nxt
    while hi - lo > rtol * lo and passes < max_passes:
        mid = 0.5 * (lo + hi)
        if probe(mid):
            lo = mid
        else:
            hi = mid
    return SearchResult(lo, hi, passes)
