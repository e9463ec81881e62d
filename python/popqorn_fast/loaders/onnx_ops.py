"""The ONNX ops on input-dependent tensors (:class:`.symbolic.Sym`): layout ops (Transpose,
Reshape, Squeeze, Unsqueeze, Gather, Slice, Concat, Expand, Flatten), linear ops (MatMul, Gemm,
Add, Sub, Mul, Div, Neg, ReduceMean, ReduceSum), activations (Relu, Tanh, Sigmoid) and the
recurrent nodes (LSTM, GRU, RNN: forward, reverse, bidirectional; layout 0 or 1).

Each handler takes the node's inputs (``Sym``, ndarray for constants, or ``None`` for an
omitted input) and attributes, and returns its outputs; :class:`Unsupported` says why a node
cannot be read (the caller adds the node's name and op).
"""
from __future__ import annotations

from typing import Any, Callable, Optional

import numpy as np

from .onnx_fold import reshape_target, slice_indices
from .symbolic import ActAtom, RecAtom, Sym, SymVec, dense, object_array


class Unsupported(ValueError):
    """A node this reader cannot map onto a recurrent classifier."""


class LayoutMismatch(Unsupported):
    """A node that treats an axis other than the reader assumed (batch vs. time): under the
    other assumption about the graph input's layout the node may well be fine."""


Value = Any   # Sym | np.ndarray | None


# ----------------------------------------------------------------------------- broadcasting

def _homogeneous_batch(c: np.ndarray, axis: int) -> np.ndarray:
    """Drop the batch axis of a constant that is the same for every sample."""
    first = np.take(c, [0], axis=axis)
    if c.shape[axis] > 1 and not np.array_equal(np.broadcast_to(first, c.shape), c):
        raise Unsupported("a constant differs between the samples of a batch (the model would "
                          "compute a different function per sample)")
    return np.squeeze(first, axis=axis)


def broadcast_sym(s: Sym, out_shape: tuple[int, ...]) -> Sym:
    """``s`` broadcast to ``out_shape`` (numpy rules; new leading axes are "o" axes)."""
    extra = len(out_shape) - s.rank
    roles = ["o"] * extra + s.roles
    shape = (1,) * extra + s.shape
    slots = s.slots.reshape((1,) * extra + s.slots.shape)
    o_target = tuple(d for d, r in zip(out_shape, roles) if r == "o")
    slots = np.broadcast_to(slots, o_target)
    out = object_array(o_target, lambda i: slots[i])
    f = roles.index("f")
    F = out_shape[f]
    if shape[f] != F:
        if shape[f] != 1:
            raise Unsupported(f"cannot broadcast shape {s.shape} to {out_shape}")
        for idx in np.ndindex(out.shape):
            out[idx] = out[idx].rows(np.zeros(F, dtype=np.int64))
    return Sym(tuple(out_shape), roles, out)


def const_slots(c: np.ndarray, like: Sym) -> np.ndarray:
    """A constant broadcast to ``like``'s shape, as an array slots.shape + (F,)."""
    c = np.broadcast_to(np.asarray(c, dtype=np.float64), like.shape)
    b = like.batch
    roles = list(like.roles)
    if b is not None:
        c = _homogeneous_batch(c, b)
        roles.pop(b)
    f = roles.index("f")
    return np.moveaxis(c, f, -1)


def _float_const(c: np.ndarray) -> np.ndarray:
    if not (np.issubdtype(c.dtype, np.floating) or np.issubdtype(c.dtype, np.integer)):
        raise Unsupported(f"a constant of dtype {c.dtype} in arithmetic")
    return c.astype(np.float64)


