"""Symbolic values for reading a computation graph as a recurrent classifier.

A graph's input-dependent tensor is a :class:`Sym`: its axes are the batch axis ``"b"``
(every sample computes the same function), one feature axis ``"f"`` and other axes ``"o"``
(time steps, directions, unit axes). For every position along the ``"o"`` axes it holds a
:class:`SymVec`, an affine function ``const + sum_k M_k @ atom_k`` of *atoms*:

- :class:`InputAtom` -- the input frame ``x_t``;
- :class:`ActAtom` -- an elementwise activation (relu, tanh, sigmoid) of a SymVec;
- :class:`RecAtom` -- the output of a recurrent node (direction d, time t), or its cell.

Linear ops (MatMul/Gemm by constants, Add, Mul by constants, Concat, Slice, Reshape,
ReduceMean ...) act on the affine maps exactly; nonlinear ones create atoms. What the
graph computes is then read off the output's SymVec (:mod:`.recognize`).
A matrix ``M_k`` is an ndarray ``(F, dim)`` or a Python float ``s`` meaning ``s * I``.
"""
from __future__ import annotations

import itertools
from typing import Any, Optional, Union

import numpy as np

Mat = Union[np.ndarray, float]


class Atom:
    """A vector-valued quantity of dimension ``dim`` that the affine maps are built on."""
    __slots__ = ("dim", "uid")
    _ids = itertools.count()

    def __init__(self, dim: int) -> None:
        self.dim = int(dim)
        self.uid = next(Atom._ids)


class InputAtom(Atom):
    """Input frame ``x_t``."""
    __slots__ = ("t",)

    def __init__(self, dim: int, t: int) -> None:
        super().__init__(dim)
        self.t = t


class ActAtom(Atom):
    """``act(arg)`` elementwise; ``where`` names the node that computed it."""
    __slots__ = ("act", "arg", "where")

    def __init__(self, act: str, arg: "SymVec", where: str) -> None:
        super().__init__(arg.size)
        self.act, self.arg, self.where = act, arg, where


class RecAtom(Atom):
    """Output of recurrent node ``rec`` (direction ``d`` in the node's order, time ``t``);
    ``cell`` marks an LSTM's cell state (not a layer output)."""
    __slots__ = ("rec", "d", "t", "cell")

    def __init__(self, rec: Any, d: int, t: int, cell: bool = False) -> None:
        super().__init__(rec.hidden)
        self.rec, self.d, self.t, self.cell = rec, d, t, cell


def dense(m: Mat, rows: int, cols: int) -> np.ndarray:
    """A term's matrix as an ndarray (rows, cols)."""
    if isinstance(m, np.ndarray):
        return m
    return m * np.eye(rows, cols)


class SymVec:
    """``const + sum(M @ atom)``: a vector of ``size`` entries, affine in its atoms."""
    __slots__ = ("const", "terms")

    def __init__(self, const: np.ndarray, terms: Optional[dict] = None) -> None:
        self.const = np.asarray(const, dtype=np.float64).reshape(-1)
        self.terms: dict[Atom, Mat] = terms if terms is not None else {}

    @property
    def size(self) -> int:
        return int(self.const.shape[0])

    @staticmethod
    def of_atom(atom: Atom) -> "SymVec":
        return SymVec(np.zeros(atom.dim), {atom: 1.0})

    def add(self, other: "SymVec", sign: float = 1.0) -> "SymVec":
        terms = dict(self.terms)
        for a, m in other.terms.items():
            m = sign * m if not isinstance(m, np.ndarray) else sign * m
            if a in terms:
                old = terms[a]
                if isinstance(old, np.ndarray) or isinstance(m, np.ndarray):
                    terms[a] = dense(old, self.size, a.dim) + dense(m, self.size, a.dim)
                else:
                    terms[a] = old + m
            else:
                terms[a] = m
        return SymVec(self.const + sign * other.const, terms)

    def plus_const(self, c: np.ndarray) -> "SymVec":
        return SymVec(self.const + c, dict(self.terms))

    def scale_rows(self, s: np.ndarray) -> "SymVec":
        """``diag(s) @ self`` (``s`` of length ``size``)."""
        s = np.asarray(s, dtype=np.float64).reshape(-1)
        uniform = bool(np.all(s == s[0])) if s.size else True
        terms: dict[Atom, Mat] = {}
        for a, m in self.terms.items():
            if not isinstance(m, np.ndarray) and uniform:
                terms[a] = m * float(s[0])
            else:
                terms[a] = s[:, None] * dense(m, self.size, a.dim)
        return SymVec(self.const * s, terms)

    def linear(self, W: np.ndarray) -> "SymVec":
        """``W @ self`` for ``W`` of shape (F2, size)."""
        terms: dict[Atom, Mat] = {}
        for a, m in self.terms.items():
            terms[a] = W * m if not isinstance(m, np.ndarray) else W @ m
        return SymVec(W @ self.const, terms)

    def rows(self, idx: Any) -> "SymVec":
        idx = np.asarray(idx, dtype=np.int64).reshape(-1)
        if idx.size == self.size and np.array_equal(idx, np.arange(self.size)):
            return self
        terms = {a: dense(m, self.size, a.dim)[idx] for a, m in self.terms.items()}
        return SymVec(self.const[idx], terms)

    @staticmethod
    def concat(parts: list["SymVec"]) -> "SymVec":
        size = sum(p.size for p in parts)
        atoms: dict[Atom, None] = {}
        for p in parts:
            atoms.update(dict.fromkeys(p.terms))
        terms: dict[Atom, Mat] = {}
        for a in atoms:
            blocks = [dense(p.terms[a], p.size, a.dim) if a in p.terms else np.zeros((p.size, a.dim))
                      for p in parts]
            terms[a] = np.concatenate(blocks, axis=0)
        const = np.concatenate([p.const for p in parts]) if parts else np.zeros(size)
        return SymVec(const, terms)


class Sym:
    """An input-dependent tensor: ``shape``, axis ``roles`` ("b", "f", "o") and one SymVec per
    position along the "o" axes (``slots``, an object array over those axes in order)."""
    __slots__ = ("shape", "roles", "slots")

    def __init__(self, shape: tuple[int, ...], roles: list[str], slots: np.ndarray) -> None:
        self.shape = tuple(int(s) for s in shape)
        self.roles = list(roles)
        self.slots = slots
        assert len(self.shape) == len(self.roles) and self.roles.count("f") == 1
        assert self.slots.shape == tuple(s for s, r in zip(self.shape, self.roles) if r == "o")

    @property
    def rank(self) -> int:
        return len(self.shape)

    @property
    def feat(self) -> int:
        return self.roles.index("f")

    @property
    def batch(self) -> Optional[int]:
        return self.roles.index("b") if "b" in self.roles else None

    def o_index(self, axis: int) -> int:
        """Position of "o" axis ``axis`` among the slot axes."""
        return sum(1 for r in self.roles[:axis] if r == "o")

    def map(self, fn: Any) -> "Sym":
        out = np.empty(self.slots.shape, dtype=object)
        for idx in np.ndindex(self.slots.shape):
            out[idx] = fn(self.slots[idx])
        return Sym(self.shape, self.roles, out)

    def with_feature(self, F: int, fn: Any) -> "Sym":
        s = self.map(fn)
        shape = list(self.shape)
        shape[self.feat] = F
        return Sym(tuple(shape), self.roles, s.slots)


def object_array(shape: tuple[int, ...], fill: Any = None) -> np.ndarray:
    out = np.empty(shape, dtype=object)
    if fill is not None:
        for idx in np.ndindex(shape):
            out[idx] = fill(idx)
    return out
