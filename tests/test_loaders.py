"""Model loaders: .npz, .safetensors and ONNX files written by their own libraries.

Each loader reads a real file and must give back exactly the network it was
written from (same PyTorch-layout parameters, same logits). The ONNX graphs are
built with onnx.helper in ONNX's own gate orders; besides comparing with the
PyTorch-layout network they are run with ONNX's reference evaluator, so the
gate permutation is checked against ONNX's own semantics too.
"""
from __future__ import annotations

import numpy as np
import pytest

import popqorn_fast as pf
from conftest import DATA, random_weights

FIELDS = ("weight_ih", "weight_hh", "bias_ih", "bias_hh", "out_weight", "out_bias", "h0")


def _pytorch_dict(w) -> dict[str, np.ndarray]:
    return {"weight_ih_l0": w.weight_ih, "weight_hh_l0": w.weight_hh, "bias_ih_l0": w.bias_ih,
            "bias_hh_l0": w.bias_hh, "out.weight": w.out_weight, "out.bias": w.out_bias}


def _assert_same_network(a, b, x) -> None:
    assert type(a) is type(b)
    assert getattr(a, "activation", None) == getattr(b, "activation", None)
    for name in FIELDS + (("c0",) if a.kind == "lstm" else ()):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)
    np.testing.assert_array_equal(a.logits(x), b.logits(x))


# ----------------------------------------------------------------------------- npz

def test_npz_missing_file_and_missing_keys(tmp_path):
    with pytest.raises(FileNotFoundError, match="model file not found"):
        pf.load_model(tmp_path / "nope.npz")
    w = random_weights("gru", np.random.default_rng(0))
    d = _pytorch_dict(w)
    del d["bias_hh_l0"]
    np.savez(tmp_path / "m.npz", **d)
    with pytest.raises(ValueError) as e:
        pf.load_model(tmp_path / "m.npz")
    msg = str(e.value)
    assert "bias_hh_l0" in msg and "found" in msg and "expected" in msg and "out.weight" in msg


def test_unknown_suffix_is_an_error(tmp_path):
    f = tmp_path / "m.pt"
    f.write_bytes(b"x")
    with pytest.raises(ValueError, match="unknown model format.*npz.*safetensors.*onnx"):
        pf.load_model(f)


def test_load_inputs_npy_npz_and_errors(tmp_path):
    rng = np.random.default_rng(1)
    X = rng.normal(size=(3, 4, 2))
    np.save(tmp_path / "a.npy", X)
    got, y = pf.load_inputs(tmp_path / "a.npy")
    np.testing.assert_array_equal(got, X)
    assert y is None
    np.save(tmp_path / "one.npy", X[0])
    assert pf.load_inputs(tmp_path / "one.npy")[0].shape == (1, 4, 2)
    np.savez(tmp_path / "b.npz", X=X, y=np.array([2, 0, 1]))
    got, y = pf.load_inputs(tmp_path / "b.npz")
    assert y.tolist() == [2, 0, 1]
    np.savez(tmp_path / "c.npz", inputs=X)
    with pytest.raises(ValueError, match="needs key 'X'.*found \\['inputs'\\]"):
        pf.load_inputs(tmp_path / "c.npz")
    np.savez(tmp_path / "d.npz", X=X, y=np.array([1, 2]))
    with pytest.raises(ValueError, match="labels y must be 3 integers"):
        pf.load_inputs(tmp_path / "d.npz")


# ----------------------------------------------------------------------------- safetensors

@pytest.mark.parametrize("kind,activation", [("rnn", "relu"), ("lstm", "tanh"), ("gru", "tanh")])
def test_safetensors_roundtrip(kind, activation, tmp_path):
    st = pytest.importorskip("safetensors.numpy")
    rng = np.random.default_rng(2)
    w = random_weights(kind, rng, s=5, n=3, C=4, activation=activation, states=True)
    tensors = {k: np.ascontiguousarray(v) for k, v in _pytorch_dict(w).items()}
    tensors["h0"] = np.ascontiguousarray(w.h0)
    if kind == "lstm":
        tensors["c0"] = np.ascontiguousarray(w.c0)
    meta = {"kind": kind, "activation": activation}
    st.save_file(tensors, str(tmp_path / "m.safetensors"), metadata=meta)
    got = pf.load_model(tmp_path / "m.safetensors")
    _assert_same_network(w, got, rng.normal(size=(2, 6, 3)))


