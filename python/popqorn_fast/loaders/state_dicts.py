"""PyTorch state_dicts as saved: ``np.savez(**model.state_dict())`` (``.npz``) and
``safetensors.torch.save_file(model.state_dict(), ...)`` (``.safetensors``), under any module
attribute names (:func:`popqorn_fast.state_dict.classifier_from_state_dict`).

A file with exactly the one-layer names (``weight_ih_l0`` ... ``out.weight``, ``out.bias``,
optional ``kind``, ``activation``, ``h0``, ``c0``) keeps its one-layer meaning. The options a
state_dict cannot carry -- ``readout``, ``activation`` (nn.RNN's nonlinearity),
``head_activation``, ``frame_activation`` -- come from load_model's keyword arguments, else from
the file (``.npz`` string entries, ``.safetensors`` metadata), else the defaults.

``.npz`` is read with ``allow_pickle=False`` (a pickled entry is refused, never unpickled);
``.safetensors`` with ``safetensors``' NumPy reader (no PyTorch). Declared shapes are checked
before anything is read.
"""
from __future__ import annotations

import json
import os
import re
import zipfile
from pathlib import Path
from typing import Any, Optional, Union

import numpy as np

from ..general import RecurrentClassifier
from ..weights import _PYTORCH_KEYS
from .common import Model, check_shape, simplest

OPTIONS = ("readout", "activation", "head_activation", "frame_activation")
_STRING_KEYS = set(OPTIONS) | {"kind", "config"}
# a ``config`` entry (JSON object) may name the options, under these names too
_CONFIG_NAMES = {"readout": ("readout",), "activation": ("activation", "act"),
                 "head_activation": ("head_activation", "head_act"),
                 "frame_activation": ("frame_activation", "frame_act")}
_MAX_CONFIG = 1 << 20  # characters of a config entry read at most
_MULTI = re.compile(r"(_l[1-9]\d*|_reverse)$")


def _npz_arrays(p: Path) -> dict[str, np.ndarray]:
    """Every entry of an ``.npz``, after checking each member's ``.npy`` header (dtype, shape,
    declared size against the member's size) so nothing beyond the file is allocated and no
    pickled entry is ever unpickled."""
    fmt = np.lib.format
    try:
        zf = zipfile.ZipFile(p)
    except (zipfile.BadZipFile, OSError) as exc:
        raise ValueError(f"{p} is not a readable .npz file (not a zip archive, or truncated): {exc}") from None
    out: dict[str, np.ndarray] = {}
    with zf:
        infos = zf.infolist()
        if len(infos) > 100000:
            raise ValueError(f"{p}: {len(infos)} entries; not a model file")
        for info in infos:
            key = info.filename[:-4] if info.filename.endswith(".npy") else info.filename
            try:
                with zf.open(info) as fh:
                    version = fmt.read_magic(fh)
                    reader = {(1, 0): fmt.read_array_header_1_0, (2, 0): fmt.read_array_header_2_0}.get(version)
                    if reader is None:
                        raise ValueError(f"unsupported .npy format version {version}")
                    shape, _fortran, dtype = reader(fh)
            except (zipfile.BadZipFile, OSError, EOFError, ValueError) as exc:
                raise ValueError(f"{p}: entry {key!r} cannot be read (truncated, corrupt or not an array): "
                                 f"{exc}") from None
            if dtype.hasobject:
                raise ValueError(f"{p}: entry {key!r} holds pickled Python objects, which this reader never "
                                 f"loads (they could run code); save plain arrays (tensor.numpy()) instead")
            dims = check_shape(shape, str(p), f"entry {key!r}")
            need = int(np.prod(dims, dtype=np.int64)) * dtype.itemsize if dims else dtype.itemsize
            if need > info.file_size:
                raise ValueError(f"{p}: entry {key!r} declares shape {dims} of {dtype} ({need} bytes) but its "
                                 f"member holds {info.file_size} bytes (truncated or corrupt)")
            try:
                with zf.open(info) as fh:
                    out[key] = fmt.read_array(fh, allow_pickle=False)
            except Exception as exc:  # noqa: BLE001 - CRC errors, short reads
                raise ValueError(f"{p}: entry {key!r} cannot be read (truncated or corrupt): {exc}") from None
    return out


def _safetensors_arrays(p: Path) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    try:
        from safetensors import safe_open
    except ImportError:
        raise ImportError("reading .safetensors models needs the safetensors package: "
                          "pip install popqorn_fast[safetensors]") from None
    try:
        with safe_open(str(p), framework="np") as fh:
            meta = dict(fh.metadata() or {})
            arrays = {}
            for k in fh.keys():
                sl = fh.get_slice(k)
                check_shape(sl.get_shape(), str(p), f"tensor {k!r}")
                arrays[k] = np.array(fh.get_tensor(k))
    except ValueError:
        raise
    except Exception as exc:  # noqa: BLE001 - SafetensorError, truncated header, bf16 ...
        raise ValueError(f"{p} is not a readable .safetensors file: {exc}") from None
    return arrays, meta


