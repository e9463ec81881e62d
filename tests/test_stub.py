"""The type stubs of the compiled modules (python/popqorn_fast/_core.pyi, _cuda.pyi) name
exactly what each module exports, so editors and type checkers see the real surface."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest


@pytest.mark.parametrize("name", ["_core", "_cuda"])
def test_stub_names_every_export_of_the_module_and_nothing_else(name):
    module = pytest.importorskip(f"popqorn_fast.{name}", reason=f"popqorn_fast.{name} not built")
    tree = ast.parse((Path(module.__file__).parent / f"{name}.pyi").read_text())  # beside the module
    stubbed = {n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.ClassDef))}
    stubbed |= {n.target.id for n in tree.body if isinstance(n, ast.AnnAssign) and isinstance(n.target, ast.Name)
                and not n.target.id.startswith("__")}
    exported = {k for k in dir(module) if not k.startswith("__")}
    assert stubbed == exported, (sorted(exported - stubbed), sorted(stubbed - exported))
