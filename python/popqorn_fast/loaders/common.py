"""Helpers shared by the model-file readers: the simplest class for a loaded model and
size limits that keep a hostile file from making a reader allocate what it never declared."""
from __future__ import annotations

from typing import Any, Union

import numpy as np

from ..general import Dense, RecurrentClassifier, RecurrentLayer
from ..weights import GRUWeights, LSTMWeights, RNNWeights

Model = Union[RNNWeights, LSTMWeights, GRUWeights, RecurrentClassifier]

# No model this package certifies has a tensor anywhere near this many elements; a
# declared shape beyond it is refused before anything is allocated.
MAX_ELEMENTS = 1 << 28


def simplest(model: RecurrentClassifier) -> Model:
    """The one-layer class when ``model`` is one unidirectional layer with one Linear head on
    its last hidden state (backward compatible with the one-layer loaders), else ``model``."""
    if (len(model.layers) == 1 and not model.frame_layers and len(model.head) == 1
            and model.head[0].activation is None and not model.layers[0].bidirectional
            and model.readout in ("last", "last_step")):
        layer: RecurrentLayer = model.layers[0]
        head: Dense = model.head[0]
        args = (layer.weight_ih, layer.weight_hh, layer.bias_ih, layer.bias_hh, head.weight, head.bias)
        if layer.kind == "rnn":
            return RNNWeights(*args, activation=layer.activation, h0=layer.h0)
        if layer.kind == "lstm":
            return LSTMWeights(*args, h0=layer.h0, c0=layer.c0)
        return GRUWeights(*args, h0=layer.h0)
    return model


def check_shape(shape: Any, source: str, what: str) -> tuple[int, ...]:
    """A declared tensor shape of non-negative ints with a sane element count."""
    try:
        dims = tuple(int(d) for d in shape)
    except (TypeError, ValueError):
        raise ValueError(f"{source}: {what} has an unreadable shape {shape!r}") from None
    if any(d < 0 for d in dims):
        raise ValueError(f"{source}: {what} has a negative dimension in its shape {dims}")
    count = 1
    for d in dims:
        count *= d
    if count > MAX_ELEMENTS:
        raise ValueError(f"{source}: {what} declares shape {dims} ({count} elements), beyond the "
                         f"{MAX_ELEMENTS} this reader accepts; the file is broken or not a model")
    return dims


def float_array(value: Any, source: str, what: str) -> np.ndarray:
    """A real floating/integer array as float64; other dtypes (objects, strings) refused."""
    arr = np.asarray(value)
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.floating)
                                   or np.issubdtype(arr.dtype, np.integer)):
        raise ValueError(f"{source}: {what} has dtype {arr.dtype}; expected a real (float) tensor")
    return arr.astype(np.float64)