def _natural(key: str) -> list:
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", key)]


def _registration_order(arrays: dict[str, np.ndarray], source: str) -> dict[str, np.ndarray]:
    """A safetensors file keeps no module order (it sorts its keys): put the Linear layers
    back around the recurrent module by chaining their shapes -- frame layers end at the
    recurrent input size, the head starts at its output width; ties go to name order."""
    from itertools import permutations, product
    from ..state_dict import _LIN, _REC

    rec = [k for k in arrays if _REC.match(k)]
    if not rec:
        return arrays
    lin = sorted({m["prefix"] for k in arrays if not _REC.match(k) and (m := _LIN.match(k))
                  and m["name"] == "weight" and np.ndim(arrays[k]) == 2}, key=_natural)
    w_ih = next((arrays[k] for k in rec if k.endswith("weight_ih_l0")), None)
    w_hh = next((arrays[k] for k in rec if k.endswith("weight_hh_l0")), None)
    if w_ih is None or w_hh is None or np.ndim(w_ih) != 2 or np.ndim(w_hh) != 2 or len(lin) > 7:
        return arrays
    n_in = w_ih.shape[1]
    width = w_hh.shape[1] * (2 if any(k.endswith("_reverse") for k in rec) else 1)
    shape = {p: arrays[p + ".weight"].shape for p in lin}

    def chain(seq: tuple, start: Optional[int], end: Optional[int]) -> bool:
        w = start
        for p in seq:
            if w is not None and shape[p][1] != w:
                return False
            w = shape[p][0]
        return end is None or (w == end if seq else True)

    # Linear layers of one top-level module (an nn.Sequential) stay together, in name order
    groups: dict[str, list[str]] = {}
    for p in lin:
        groups.setdefault(p.split(".")[0], []).append(p)
    names = list(groups)
    valid = []
    for mask in product((0, 1), repeat=len(names)):
        fg = [g for g, m in zip(names, mask) if m]
        hg = [g for g, m in zip(names, mask) if not m]
        if not hg:
            continue
        for fo in permutations(fg):
            f = tuple(p for g in fo for p in groups[g])
            if not chain(f, None, n_in):
                continue
            for ho in permutations(hg):
                h = tuple(p for g in ho for p in groups[g])
                if chain(h, width, None):
                    valid.append((len(hg), f, h))
    if not valid:
        return arrays                      # let from_pytorch explain what is wrong
    best = min(v[0] for v in valid)        # a head is most often one module (fc, or a Sequential)
    valid = [v[1:] for v in valid if v[0] == best]
    if len(valid) > 1:
        raise ValueError(f"{source}: the Linear layers {lin} fit around the recurrent module in "
                         f"{len(valid)} orders and a .safetensors file does not keep the modules' "
                         f"order; save the state_dict with np.savez (which keeps it)")
    f, h = valid[0]

    def keys_of(prefixes: tuple) -> list[str]:
        return [k for p in prefixes for k in (p + ".weight", p + ".bias") if k in arrays]
    order = keys_of(f) + rec + keys_of(h)
    return {**{k: arrays[k] for k in order}, **{k: v for k, v in arrays.items() if k not in order}}


def _option(value: Any, key: str, source: str) -> Optional[str]:
    arr = np.asarray(value)
    if arr.dtype.kind not in "US" or arr.size != 1:
        raise ValueError(f"{source}: entry {key!r} must be one string (e.g. 'mean'), got dtype "
                         f"{arr.dtype}, shape {arr.shape}")
    text = str(arr.reshape(-1)[0]).strip()
    return None if text.lower() in ("none", "linear", "") and key != "readout" else text


def _config(arrays: dict[str, Any], meta: dict[str, str], source: str) -> dict[str, Any]:
    """The file's ``config`` entry (an npz string entry or safetensors metadata): a JSON object
    describing the module, e.g. ``{"kind": "lstm", "layers": 2, "bi": false, "readout": "mean",
    "head_act": "relu", "act": "tanh"}``; {} without one."""
    raw = arrays.get("config", meta.get("config"))
    if raw is None:
        return {}
    text = _option(raw, "config", source) or ""
    if len(text) > _MAX_CONFIG:
        raise ValueError(f"{source}: entry 'config' has {len(text)} characters; expected a short JSON object")
    try:
        cfg = json.loads(text)
    except ValueError as exc:
        raise ValueError(f"{source}: entry 'config' is not valid JSON ({exc}); expected a JSON object such as "
                         f'{{"readout": "mean", "act": "tanh"}}') from None
    if not isinstance(cfg, dict):
        raise ValueError(f"{source}: entry 'config' must be a JSON object, got {type(cfg).__name__}")
    return cfg


