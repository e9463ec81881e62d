"""Fixtures of the soundness battery.

``api`` is the module under test: the public API of popqorn_fast
(``bound_states``, ``bound_margins`` and ``certify`` as in docs/API.md).
``ibp_standin`` (interval arithmetic, sound but loose) stays for
test_battery_detects.py, which shows the battery catches broken APIs.
"""
from __future__ import annotations

from types import ModuleType

import pytest

import popqorn_fast


@pytest.fixture(scope="session")
def api() -> ModuleType:
    """The module whose bounds and certificates the battery checks."""
    return popqorn_fast
