"""The type stub of the compiled core (python/popqorn_fast/_core.pyi) names exactly what the
module exports, so editors and type checkers see the real surface."""
from __future__ import annotations

import ast
from pathlib import Path

from popqorn_fast import _core

STUB = Path(__file__).resolve().parent.parent / "python" / "popqorn_fast" / "_core.pyi"


def test_stub_names_every_export_of_the_core_and_nothing_else():
    tree = ast.parse(STUB.read_text())
    stubbed = {n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.ClassDef))}
    stubbed |= {n.target.id for n in tree.body if isinstance(n, ast.AnnAssign) and isinstance(n.target, ast.Name)
                and not n.target.id.startswith("__")}
    exported = {k for k in dir(_core) if not k.startswith("__")}
    assert stubbed == exported, (sorted(exported - stubbed), sorted(stubbed - exported))
