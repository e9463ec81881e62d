"""Read an ``.onnx`` file as a recurrent classifier by evaluating its graph.

Nodes that do not depend on the graph input are constant-folded (:mod:`.onnx_fold`), so
shapes and initial states computed from the batch size become plain constants (zeros are
recognised as zero initial states). The others are evaluated on symbolic values
(:mod:`.onnx_ops`, :mod:`.symbolic`), and the affine-plus-activations expression of the
logits is mapped onto frame layers, recurrent layers, a readout and a head
(:mod:`.recognize`). This reads what ``torch.onnx.export`` writes with either exporter
(including the dynamo exporter's unrolled ``nn.RNN``), hand-written graphs, and other
producers' graphs of the same models. Anything else is refused with the node's name and op.

The file is parsed with the ``onnx`` package's protobuf classes only: no code from it runs,
external data is refused, and every tensor's declared size is checked against its bytes.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Optional, Union

import numpy as np

from .common import MAX_ELEMENTS, Model, check_shape, simplest
from .onnx_fold import ONNX_DTYPES, FoldError, fold, shape_of
from . import onnx_ops as ops
from .onnx_ops import Unsupported
from .recognize import recognize
from .symbolic import InputAtom, Sym, SymVec, object_array

# ops evaluated on input-dependent values
_SYM_OPS = {"Transpose", "Reshape", "Squeeze", "Unsqueeze", "Gather", "Slice", "Concat", "Expand",
            "Flatten", "MatMul", "Gemm", "Add", "Sub", "Mul", "Div", "Neg", "ReduceMean", "ReduceSum",
            "Relu", "Tanh", "Sigmoid", "Identity", "Dropout", "Cast", "Shape", "Size",
            "LSTM", "GRU", "RNN"}
_DEFAULT_T = 4      # time steps assumed where the graph leaves the sequence length open
_DEFAULT_BATCH = 2  # samples assumed where it leaves the batch size open


def load_onnx(path: Union[str, os.PathLike]) -> Model:
    """Read a model from an ``.onnx`` file (see the module docstring for what is read).

    Parameters
    ----------
    path : str or path-like

    Returns
    -------
    RNNWeights, LSTMWeights, GRUWeights or RecurrentClassifier
        A one-layer class when the graph is one unidirectional layer with a Linear head on
        the last hidden state, else a RecurrentClassifier.

    Raises
    ------
    ValueError
        An unreadable or hostile file, or a graph that is no recurrent classifier (the
        message names the node and its op and says what is supported).
    ImportError
        The ``onnx`` package is missing.
    """
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"model file not found: {p}")
    try:
        import onnx
    except ImportError:
        raise ImportError("reading .onnx models needs the onnx package: pip install popqorn_fast[onnx]") from None
    data = p.read_bytes()
    model = onnx.ModelProto()
    try:
        model.ParseFromString(data)
    except Exception as exc:  # noqa: BLE001 - protobuf's DecodeError and friends
        raise ValueError(f"{p} is not a readable ONNX model (truncated or not a protobuf): {exc}") from None
    if not model.graph.node and not model.graph.output:
        raise ValueError(f"{p} is not a readable ONNX model: it holds no graph (empty, truncated or "
                         f"not an ONNX file)")
    return weights_from_onnx(model, source=str(p))


def _tensor(t: Any, source: str, what: str) -> np.ndarray:
    """An ONNX TensorProto as an ndarray, after checking its declared size against its data."""
    from onnx import TensorProto, numpy_helper

    if t.data_location == TensorProto.EXTERNAL or t.external_data:
        raise ValueError(f"{source}: {what} keeps its data in an external file; this reader only reads "
                         f"self-contained models (re-export with external_data=False)")
    if t.data_type not in ONNX_DTYPES:
        raise ValueError(f"{source}: {what} has ONNX data type {t.data_type}; expected float or integer")
    dims = check_shape(t.dims, source, what)
    count = int(np.prod(dims)) if dims else 1
    item = np.dtype(ONNX_DTYPES[t.data_type]).itemsize
    if t.raw_data:
        if len(t.raw_data) != count * item:
            raise ValueError(f"{source}: {what} declares shape {dims} ({count * item} bytes) but holds "
                             f"{len(t.raw_data)} bytes (truncated or corrupt)")
    else:
        held = max(len(t.float_data), len(t.double_data), len(t.int32_data), len(t.int64_data),
                   len(t.uint64_data))
        if held != count:
            raise ValueError(f"{source}: {what} declares shape {dims} ({count} values) but holds {held}")
    try:
        return np.asarray(numpy_helper.to_array(t))
    except Exception as exc:  # noqa: BLE001
        raise ValueError(f"{source}: {what} cannot be read: {exc}") from None


def _attrs(node: Any, source: str, label: str) -> dict[str, Any]:
    from onnx import AttributeProto, helper

    out: dict[str, Any] = {}
    for a in node.attribute:
        if a.type in (AttributeProto.GRAPH, AttributeProto.GRAPHS):
            raise ValueError(f"{source}: unsupported graph: {label} has a subgraph attribute {a.name!r} "
                             f"(control flow is not part of a recurrent classifier)")
        if a.type == AttributeProto.TENSOR:
            out[a.name] = _tensor(a.t, source, f"attribute {a.name!r} of {label}")
        else:
            out[a.name] = helper.get_attribute_value(a)
    return out


def _label(node: Any, idx: int) -> str:
    return f"{node.op_type} node {node.name!r}" if node.name else f"{node.op_type} node #{idx}"


class _Failure(ValueError):
    """Where a layout hypothesis failed: the number of nodes evaluated, and why."""

    def __init__(self, msg: str, progress: int) -> None:
        super().__init__(msg)
        self.progress = progress


def weights_from_onnx(model: Any, source: str = "ONNX model") -> Model:
    """Convert a parsed ``onnx.ModelProto`` (see :func:`load_onnx`)."""
    graph = model.graph
    consts: dict[str, np.ndarray] = {}
    declared = 0
    for init in graph.initializer:
        consts[init.name] = _tensor(init, source, f"initializer {init.name!r}")
        declared += consts[init.name].size
    for i, node in enumerate(graph.node):
        if node.domain not in ("", "ai.onnx"):
            raise ValueError(f"{source}: unsupported graph: {_label(node, i)} is from op domain "
                             f"{node.domain!r}; only standard ONNX ops are read")
        for a in node.attribute:
            if a.t is not None and a.t.dims:
                declared += int(np.prod(check_shape(a.t.dims, source, f"attribute of {_label(node, i)}")))
    limit = max(4 * declared, 1 << 20)
    inputs = [i for i in graph.input if i.name not in consts]
    if len(inputs) != 1:
        raise ValueError(f"{source}: unsupported graph: {len(inputs)} graph inputs "
                         f"({[i.name for i in inputs]}); a classifier takes one input sequence")
    if len(graph.output) != 1:
        raise ValueError(f"{source}: unsupported graph: {len(graph.output)} graph outputs "
                         f"({[o.name for o in graph.output]}); expected one (the logits)")
    x = inputs[0]
    dims = [(d.dim_value if d.HasField("dim_value") else None) for d in x.type.tensor_type.shape.dim]
    if len(dims) not in (2, 3):
        raise ValueError(f"{source}: unsupported graph: input {x.name!r} has rank {len(dims)}; expected "
                         f"(batch, time, features), (time, batch, features) or (time, features)")
    for d in dims:
        if d is not None and not 0 < d <= MAX_ELEMENTS:
            raise ValueError(f"{source}: input {x.name!r} declares dimension {d}; refusing an absurd shape")
    n = dims[-1]
    if n is None:
        raise ValueError(f"{source}: unsupported graph: input {x.name!r} leaves its feature size open")
    # which input axis is the batch and which is time: try batch-first, then time-first
    if len(dims) == 2:
        hypotheses = [("o", "f")]
    else:
        hypotheses = [("b", "o", "f"), ("o", "b", "f")]
    failures: list[_Failure] = []
    for roles in hypotheses:
        shape = tuple((d if d is not None else (_DEFAULT_BATCH if r == "b" else _DEFAULT_T))
                      for d, r in zip(dims, roles))
        T = shape[roles.index("o")]
        if T * n > MAX_ELEMENTS:
            raise ValueError(f"{source}: input {x.name!r} of shape {shape} is too large")
        atoms = [InputAtom(n, t) for t in range(T)]
        xs = Sym(shape, list(roles), object_array((T,), lambda i: SymVec.of_atom(atoms[i[0]])))
        try:
            out = _evaluate(graph, consts, x.name, xs, source, limit)
        except _Failure as f:
            failures.append(f)
            continue
        try:
            return simplest(recognize(out, T, source))
        except ValueError as exc:      # the whole graph evaluated: this is the error to report
            failures.append(_Failure(str(exc), 1 << 40))
    raise max(failures, key=lambda f: f.progress)


def _evaluate(graph: Any, consts: dict[str, np.ndarray], x_name: str, x: Sym, source: str,
              limit: int) -> Sym:
    """Evaluate the nodes the output needs; returns the output's Sym."""
    values: dict[str, Any] = dict(consts)
    values[x_name] = x
    out_name = graph.output[0].name
    needed = {out_name}
    for node in reversed(graph.node):
        if any(o in needed for o in node.output):
            needed.update(i for i in node.input if i)
    progress = 0
    for i, node in enumerate(graph.node):
        if not any(o in needed for o in node.output):
            continue
        label = _label(node, i)
        progress += 1
        attrs = _attrs(node, source, label)
        try:
            ins = []
            for name in node.input:
                if not name:
                    ins.append(None)
                elif name in values:
                    ins.append(values[name])
                else:
                    raise Unsupported(f"reads {name!r}, which no earlier node computes")
            outs = _run(node, i, ins, attrs, limit)
        except (Unsupported, FoldError) as exc:
            weight = progress - (0.5 if isinstance(exc, ops.LayoutMismatch) else 0.0)
            raise _Failure(f"{source}: unsupported graph: {label}: {exc} (supported: the general "
                           f"recurrent classifiers of docs/API.md)", weight) from None
        for name, v in zip(node.output, outs):
            if name:
                values[name] = v
    out = values.get(out_name)
    if not isinstance(out, Sym):
        raise _Failure(f"{source}: unsupported graph: the output {out_name!r} does not depend on the "
                       f"input", progress)
    return out