def binary(op: str, a: Value, b: Value) -> Sym:
    """Add / Sub / Mul / Div with at least one input-dependent operand."""
    if isinstance(a, Sym) and isinstance(b, Sym):
        if op not in ("Add", "Sub"):
            raise Unsupported(f"{op} of two input-dependent tensors (a product of activations) is "
                              f"no layer of a recurrent classifier")
        out_shape = np.broadcast_shapes(a.shape, b.shape)
        A, B = broadcast_sym(a, out_shape), broadcast_sym(b, out_shape)
        if A.feat != B.feat:
            raise Unsupported("adds tensors whose feature axes differ")
        if A.batch is not None and B.batch is not None and A.batch != B.batch:
            raise Unsupported("adds tensors whose batch axes differ")
        roles = A.roles if A.batch is not None else B.roles
        if [r for r in A.roles if r != "b"] != [r for r in B.roles if r != "b"] or \
                [r for r in roles if r != "b"] != [r for r in A.roles if r != "b"]:
            raise Unsupported("adds tensors with different layouts")
        sign = 1.0 if op == "Add" else -1.0
        out = object_array(A.slots.shape, lambda i: A.slots[i].add(B.slots[i], sign))
        return Sym(out_shape, roles, out)
    sym_first = isinstance(a, Sym)
    s, c = (a, b) if sym_first else (b, a)
    c = _float_const(np.asarray(c))
    out_shape = np.broadcast_shapes(s.shape, c.shape)
    S = broadcast_sym(s, out_shape)
    if S.batch is None and "b" not in S.roles and c.ndim == len(out_shape):
        pass
    C = const_slots(c, S)

    def each(fn: Callable[[SymVec, np.ndarray], SymVec]) -> Sym:
        return Sym(S.shape, S.roles, object_array(S.slots.shape, lambda i: fn(S.slots[i], C[i])))

    if op == "Add":
        return each(lambda v, k: v.plus_const(k))
    if op == "Sub":
        return each(lambda v, k: v.plus_const(-k) if sym_first else v.scale_rows(-np.ones(v.size)).plus_const(k))
    if op == "Mul":
        return each(lambda v, k: v.scale_rows(k))
    if op == "Div":
        if not sym_first:
            raise Unsupported("divides a constant by an input-dependent tensor")
        if np.any(C == 0):
            raise Unsupported("divides by zero")
        return each(lambda v, k: v.scale_rows(1.0 / k))
    raise Unsupported(f"op {op}")


# ----------------------------------------------------------------------------- layout

def _norm_axis(a: int, rank: int) -> int:
    if not -rank <= a < rank:
        raise Unsupported(f"axis {a} out of range for a tensor of rank {rank}")
    return a % rank


def transpose(s: Sym, perm: Optional[list[int]]) -> Sym:
    perm = list(range(s.rank))[::-1] if perm is None else [int(p) for p in perm]
    if sorted(perm) != list(range(s.rank)):
        raise Unsupported(f"perm {perm} for a tensor of rank {s.rank}")
    o_old = [i for i in range(s.rank) if s.roles[i] == "o"]
    o_new = [p for p in perm if s.roles[p] == "o"]
    slots = np.transpose(s.slots, [o_old.index(p) for p in o_new]) if o_old else s.slots
    return Sym(tuple(s.shape[p] for p in perm), [s.roles[p] for p in perm],
               object_array(slots.shape, lambda i: slots[i]))


def unsqueeze(s: Sym, axes: list[int]) -> Sym:
    rank = s.rank + len(axes)
    shape, roles, slots = list(s.shape), list(s.roles), s.slots
    for a in sorted(_norm_axis(a, rank) for a in axes):
        shape.insert(a, 1)
        roles.insert(a, "o")
        slots = np.expand_dims(slots, sum(1 for r in roles[:a] if r == "o"))
    return Sym(tuple(shape), roles, slots)


def squeeze(s: Sym, axes: Optional[list[int]]) -> Sym:
    if axes is None:
        axes = [i for i, d in enumerate(s.shape) if d == 1 and s.roles[i] != "f"]
    axes = sorted({_norm_axis(a, s.rank) for a in axes}, reverse=True)
    shape, roles, slots = list(s.shape), list(s.roles), s.slots
    for a in axes:
        if shape[a] != 1:
            raise Unsupported(f"squeezes axis {a} of size {shape[a]}")
        if roles[a] == "f":
            raise Unsupported("squeezes away the feature axis")
        if roles[a] == "o":
            slots = np.squeeze(slots, axis=sum(1 for r in roles[:a] if r == "o"))
        shape.pop(a)
        roles.pop(a)
    return Sym(tuple(shape), roles, object_array(slots.shape, lambda i: slots[i]))


