"""Fixtures of the soundness battery.

``api`` is the module under test: anything with ``bound_states``,
``bound_margins`` and ``certify`` as in docs/API.md. Until the real
implementation is merged it is the interval-arithmetic stand-in
``ibp_standin`` (sound but loose), which lets the battery check itself.

To point the battery at the real public API, change the one marked line to
``return popqorn_fast``.
"""
from __future__ import annotations

from types import ModuleType

import pytest

from . import ibp_standin


@pytest.fixture(scope="session")
def api() -> ModuleType:
    """The module whose bounds and certificates the battery checks."""
    return ibp_standin  # <- the one line to change: `import popqorn_fast; return popqorn_fast`