def _run(node: Any, idx: int, ins: list, attrs: dict, limit: int) -> list:
    op = node.op_type
    if op == "Constant":
        for key in ("value", "value_float", "value_floats", "value_int", "value_ints"):
            if key in attrs:
                return [np.asarray(attrs[key])]
        raise Unsupported("a Constant without a numeric value")
    if op == "Shape":
        v = ins[0]
        return [shape_of(v.shape if isinstance(v, Sym) else np.shape(v), attrs)]
    if op == "Size" and isinstance(ins[0], Sym):
        return [np.asarray(int(np.prod(ins[0].shape)), dtype=np.int64)]
    if not any(isinstance(v, Sym) for v in ins):
        return [fold(op, ins, attrs, limit)] + ([None] if op == "Dropout" else [])
    if op not in _SYM_OPS:
        raise Unsupported("this op on an input-dependent tensor is not part of a recurrent classifier")
    for j, v in enumerate(ins[1:], 1):
        if isinstance(v, Sym) and op not in ("Add", "Sub", "Mul", "Div", "Concat"):
            raise Unsupported(f"its input {j} depends on the graph input; it must be a constant")
    x = ins[0]
    if op in ("Identity",):
        return [x]
    if op == "Dropout":
        if len(ins) > 2 and ins[2] is not None and bool(np.asarray(ins[2])):
            raise Unsupported("Dropout in training mode")
        return [x, None]
    if op == "Cast":
        if ONNX_DTYPES.get(int(attrs["to"])) not in (np.float32, np.float64, np.float16):
            raise Unsupported("casts an input-dependent tensor to a non-float type")
        return [x]
    if op == "Transpose":
        return [ops.transpose(x, attrs.get("perm"))]
    if op == "Reshape":
        return [ops.reshape(x, np.asarray(ins[1]), int(attrs.get("allowzero", 0)))]
    if op == "Flatten":
        return [ops.flatten(x, int(attrs.get("axis", 1)))]
    if op in ("Squeeze", "Unsqueeze"):
        axes = ins[1] if len(ins) > 1 and ins[1] is not None else attrs.get("axes")
        axes = None if axes is None else [int(a) for a in np.atleast_1d(axes)]
        if op == "Squeeze":
            return [ops.squeeze(x, axes)]
        if axes is None:
            raise Unsupported("Unsqueeze without axes")
        return [ops.unsqueeze(x, axes)]
    if op == "Gather":
        return [ops.gather(x, np.asarray(ins[1]), int(attrs.get("axis", 0)))]
    if op == "Slice":
        if len(ins) == 1:
            return [ops.slice_(x, attrs["starts"], attrs["ends"], attrs.get("axes"), None)]
        get = lambda k: ins[k] if len(ins) > k else None  # noqa: E731
        return [ops.slice_(x, ins[1], ins[2], get(3), get(4))]
    if op == "Concat":
        if not isinstance(x, Sym):
            x = next(v for v in ins if isinstance(v, Sym))
        return [ops.concat(ins, int(attrs["axis"]))]
    if op == "Expand":
        return [ops.expand(x, np.asarray(ins[1]))]
    if op == "MatMul":
        return [ops.matmul(ins[0], ins[1])]
    if op == "Gemm":
        return [ops.gemm(ins[0], ins[1], ins[2] if len(ins) > 2 else None, attrs)]
    if op in ("Add", "Sub", "Mul", "Div"):
        return [ops.binary(op, ins[0], ins[1])]
    if op == "Neg":
        return [x.map(lambda v: v.scale_rows(-np.ones(v.size)))]
    if op in ("ReduceMean", "ReduceSum"):
        axes = ins[1] if len(ins) > 1 and ins[1] is not None else attrs.get("axes")
        axes = None if axes is None else [int(a) for a in np.atleast_1d(axes)]
        if axes is None and attrs.get("noop_with_empty_axes", 0):
            return [x]
        return [ops.reduce(op, x, axes, bool(attrs.get("keepdims", 1)))]
    if op in ("Relu", "Tanh", "Sigmoid"):
        return [ops.activation(op.lower(), x, _label(node, idx))]
    if op in ("LSTM", "GRU", "RNN"):
        return ops.recurrent(op, _label(node, idx), ins, attrs)
    raise Unsupported("this op on an input-dependent tensor is not part of a recurrent classifier")