def _take_axis(s: Sym, axis: int, idx: np.ndarray, what: str) -> Sym:
    """Pick positions ``idx`` (int array; a scalar removes the axis) along ``axis``."""
    role, dim = s.roles[axis], s.shape[axis]
    idx = np.asarray(idx, dtype=np.int64)
    if idx.size and (idx.min() < -dim or idx.max() >= dim):
        raise Unsupported(f"{what} index out of range for an axis of {dim}")
    idx = np.where(idx < 0, idx + dim, idx)
    if role == "b":
        if idx.ndim == 1 and np.array_equal(idx, np.arange(dim)):
            return s
        raise LayoutMismatch(f"{what} picks samples out of the batch axis (a model must treat every "
                          f"sample alike)")
    if role == "f":
        if idx.ndim != 1:
            raise Unsupported(f"{what} takes single features out of the feature axis")
        shape = list(s.shape)
        shape[axis] = idx.size
        return Sym(tuple(shape), s.roles, s.map(lambda v: v.rows(idx)).slots)
    k = s.o_index(axis)
    slots = np.take(s.slots, idx, axis=k)
    if not isinstance(slots, np.ndarray):
        slots = object_array((), lambda i: slots)
    shape = list(s.shape[:axis]) + list(idx.shape) + list(s.shape[axis + 1:])
    roles = list(s.roles[:axis]) + ["o"] * idx.ndim + list(s.roles[axis + 1:])
    return Sym(tuple(shape), roles, object_array(slots.shape, lambda i: slots[i]))


def gather(s: Sym, idx: np.ndarray, axis: int) -> Sym:
    if not np.issubdtype(np.asarray(idx).dtype, np.integer):
        raise Unsupported("Gather indices are not integers")
    return _take_axis(s, _norm_axis(axis, s.rank), np.asarray(idx), "Gather")


def slice_(s: Sym, starts: Any, ends: Any, axes: Any, steps: Any) -> Sym:
    starts, ends = np.atleast_1d(starts), np.atleast_1d(ends)
    axes = np.arange(len(starts)) if axes is None else np.atleast_1d(axes)
    steps = np.ones(len(starts), dtype=np.int64) if steps is None else np.atleast_1d(steps)
    for st, en, ax, sp in zip(starts, ends, axes, steps):
        ax = _norm_axis(int(ax), s.rank)
        idx = np.asarray(list(slice_indices(s.shape[ax], st, en, sp)), dtype=np.int64)
        s = _take_axis(s, ax, idx, "Slice")
    return s


def concat(values: list[Value], axis: int) -> Sym:
    syms = [v for v in values if isinstance(v, Sym)]
    ref = syms[0]
    axis = _norm_axis(axis, ref.rank)
    parts: list[Sym] = []
    for v in values:
        if v is None:
            continue
        if isinstance(v, Sym):
            if v.rank != ref.rank or [r for r in v.roles if r != "b"] != [r for r in ref.roles if r != "b"]:
                raise Unsupported("concatenates tensors with different layouts")
            parts.append(v)
        else:
            c = np.asarray(v)
            if c.ndim != ref.rank:
                raise Unsupported(f"concatenates a constant of rank {c.ndim} with a tensor of rank {ref.rank}")
            shape = list(ref.shape)
            shape[axis] = c.shape[axis]
            like = Sym(tuple(shape), ref.roles, object_array(
                tuple(d for d, r in zip(shape, ref.roles) if r == "o"), lambda i: SymVec(np.zeros(1))))
            k = const_slots(_float_const(c), like)
            parts.append(Sym(tuple(shape), ref.roles,
                             object_array(like.slots.shape, lambda i: SymVec(k[i]))))
    role = ref.roles[axis]
    if role == "b":
        raise Unsupported("concatenates along the batch axis")
    shape = list(ref.shape)
    shape[axis] = sum(p.shape[axis] for p in parts)
    for p in parts:
        for i, (d, e) in enumerate(zip(p.shape, ref.shape)):
            if i != axis and d != e and ref.roles[i] != "b":
                raise Unsupported(f"concatenates shapes {p.shape} and {ref.shape}")
    if role == "o":
        k = ref.o_index(axis)
        slots = np.concatenate([p.slots for p in parts], axis=k)
        return Sym(tuple(shape), ref.roles, object_array(slots.shape, lambda i: slots[i]))
    out = object_array(ref.slots.shape, lambda i: SymVec.concat([p.slots[i] for p in parts]))
    return Sym(tuple(shape), ref.roles, out)


