"""
popqorn_fast CUDA backend: batched bound passes (RECURRENCES.md §0, leading batch axis).

Type stub of the compiled module (cpp/cuda/bind_cuda.cpp), built only where a CUDA compiler
is found; regenerate with ``pybind11-stubgen popqorn_fast._cuda`` after a binding changes.
"""
from __future__ import annotations
import numpy
import numpy.typing
import typing
__all__: list[str] = ['device_count', 'device_error', 'gru_bounds_batch', 'lstm_bounds_batch', 'rnn_bounds_batch']
def device_count() -> int:
    """
    Visible CUDA devices (0 without driver or device).
    """
def device_error() -> str:
    """
    Why device_count() is 0 ('' when it is not).
    """
def gru_bounds_batch(weight_ih: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], weight_hh: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], bias_ih: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], bias_hh: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], h0: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], x: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], eps: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], p: typing.SupportsFloat | typing.SupportsIndex, frame_mask: typing.Annotated[numpy.typing.ArrayLike, numpy.bool], spec_weight: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], spec_bias: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], planes: str = 'exact', want_states: bool = False) -> dict:
    ...
def lstm_bounds_batch(weight_ih: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], weight_hh: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], bias: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], h0: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], c0: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], x: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], eps: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], p: typing.SupportsFloat | typing.SupportsIndex, frame_mask: typing.Annotated[numpy.typing.ArrayLike, numpy.bool], spec_weight: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], spec_bias: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], planes: str = 'exact', want_states: bool = False) -> dict:
    ...
def rnn_bounds_batch(weight_ih: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], weight_hh: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], bias: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], h0: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], activation: str, x: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], eps: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], p: typing.SupportsFloat | typing.SupportsIndex, frame_mask: typing.Annotated[numpy.typing.ArrayLike, numpy.bool], spec_weight: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], spec_bias: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], want_states: bool = False) -> dict:
    ...