def test_safetensors_float32_without_metadata_and_missing_keys(tmp_path):
    st = pytest.importorskip("safetensors.numpy")
    w = pf.load_model(DATA / "lstm_T4_h24.npz")
    with np.load(DATA / "lstm_T4_h24.npz") as d:
        tensors = {k: np.ascontiguousarray(d[k], dtype=np.float32) for k in d.files
                   if k not in ("kind", "activation", "X", "y")}
        X = d["X"][:20]
    st.save_file(tensors, str(tmp_path / "m.safetensors"))
    got = pf.load_model(tmp_path / "m.safetensors")
    assert got.kind == "lstm"  # inferred from the shapes
    np.testing.assert_allclose(got.logits(X), w.logits(X), rtol=1e-5, atol=1e-5)
    del tensors["out.bias"]
    st.save_file(tensors, str(tmp_path / "bad.safetensors"))
    with pytest.raises(ValueError, match="missing keys \\['out.bias'\\].*found.*expected"):
        pf.load_model(tmp_path / "bad.safetensors")


# ----------------------------------------------------------------------------- ONNX

# PyTorch gate blocks in ONNX's order: LSTM i,o,f,c from i,f,g,o; GRU z,r,h from r,z,n
_TO_ONNX_BLOCKS = {"lstm": [0, 3, 1, 2], "gru": [1, 0, 2], "rnn": [0]}
_OP = {"lstm": "LSTM", "gru": "GRU", "rnn": "RNN"}


def _onnx_blocks(a: np.ndarray, kind: str, s: int) -> np.ndarray:
    return np.concatenate([a[k * s:(k + 1) * s] for k in _TO_ONNX_BLOCKS[kind]])