def reshape(s: Sym, target: np.ndarray, allowzero: int = 0) -> Sym:
    """Reshape that only adds/drops unit axes, merges an "o" axis into the feature axis right
    after it (concatenation), or splits the feature axis (the reverse)."""
    new = list(reshape_target(s.shape, target, allowzero))
    old = [(d, r, i) for i, (d, r) in enumerate(zip(s.shape, s.roles)) if d != 1 or r == "f"]
    roles: list[str] = []
    o_src: list[Any] = []        # per new "o" axis: old axis index, or None for a new unit axis
    merge: Optional[int] = None  # old "o" axis merged into the feature axis
    split: Optional[int] = None  # new "o" axis split off the feature axis
    j = 0
    k = 0
    while k < len(new):
        d = new[k]
        nxt = old[j] if j < len(old) else None
        if nxt is not None and nxt[0] == d and (d != 1 or nxt[1] == "f"):
            roles.append(nxt[1])
            if nxt[1] == "o":
                o_src.append(nxt[2])
            j += 1
        elif d == 1:
            roles.append("o")
            o_src.append(None)
        elif (nxt is not None and nxt[1] == "o" and j + 1 < len(old) and old[j + 1][1] == "f"
              and nxt[0] * old[j + 1][0] == d and merge is None):
            roles.append("f")
            merge = nxt[2]
            j += 2
        elif (nxt is not None and nxt[1] == "f" and k + 1 < len(new) and d * new[k + 1] == nxt[0]
              and split is None):
            roles += ["o", "f"]
            o_src.append("split")
            split = len(o_src) - 1
            j += 1
            k += 1
        else:
            what = "merges the batch axis with another" if nxt is not None and nxt[1] == "b" else \
                "mixes axes in a way no recurrent classifier's layout change does"
            raise Unsupported(f"reshapes {s.shape} (axes {''.join(s.roles)}) to {tuple(new)}: {what}")
        k += 1
    if j != len(old):
        raise Unsupported(f"reshapes {s.shape} to {tuple(new)}: cannot follow the axes")
    slots = s.slots
    if merge is not None:                  # fold the merged axis into every feature vector
        m = s.o_index(merge)
        slots = np.moveaxis(slots, m, -1)
        slots = object_array(slots.shape[:-1], lambda i: SymVec.concat(list(slots[i])))
        old_o = [i for i, r in enumerate(s.roles) if r == "o" and i != merge]
    else:
        old_o = [i for i, r in enumerate(s.roles) if r == "o"]
    # keep the old "o" axes that survive (in order), drop unit ones, insert new units
    keep = [old_o.index(src) for src in o_src if isinstance(src, int) and src in old_o]
    drop = tuple(i for i in range(slots.ndim) if i not in keep)
    slots = slots.reshape(tuple(d for i, d in enumerate(slots.shape) if i not in drop)) if drop else slots
    if keep != sorted(keep):
        raise Unsupported(f"reshapes {s.shape} to {tuple(new)}: reorders axes")
    shape_o = []
    for src in o_src:
        shape_o.append(new[[i for i, r in enumerate(roles) if r == "o"][len(shape_o)]])
    F = new[roles.index("f")]
    if split is not None:
        n_parts = shape_o[split]
        base = slots

        def pick(idx: tuple) -> SymVec:
            core = tuple(v for p, v in enumerate(idx) if o_src[p] is not None and p != split)
            v = base[core] if core or base.ndim else base[()]
            return v.rows(np.arange(idx[split] * F, (idx[split] + 1) * F))
        out = object_array(tuple(shape_o), lambda i: pick(i))
        return Sym(tuple(new), roles, out)
    slots = slots.reshape(tuple(shape_o))
    return Sym(tuple(new), roles, object_array(slots.shape, lambda i: slots[i]))


