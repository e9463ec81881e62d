"""The general recurrent classifier (docs/API.md "General models"): stacked and
bidirectional recurrent layers, a readout ("last", "last_step", "mean"), Dense
layers before the first recurrent layer (applied to every frame) and an MLP head.

``RecurrentLayer``, ``Dense`` and ``RecurrentClassifier`` are frozen dataclasses
over read-only float64 arrays in PyTorch's parameter layout and gate order; every
constructor validates shapes and values and raises ``ValueError`` naming the field.
The one-layer classes of :mod:`popqorn_fast.weights` are the special case
(:func:`as_general`).
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any, ClassVar, Optional, Sequence

import numpy as np

from .validation import as_real_array

KINDS = {"rnn": 1, "lstm": 4, "gru": 3}      # kind -> gates stacked in weight_ih / weight_hh
READOUTS = ("last", "last_step", "mean")
DENSE_ACTIVATIONS = (None, "relu", "tanh", "sigmoid")


@dataclass(frozen=True, eq=False)
class Direction:
    """The parameters of one direction of a recurrent layer (PyTorch layout)."""
    weight_ih: np.ndarray
    weight_hh: np.ndarray
    bias_ih: np.ndarray
    bias_hh: np.ndarray


def _check_direction(kind: str, arrays: Sequence[Any], where: str) -> Direction:
    """Validate one direction's four arrays for a cell of ``kind``; names say ``where``."""
    names = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
    if len(arrays) != 4:
        raise ValueError(f"{where}: expected 4 arrays (weight_ih, weight_hh, bias_ih, bias_hh), "
                         f"got {len(arrays)}")
    w_ih, w_hh, b_ih, b_hh = (as_real_array(a, f"{where}{n}") for a, n in zip(arrays, names))
    G = KINDS[kind]
    if w_hh.ndim != 2 or w_hh.shape[1] == 0 or w_hh.shape[0] != G * w_hh.shape[1]:
        raise ValueError(f"{where}weight_hh has shape {w_hh.shape}; a {kind.upper()} layer needs "
                         f"({G}*s, s) with hidden size s >= 1 ({G} gate(s) stacked)")
    s = w_hh.shape[1]
    if w_ih.ndim != 2 or w_ih.shape[0] != G * s or w_ih.shape[1] == 0:
        raise ValueError(f"{where}weight_ih has shape {w_ih.shape}; expected ({G * s}, n) with n >= 1 "
                         f"to match weight_hh {w_hh.shape}")
    for b, n in ((b_ih, "bias_ih"), (b_hh, "bias_hh")):
        if b.shape != (G * s,):
            raise ValueError(f"{where}{n} has shape {b.shape}; expected ({G * s},)")
    return Direction(w_ih, w_hh, b_ih, b_hh)


