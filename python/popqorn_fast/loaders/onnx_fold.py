"""Constant folding for the ONNX reader: NumPy implementations of the ops that exporters use
to compute shapes and constants (``Shape``, ``Gather``, ``Concat``, ``Expand``,
``ConstantOfShape``, ``Range``, ...), applied to nodes whose inputs are all constants.

Every result's size is checked before it is allocated (``limit`` elements), so a hostile
graph cannot make the reader allocate more than the file's own tensors justify.
"""
from __future__ import annotations

from typing import Any, Callable, Optional

import numpy as np

from ..forward import sigmoid

# ONNX TensorProto data types the reader accepts -> NumPy dtypes
ONNX_DTYPES = {1: np.float32, 2: np.uint8, 3: np.int8, 5: np.int16, 6: np.int32, 7: np.int64,
               9: np.bool_, 10: np.float16, 11: np.float64, 12: np.uint32, 13: np.uint64}


class FoldError(ValueError):
    """A constant node that cannot be evaluated (the caller adds the node's name)."""


def _count(shape: Any) -> int:
    n = 1
    for d in shape:
        n *= int(d)
    return n


def _guard(shape: Any, limit: int) -> None:
    if any(int(d) < 0 for d in shape):
        raise FoldError(f"negative dimension in shape {tuple(int(d) for d in shape)}")
    if _count(shape) > limit:
        raise FoldError(f"would create a tensor of shape {tuple(int(d) for d in shape)} "
                        f"({_count(shape)} elements), more than the file's tensors justify ({limit})")


def _axes(attrs: dict, inputs: list, k: int) -> Optional[list[int]]:
    if len(inputs) > k and inputs[k] is not None:
        return [int(a) for a in np.atleast_1d(inputs[k])]
    if "axes" in attrs:
        return [int(a) for a in attrs["axes"]]
    return None


def _norm(a: int, rank: int) -> int:
    if not -rank <= a < max(rank, 1):
        raise FoldError(f"axis {a} out of range for rank {rank}")
    return a % rank if rank else 0


def slice_indices(dim: int, start: int, end: int, step: int) -> range:
    """The indices ONNX ``Slice`` takes along one axis (its clamping rules)."""
    if step == 0:
        raise FoldError("Slice with step 0")
    return range(*slice(int(start), int(end), int(step)).indices(int(dim)))


def reshape_target(in_shape: tuple[int, ...], shape: np.ndarray, allowzero: int) -> tuple[int, ...]:
    """The output shape of ``Reshape`` (0 copies the input dimension unless allowzero, -1 infers)."""
    out = [int(s) for s in np.atleast_1d(shape)]
    for i, s in enumerate(out):
        if s == 0 and not allowzero:
            if i >= len(in_shape):
                raise FoldError(f"Reshape target {out} copies dimension {i} the input lacks")
            out[i] = in_shape[i]
    total = _count(in_shape)
    if out.count(-1) > 1 or any(s < -1 for s in out):
        raise FoldError(f"Reshape target {out} is invalid")
    if -1 in out:
        rest = _count([s for s in out if s != -1])
        if rest == 0 or total % rest:
            raise FoldError(f"cannot reshape {in_shape} to {out}")
        out[out.index(-1)] = total // rest
    if _count(out) != total:
        raise FoldError(f"cannot reshape {in_shape} ({total} elements) to {out}")
    return tuple(out)


def _slice(inputs: list, attrs: dict, limit: int) -> np.ndarray:
    x = inputs[0]
    if len(inputs) > 1:
        starts, ends = np.atleast_1d(inputs[1]), np.atleast_1d(inputs[2])
        axes = np.atleast_1d(inputs[3]) if len(inputs) > 3 and inputs[3] is not None else np.arange(len(starts))
        steps = np.atleast_1d(inputs[4]) if len(inputs) > 4 and inputs[4] is not None else np.ones(len(starts), int)
    else:   # opset < 10
        starts, ends = np.asarray(attrs["starts"]), np.asarray(attrs["ends"])
        axes = np.asarray(attrs.get("axes", range(len(starts))))
        steps = np.ones(len(starts), int)
    idx: list[Any] = [slice(None)] * x.ndim
    for s, e, a, st in zip(starts, ends, axes, steps):
        a = _norm(int(a), x.ndim)
        idx[a] = list(slice_indices(x.shape[a], s, e, st))
    out = x
    for a, ix in enumerate(idx):
        if not isinstance(ix, slice):
            out = np.take(out, np.asarray(ix, dtype=np.int64), axis=a)
    return out