def expand(s: Sym, shape: np.ndarray) -> Sym:
    return broadcast_sym(s, np.broadcast_shapes(s.shape, tuple(int(d) for d in np.atleast_1d(shape))))


def flatten(s: Sym, axis: int) -> Sym:
    axis = axis % s.rank if s.rank else 0
    lead = int(np.prod(s.shape[:axis])) if axis else 1
    return reshape(s, np.asarray([lead, int(np.prod(s.shape[axis:]))]))


# ----------------------------------------------------------------------------- linear

def matmul(a: Value, b: Value) -> Sym:
    if not isinstance(a, Sym) or isinstance(b, Sym):
        raise Unsupported("MatMul must multiply an input-dependent tensor (left) by a constant matrix")
    W = _float_const(np.asarray(b))
    while W.ndim > 2 and W.shape[0] == 1:
        W = W[0]
    if W.ndim != 2:
        raise Unsupported(f"MatMul by a constant of shape {np.shape(b)}; expected a matrix")
    if a.feat != a.rank - 1:
        raise Unsupported("MatMul over an axis that is not the feature axis")
    F = a.shape[-1]
    if W.shape[0] != F:
        raise Unsupported(f"MatMul of features {F} by a matrix {W.shape}")
    Wt = np.ascontiguousarray(W.T)
    out = a.with_feature(W.shape[1], lambda v: v.linear(Wt))
    extra = np.ndim(b) - 2
    return unsqueeze(out, list(range(extra))) if extra > 0 and a.rank < np.ndim(b) else out


def gemm(a: Value, b: Value, c: Value, attrs: dict) -> Sym:
    if not isinstance(a, Sym) or isinstance(b, Sym) or isinstance(c, Sym):
        raise Unsupported("Gemm must take the input-dependent tensor as A and constants B, C")
    if int(attrs.get("transA", 0)) or a.rank != 2 or a.feat != 1:
        raise Unsupported("Gemm's A must be (batch, features) with transA=0")
    B = _float_const(np.asarray(b))
    W = B if int(attrs.get("transB", 0)) else B.T        # (out, in)
    if W.ndim != 2 or W.shape[1] != a.shape[1]:
        raise Unsupported(f"Gemm with B of shape {B.shape} for {a.shape[1]} features")
    W = float(attrs.get("alpha", 1.0)) * W
    out = a.with_feature(W.shape[0], lambda v: v.linear(W))
    if c is not None:
        C = float(attrs.get("beta", 1.0)) * _float_const(np.asarray(c))
        out = binary("Add", out, C)
    return out


def reduce(op: str, s: Sym, axes: Optional[list[int]], keepdims: bool) -> Sym:
    if not axes:
        raise Unsupported(f"{op} over every axis (including the batch)")
    axes = sorted({_norm_axis(a, s.rank) for a in axes})
    scale = 1.0
    out = s
    for a in reversed(axes):
        role, dim = out.roles[a], out.shape[a]
        if role == "b":
            raise Unsupported(f"{op} over the batch axis")
        if op == "ReduceMean":
            scale /= dim
        if role == "f":
            out = out.with_feature(1, lambda v: v.linear(np.ones((1, v.size))))
            if not keepdims:
                raise Unsupported(f"{op} removes the feature axis")
            continue
        k = out.o_index(a)
        slots = np.moveaxis(out.slots, k, -1)

        def total(i: tuple) -> SymVec:
            acc = slots[i][0]
            for v in slots[i][1:]:
                acc = acc.add(v)
            return acc
        summed = object_array(slots.shape[:-1], total)
        shape, roles = list(out.shape), list(out.roles)
        if keepdims:
            shape[a] = 1
            summed = np.expand_dims(summed, k)
        else:
            shape.pop(a)
            roles.pop(a)
        out = Sym(tuple(shape), roles, object_array(summed.shape, lambda i: summed[i]))
    if scale != 1.0:
        out = out.map(lambda v: v.scale_rows(np.full(v.size, scale)))
    return out


def activation(act: str, s: Sym, where: str) -> Sym:
    return s.map(lambda v: SymVec.of_atom(ActAtom(act, v, where)))


# ----------------------------------------------------------------------------- recurrent nodes

