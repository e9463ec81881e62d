"""Dev-only: write the model files that real frameworks produce, for tests/test_exports.py.

Builds small seeded PyTorch and Keras 3 classifiers of every general shape (docs/API.md
"General models") and saves each as its framework writes it:

* PyTorch: ``torch.onnx.export`` with ``dynamo=False`` (TorchScript-based) and
  ``dynamo=True``, the module's ``state_dict`` as ``np.savez(**sd)`` and as
  ``safetensors.torch.save_file`` (real module attribute names);
* Keras 3: ``model.save("NAME.keras")``.

Beside each model, ``NAME.expected.npz`` holds inputs ``X`` (N, T, n) (batch first, what
``load_model(...).logits`` takes), the logits the framework computed (``logits``) and what
the state_dict loaders need to be told (``readout``, ``head_activation``, ``activation``).
The manifest ``index.json`` lists every file and its model.

Needs torch, onnx, onnxscript, safetensors, keras (KERAS_BACKEND=torch) -- never imported by
the package or by the tests. Run from the repository root::

    python tools/make_export_fixtures.py            # writes tests/data/exports/
"""
from __future__ import annotations

import json
import os
import sys
import warnings
from pathlib import Path
from typing import Optional

os.environ.setdefault("KERAS_BACKEND", "torch")

import numpy as np
import torch
import torch.nn as nn

OUT = Path(__file__).resolve().parent.parent / "tests" / "data" / "exports"
N_INPUTS = 3


class Net(nn.Module):
    """frame (Linear+ReLU, optional) -> rnn (nn.RNN/LSTM/GRU) -> readout -> head."""

    def __init__(self, kind: str, n: int, h: int, layers: int, bidir: bool, readout: str,
                 head: str, frame: int, batch_first: bool, nonlinearity: str = "tanh",
                 classes: int = 3) -> None:
        super().__init__()
        self.batch_first, self.readout, self.bidir = batch_first, readout, bidir
        if frame:
            self.frame = nn.Sequential(nn.Linear(n, frame), nn.ReLU())
            n = frame
        kw = {"nonlinearity": nonlinearity} if kind == "RNN" else {}
        self.rnn = getattr(nn, kind)(n, h, num_layers=layers, bidirectional=bidir,
                                     batch_first=batch_first, **kw)
        width = h * (2 if bidir else 1)
        if head == "linear":
            self.fc = nn.Linear(width, classes)
        else:
            self.classifier = nn.Sequential(nn.Linear(width, 6), nn.ReLU(), nn.Linear(6, classes))
        self.head_kind = head

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if hasattr(self, "frame"):
            x = self.frame(x)
        out, h_n = self.rnn(x)
        if isinstance(h_n, tuple):
            h_n = h_n[0]
        if self.readout == "last":
            z = torch.cat([h_n[-2], h_n[-1]], dim=1) if self.bidir else h_n[-1]
        elif self.readout == "last_step":
            z = out[:, -1] if self.batch_first else out[-1]
        else:
            z = out.mean(1) if self.batch_first else out.mean(0)
        return self.fc(z) if self.head_kind == "linear" else self.classifier(z)


# (layers, bidirectional, readout, head, frame width): a covering set of the general shapes
SHAPES = [
    (1, False, "last", "linear", 0),
    (2, False, "last_step", "mlp", 0),
    (1, True, "mean", "linear", 0),
    (2, True, "last", "mlp", 5),
    (1, False, "mean", "mlp", 4),
    (2, True, "last_step", "linear", 0),
    (1, True, "last", "linear", 0),
    (2, False, "last", "linear", 4),
]


def torch_models() -> list[tuple[str, Net, dict]]:
    out = []
    for kind in ("LSTM", "GRU", "RNN"):
        for i, (layers, bidir, readout, head, frame) in enumerate(SHAPES):
            bf = i % 2 == 0
            act = "relu" if kind == "RNN" and i in (1, 4) else "tanh"
            name = (f"torch_{kind.lower()}{'_relu' if act == 'relu' else ''}_l{layers}"
                    f"{'_bi' if bidir else ''}_{readout}_{head}{'_frame' if frame else ''}"
                    f"_{'bf' if bf else 'tf'}")
            torch.manual_seed(1000 + 17 * i + {"LSTM": 0, "GRU": 1, "RNN": 2}[kind])
            net = Net(kind, 3, 5 if i % 3 else 4, layers, bidir, readout, head, frame, bf, act).eval()
            meta = {"readout": readout, "head_activation": "relu", "activation": act,
                    "batch_first": bf, "T": 4 if i % 2 else 3, "kind": kind.lower(), "layers": layers,
                    "bidirectional": bidir, "head": head, "frame": bool(frame)}
            out.append((name, net, meta))
    return out