def _onnx_model(w, T: int, batch: int, head: str = "gemm", linear_before_reset: int = 1,
                extra_node: bool = False, direction: str = "forward"):
    """A one-layer ONNX graph equivalent to ``w`` (float64 throughout)."""
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper, numpy_helper

    kind, s, n, C = w.kind, w.hidden_size, w.input_size, w.num_classes
    G = {"rnn": 1, "lstm": 4, "gru": 3}[kind]
    inits = {
        "W": _onnx_blocks(w.weight_ih, kind, s)[None],
        "R": _onnx_blocks(w.weight_hh, kind, s)[None],
        "B": np.concatenate([_onnx_blocks(w.bias_ih, kind, s), _onnx_blocks(w.bias_hh, kind, s)])[None],
        "h_init": np.tile(w.h0, (1, batch, 1)),
        "axes0": np.array([0], dtype=np.int64),
    }
    rec_inputs = ["x", "W", "R", "B", "", "h_init"]
    attrs: dict = {"hidden_size": s, "direction": direction}
    if kind == "lstm":
        inits["c_init"] = np.tile(w.c0, (1, batch, 1))
        rec_inputs.append("c_init")
    if kind == "gru":
        attrs["linear_before_reset"] = linear_before_reset
    if kind == "rnn":
        attrs["activations"] = ["Relu" if w.activation == "relu" else "Tanh"]
    nodes = [helper.make_node(_OP[kind], rec_inputs, ["Y", "Y_h"], name="rec", **attrs),
             helper.make_node("Squeeze", ["Y_h", "axes0"], ["h_last"], name="sq")]
    last = "h_last"
    if extra_node:
        nodes.append(helper.make_node("LeakyRelu", [last], ["h_relu"], name="sneaky_relu"))
        last = "h_relu"
    if head == "gemm":
        inits["Wout"], inits["bout"] = w.out_weight * 2.0, w.out_bias * 4.0
        nodes.append(helper.make_node("Gemm", [last, "Wout", "bout"], ["logits"], name="head",
                                      transB=1, alpha=0.5, beta=0.25))
    else:
        inits["WoutT"], inits["bout"] = np.ascontiguousarray(w.out_weight.T), w.out_bias
        nodes += [helper.make_node("MatMul", [last, "WoutT"], ["mm"], name="head"),
                  helper.make_node("Add", ["bout", "mm"], ["logits"], name="bias")]
    graph = helper.make_graph(
        nodes, "net",
        [helper.make_tensor_value_info("x", TensorProto.DOUBLE, [T, batch, n])],
        [helper.make_tensor_value_info("logits", TensorProto.DOUBLE, [batch, C])],
        [numpy_helper.from_array(np.ascontiguousarray(v), name=k) for k, v in inits.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.checker.check_model(model)
    return model


@pytest.mark.parametrize("kind,head,activation", [("lstm", "gemm", "tanh"), ("gru", "matmul", "tanh"),
                                                  ("rnn", "gemm", "relu"), ("rnn", "matmul", "tanh"),
                                                  ("lstm", "matmul", "tanh"), ("gru", "gemm", "tanh")])
def test_onnx_matches_pytorch_layout_and_onnx_semantics(kind, head, activation, tmp_path):
    onnx = pytest.importorskip("onnx")
    from onnx.reference import ReferenceEvaluator

    rng = np.random.default_rng(3)
    T, batch = 5, 3
    w = random_weights(kind, rng, s=4, n=3, C=5, activation=activation, states=True)
    model = _onnx_model(w, T, batch, head=head)
    path = tmp_path / "m.onnx"
    onnx.save(model, str(path))
    got = pf.load_model(path)
    x = rng.normal(size=(batch, T, 3))
    # the same network in PyTorch layout ...
    for name in FIELDS + (("c0",) if kind == "lstm" else ()):
        np.testing.assert_allclose(getattr(got, name), getattr(w, name), rtol=1e-15, atol=0, err_msg=name)
    np.testing.assert_allclose(got.logits(x), w.logits(x), rtol=1e-13, atol=1e-13)
    if activation == "relu":
        return  # ONNX's reference evaluator implements RNN with Tanh only
    # ... and the function ONNX itself computes (time-major input)
    (ref,) = ReferenceEvaluator(model).run(None, {"x": np.ascontiguousarray(x.transpose(1, 0, 2))})
    np.testing.assert_allclose(got.logits(x), ref, rtol=1e-10, atol=1e-10)


def test_onnx_gru_linear_before_reset_0_is_refused(tmp_path):
    onnx = pytest.importorskip("onnx")
    w = random_weights("gru", np.random.default_rng(4))
    onnx.save(_onnx_model(w, 3, 1, linear_before_reset=0), str(tmp_path / "g.onnx"))
    with pytest.raises(ValueError, match="linear_before_reset=0.*re-export with linear_before_reset=1"):
        pf.load_model(tmp_path / "g.onnx")


def test_onnx_unsupported_graphs_name_the_node(tmp_path):
    onnx = pytest.importorskip("onnx")
    w = random_weights("lstm", np.random.default_rng(5))
    onnx.save(_onnx_model(w, 3, 1, extra_node=True), str(tmp_path / "a.onnx"))
    with pytest.raises(ValueError, match="unsupported graph.*LeakyRelu node 'sneaky_relu'"):
        pf.load_model(tmp_path / "a.onnx")
    model = _onnx_model(w, 3, 1)
    for a in model.graph.node[0].attribute:
        if a.name == "direction":
            a.s = b"bidirectional"
    onnx.save(model, str(tmp_path / "b.onnx"))
    with pytest.raises(ValueError, match="unsupported graph.*LSTM node 'rec'.*bidirectional"):
        pf.load_model(tmp_path / "b.onnx")
    (tmp_path / "c.onnx").write_bytes(b"not a protobuf at all")
    with pytest.raises(ValueError, match="not a readable ONNX model"):
        pf.load_model(tmp_path / "c.onnx")
