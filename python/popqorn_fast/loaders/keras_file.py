"""Keras 3 models: ``model.save("m.keras")`` files (a zip of ``config.json`` and
``model.weights.h5``), or ``model.save_weights("m.weights.h5")`` plus the model's config
(``model.to_json()`` saved as JSON, or the ``config.json`` of a ``.keras`` archive).

Read with ``zipfile``, ``json`` and ``h5py`` only: no TensorFlow and no Keras backend, and no
code from the file runs (the config is data; unknown layer classes are refused). Supported:
a Sequential (or a Functional model whose layers form one chain) of ``InputLayer``, ``Dense``
(on frames before the first recurrent layer: frame layers; after it: the head),
``LSTM`` / ``GRU`` (``reset_after=True``) / ``SimpleRNN`` (stacked with
``return_sequences=True``), ``Bidirectional`` (``merge_mode="concat"``),
``GlobalAveragePooling1D`` (readout "mean"), ``Activation`` and ``Dropout``.
Keras gate orders are converted exactly to PyTorch's (LSTM i,f,c,o = i,f,g,o; GRU z,r,h ->
r,z,n); a Keras recurrent layer's single bias becomes ``bias_ih`` (``bias_hh`` = 0).
"""
from __future__ import annotations

import io
import json
import os
import re
import zipfile
from pathlib import Path
from typing import Any, Optional, Union

import numpy as np

from ..general import Dense, RecurrentClassifier, RecurrentLayer
from .common import MAX_ELEMENTS, Model, simplest

_MAX_CONFIG = 16 << 20        # bytes of config.json read at most
_MAX_WEIGHTS = 2 << 30        # bytes of model.weights.h5 read at most
_RECURRENT = {"LSTM": "lstm", "GRU": "gru", "SimpleRNN": "rnn"}
_ACTS = {"linear": None, None: None, "relu": "relu", "tanh": "tanh", "sigmoid": "sigmoid"}


def _read_member(zf: zipfile.ZipFile, name: str, cap: int, source: str) -> bytes:
    try:
        info = zf.getinfo(name)
    except KeyError:
        raise ValueError(f"{source}: the archive has no {name!r} (found {zf.namelist()[:10]}); "
                         f"not a Keras 3 .keras file") from None
    if info.file_size > cap:
        raise ValueError(f"{source}: {name} declares {info.file_size} bytes, more than the {cap} "
                         f"this reader accepts")
    try:
        with zf.open(info) as fh:
            data = fh.read(info.file_size + 1)
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as exc:
        raise ValueError(f"{source}: {name} cannot be read from the archive (truncated or corrupt): "
                         f"{exc}") from None
    if len(data) != info.file_size:
        raise ValueError(f"{source}: {name} holds {len(data)} bytes but declares {info.file_size}")
    return data


def load_keras(path: Union[str, os.PathLike], config: Optional[Union[str, os.PathLike]] = None) -> Model:
    """Read a Keras 3 ``.keras`` file, or a ``.weights.h5`` file with its model config.

    Parameters
    ----------
    path : str or path-like
        ``.keras`` (``model.save``) or ``.weights.h5`` (``model.save_weights``).
    config : str or path-like, optional
        For ``.weights.h5``: the model's config as JSON (``model.to_json()`` or a ``.keras``
        archive's ``config.json``); default: ``config.json`` beside the weights file.

    Returns
    -------
    RNNWeights, LSTMWeights, GRUWeights or RecurrentClassifier

    Raises
    ------
    ValueError
        An unreadable or truncated archive, weights of the wrong shape or dtype, or layers
        outside the supported set (named in the message).
    ImportError
        ``h5py`` is missing (``pip install popqorn_fast[keras]``).
    """
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"model file not found: {p}")
    try:
        import h5py
    except ImportError:
        raise ImportError("reading Keras models needs h5py: pip install popqorn_fast[keras]") from None
    source = str(p)
    if p.name.lower().endswith(".h5"):
        cpath = Path(config) if config is not None else p.with_name("config.json")
        if not cpath.exists():
            raise ValueError(f"{source}: a weights file needs its model config: pass config=... "
                             f"(model.to_json() saved to a file) or put config.json beside it")
        if cpath.stat().st_size > _MAX_CONFIG:
            raise ValueError(f"{cpath}: a config of {cpath.stat().st_size} bytes is beyond what this reader accepts")
        cfg_bytes = cpath.read_bytes()
        weights: Any = str(p)
    else:
        try:
            zf = zipfile.ZipFile(p)
        except (zipfile.BadZipFile, OSError) as exc:
            raise ValueError(f"{source} is not a readable .keras file (not a zip archive, or truncated): "
                             f"{exc}") from None
        with zf:
            cfg_bytes = _read_member(zf, "config.json", _MAX_CONFIG, source)
            weights = io.BytesIO(_read_member(zf, "model.weights.h5", _MAX_WEIGHTS, source))
    try:
        cfg = json.loads(cfg_bytes)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValueError(f"{source}: the model config is not valid JSON: {exc}") from None
    try:
        h5 = h5py.File(weights, "r")
    except Exception as exc:  # noqa: BLE001 - OSError for truncated/corrupt HDF5
        raise ValueError(f"{source}: the weights are not a readable HDF5 file (truncated or corrupt): "
                         f"{exc}") from None
    with h5:
        return simplest(_Builder(cfg, h5, source).model())