def _gather(inputs: list, attrs: dict, limit: int) -> np.ndarray:
    x, ind = inputs[0], np.asarray(inputs[1])
    axis = _norm(int(attrs.get("axis", 0)), x.ndim)
    if not np.issubdtype(ind.dtype, np.integer):
        raise FoldError(f"Gather indices of dtype {ind.dtype}")
    dim = x.shape[axis]
    if ind.size and (ind.min() < -dim or ind.max() >= dim):
        raise FoldError(f"Gather index out of range for a dimension of {dim}")
    _guard(x.shape[:axis] + ind.shape + x.shape[axis + 1:], limit)
    return np.take(x, np.where(ind < 0, ind + dim, ind), axis=axis)


def _expand(inputs: list, attrs: dict, limit: int) -> np.ndarray:
    shape = [int(s) for s in np.atleast_1d(inputs[1])]
    out = np.broadcast_shapes(inputs[0].shape, tuple(shape))
    _guard(out, limit)
    return np.broadcast_to(inputs[0], out).copy()


def _constant_of_shape(inputs: list, attrs: dict, limit: int) -> np.ndarray:
    shape = [int(s) for s in np.atleast_1d(inputs[0])] if inputs[0] is not None and inputs[0].size else []
    _guard(shape, limit)
    value = attrs.get("value")
    fill = np.zeros(1, np.float32) if value is None else np.asarray(value).reshape(-1)[:1]
    return np.full(shape, fill[0], dtype=fill.dtype)


def _range(inputs: list, attrs: dict, limit: int) -> np.ndarray:
    start, limit_, delta = (np.asarray(v).item() for v in inputs[:3])
    if delta == 0:
        raise FoldError("Range with delta 0")
    n = max(int(np.ceil((limit_ - start) / delta)), 0)
    _guard((n,), limit)
    return np.arange(n, dtype=np.asarray(inputs[0]).dtype) * delta + start


def _reshape(inputs: list, attrs: dict, limit: int) -> np.ndarray:
    return inputs[0].reshape(reshape_target(inputs[0].shape, inputs[1], int(attrs.get("allowzero", 0))))


def _unsqueeze(inputs: list, attrs: dict, limit: int) -> np.ndarray:
    axes = _axes(attrs, inputs, 1) or []
    rank = inputs[0].ndim + len(axes)
    out = inputs[0]
    for a in sorted(_norm(a, rank) for a in axes):
        out = np.expand_dims(out, a)
    return out


def _squeeze(inputs: list, attrs: dict, limit: int) -> np.ndarray:
    axes = _axes(attrs, inputs, 1)
    x = inputs[0]
    if axes is None:
        return np.squeeze(x)
    return np.squeeze(x, axis=tuple(_norm(a, x.ndim) for a in axes))


def _concat(inputs: list, attrs: dict, limit: int) -> np.ndarray:
    arrs = [np.asarray(a) for a in inputs if a is not None]
    axis = _norm(int(attrs["axis"]), arrs[0].ndim)
    _guard((sum(a.size for a in arrs),), limit)
    return np.concatenate(arrs, axis=axis)


def _cast(inputs: list, attrs: dict, limit: int) -> np.ndarray:
    to = int(attrs["to"])
    if to not in ONNX_DTYPES:
        raise FoldError(f"Cast to ONNX data type {to}, which this reader does not handle")
    return inputs[0].astype(ONNX_DTYPES[to])


def _binary(fn: Callable) -> Callable:
    def run(inputs: list, attrs: dict, limit: int) -> np.ndarray:
        shape = np.broadcast_shapes(inputs[0].shape, inputs[1].shape)
        _guard(shape, limit)
        with np.errstate(all="ignore"):
            return np.asarray(fn(inputs[0], inputs[1]))
    return run


def _matmul(inputs: list, attrs: dict, limit: int) -> np.ndarray:
    a, b = np.asarray(inputs[0]), np.asarray(inputs[1])
    if a.ndim == 0 or b.ndim == 0:
        raise FoldError("MatMul of a scalar")
    lead = np.broadcast_shapes(a.shape[:-2], b.shape[:-2])
    rows = a.shape[-2] if a.ndim > 1 else 1
    cols = b.shape[-1] if b.ndim > 1 else 1
    _guard(tuple(lead) + (rows, cols), limit)
    return np.matmul(a, b)