def _check_config(model: Model, cfg: dict[str, Any], source: str) -> None:
    """The loaded model agrees with what the config says of its kind, depth and directions."""
    layers = model.layers if isinstance(model, RecurrentClassifier) else None
    kinds = {l.kind for l in layers} if layers is not None else {model.kind}
    found = {"kind": kinds.pop() if len(kinds) == 1 else None,
             "layers": len(layers) if layers is not None else 1,
             "bi": any(l.reverse is not None for l in layers) if layers is not None else False}
    for key, got in found.items():
        want = cfg.get(key)
        if want is not None and got is not None and want != got:
            raise ValueError(f"{source}: the config says {key} = {want!r} but the weights give {got!r}; "
                             f"fix the config entry or the weights")


def _model(arrays: dict[str, Any], meta: dict[str, str], options: dict[str, Any], source: str) -> Model:
    for k, v in arrays.items():
        if k in _STRING_KEYS:
            continue
        if v.dtype == object or not (np.issubdtype(v.dtype, np.floating) or np.issubdtype(v.dtype, np.integer)
                                     or v.dtype == bool):
            if k in ("X", "y"):
                continue
            raise ValueError(f"{source}: entry {k!r} has dtype {v.dtype}; parameters must be real arrays")
        check_shape(v.shape, source, f"entry {k!r}")
    cfg = _config(arrays, meta, source)
    opts: dict[str, Any] = {}
    for key in OPTIONS:
        if options.get(key, "unset") != "unset":
            opts[key] = options[key]
        elif key in arrays:
            opts[key] = _option(arrays[key], key, source)
        elif key in meta:
            opts[key] = _option(meta[key], key, source)
        else:
            named = [n for n in _CONFIG_NAMES[key] if n in cfg]
            if named:
                opts[key] = _option(str(cfg[named[0]]) if cfg[named[0]] is not None else "none", key, source)
    multi = any(_MULTI.search(k) for k in arrays)
    extra_linear = [k for k in arrays if k.endswith(".weight") and k != "out.weight"]
    if any(k in arrays for k in _PYTORCH_KEYS) and not multi and not extra_linear:
        from ..model_io import _check_keys      # the one-layer names: all six are required
        _check_keys(set(arrays), source)
    one_layer = all(k in arrays for k in _PYTORCH_KEYS) and not multi
    if one_layer and not extra_linear and opts.get("readout", "last") in ("last", "last_step"):
        from ..model_io import weights_from_arrays
        arr = dict(arrays)
        if "activation" in opts and opts["activation"] is not None:
            arr["activation"] = np.array(opts["activation"])
        for where in (meta, cfg):
            if "kind" in where and "kind" not in arr:
                arr["kind"] = np.array(str(where["kind"]))
        w = weights_from_arrays(arr, source=source)
        _check_config(w, cfg, source)
        return w
    kw = {k: v for k, v in opts.items() if k in OPTIONS}
    if kw.get("activation") is None:
        kw.pop("activation", None)
    try:
        model = RecurrentClassifier.from_pytorch(arrays, **kw)
    except ValueError as exc:
        raise ValueError(f"{source}: {exc}") from None
    _check_config(model, cfg, source)
    return simplest(model)


def load_state_dict_file(path: Union[str, os.PathLike], **options: Any) -> Model:
    """Read a PyTorch state_dict saved as ``.npz`` or ``.safetensors``.

    Parameters
    ----------
    path : str or path-like
    **options
        ``readout`` ("last", "last_step", "mean"), ``activation`` ("tanh", "relu": nn.RNN's
        nonlinearity), ``head_activation``, ``frame_activation`` (None, "relu", "tanh",
        "sigmoid"); given here they override the file's entries.

    Returns
    -------
    RNNWeights, LSTMWeights, GRUWeights or RecurrentClassifier

    Raises
    ------
    ValueError
        An unreadable, truncated or pickled file, non-numeric parameters, absurd shapes, or a
        state_dict that is no recurrent classifier (the message names the keys).
    """
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"model file not found: {p}")
    unknown = set(options) - set(OPTIONS)
    if unknown:
        raise TypeError(f"unknown option(s) {sorted(unknown)}; expected {list(OPTIONS)}")
    if p.suffix.lower() == ".safetensors":
        arrays, meta = _safetensors_arrays(p)
        arrays = _registration_order(arrays, str(p))
    else:
        arrays, meta = _npz_arrays(p), {}
    return _model(arrays, meta, options, str(p))