def _snake(name: str) -> str:
    """Keras' ``naming.to_snake_case`` (how weights files name layer groups)."""
    name = re.sub(r"\W+", "", name)
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()


class _Builder:
    def __init__(self, cfg: Any, h5: Any, source: str) -> None:
        self.cfg, self.h5, self.source = cfg, h5, source

    def fail(self, msg: str) -> ValueError:
        return ValueError(f"{self.source}: {msg}")

    # ------------------------------------------------------------------ config
    def layer_list(self) -> list[dict]:
        cfg = self.cfg
        if not isinstance(cfg, dict) or "class_name" not in cfg or not isinstance(cfg.get("config"), dict):
            raise self.fail("the config is not a Keras model config (no class_name/config)")
        kind = cfg["class_name"]
        layers = cfg["config"].get("layers")
        if not isinstance(layers, list):
            raise self.fail(f"the {kind} config has no layer list")
        if kind == "Sequential":
            return [l for l in layers if isinstance(l, dict)]
        if kind in ("Functional", "Model"):
            # one chain: every layer reads the one before it
            for i, l in enumerate(layers[1:], 1):
                prev = layers[i - 1].get("config", {}).get("name")
                nodes = json.dumps(l.get("inbound_nodes", []))
                if prev is None or f'"{prev}"' not in nodes:
                    raise self.fail(f"layer {l.get('config', {}).get('name')!r} does not read the layer "
                                    f"before it: only models whose layers form one chain are supported")
            return layers
        raise self.fail(f"model class {kind!r}; expected Sequential or Functional")

    # ------------------------------------------------------------------ weights
    def group(self, name: str, where: str) -> Any:
        """The weights group of a layer: Keras 3 stores layer i of the model under
        ``layers/<snake_case(class)>[_k]`` (k counting earlier layers of the same class)."""
        g = self.h5.get("layers")
        if g is None or name not in g:
            found = sorted(g.keys()) if g is not None else []
            raise self.fail(f"{where}: no weights group {name!r} in the weights file (found {found})")
        return g[name]

    def vars(self, grp: Any, what: str, shapes: list[tuple[int, ...]]) -> list[np.ndarray]:
        import h5py
        v = grp.get("vars")
        if v is None or not isinstance(v, h5py.Group):
            raise self.fail(f"{what}: no 'vars' group in the weights file")
        keys = sorted(v.keys(), key=lambda k: int(k) if k.isdigit() else 1 << 30)
        if len(keys) != len(shapes):
            raise self.fail(f"{what} has {len(keys)} weight arrays; expected {len(shapes)} "
                            f"(shapes {shapes})")
        out = []
        for k, shape in zip(keys, shapes):
            ds = v[k]
            if not isinstance(ds, h5py.Dataset):
                raise self.fail(f"{what}: vars/{k} is not a dataset")
            if tuple(ds.shape) != tuple(shape):
                raise self.fail(f"{what}: vars/{k} has shape {tuple(ds.shape)}; the config implies {shape}")
            if ds.dtype.kind != "f":
                raise self.fail(f"{what}: vars/{k} has dtype {ds.dtype}; expected floats")
            try:
                arr = np.asarray(ds[()], dtype=np.float64)
            except Exception as exc:  # noqa: BLE001 - truncated data
                raise self.fail(f"{what}: vars/{k} cannot be read (truncated or corrupt): {exc}") from None
            if not np.all(np.isfinite(arr)):
                raise self.fail(f"{what}: vars/{k} holds NaN or infinite values")
            out.append(arr)
        return out

    # ------------------------------------------------------------------ layers
    def recurrent(self, cfg: dict, grp: Any, n: int, where: str) -> tuple[str, str, list[np.ndarray]]:
        """(kind, activation, [w_ih, w_hh, b_ih, b_hh]) of a Keras LSTM/GRU/SimpleRNN."""
        cls, c = cfg.get("class_name"), cfg.get("config", {})
        kind = _RECURRENT[cls]
        H = int(c.get("units", 0))
        if not 0 < H <= 1 << 16 or n * H > MAX_ELEMENTS:
            raise self.fail(f"{where}: units={c.get('units')!r} is not a sane layer size")
        for key, bad in (("stateful", True), ("return_state", True)):
            if c.get(key, False) == bad:
                raise self.fail(f"{where}: {key}={bad} is not supported")
        act = c.get("activation", "tanh")
        if kind == "rnn":
            if act not in ("tanh", "relu"):
                raise self.fail(f"{where}: activation {act!r}; a SimpleRNN must use tanh or relu")
        else:
            if act != "tanh" or c.get("recurrent_activation", "sigmoid") != "sigmoid":
                raise self.fail(f"{where}: activation {act!r} / recurrent_activation "
                                f"{c.get('recurrent_activation')!r}; only tanh / sigmoid (Keras' defaults)")
        if kind == "gru" and not c.get("reset_after", True):
            raise self.fail(f"{where}: reset_after=False applies the reset gate before the recurrent "
                            f"kernel, which is not PyTorch's GRU and not what the certifier bounds; "
                            f"use reset_after=True (Keras' default)")
        G = {"rnn": 1, "lstm": 4, "gru": 3}[kind]
        use_bias = c.get("use_bias", True)
        shapes = [(n, G * H), (H, G * H)]
        if use_bias:
            shapes.append((2, G * H) if kind == "gru" else (G * H,))
        cell = grp.get("cell", grp)
        vs = self.vars(cell, where, shapes)
        kernel, rk = vs[0], vs[1]
        if use_bias:
            bias = vs[2]
            b_ih, b_hh = (bias[0], bias[1]) if kind == "gru" else (bias, np.zeros(G * H))
        else:
            b_ih, b_hh = np.zeros(G * H), np.zeros(G * H)
        w_ih, w_hh = kernel.T, rk.T
        if kind == "gru":   # Keras z, r, h -> PyTorch r, z, n
            order = np.concatenate([np.arange(H, 2 * H), np.arange(0, H), np.arange(2 * H, 3 * H)])
            w_ih, w_hh, b_ih, b_hh = w_ih[order], w_hh[order], b_ih[order], b_hh[order]
        return kind, act if kind == "rnn" else "tanh", [w_ih, w_hh, b_ih, b_hh]

    def model(self) -> RecurrentClassifier:
        layers = self.layer_list()
        frames: list[Dense] = []
        rec: list[RecurrentLayer] = []
        head: list[Dense] = []
        readout: Optional[str] = None
        seq = True           # the current tensor is a sequence (T, width)
        width: Optional[int] = None
        used: dict[str, int] = {}
        for lc in layers:
            cls = lc.get("class_name")
            c = lc.get("config", {}) if isinstance(lc.get("config"), dict) else {}
            where = f"layer {c.get('name', '?')!r} ({cls})"
            if cls != "InputLayer":
                name = _snake(str(cls))
                if name in used:
                    used[name] += 1
                    name = f"{name}_{used[name]}"
                else:
                    used[name] = 0
            if cls == "InputLayer":
                shape = c.get("batch_shape") or c.get("batch_input_shape")
                if not isinstance(shape, list) or len(shape) != 3 or not isinstance(shape[-1], int):
                    raise self.fail(f"{where}: input shape {shape!r}; expected (batch, time, features) "
                                    f"with a fixed feature size")
                width = shape[-1]
                continue
            if width is None:
                bshape = (lc.get("build_config") or {}).get("input_shape")
                if isinstance(bshape, list) and bshape and isinstance(bshape[-1], int):
                    width = bshape[-1]
                else:
                    raise self.fail(f"{where}: the model's input size is not in the config")
            if cls == "Dropout":
                continue
            if cls == "Activation":
                act = c.get("activation")
                target = head if not seq else frames
                if act not in _ACTS or not target or target[-1].activation is not None:
                    raise self.fail(f"{where}: activation {act!r} must follow a Dense layer without one")
                target[-1] = Dense(target[-1].weight, target[-1].bias, _ACTS[act])
                continue
            if cls == "Dense":
                act = c.get("activation")
                if act not in _ACTS:
                    raise self.fail(f"{where}: activation {act!r}; supported: linear, relu, tanh, sigmoid")
                units = int(c.get("units", 0))
                if not 0 < units <= 1 << 20:
                    raise self.fail(f"{where}: units={c.get('units')!r}")
                shapes = [(width, units)] + ([(units,)] if c.get("use_bias", True) else [])
                vs = self.vars(self.group(name, where), where, shapes)
                d = Dense(vs[0].T, vs[1] if len(vs) > 1 else np.zeros(units), _ACTS[act])
                if seq and rec:
                    raise self.fail(f"{where}: a Dense layer between recurrent layers (or on a sequence "
                                    f"after them) is not part of the general model")
                (frames if seq else head).append(d)
                width = units
                continue
            if cls == "GlobalAveragePooling1D":
                if not seq or not rec or c.get("data_format", "channels_last") != "channels_last" \
                        or c.get("keepdims", False):
                    raise self.fail(f"{where}: must average the time steps of the last recurrent layer's "
                                    f"sequence (channels_last, keepdims=False)")
                readout, seq = "mean", False
                continue
            if cls in _RECURRENT or cls == "Bidirectional":
                if not seq:
                    raise self.fail(f"{where}: a recurrent layer after the readout")
                if cls == "Bidirectional":
                    if c.get("merge_mode", "concat") != "concat":
                        raise self.fail(f"{where}: merge_mode={c.get('merge_mode')!r}; only 'concat'")
                    fcfg, bcfg = c.get("layer"), c.get("backward_layer") or c.get("layer")
                    if not isinstance(fcfg, dict) or fcfg.get("class_name") not in _RECURRENT:
                        raise self.fail(f"{where}: wraps {fcfg.get('class_name') if isinstance(fcfg, dict) else fcfg!r}; "
                                        f"expected LSTM, GRU or SimpleRNN")
                    if bcfg.get("class_name") != fcfg.get("class_name"):
                        raise self.fail(f"{where}: the backward layer is a {bcfg.get('class_name')}, the "
                                        f"forward one a {fcfg.get('class_name')}")
                    if fcfg.get("config", {}).get("go_backwards"):
                        raise self.fail(f"{where}: the forward layer has go_backwards=True")
                    grp = self.group(name, where)
                    if "forward_layer" not in grp or "backward_layer" not in grp:
                        raise self.fail(f"{where}: the weights file lacks forward_layer/backward_layer")
                    kind, act, fw = self.recurrent(fcfg, grp["forward_layer"], width, where + " forward")
                    kb, actb, bw = self.recurrent(bcfg, grp["backward_layer"], width, where + " backward")
                    if (kb, actb) != (kind, act) or fw[1].shape != bw[1].shape:
                        raise self.fail(f"{where}: the two directions differ in kind, activation or size")
                    layer = RecurrentLayer(kind, *fw, activation=act, reverse=tuple(bw))
                    ret_seq = fcfg.get("config", {}).get("return_sequences", False)
                else:
                    if c.get("go_backwards"):
                        raise self.fail(f"{where}: go_backwards=True (a backward-only layer) is not part of "
                                        f"the general model")
                    kind, act, fw = self.recurrent(lc, self.group(name, where), width, where)
                    layer = RecurrentLayer(kind, *fw, activation=act)
                    ret_seq = c.get("return_sequences", False)
                rec.append(layer)
                width = layer.output_size
                if not ret_seq:
                    readout, seq = "last", False
                continue
            raise self.fail(f"{where}: layer class {cls!r} is not supported (supported: InputLayer, "
                            f"Dense, LSTM, GRU, SimpleRNN, Bidirectional, GlobalAveragePooling1D, "
                            f"Activation, Dropout)")
        if not rec:
            raise self.fail("the model has no recurrent layer (LSTM, GRU, SimpleRNN)")
        if seq or readout is None:
            raise self.fail("the model's output is a sequence; end the recurrent part with "
                            "return_sequences=False or GlobalAveragePooling1D, then Dense layers")
        if not head:
            raise self.fail("the model has no Dense layer after the recurrent layers (the logits)")
        if head[-1].activation is not None:
            raise self.fail(f"the last Dense layer has activation {head[-1].activation!r}; the certifier "
                            f"needs the logits: save the model with a linear last layer")
        try:
            return RecurrentClassifier(tuple(rec), tuple(head), readout=readout, frame_layers=tuple(frames))
        except ValueError as exc:
            raise self.fail(str(exc)) from None
