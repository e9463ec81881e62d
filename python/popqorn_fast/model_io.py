"""Loading saved models and inputs.

``load_model(path)`` dispatches on the file suffix to the readers in
:mod:`popqorn_fast.loaders`:

- ``.npz`` / ``.safetensors``: a PyTorch state_dict as saved (any attribute names), or the
  one-layer names ``weight_ih_l0`` ... ``out.bias`` (optional ``kind``, ``activation``,
  ``h0``, ``c0``); options ``readout``, ``activation``, ``head_activation`` from the file or
  as keyword arguments (:mod:`popqorn_fast.loaders.state_dicts`);
- ``.onnx``: any graph computing a general model, as ``torch.onnx.export`` writes it with
  either exporter (:mod:`popqorn_fast.loaders.onnx_graph`; needs ``onnx``);
- ``.keras`` (Keras 3 ``model.save``) and ``.weights.h5`` + config
  (:mod:`popqorn_fast.loaders.keras_file`; needs ``h5py``).

One-layer Keras weights can also be converted with ``RNNWeights/LSTMWeights/GRUWeights.from_keras``.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Optional, Union

import numpy as np

from .general import RecurrentClassifier
from .weights import GRUWeights, LSTMWeights, RNNWeights, _PYTORCH_KEYS

Weights = Union[RNNWeights, LSTMWeights, GRUWeights]
Model = Union[RNNWeights, LSTMWeights, GRUWeights, RecurrentClassifier]
_CLASSES = {"rnn": RNNWeights, "lstm": LSTMWeights, "gru": GRUWeights}
_GATES_TO_KIND = {1: "rnn", 4: "lstm", 3: "gru"}
SUFFIXES = (".npz", ".safetensors", ".onnx", ".keras", ".weights.h5")


def default_model_path() -> Path:
    """Path of the bundled default model (an LSTM digits classifier)."""
    return Path(__file__).resolve().parent / "data" / "default_model.npz"


def load_model(path: Union[str, os.PathLike], *, readout: Optional[str] = None,
               activation: Optional[str] = None, head_activation: Any = "unset",
               frame_activation: Any = "unset", config: Optional[Union[str, os.PathLike]] = None) -> Model:
    """Read a model, choosing the reader from the file suffix.

    Parameters
    ----------
    path : str or path-like
        ``.npz`` / ``.safetensors``: a PyTorch module's state_dict as saved, under any
        attribute names, or the one-layer names ``weight_ih_l0``, ``weight_hh_l0``,
        ``bias_ih_l0``, ``bias_hh_l0``, ``out.weight``, ``out.bias`` (optional ``kind``,
        ``activation``, ``h0``, ``c0``; other entries such as a stored test set ``X``, ``y``
        are ignored). ``.onnx``: a graph as ``torch.onnx.export`` (either exporter) or
        another producer writes it. ``.keras``: Keras 3 ``model.save``; ``.weights.h5``:
        Keras 3 ``model.save_weights`` with its ``config``.
    readout, activation, head_activation, frame_activation : str, optional
        For state_dicts only (they cannot record them): ``readout`` "last" (default),
        "last_step" or "mean"; ``activation`` nn.RNN's nonlinearity "tanh" (default) or
        "relu"; ``head_activation`` between head Linear layers (default "relu") and
        ``frame_activation`` after each frame Linear layer (default "relu"): None, "relu",
        "tanh", "sigmoid". Given here they override entries stored in the file (``.npz``
        string entries, ``.safetensors`` metadata).
    config : str or path-like, optional
        For ``.weights.h5``: the Keras model config (JSON); default ``config.json`` beside it.

    Returns
    -------
    RNNWeights, LSTMWeights, GRUWeights or RecurrentClassifier
        A one-layer class when the file holds exactly one unidirectional layer with a Linear
        head on the last hidden state, else a RecurrentClassifier.

    Raises
    ------
    FileNotFoundError
        The file does not exist.
    ValueError
        An unknown suffix, an unreadable, truncated or hostile file (named, with the
        problem), missing keys (the message lists the keys found and the ones expected) or
        an unsupported graph or layer (named).
    ImportError
        The optional package a format needs is not installed (the message names the
        ``pip install`` command).
    """
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"model file not found: {p}")
    name = p.name.lower()
    if name.endswith((".npz", ".safetensors")):
        from .loaders.state_dicts import load_state_dict_file
        opts = {k: v for k, v in (("readout", readout), ("activation", activation)) if v is not None}
        for k, v in (("head_activation", head_activation), ("frame_activation", frame_activation)):
            if v != "unset":
                opts[k] = v
        return load_state_dict_file(p, **opts)
    if readout is not None or activation is not None or head_activation != "unset" \
            or frame_activation != "unset":
        raise ValueError(f"{p}: readout/activation/head_activation/frame_activation apply to "
                         f"state_dicts (.npz, .safetensors) only; an {p.suffix} file records them")
    if name.endswith(".onnx"):
        from .loaders.onnx_graph import load_onnx
        return load_onnx(p)
    if name.endswith((".keras", ".h5")):
        from .loaders.keras_file import load_keras
        return load_keras(p, config=config)
    raise ValueError(f"{p}: unknown model format {p.suffix!r}; supported: .npz, .safetensors, .onnx, "
                     f".keras, .weights.h5 (see the README's table of formats)")


def load_npz(path: Union[str, os.PathLike]) -> Model:
    """Read a model from a ``.npz`` (see :func:`load_model`)."""
    from .loaders.state_dicts import load_state_dict_file
    return load_state_dict_file(path)


def load_safetensors(path: Union[str, os.PathLike]) -> Model:
    """Read a model from a ``.safetensors`` file (see :func:`load_model`)."""
    from .loaders.state_dicts import load_state_dict_file
    return load_state_dict_file(path)


def load_onnx(path: Union[str, os.PathLike]) -> Model:
    """Read a model from an ``.onnx`` file (see :mod:`popqorn_fast.loaders.onnx_graph`)."""
    from .loaders.onnx_graph import load_onnx as _load
    return _load(path)


def _check_keys(keys: set[str], source: Any) -> None:
    missing = [k for k in _PYTORCH_KEYS if k not in keys]
    if missing:
        raise ValueError(f"{source}: missing keys {missing}; found {sorted(keys)}; "
                         f"expected {list(_PYTORCH_KEYS)} (+ optional kind, activation, h0, c0)")


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


def as_batch(X: Any, source: Any) -> Any:
    """Inputs of shape (N, T, n); one sequence (T, n) becomes a batch of one. Works on
    arrays and memory maps alike (no copy)."""
    if X.ndim == 2:
        X = X[None]
    if X.ndim != 3:
        raise ValueError(f"{source}: inputs must have shape (N, T, n) or (T, n), got {X.shape}")
    return X


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
    X = as_batch(X, p)
    if y is not None:
        y = np.atleast_1d(y)
        if y.shape != (X.shape[0],) or not (np.issubdtype(y.dtype, np.integer)
                                            or np.all(np.mod(y, 1) == 0)):
            raise ValueError(f"{p}: labels y must be {X.shape[0]} integers (one per input), got "
                             f"shape {y.shape}, dtype {y.dtype}")
        y = y.astype(np.int64)
    return X, y
