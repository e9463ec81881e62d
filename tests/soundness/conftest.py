"""Fixtures of the soundness battery.

``api`` is the module under test: the public API of popqorn_fast
(``bound_states``, ``bound_margins`` and ``certify`` as in docs/API.md).
``ibp_standin`` (interval arithmetic, sound but loose) stays for
test_battery_detects.py, which shows the battery catches broken APIs.

``tally`` counts, per architecture, the points checked, those certified (and of them
the certificates a failed probe's carried bound proves, ``eps_relaxed``), the perturbations
sampled, the PGD restarts run at certified radii and the violations seen; the
counts are printed at the end of the run ("soundness battery" section).
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any, Callable

import pytest

import popqorn_fast

from .checks import PointReport


@pytest.fixture(scope="session")
def api() -> ModuleType:
    """The module whose bounds and certificates the battery checks."""
    return popqorn_fast


@dataclass
class Tally:
    """Per-architecture counts of what the battery checked (mutable: one per session)."""
    points: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    samples: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    attacks: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    certified: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    carried: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    violations: dict[str, int] = field(default_factory=lambda: defaultdict(int))

    def run(self, arch: str, check: Callable[..., PointReport], *args: Any, **kwargs: Any) -> PointReport:
        """Run ``check(*args, **kwargs)`` and count it under ``arch`` (a violation is counted, then re-raised)."""
        try:
            rep = check(*args, **kwargs)
        except AssertionError:
            self.violations[arch] += 1
            raise
        self.points[arch] += 1
        self.samples[arch] += rep.samples
        self.attacks[arch] += rep.attacks
        self.certified[arch] += rep.eps_cert > 0
        self.carried[arch] += rep.carried
        return rep

    def lines(self) -> list[str]:
        rows = [f"{'architecture':<10} {'points':>7} {'certified':>9} {'carried':>7} {'perturbations':>14} "
                f"{'PGD restarts':>12} {'violations':>10}"]
        for arch in sorted(set(self.points) | set(self.violations)):
            rows.append(f"{arch:<10} {self.points[arch]:>7} {self.certified[arch]:>9} {self.carried[arch]:>7} "
                        f"{self.samples[arch]:>14,} {self.attacks[arch]:>12,} {self.violations[arch]:>10}")
        return rows


_TALLY = pytest.StashKey[Tally]()


def arch_of(weights: Any) -> str:
    """The architecture a model counts under: rnn, lstm, gru, or general (a RecurrentClassifier)."""
    return weights.kind


@pytest.fixture(scope="session")
def tally(request: pytest.FixtureRequest) -> Tally:
    """The session's soundness counts (printed by ``pytest_terminal_summary``)."""
    return request.config.stash.setdefault(_TALLY, Tally())


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    t = config.stash.get(_TALLY, None)
    if t is not None and (t.points or t.violations):
        terminalreporter.section("soundness battery")
        for line in t.lines():
            terminalreporter.write_line(line)