def _div(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    if np.issubdtype(np.result_type(a, b), np.integer):
        if np.any(b == 0):
            raise FoldError("integer division by zero")
        return np.trunc(a / b).astype(np.result_type(a, b))
    return a / b


def _tile(inputs: list, attrs: dict, limit: int) -> np.ndarray:
    reps = [int(r) for r in np.atleast_1d(inputs[1])]
    _guard([d * r for d, r in zip(inputs[0].shape, reps)], limit)
    return np.tile(inputs[0], reps)


def _transpose(inputs: list, attrs: dict, limit: int) -> np.ndarray:
    perm = attrs.get("perm")
    return np.transpose(inputs[0], None if perm is None else [int(p) for p in perm])


def _where(inputs: list, attrs: dict, limit: int) -> np.ndarray:
    _guard(np.broadcast_shapes(*(i.shape for i in inputs)), limit)
    return np.where(inputs[0].astype(bool), inputs[1], inputs[2])


def _reduce(fn: Callable) -> Callable:
    def run(inputs: list, attrs: dict, limit: int) -> np.ndarray:
        axes = _axes(attrs, inputs, 1)
        keep = bool(attrs.get("keepdims", 1))
        x = inputs[0]
        if not axes:
            if axes is not None and attrs.get("noop_with_empty_axes", 0):
                return x
            return fn(x, axis=None, keepdims=keep)
        return fn(x, axis=tuple(_norm(a, x.ndim) for a in axes), keepdims=keep)
    return run


def _shape(x_shape: tuple[int, ...], attrs: dict) -> np.ndarray:
    rank = len(x_shape)
    start = int(attrs.get("start", 0))
    end = int(attrs.get("end", rank))
    start = min(max(start + rank if start < 0 else start, 0), rank)
    end = min(max(end + rank if end < 0 else end, 0), rank)
    return np.asarray(x_shape[start:end], dtype=np.int64)


def shape_of(x_shape: tuple[int, ...], attrs: dict) -> np.ndarray:
    """``Shape`` of a tensor of known shape (also of input-dependent tensors)."""
    return _shape(x_shape, attrs)


FOLD: dict[str, Callable[[list, dict, int], np.ndarray]] = {
    "Identity": lambda i, a, l: i[0],
    "Gather": _gather,
    "Concat": _concat,
    "Expand": _expand,
    "ConstantOfShape": _constant_of_shape,
    "Unsqueeze": _unsqueeze,
    "Squeeze": _squeeze,
    "Cast": _cast,
    "Slice": _slice,
    "Range": _range,
    "Reshape": _reshape,
    "Transpose": _transpose,
    "Tile": _tile,
    "Where": _where,
    "Add": _binary(np.add),
    "Sub": _binary(np.subtract),
    "Mul": _binary(np.multiply),
    "Div": _binary(_div),
    "Equal": _binary(np.equal),
    "Less": _binary(np.less),
    "Greater": _binary(np.greater),
    "Min": _binary(np.minimum),
    "Max": _binary(np.maximum),
    "MatMul": _matmul,
    "Neg": lambda i, a, l: -i[0],
    "Abs": lambda i, a, l: np.abs(i[0]),
    "Sqrt": lambda i, a, l: np.sqrt(i[0]),
    "Relu": lambda i, a, l: np.maximum(i[0], 0),
    "Tanh": lambda i, a, l: np.tanh(i[0]),
    "Sigmoid": lambda i, a, l: sigmoid(i[0]),
    "Not": lambda i, a, l: np.logical_not(i[0]),
    "Size": lambda i, a, l: np.asarray(i[0].size, dtype=np.int64),
    "ReduceProd": _reduce(np.prod),
    "ReduceSum": _reduce(np.sum),
    "ReduceMean": _reduce(np.mean),
    "ReduceMax": _reduce(np.max),
    "ReduceMin": _reduce(np.min),
}


def fold(op: str, inputs: list, attrs: dict, limit: int) -> np.ndarray:
    """Evaluate one node whose inputs are all constants (``None`` for omitted ones)."""
    fn = FOLD.get(op)
    if fn is None:
        raise FoldError(f"op {op} on constants is not one this reader evaluates")
    try:
        out = np.asarray(fn(inputs, attrs, limit))
    except FoldError:
        raise
    except (ValueError, IndexError, TypeError, KeyError) as exc:
        raise FoldError(f"cannot evaluate: {exc}") from None
    _guard(out.shape, limit)
    return out
