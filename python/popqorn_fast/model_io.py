"""Loading saved models and inputs.

``load_model(path)`` dispatches on the file suffix:

- ``.npz``: arrays with PyTorch parameter names (``weight_ih_l0`` ... ``out.bias``),
  optional ``kind``, ``activation``, ``h0``, ``c0``;
- ``.safetensors``: the same names as tensors, ``kind`` / ``activation`` in the
  file's metadata (read with ``safetensors.numpy``; no PyTorch);
- ``.onnx``: a graph of one ``LSTM`` / ``GRU`` / ``RNN`` node followed by a
  ``Gemm`` or ``MatMul`` (+ ``Add``) head on its last hidden state ``Y_h``, gate
  orders converted exactly to PyTorch's (needs the ``onnx`` package).

Keras weights are converted with ``RNNWeights/LSTMWeights/GRUWeights.from_keras``.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Optional, Union

import numpy as np

from .weights import GRUWeights, LSTMWeights, RNNWeights, _PYTORCH_KEYS

Weights = Union[RNNWeights, LSTMWeights, GRUWeights]
_CLASSES = {"rnn": RNNWeights, "lstm": LSTMWeights, "gru": GRUWeights}
_GATES_TO_KIND = {1: "rnn", 4: "lstm", 3: "gru"}


def default_model_path() -> Path:
    """Path of the bundled default model (an LSTM digits classifier)."""
    return Path(__file__).resolve().parent / "data" / "default_model.npz"


def load_model(path: Union[str, os.PathLike]) -> Weights:
    """Read a model, choosing the reader from the file suffix.

    Parameters
    ----------
    path : str or path-like
        ``.npz`` (PyTorch parameter names: keys ``weight_ih_l0``, ``weight_hh_l0``,
        ``bias_ih_l0``, ``bias_hh_l0``, ``out.weight``, ``out.bias`` and optionally
        ``kind`` ("rnn" | "lstm" | "gru"), ``activation`` ("tanh" | "relu"), ``h0``,
        ``c0``; other keys such as a stored test set ``X``, ``y`` are ignored; the kind
        is inferred from the shapes when ``kind`` is absent), ``.safetensors`` (see
        :func:`load_safetensors`) or ``.onnx`` (see :func:`load_onnx`).

    Returns
    -------
    RNNWeights, LSTMWeights or GRUWeights

    Raises
    ------
    FileNotFoundError
        The file does not exist.
    ValueError
        An unknown suffix, an unreadable file, missing keys (the message lists the keys
        found and the ones expected) or an unsupported graph.
    ImportError
        The optional package a format needs is not installed (the message names the
        ``pip install`` command).
    """
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"model file not found: {p}")
    suffix = p.suffix.lower()
    if suffix == ".safetensors":
        return load_safetensors(p)
    if suffix == ".onnx":
        return load_onnx(p)
    if suffix != ".npz":
        raise ValueError(f"{p}: unknown model format {p.suffix!r}; supported: .npz, .safetensors, .onnx "
                         f"(Keras weights: use LSTMWeights.from_keras etc.)")
    return load_npz(p)


def load_npz(path: Union[str, os.PathLike]) -> Weights:
    """Read a model from a ``.npz`` with PyTorch parameter names (see :func:`load_model`)."""
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"model file not found: {p}")
    try:
        data = np.load(p, allow_pickle=False)
        keys = set(data.files)
    except Exception as exc:  # noqa: BLE001 - any unreadable file
        raise ValueError(f"{p} is not a readable .npz file: {exc}") from exc
    with data:
        _check_keys(keys, p)
        arrays = {k: np.array(data[k]) for k in keys}
    return weights_from_arrays(arrays, source=str(p))


def _check_keys(keys: set[str], source: Any) -> None:
    missing = [k for k in _PYTORCH_KEYS if k not in keys]
    if missing:
        raise ValueError(f"{source}: missing keys {missing}; found {sorted(keys)}; "
                         f"expected {list(_PYTORCH_KEYS)} (+ optional kind, activation, h0, c0)")


def load_safetensors(path: Union[str, os.PathLike]) -> Weights:
    """Read a model from a ``.safetensors`` file with PyTorch parameter names.

    Tensors ``weight_ih_l0``, ``weight_hh_l0``, ``bias_ih_l0``, ``bias_hh_l0``,
    ``out.weight``, ``out.bias`` (optionally ``h0``, ``c0``); the file's metadata may
    hold ``kind`` and ``activation`` (otherwise the kind is inferred from the shapes and
    an RNN is ``tanh``). Read with ``safetensors``' NumPy API (no PyTorch needed).

    Parameters
    ----------
    path : str or path-like

    Returns
    -------
    RNNWeights, LSTMWeights or GRUWeights
    """
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"model file not found: {p}")
    try:
        from safetensors import safe_open
    except ImportError:
        raise ImportError("reading .safetensors models needs the safetensors package: "
                          "pip install popqorn_fast[safetensors]") from None
    try:
        with safe_open(str(p), framework="np") as fh:
            arrays: dict[str, Any] = {k: np.array(fh.get_tensor(k)) for k in fh.keys()}
            meta = fh.metadata() or {}
    except Exception as exc:  # noqa: BLE001 - any unreadable file
        raise ValueError(f"{p} is not a readable .safetensors file: {exc}") from exc
    _check_keys(set(arrays), p)
    for key in ("kind", "activation"):
        if key in meta:
            arrays[key] = np.array(meta[key])
    return weights_from_arrays(arrays, source=str(p))


# ONNX gate orders -> PyTorch's: LSTM i,o,f,c -> i,f,g,o ; GRU z,r,h -> r,z,n ; RNN one gate
_ONNX_GATE_PERM = {"LSTM": [0, 2, 3, 1], "GRU": [1, 0, 2], "RNN": [0]}
_ONNX_DEFAULT_ACTS = {"LSTM": ["Sigmoid", "Tanh", "Tanh"], "GRU": ["Sigmoid", "Tanh"]}


def load_onnx(path: Union[str, os.PathLike]) -> Weights:
    """Read a model from an ONNX graph: one recurrent node and a linear head.

    Supported graphs: graph input -> one ``LSTM``, ``GRU`` or ``RNN`` node (forward
    direction, default activations; ``Tanh`` or ``Relu`` for ``RNN``; a GRU must have
    ``linear_before_reset=1``, PyTorch's semantics) -> its last hidden state ``Y_h``,
    optionally through ``Squeeze`` / ``Reshape`` (to ``(batch, hidden)``) -> ``Gemm``, or
    ``MatMul`` optionally followed by ``Add`` -> a graph output. Weights, biases and a
    fixed ``initial_h`` / ``initial_c`` are initializers (or ``Constant`` nodes). ONNX
    gate orders (LSTM i, o, f, c; GRU z, r, h) are permuted exactly to PyTorch's
    (i, f, g, o; r, z, n).

    Parameters
    ----------
    path : str or path-like

    Returns
    -------
    RNNWeights, LSTMWeights or GRUWeights

    Raises
    ------
    ValueError
        ``unsupported graph`` naming the offending node (or attribute) otherwise.
    """
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"model file not found: {p}")
    try:
        import onnx
    except ImportError:
        raise ImportError("reading .onnx models needs the onnx package: pip install popqorn_fast[onnx]") from None
    try:
        model = onnx.load(str(p))
    except Exception as exc:  # noqa: BLE001 - any unreadable file
        raise ValueError(f"{p} is not a readable ONNX model: {exc}") from exc
    return weights_from_onnx(model, source=str(p))


def _node_name(node: Any, idx: int) -> str:
    return f"{node.op_type} node {node.name!r}" if node.name else f"{node.op_type} node #{idx}"


def weights_from_onnx(model: Any, source: str = "ONNX model") -> Weights:
    """Convert a loaded ``onnx.ModelProto`` (see :func:`load_onnx` for what is supported)."""
    from onnx import helper, numpy_helper

    graph = model.graph
    consts: dict[str, np.ndarray] = {init.name: numpy_helper.to_array(init) for init in graph.initializer}
    nodes = list(enumerate(graph.node))
    used: set[int] = set()
    for idx, node in nodes:
        if node.op_type == "Constant" and len(node.output) == 1:
            attr = {a.name: a for a in node.attribute}
            if "value" in attr:
                consts[node.output[0]] = numpy_helper.to_array(attr["value"].t)
                used.add(idx)
    graph_inputs = {i.name for i in graph.input} - set(consts)
    graph_outputs = {o.name for o in graph.output}

    def unsupported(msg: str) -> ValueError:
        return ValueError(f"{source}: unsupported graph: {msg} (supported: one LSTM/GRU/RNN node, then a "
                          f"Gemm or MatMul(+Add) head on its last hidden state Y_h)")

    rec = [(i, n) for i, n in nodes if n.op_type in _ONNX_GATE_PERM]
    if len(rec) != 1:
        names = ", ".join(_node_name(n, i) for i, n in rec) or "none"
        raise unsupported(f"expected exactly one LSTM, GRU or RNN node, found {len(rec)} ({names})")
    ridx, rnode = rec[0]
    used.add(ridx)
    op = rnode.op_type
    rname = _node_name(rnode, ridx)
    attrs = {a.name: helper.get_attribute_value(a) for a in rnode.attribute}

    def text(v: Any) -> str:
        return v.decode() if isinstance(v, bytes) else str(v)

    direction = text(attrs.get("direction", "forward"))
    if direction != "forward":
        raise unsupported(f"{rname} has direction={direction!r}; only 'forward' is supported")
    if "clip" in attrs:
        raise unsupported(f"{rname} has a cell clip ({attrs['clip']}); clipping is not supported")
    if int(attrs.get("input_forget", 0)) != 0:
        raise unsupported(f"{rname} has input_forget=1 (coupled input/forget gates); not supported")
    acts = [text(a) for a in attrs.get("activations", [])]
    activation = "tanh"
    if op == "RNN":
        act = acts[0] if acts else "Tanh"
        if act not in ("Tanh", "Relu"):
            raise unsupported(f"{rname} has activation {act!r}; only Tanh or Relu")
        activation = act.lower()
    elif acts and acts != _ONNX_DEFAULT_ACTS[op]:
        raise unsupported(f"{rname} has activations {acts}; only the defaults {_ONNX_DEFAULT_ACTS[op]}")
    if op == "GRU" and int(attrs.get("linear_before_reset", 0)) != 1:
        raise ValueError(f"{source}: {rname} has linear_before_reset=0: the reset gate multiplies the hidden "
                         f"state before its linear map, which is not PyTorch's GRU (b_hn inside the reset "
                         f"product); re-export with linear_before_reset=1 (torch.onnx does)")

    ins = list(rnode.input) + [""] * (8 - len(rnode.input))
    if ins[0] not in graph_inputs:
        raise unsupported(f"the input X of {rname} must be a graph input, got {ins[0]!r} "
                          f"(produced by another node)")

    def param(k: int, what: str, required: bool) -> Optional[np.ndarray]:
        name = ins[k]
        if not name:
            if required:
                raise unsupported(f"{rname} has no {what}")
            return None
        if name not in consts:
            raise unsupported(f"{rname}'s {what} {name!r} is not an initializer or Constant (a runtime "
                              f"input); the certifier needs fixed weights")
        return np.asarray(consts[name], dtype=np.float64)

    W, R = param(1, "W", True), param(2, "R", True)
    B = param(3, "B", False)
    if ins[4]:
        raise unsupported(f"{rname} has a sequence_lens input {ins[4]!r}; sequences must be full length")
    h_init = param(5, "initial_h", False)
    c_init = param(6, "initial_c", False) if op == "LSTM" else None
    peep = param(7, "P (peepholes)", False) if op == "LSTM" else None
    G = len(_ONNX_GATE_PERM[op])
    assert W is not None and R is not None
    if W.ndim != 3 or W.shape[0] != 1 or R.ndim != 3 or R.shape[0] != 1 or R.shape[1] != G * R.shape[2]:
        raise unsupported(f"{rname} has W {W.shape} and R {R.shape}; expected (1, {G}*hidden, n) and "
                          f"(1, {G}*hidden, hidden)")
    s = R.shape[2]
    if "hidden_size" in attrs and int(attrs["hidden_size"]) != s:
        raise unsupported(f"{rname} has hidden_size={attrs['hidden_size']} but R of shape {R.shape}")
    if W.shape[1] != G * s:
        raise unsupported(f"{rname} has W {W.shape}; expected (1, {G * s}, n)")
    if B is None:
        B = np.zeros((1, 2 * G * s))
    if B.shape != (1, 2 * G * s):
        raise unsupported(f"{rname} has B {B.shape}; expected (1, {2 * G * s})")
    if peep is not None and np.any(peep != 0):
        raise unsupported(f"{rname} has non-zero peephole weights P; not supported")

    def state(v: Optional[np.ndarray], what: str) -> Optional[np.ndarray]:
        if v is None:
            return None
        if v.ndim != 3 or v.shape[0] != 1 or v.shape[2] != s or np.any(v != v[:, :1, :]):
            raise unsupported(f"{rname}'s {what} has shape {v.shape}; expected (1, batch, {s}) with every "
                              f"batch row equal (one initial state)")
        return v[0, 0].copy()

    h0, c0 = state(h_init, "initial_h"), state(c_init, "initial_c")
    rows = np.concatenate([np.arange(g * s, (g + 1) * s) for g in _ONNX_GATE_PERM[op]])
    w_ih, w_hh = W[0][rows], R[0][rows]
    b_ih, b_hh = B[0, :G * s][rows], B[0, G * s:][rows]

    consumers: dict[str, list[tuple[int, Any]]] = {}
    for i, n in nodes:
        for name in n.input:
            consumers.setdefault(name, []).append((i, n))
    outs = list(rnode.output) + [""] * (3 - len(rnode.output))
    for k, label in ((0, "Y (every time step)"), (2, "Y_c")):
        if outs[k] and outs[k] in consumers:
            i, n = consumers[outs[k]][0]
            raise unsupported(f"{_node_name(n, i)} reads {rname}'s output {label}; the head must read Y_h")
    cur = outs[1]
    if not cur:
        raise unsupported(f"{rname} has no Y_h output")

    def single_consumer(name: str) -> tuple[int, Any]:
        cs = consumers.get(name, [])
        if len(cs) != 1:
            if not cs:
                raise unsupported(f"{name!r} feeds no linear head")
            raise unsupported(f"{name!r} feeds {len(cs)} nodes: " + ", ".join(_node_name(n, i) for i, n in cs))
        return cs[0]

    # layout-only nodes between Y_h (1, batch, hidden) and the head
    while True:
        i, n = single_consumer(cur)
        if n.op_type == "Squeeze":
            axes = helper.get_attribute_value(n.attribute[0]).copy() if n.attribute else None
            if len(n.input) > 1 and n.input[1]:
                if n.input[1] not in consts:
                    raise unsupported(f"{_node_name(n, i)} has runtime axes")
                axes = consts[n.input[1]].tolist()
            if axes is not None and [int(a) for a in np.atleast_1d(axes)] not in ([0], [-3]):
                raise unsupported(f"{_node_name(n, i)} squeezes axes {axes}; only the direction axis 0")
        elif n.op_type == "Reshape":
            shape = consts.get(n.input[1]) if len(n.input) > 1 else None
            if shape is None or shape.ndim != 1 or len(shape) < 2 or int(shape[-1]) != s:
                raise unsupported(f"{_node_name(n, i)} reshapes to {None if shape is None else shape.tolist()}; "
                                  f"only to (batch, {s})")
        else:
            break
        used.add(i)
        cur = n.output[0]

    if n.op_type == "Gemm":
        ga = {a.name: helper.get_attribute_value(a) for a in n.attribute}
        if n.input[0] != cur or int(ga.get("transA", 0)):
            raise unsupported(f"{_node_name(n, i)} must take the hidden state as A (transA=0)")
        if n.input[1] not in consts:
            raise unsupported(f"{_node_name(n, i)}'s B is not an initializer")
        Bm = np.asarray(consts[n.input[1]], dtype=np.float64)
        out_w = Bm if int(ga.get("transB", 0)) else Bm.T
        out_w = float(ga.get("alpha", 1.0)) * out_w
        if len(n.input) > 2 and n.input[2]:
            if n.input[2] not in consts:
                raise unsupported(f"{_node_name(n, i)}'s C is not an initializer")
            bias = float(ga.get("beta", 1.0)) * np.asarray(consts[n.input[2]], dtype=np.float64)
        else:
            bias = np.zeros(1)
    elif n.op_type == "MatMul":
        if n.input[0] != cur or n.input[1] not in consts:
            raise unsupported(f"{_node_name(n, i)} must multiply the hidden state (left) by an initializer")
        out_w = np.asarray(consts[n.input[1]], dtype=np.float64).T
        bias = np.zeros(1)
        nxt = consumers.get(n.output[0], [])
        if len(nxt) == 1 and nxt[0][1].op_type == "Add":
            used.add(i)
            mm_out = n.output[0]
            i, n = nxt[0]
            b_names = [x for x in n.input if x != mm_out]
            if len(n.input) != 2 or len(b_names) != 1 or b_names[0] not in consts:
                raise unsupported(f"{_node_name(n, i)} must add a constant bias to the MatMul output")
            bias = np.asarray(consts[b_names[0]], dtype=np.float64)
    else:
        raise unsupported(f"{_node_name(n, i)} follows the recurrent layer; expected Gemm or MatMul")
    used.add(i)
    if out_w.ndim != 2 or out_w.shape[1] != s:
        raise unsupported(f"the head weight has shape {out_w.shape} after conversion; expected (classes, {s})")
    C = out_w.shape[0]
    if bias.size not in (1, C):
        raise unsupported(f"the head bias has shape {bias.shape}; expected ({C},)")
    out_b = np.broadcast_to(bias.reshape(-1), (C,)).copy()
    if n.output[0] not in graph_outputs:
        raise unsupported(f"the output of {_node_name(n, i)} is not a graph output")
    extra = [(i2, n2) for i2, n2 in nodes if i2 not in used]
    if extra:
        i2, n2 = extra[0]
        raise unsupported(f"{_node_name(n2, i2)} is not part of a recurrent layer + linear head")
    kw: dict[str, Any] = {"h0": h0}
    if op == "RNN":
        return RNNWeights(w_ih, w_hh, b_ih, b_hh, out_w, out_b, activation=activation, **kw)
    if op == "LSTM":
        return LSTMWeights(w_ih, w_hh, b_ih, b_hh, out_w, out_b, c0=c0, **kw)
    return GRUWeights(w_ih, w_hh, b_ih, b_hh, out_w, out_b, **kw)


def weights_from_arrays(arrays: dict[str, Any], source: str = "model") -> Union[RNNWeights, LSTMWeights, GRUWeights]:
    """Build the right weights class from a PyTorch-named mapping (kind from ``kind`` or shapes)."""
    if "kind" in arrays:
        kind = str(np.asarray(arrays["kind"]).item()).lower()
        if kind not in _CLASSES:
            raise ValueError(f"{source}: kind must be 'rnn', 'lstm' or 'gru', got {kind!r}")
    else:
        w_hh = np.asarray(arrays["weight_hh_l0"])
        if w_hh.ndim != 2 or w_hh.shape[1] == 0 or w_hh.shape[0] % w_hh.shape[1]:
            raise ValueError(f"{source}: cannot infer the kind from weight_hh_l0 of shape {w_hh.shape}")
        gates = w_hh.shape[0] // w_hh.shape[1]
        if gates not in _GATES_TO_KIND:
            raise ValueError(f"{source}: weight_hh_l0 of shape {w_hh.shape} has {gates} gates; "
                             f"expected 1 (RNN), 4 (LSTM) or 3 (GRU)")
        kind = _GATES_TO_KIND[gates]
    kwargs: dict[str, Any] = {}
    if kind == "rnn" and "activation" in arrays:
        kwargs["activation"] = str(np.asarray(arrays["activation"]).item())
    for state in ("h0", "c0"):
        if state in arrays and (state == "h0" or kind == "lstm"):
            kwargs[state] = arrays[state]
    return _CLASSES[kind].from_pytorch(arrays, **kwargs)


def load_inputs(path: Union[str, os.PathLike]) -> tuple[np.ndarray, Optional[np.ndarray]]:
    """Read input sequences and optional labels.

    Parameters
    ----------
    path : str or path-like
        ``.npy`` holding an ``(N, T, n)`` batch or one ``(T, n)`` sequence, or ``.npz``
        with key ``X`` (the same) and optional ``y`` (``N`` integer labels).

    Returns
    -------
    X : numpy.ndarray, shape (N, T, n)
        As stored (a single sequence gets a leading axis of 1).
    y : numpy.ndarray of int, shape (N,), or None
    """
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"inputs file not found: {p}")
    if p.suffix.lower() not in (".npy", ".npz"):
        raise ValueError(f"{p}: inputs must be a .npy array (N, T, n) or a .npz with X and optional y; "
                         f"got suffix {p.suffix!r}")
    try:
        if p.suffix.lower() == ".npz":
            with np.load(p, allow_pickle=False) as d:
                if "X" not in d.files:
                    raise ValueError(f"{p}: an inputs .npz needs key 'X' (and optional 'y'); "
                                     f"found {sorted(d.files)}")
                X = np.array(d["X"])
                y = np.array(d["y"]) if "y" in d.files else None
        else:
            X, y = np.load(p, allow_pickle=False), None
    except ValueError:
        raise
    except Exception as exc:  # noqa: BLE001 - any unreadable file
        raise ValueError(f"{p} is not a readable {p.suffix} file: {exc}") from exc
    if X.ndim == 2:
        X = X[None]
    if X.ndim != 3:
        raise ValueError(f"{p}: inputs must have shape (N, T, n) or (T, n), got {X.shape}")
    if y is not None:
        y = np.atleast_1d(y)
        if y.shape != (X.shape[0],) or not (np.issubdtype(y.dtype, np.integer)
                                            or np.all(np.mod(y, 1) == 0)):
            raise ValueError(f"{p}: labels y must be {X.shape[0]} integers (one per input), got "
                             f"shape {y.shape}, dtype {y.dtype}")
        y = y.astype(np.int64)
    return X, y
