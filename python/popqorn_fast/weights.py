"""Weight containers for one recurrent layer plus a linear head.

Frozen dataclasses over float64 arrays in PyTorch's parameter layout
(``weight_ih`` is ``(G*s, n)``, ``weight_hh`` is ``(G*s, s)``; G = 1 for RNN,
4 for LSTM in gate order i, f, g, o, 3 for GRU in gate order r, z, n).
Constructors validate every shape and value and raise ``ValueError`` naming
the offending field. Converters from PyTorch state dicts and Keras layouts.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any, ClassVar, Mapping, Optional

import numpy as np

from .validation import as_real_array

_PYTORCH_KEYS = ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0", "out.weight", "out.bias")


def _check_layer(obj: Any, gates: int) -> None:
    """Convert fields to read-only float64 copies and check every shape."""
    for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh", "out_weight", "out_bias"):
        object.__setattr__(obj, name, as_real_array(getattr(obj, name), name))
    w_ih, w_hh = obj.weight_ih, obj.weight_hh
    if w_hh.ndim != 2:
        raise ValueError(f"weight_hh must be 2-D (G*s, s), got shape {w_hh.shape}")
    s = w_hh.shape[1]
    if s == 0:
        raise ValueError("weight_hh has zero columns: hidden size must be >= 1")
    if w_hh.shape[0] != gates * s:
        raise ValueError(
            f"weight_hh has shape {w_hh.shape}; a {obj.kind.upper()} with hidden size {s} "
            f"needs ({gates * s}, {s}) ({gates} gate(s) stacked)")
    if w_ih.ndim != 2 or w_ih.shape[0] != gates * s or w_ih.shape[1] == 0:
        raise ValueError(f"weight_ih has shape {w_ih.shape}; expected ({gates * s}, n) with n >= 1 "
                         f"to match weight_hh {w_hh.shape}")
    for name in ("bias_ih", "bias_hh"):
        b = getattr(obj, name)
        if b.shape != (gates * s,):
            raise ValueError(f"{name} has shape {b.shape}; expected ({gates * s},)")
    ow, ob = obj.out_weight, obj.out_bias
    if ow.ndim != 2 or ow.shape[1] != s or ow.shape[0] < 2:
        raise ValueError(f"out_weight has shape {ow.shape}; expected (num_classes >= 2, {s}) "
                         f"(hidden size {s})")
    if ob.shape != (ow.shape[0],):
        raise ValueError(f"out_bias has shape {ob.shape}; expected ({ow.shape[0]},)")
    for name in obj._state_fields:
        v = getattr(obj, name)
        if v is None:
            v = np.zeros(s)
        v = as_real_array(v, name)
        if v.shape != (s,):
            raise ValueError(f"{name} has shape {v.shape}; expected ({s},) (hidden size)")
        object.__setattr__(obj, name, v)


class _LayerMixin:
    kind: ClassVar[str]
    gates: ClassVar[int]
    _state_fields: ClassVar[tuple[str, ...]]

    @property
    def hidden_size(self) -> int:
        return int(self.weight_hh.shape[1])  # type: ignore[attr-defined]

    @property
    def input_size(self) -> int:
        return int(self.weight_ih.shape[1])  # type: ignore[attr-defined]

    @property
    def num_classes(self) -> int:
        return int(self.out_weight.shape[0])  # type: ignore[attr-defined]

    @cached_property
    def sha256(self) -> str:
        """SHA-256 of the model (:func:`popqorn_fast.certificate.model_sha256`), computed
        once per object: its arrays are read-only copies, so the digest cannot go stale."""
        from .certificate import model_sha256
        return model_sha256(self)

    @property
    def summary(self) -> str:
        """One line describing the model (the CLI prints it)."""
        return f"{self.kind.upper()}, hidden {self.hidden_size}"

    @cached_property
    def general(self) -> Any:
        """This model as a :class:`popqorn_fast.general.RecurrentClassifier` (one layer, a
        Linear head on the last hidden state), built once per object."""
        from .general import as_general
        return as_general(self)

    def logits(self, x: Any) -> np.ndarray:
        """Run the model forward on ``x`` of shape ``(T, n)`` or ``(N, T, n)``.

        Returns logits of shape ``(C,)`` or ``(N, C)``.
        """
        from .forward import logits
        return logits(self, x)

    @classmethod
    def from_pytorch(cls, mapping: Mapping[str, Any], **kwargs: Any):
        """Build from a PyTorch-style mapping (keys ``weight_ih_l0``, ``weight_hh_l0``,
        ``bias_ih_l0``, ``bias_hh_l0``, ``out.weight``, ``out.bias``)."""
        missing = [k for k in _PYTORCH_KEYS if k not in mapping]
        if missing:
            raise ValueError(f"missing keys {missing}; found {sorted(map(str, mapping.keys()))}, "
                             f"expected {list(_PYTORCH_KEYS)}")
        vals = [np.asarray(mapping[k]) for k in _PYTORCH_KEYS]
        return cls(*vals, **kwargs)


@dataclass(frozen=True, eq=False)
class RNNWeights(_LayerMixin):
    """Vanilla RNN ``h_t = act(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh)`` + linear head."""
    weight_ih: np.ndarray
    weight_hh: np.ndarray
    bias_ih: np.ndarray
    bias_hh: np.ndarray
    out_weight: np.ndarray
    out_bias: np.ndarray
    activation: str = "tanh"
    h0: Optional[np.ndarray] = None

    kind: ClassVar[str] = "rnn"
    gates: ClassVar[int] = 1
    _state_fields: ClassVar[tuple[str, ...]] = ("h0",)

    def __post_init__(self) -> None:
        if self.activation not in ("tanh", "relu"):
            raise ValueError(f"activation must be 'tanh' or 'relu', got {self.activation!r}")
        _check_layer(self, self.gates)

    @classmethod
    def from_keras(cls, kernel: Any, recurrent_kernel: Any, bias: Any, out_weight: Any,
                   out_bias: Any, activation: str = "tanh", h0: Any = None) -> "RNNWeights":
        """Keras SimpleRNN: kernel ``(n, s)``, recurrent kernel ``(s, s)``, bias ``(s,)``;
        ``out_weight`` is a Keras Dense kernel ``(s, C)``."""
        kernel, rk, bias = (np.asarray(a, dtype=np.float64) for a in (kernel, recurrent_kernel, bias))
        return cls(kernel.T, rk.T, bias, np.zeros_like(bias), np.asarray(out_weight, dtype=np.float64).T,
                   out_bias, activation=activation, h0=h0)


@dataclass(frozen=True, eq=False)
class LSTMWeights(_LayerMixin):
    """LSTM in PyTorch gate order i, f, g, o + linear head."""
    weight_ih: np.ndarray
    weight_hh: np.ndarray
    bias_ih: np.ndarray
    bias_hh: np.ndarray
    out_weight: np.ndarray
    out_bias: np.ndarray
    h0: Optional[np.ndarray] = None
    c0: Optional[np.ndarray] = None

    kind: ClassVar[str] = "lstm"
    gates: ClassVar[int] = 4
    _state_fields: ClassVar[tuple[str, ...]] = ("h0", "c0")

    def __post_init__(self) -> None:
        _check_layer(self, self.gates)

    @classmethod
    def from_keras(cls, kernel: Any, recurrent_kernel: Any, bias: Any, out_weight: Any,
                   out_bias: Any, h0: Any = None, c0: Any = None) -> "LSTMWeights":
        """Keras LSTM: kernel ``(n, 4s)``, recurrent kernel ``(s, 4s)``, bias ``(4s,)``,
        gate order i, f, c, o (the same order as PyTorch's i, f, g, o);
        ``out_weight`` is a Keras Dense kernel ``(s, C)``."""
        kernel, rk, bias = (np.asarray(a, dtype=np.float64) for a in (kernel, recurrent_kernel, bias))
        return cls(kernel.T, rk.T, bias, np.zeros_like(bias), np.asarray(out_weight, dtype=np.float64).T,
                   out_bias, h0=h0, c0=c0)


@dataclass(frozen=True, eq=False)
class GRUWeights(_LayerMixin):
    """GRU in PyTorch gate order r, z, n (``b_hn`` inside the reset product) + linear head."""
    weight_ih: np.ndarray
    weight_hh: np.ndarray
    bias_ih: np.ndarray
    bias_hh: np.ndarray
    out_weight: np.ndarray
    out_bias: np.ndarray
    h0: Optional[np.ndarray] = None

    kind: ClassVar[str] = "gru"
    gates: ClassVar[int] = 3
    _state_fields: ClassVar[tuple[str, ...]] = ("h0",)

    def __post_init__(self) -> None:
        _check_layer(self, self.gates)

    @classmethod
    def from_keras(cls, kernel: Any, recurrent_kernel: Any, bias: Any, out_weight: Any,
                   out_bias: Any, h0: Any = None) -> "GRUWeights":
        """Keras GRU with ``reset_after=True``: kernel ``(n, 3s)``, recurrent kernel
        ``(s, 3s)``, bias ``(2, 3s)`` (input bias, recurrent bias), gate order z, r, h;
        ``out_weight`` is a Keras Dense kernel ``(s, C)``."""
        kernel, rk, bias = (np.asarray(a, dtype=np.float64) for a in (kernel, recurrent_kernel, bias))
        if bias.shape[:1] != (2,) or bias.ndim != 2:
            raise ValueError(f"bias has shape {bias.shape}; a reset_after=True Keras GRU has (2, 3s)")
        s = rk.shape[0]
        order = np.concatenate([np.arange(s, 2 * s), np.arange(0, s), np.arange(2 * s, 3 * s)])  # z,r,h -> r,z,n
        return cls(kernel.T[order], rk.T[order], bias[0][order], bias[1][order],
                   np.asarray(out_weight, dtype=np.float64).T, out_bias, h0=h0)


Weights = RNNWeights | LSTMWeights | GRUWeights