# ONNX gate blocks in PyTorch's order: LSTM i,o,f,c -> i,f,g,o ; GRU z,r,h -> r,z,n
GATE_PERM = {"LSTM": [0, 2, 3, 1], "GRU": [1, 0, 2], "RNN": [0]}
DEFAULT_ACTS = {"LSTM": ["Sigmoid", "Tanh", "Tanh"], "GRU": ["Sigmoid", "Tanh"], "RNN": ["Tanh"]}


class RecNode:
    """A recurrent ONNX node read into PyTorch's layout: ``params[d]`` = (w_ih, w_hh, b_ih, b_hh)
    for direction d of ``dirs`` ("f" or "b"); ``inputs[t]`` the SymVec it reads at time t."""

    def __init__(self, name: str, op: str, hidden: int, dirs: list[str], params: list[tuple],
                 activation: str, h0: Optional[np.ndarray], c0: Optional[np.ndarray],
                 inputs: list[SymVec]) -> None:
        self.name, self.op, self.hidden, self.dirs = name, op, hidden, dirs
        self.kind = op.lower()
        self.params, self.activation, self.h0, self.c0, self.inputs = params, activation, h0, c0, inputs


def _text(v: Any) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)


def recurrent(op: str, name: str, ins: list[Value], attrs: dict) -> list[Value]:
    """An LSTM / GRU / RNN node: outputs Y, Y_h (and Y_c) as Syms of RecAtoms."""
    ins = list(ins) + [None] * (8 - len(ins))
    X = ins[0]
    if not isinstance(X, Sym):
        raise Unsupported("its input X does not depend on the graph input")
    for k, what in ((1, "W"), (2, "R"), (3, "B"), (5, "initial_h"), (6, "initial_c"), (7, "P")):
        if isinstance(ins[k], Sym):
            raise Unsupported(f"its {what} depends on the graph input; the certifier needs fixed weights")
    direction = _text(attrs.get("direction", "forward"))
    if direction not in ("forward", "reverse", "bidirectional"):
        raise Unsupported(f"direction={direction!r}")
    dirs = {"forward": ["f"], "reverse": ["b"], "bidirectional": ["f", "b"]}[direction]
    D = len(dirs)
    if "clip" in attrs:
        raise Unsupported(f"a cell clip ({attrs['clip']}); clipping is not supported")
    if int(attrs.get("input_forget", 0)):
        raise Unsupported("input_forget=1 (coupled input and forget gates) is not supported")
    if attrs.get("activation_alpha") or attrs.get("activation_beta"):
        raise Unsupported("activation_alpha/beta (parametrised activations) are not supported")
    acts = [_text(a) for a in attrs.get("activations", [])]
    activation = "tanh"
    if op == "RNN":
        acts = acts or ["Tanh"] * D
        if len(set(acts)) != 1 or acts[0] not in ("Tanh", "Relu"):
            raise Unsupported(f"activations {acts}; an RNN must use Tanh or Relu in every direction")
        activation = acts[0].lower()
    elif acts and acts != DEFAULT_ACTS[op] * D:
        raise Unsupported(f"activations {acts}; only the defaults {DEFAULT_ACTS[op] * D}")
    if op == "GRU" and int(attrs.get("linear_before_reset", 0)) != 1:
        raise Unsupported("linear_before_reset=0: the reset gate multiplies the hidden state before "
                          "its linear map, which is not PyTorch's GRU (b_hn inside the reset product) "
                          "and not what the certifier bounds; re-export with linear_before_reset=1 "
                          "(torch.onnx does)")
    layout = int(attrs.get("layout", 0))
    t_ax, b_ax = (0, 1) if layout == 0 else (1, 0)
    if X.rank != 3 or X.feat != 2 or X.roles[t_ax] != "o" or not (
            X.roles[b_ax] == "b" or X.shape[b_ax] == 1):
        raise LayoutMismatch(f"its input X has shape {X.shape} with axes {''.join(X.roles)} "
                          f"(b batch, o time, f features); layout={layout} needs "
                          f"{'[time, batch, features]' if layout == 0 else '[batch, time, features]'}")
    T = X.shape[t_ax]
    slots = X.slots if X.slots.ndim == 1 else np.take(X.slots, 0, axis=1 - X.o_index(t_ax))
    inputs = [slots[t] for t in range(T)]
    G = len(GATE_PERM[op])

    def const(k: int, what: str) -> Optional[np.ndarray]:
        v = ins[k]
        if v is None:
            return None
        v = np.asarray(v)
        if not np.issubdtype(v.dtype, np.floating):
            raise Unsupported(f"its {what} has dtype {v.dtype}")
        return v.astype(np.float64)

    W, R, B = const(1, "W"), const(2, "R"), const(3, "B")
    if W is None or R is None:
        raise Unsupported("W or R is missing")
    if R.ndim != 3 or R.shape[0] != D or R.shape[1] != G * R.shape[2] or R.shape[2] == 0:
        raise Unsupported(f"R has shape {R.shape}; expected ({D}, {G}*hidden, hidden) for "
                          f"direction={direction!r}")
    H = R.shape[2]
    if "hidden_size" in attrs and int(attrs["hidden_size"]) != H:
        raise Unsupported(f"hidden_size={attrs['hidden_size']} but R has shape {R.shape}")
    n = X.shape[2]
    if W.shape != (D, G * H, n):
        raise Unsupported(f"W has shape {W.shape}; expected ({D}, {G * H}, {n})")
    B = np.zeros((D, 2 * G * H)) if B is None else B
    if B.shape != (D, 2 * G * H):
        raise Unsupported(f"B has shape {B.shape}; expected ({D}, {2 * G * H})")
    seq = ins[4]
    if seq is not None and not np.all(np.asarray(seq) == T):
        raise Unsupported(f"sequence_lens {np.asarray(seq).tolist()} shorter than the sequence ({T})")
    P = const(7, "P (peepholes)")
    if P is not None and np.any(P != 0):
        raise Unsupported("non-zero peephole weights P are not supported")
    rows = np.concatenate([np.arange(g * H, (g + 1) * H) for g in GATE_PERM[op]])
    params = [(W[d][rows], R[d][rows], B[d, :G * H][rows], B[d, G * H:][rows]) for d in range(D)]

    def state(k: int, what: str) -> Optional[np.ndarray]:
        v = const(k, what)
        if v is None:
            return None
        shape = (D, 1, H) if layout == 0 else (1, D, H)
        if v.ndim != 3 or v.shape[2] != H or v.shape[b_ax if layout else 0] != D:
            raise Unsupported(f"its {what} has shape {v.shape}; expected {shape[:1] + ('batch',) + shape[2:]}")
        v = _homogeneous_batch(v, 1 if layout == 0 else 0)      # (D, H)
        if not np.any(v):
            return None
        if D != 1 or dirs != ["f"]:
            raise Unsupported(f"a non-zero {what} on a {direction} node; initial states are "
                              f"supported for forward one-direction layers only")
        return v[0]

    h0 = state(5, "initial_h")
    c0 = state(6, "initial_c") if op == "LSTM" else None
    rec = RecNode(name, op, H, dirs, params, activation, h0, c0, inputs)
    Bsz = X.shape[b_ax]
    atoms = {(d, t): RecAtom(rec, d, t) for d in range(D) for t in range(T)}
    last = [T - 1 if dirs[d] == "f" else 0 for d in range(D)]
    rec.atoms = atoms
    y = object_array((T, D), lambda i: SymVec.of_atom(atoms[(i[1], i[0])]))
    yh = object_array((D,), lambda i: SymVec.of_atom(atoms[(i[0], last[i[0]])]))
    yc = object_array((D,), lambda i: SymVec.of_atom(RecAtom(rec, i[0], last[i[0]], cell=True)))
    if layout == 0:
        Y = Sym((T, D, Bsz, H), ["o", "o", "b", "f"], y)
        Yh = Sym((D, Bsz, H), ["o", "b", "f"], yh)
        Yc = Sym((D, Bsz, H), ["o", "b", "f"], yc)
    else:
        Y = Sym((Bsz, T, D, H), ["b", "o", "o", "f"], y)
        Yh = Sym((Bsz, D, H), ["b", "o", "f"], yh)
        Yc = Sym((Bsz, D, H), ["b", "o", "f"], yc)
    return [Y, Yh, Yc]