def export_torch(name: str, net: Net, meta: dict, index: dict) -> None:
    import onnx
    import safetensors.torch
    from onnx.reference import ReferenceEvaluator

    T, bf = meta["T"], meta["batch_first"]
    g = torch.Generator().manual_seed(7)
    X = torch.randn(N_INPUTS, T, 3, generator=g)
    x_in = X if bf else X.transpose(0, 1).contiguous()
    with torch.no_grad():
        logits = net(x_in).double().numpy()
    files = []
    for dynamo in (False, True):
        path = OUT / f"{name}.{'dynamo' if dynamo else 'ts'}.onnx"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(net, (x_in,), str(path), dynamo=dynamo, input_names=["x"],
                              output_names=["logits"], **({"verbose": False, "external_data": False} if dynamo else {}))
        data = path.with_name(path.name + ".data")
        if data.exists():                      # the dynamo exporter leaves an empty one
            if data.stat().st_size:
                raise SystemExit(f"{data}: external data written; keep the models small")
            data.unlink()
        model = onnx.load(str(path))
        if meta["activation"] == "tanh":     # ONNX's reference RNN knows Tanh only
            (ref,) = ReferenceEvaluator(model).run(None, {"x": x_in.numpy()})
            assert np.allclose(ref, logits, rtol=1e-4, atol=1e-5), (path, ref, logits)
        files.append(path.name)
    sd = {k: v.detach().cpu().contiguous() for k, v in net.state_dict().items()}
    np.savez(OUT / f"{name}.npz", **{k: v.numpy() for k, v in sd.items()})
    safetensors.torch.save_file(sd, str(OUT / f"{name}.safetensors"),
                                metadata={"readout": meta["readout"], "head_activation": "relu",
                                          "activation": meta["activation"]})
    files += [f"{name}.npz", f"{name}.safetensors"]
    np.savez(OUT / f"{name}.expected.npz", X=X.double().numpy(), logits=logits,
             readout=meta["readout"], head_activation="relu", activation=meta["activation"])
    index[name] = {"producer": "torch", "files": files, **meta}


def keras_models() -> list[tuple[str, object, dict]]:
    import keras
    from keras import layers as L

    specs = {
        "keras_lstm_last": ([L.LSTM(5)], "last", "linear"),
        "keras_gru_l2_mlp": ([L.GRU(5, return_sequences=True), L.GRU(4), L.Dense(6, activation="relu")],
                             "last", "mlp"),
        "keras_lstm_bi_mean": ([L.Bidirectional(L.LSTM(4, return_sequences=True)),
                                L.GlobalAveragePooling1D()], "mean", "linear"),
        "keras_simplernn_l2": ([L.SimpleRNN(5, return_sequences=True), L.SimpleRNN(5)], "last", "linear"),
        "keras_frame_gru_bi": ([L.Dense(6, activation="relu"), L.Bidirectional(L.GRU(4))], "last", "linear"),
        "keras_simplernn_relu_tanhhead": ([L.SimpleRNN(5, activation="relu"), L.Dense(6, activation="tanh")],
                                          "last", "mlp"),
        "keras_bi_rnn_bi_lstm": ([L.Bidirectional(L.SimpleRNN(4, return_sequences=True)),
                                  L.Bidirectional(L.LSTM(3))], "last", "linear"),
        "keras_gru_mean_sigmoidhead": ([L.GRU(5, return_sequences=True), L.GlobalAveragePooling1D(),
                                        L.Dense(6, activation="sigmoid")], "mean", "mlp"),
    }
    out = []
    for i, (name, (body, readout, head)) in enumerate(specs.items()):
        keras.utils.set_random_seed(2000 + i)
        T = 4 if i % 2 else 3
        model = keras.Sequential([keras.Input((T, 3)), *body, L.Dense(3)], name=name)
        # non-zero biases (Keras initialises them to zero) so the loader's bias paths are checked
        for layer in model.layers:
            for w in layer.weights:
                if "bias" in w.path:
                    w.assign(np.random.default_rng(i).normal(scale=0.3, size=w.shape).astype("float32"))
        out.append((name, model, {"readout": readout, "head": head, "T": T}))
    return out


def export_keras(name: str, model, meta: dict, index: dict) -> None:
    X = np.random.default_rng(11).normal(size=(N_INPUTS, meta["T"], 3)).astype(np.float32)
    logits = np.asarray(model.predict(X, verbose=0), dtype=np.float64)
    model.save(OUT / f"{name}.keras")
    np.savez(OUT / f"{name}.expected.npz", X=X.astype(np.float64), logits=logits)
    index[name] = {"producer": "keras", "files": [f"{name}.keras"], **meta}


def main(argv: Optional[list[str]] = None) -> int:
    OUT.mkdir(parents=True, exist_ok=True)
    for p in OUT.iterdir():
        p.unlink()
    index: dict = {}
    for name, net, meta in torch_models():
        export_torch(name, net, meta, index)
        print("wrote", name, flush=True)
    for name, model, meta in keras_models():
        export_keras(name, model, meta, index)
        print("wrote", name, flush=True)
    (OUT / "index.json").write_text(json.dumps(index, indent=1, sort_keys=True) + "\n")
    total = sum(p.stat().st_size for p in OUT.iterdir())
    print(f"{len(list(OUT.iterdir()))} files, {total / 1024:.0f} KiB in {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