@dataclass(frozen=True, eq=False)
class RecurrentLayer:
    """One recurrent layer: ``kind`` "rnn" | "lstm" | "gru", one direction or two.

    Parameters
    ----------
    kind : {"rnn", "lstm", "gru"}
    weight_ih, weight_hh, bias_ih, bias_hh : array_like
        The forward direction in PyTorch's layout and gate order (``(G*s, n)``, ``(G*s, s)``,
        ``(G*s,)``, ``(G*s,)``; G = 1, 4 (i, f, g, o), 3 (r, z, n)).
    activation : {"tanh", "relu"}
        The RNN's nonlinearity (ignored by LSTM and GRU, which must keep "tanh").
    reverse : tuple of 4 arrays, optional
        The backward direction (same sizes): the layer's output at t is
        ``[forward_t, backward_t]``, PyTorch's order.
    h0, c0 : array_like, optional
        Initial states of the forward direction (zero if omitted; c0 for LSTM only).
        Only one-direction layers take them; the one-layer classes use them.
    """
    kind: str
    weight_ih: np.ndarray
    weight_hh: np.ndarray
    bias_ih: np.ndarray
    bias_hh: np.ndarray
    activation: str = "tanh"
    reverse: Optional[Direction] = None
    h0: Optional[np.ndarray] = None
    c0: Optional[np.ndarray] = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {list(KINDS)}, got {self.kind!r}")
        if self.activation not in ("tanh", "relu"):
            raise ValueError(f"activation must be 'tanh' or 'relu', got {self.activation!r}")
        if self.kind != "rnn" and self.activation != "tanh":
            raise ValueError(f"activation={self.activation!r} applies to kind='rnn' only; "
                             f"an {self.kind.upper()} layer has fixed nonlinearities")
        fwd = _check_direction(self.kind, (self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh), "")
        for f in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
            object.__setattr__(self, f, getattr(fwd, f))
        if self.reverse is not None:
            rev = self.reverse
            arrays = (rev.weight_ih, rev.weight_hh, rev.bias_ih, rev.bias_hh) if isinstance(rev, Direction) else rev
            try:
                arrays = tuple(arrays)
            except TypeError:
                raise ValueError("reverse must be None or a tuple (weight_ih, weight_hh, bias_ih, bias_hh)") from None
            rev = _check_direction(self.kind, arrays, "reverse ")
            if rev.weight_ih.shape != fwd.weight_ih.shape:
                raise ValueError(f"reverse weight_ih has shape {rev.weight_ih.shape} but the forward "
                                 f"direction's is {fwd.weight_ih.shape}: both directions of a layer "
                                 f"need the same input and hidden sizes")
            object.__setattr__(self, "reverse", rev)
        s = self.hidden_size
        for name in ("h0", "c0"):
            v = getattr(self, name)
            if v is None:
                continue
            if name == "c0" and self.kind != "lstm":
                raise ValueError(f"c0 applies to kind='lstm' only, got kind={self.kind!r}")
            if self.reverse is not None:
                raise ValueError(f"{name}: initial states are supported for one-direction layers only")
            v = as_real_array(v, name)
            if v.shape != (s,):
                raise ValueError(f"{name} has shape {v.shape}; expected ({s},) (hidden size)")
            object.__setattr__(self, name, v)

    @property
    def gates(self) -> int:
        return KINDS[self.kind]

    @property
    def hidden_size(self) -> int:
        return int(self.weight_hh.shape[1])

    @property
    def input_size(self) -> int:
        return int(self.weight_ih.shape[1])

    @property
    def bidirectional(self) -> bool:
        return self.reverse is not None

    @property
    def num_directions(self) -> int:
        return 2 if self.reverse is not None else 1

    @property
    def output_size(self) -> int:
        return self.hidden_size * self.num_directions

    def directions(self) -> list[Direction]:
        """[forward] or [forward, backward]."""
        fwd = Direction(self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh)
        return [fwd] if self.reverse is None else [fwd, self.reverse]


@dataclass(frozen=True, eq=False)
class Dense:
    """``y = act(W x + b)``; ``activation`` None, "relu", "tanh" or "sigmoid"."""
    weight: np.ndarray
    bias: np.ndarray
    activation: Optional[str] = None

    def __post_init__(self) -> None:
        if self.activation not in DENSE_ACTIVATIONS:
            raise ValueError(f"Dense activation must be one of {list(DENSE_ACTIVATIONS)}, "
                             f"got {self.activation!r}")
        w = as_real_array(self.weight, "Dense weight")
        b = as_real_array(self.bias, "Dense bias")
        if w.ndim != 2 or 0 in w.shape:
            raise ValueError(f"Dense weight has shape {w.shape}; expected (out, in) with both >= 1")
        if b.shape != (w.shape[0],):
            raise ValueError(f"Dense bias has shape {b.shape}; expected ({w.shape[0]},) to match "
                             f"weight {w.shape}")
        object.__setattr__(self, "weight", w)
        object.__setattr__(self, "bias", b)

    @property
    def in_features(self) -> int:
        return int(self.weight.shape[1])

    @property
    def out_features(self) -> int:
        return int(self.weight.shape[0])


