"""Loading saved models: ``.npz`` files with PyTorch parameter names."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Union

import numpy as np

from .weights import GRUWeights, LSTMWeights, RNNWeights, _PYTORCH_KEYS

_CLASSES = {"rnn": RNNWeights, "lstm": LSTMWeights, "gru": GRUWeights}
_GATES_TO_KIND = {1: "rnn", 4: "lstm", 3: "gru"}


def default_model_path() -> Path:
    """Path of the bundled default model (an LSTM digits classifier)."""
    return Path(__file__).resolve().parent / "data" / "default_model.npz"


def load_model(path: Union[str, os.PathLike]) -> Union[RNNWeights, LSTMWeights, GRUWeights]:
    """Read a model from a ``.npz`` file with PyTorch parameter names.

    Parameters
    ----------
    path : str or path-like
        A ``.npz`` with keys ``weight_ih_l0``, ``weight_hh_l0``, ``bias_ih_l0``,
        ``bias_hh_l0``, ``out.weight``, ``out.bias`` and optionally ``kind``
        ("rnn" | "lstm" | "gru"), ``activation`` ("tanh" | "relu"), ``h0``, ``c0``.
        The kind is inferred from the shapes when ``kind`` is absent. Other keys
        (e.g. a stored test set ``X``, ``y``) are ignored.

    Returns
    -------
    RNNWeights, LSTMWeights or GRUWeights
    """
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"model file not found: {p}")
    try:
        data = np.load(p, allow_pickle=False)
    except Exception as exc:  # noqa: BLE001 - any unreadable file
        raise ValueError(f"{p} is not a readable .npz file: {exc}") from exc
    with data:
        keys = set(data.files)
        missing = [k for k in _PYTORCH_KEYS if k not in keys]
        if missing:
            raise ValueError(f"{p}: missing keys {missing}; found {sorted(keys)}; "
                             f"expected {list(_PYTORCH_KEYS)} (+ optional kind, activation, h0, c0)")
        arrays = {k: np.array(data[k]) for k in keys}
    return weights_from_arrays(arrays, source=str(p))


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


def load_inputs(path: Union[str, os.PathLike]) -> tuple[np.ndarray, np.ndarray | None]:
    """Read inputs from ``.npy`` (an (N, T, n) or (T, n) array) or ``.npz`` (keys ``X`` and optional ``y``)."""
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"inputs file not found: {p}")
    if p.suffix == ".npz":
        with np.load(p, allow_pickle=False) as d:
            if "X" not in d.files:
                raise ValueError(f"{p}: an inputs .npz needs key 'X' (and optional 'y'); found {sorted(d.files)}")
            X = np.array(d["X"])
            y = np.array(d["y"]) if "y" in d.files else None
    else:
        X, y = np.load(p, allow_pickle=False), None
    if X.ndim == 2:
        X = X[None]
    return X, y