@dataclass(frozen=True, eq=False)
class RecurrentClassifier:
    """Frame layers, recurrent layers, a readout and a Dense head (docs/API.md).

    Parameters
    ----------
    layers : sequence of RecurrentLayer
        Bottom to top; layer l+1 reads layer l's outputs (both directions) at each t.
    head : sequence of Dense
        In order; the last gives the logits (>= 2 classes).
    readout : {"last", "last_step", "mean"}
        "last": each direction's final hidden state of the top layer, forward then backward
        (PyTorch ``h_n[-1]`` / ``cat(h_n[-2], h_n[-1])``); "last_step": the top layer's
        outputs at t = T-1 (``out[:, -1]``); "mean": their mean over t (``out.mean(1)``).
    frame_layers : sequence of Dense
        Applied to every frame before the first recurrent layer.
    """
    layers: tuple
    head: tuple
    readout: str = "last"
    frame_layers: tuple = ()

    kind: ClassVar[str] = "general"

    def __post_init__(self) -> None:
        for name in ("layers", "head", "frame_layers"):
            v = getattr(self, name)
            if isinstance(v, (RecurrentLayer, Dense)):
                v = (v,)
            try:
                v = tuple(v)
            except TypeError:
                raise ValueError(f"{name} must be a sequence, got {type(v).__name__}") from None
            object.__setattr__(self, name, v)
        if not self.layers:
            raise ValueError("layers is empty: a RecurrentClassifier needs at least one RecurrentLayer")
        if not self.head:
            raise ValueError("head is empty: give at least one Dense layer (the one that gives the logits)")
        for i, l in enumerate(self.layers):
            if not isinstance(l, RecurrentLayer):
                raise ValueError(f"layers[{i}] is a {type(l).__name__}; expected RecurrentLayer")
        for name in ("head", "frame_layers"):
            for i, l in enumerate(getattr(self, name)):
                if not isinstance(l, Dense):
                    raise ValueError(f"{name}[{i}] is a {type(l).__name__}; expected Dense")
        if self.readout not in READOUTS:
            raise ValueError(f"readout must be one of {list(READOUTS)}, got {self.readout!r}")
        width = self.frame_layers[0].in_features if self.frame_layers else self.layers[0].input_size
        for i, f in enumerate(self.frame_layers):
            if f.in_features != width:
                raise ValueError(f"frame_layers[{i}] takes {f.in_features} inputs but receives {width} "
                                 f"(from {'frame_layers[%d]' % (i - 1)})")
            width = f.out_features
        for i, l in enumerate(self.layers):
            if l.input_size != width:
                src = f"layers[{i - 1}] ({self.layers[i - 1].num_directions} direction(s) x " \
                      f"{self.layers[i - 1].hidden_size})" if i else \
                      ("the last frame layer" if self.frame_layers else "the input")
                raise ValueError(f"layers[{i}] takes input size {l.input_size} but {src} gives {width}: "
                                 f"layer widths don't chain")
            width = l.output_size
        for i, h in enumerate(self.head):
            if h.in_features != width:
                src = f"the readout {self.readout!r}" if i == 0 else f"head[{i - 1}]"
                raise ValueError(f"head[{i}] takes {h.in_features} inputs but {src} gives {width}")
            width = h.out_features
        if width < 2:
            raise ValueError(f"the last head layer gives {width} output(s); a classifier needs >= 2 classes")

    # -- sizes ---------------------------------------------------------------------------
    @property
    def input_size(self) -> int:
        return self.frame_layers[0].in_features if self.frame_layers else self.layers[0].input_size

    @property
    def num_classes(self) -> int:
        return self.head[-1].out_features

    @property
    def feature_size(self) -> int:
        """Width of the readout (the head's input)."""
        return self.layers[-1].output_size

    @property
    def summary(self) -> str:
        """One line describing the model (the CLI prints it)."""
        parts = [f"frame {'-'.join(str(f.out_features) for f in self.frame_layers)}"] if self.frame_layers else []
        for l in self.layers:
            parts.append(f"{'bi-' if l.bidirectional else ''}{l.kind.upper()} {l.hidden_size}")
        parts.append(f"readout {self.readout}")
        parts.append(f"head {'-'.join(str(h.out_features) for h in self.head)}")
        return ", ".join(parts)

    @cached_property
    def sha256(self) -> str:
        """SHA-256 of the model (:func:`popqorn_fast.certificate.model_sha256`)."""
        from .certificate import model_sha256
        return model_sha256(self)

    def logits(self, x: Any) -> np.ndarray:
        """Run the model forward on ``x`` of shape ``(T, n)`` or ``(N, T, n)``.

        Returns logits of shape ``(C,)`` or ``(N, C)``.
        """
        from .general_forward import general_logits
        return general_logits(self, x)

    @classmethod
    def from_pytorch(cls, state_dict: Any, *, readout: str = "last", activation: str = "tanh",
                     head_activation: Optional[str] = "relu",
                     frame_activation: Optional[str] = "relu") -> "RecurrentClassifier":
        """Build from a module's state_dict as saved, under any attribute names.

        See :func:`popqorn_fast.state_dict.classifier_from_state_dict` for the rules.
        """
        from .state_dict import classifier_from_state_dict
        return classifier_from_state_dict(state_dict, readout=readout, activation=activation,
                                          head_activation=head_activation,
                                          frame_activation=frame_activation)


def as_general(model: Any) -> RecurrentClassifier:
    """The general form of a model: a RecurrentClassifier as is, or a one-layer
    RNNWeights / LSTMWeights / GRUWeights as one layer with a Linear head on h_T."""
    if isinstance(model, RecurrentClassifier):
        return model
    layer = RecurrentLayer(model.kind, model.weight_ih, model.weight_hh, model.bias_ih, model.bias_hh,
                           activation=getattr(model, "activation", "tanh"), h0=model.h0,
                           c0=getattr(model, "c0", None))
    return RecurrentClassifier((layer,), (Dense(model.out_weight, model.out_bias),), readout="last")
