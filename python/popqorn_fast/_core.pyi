"""
popqorn_fast C++ core: relaxations and back-substitution (CPU backend).

Type stub of the compiled module (cpp/module.cpp and the bind_*.cpp files); regenerate with
``pybind11-stubgen popqorn_fast._core`` after a binding changes.
"""
from __future__ import annotations
import numpy
import numpy.typing
import typing
__all__: list[str] = ['PassOptions', 'ThreatModel', 'blas', 'bound_activation', 'bound_product', 'general_bounds', 'gru_bounds', 'lstm_bounds', 'plane_offset', 'product_candidates', 'rnn_bounds']
class PassOptions:
    """
    Options of one bound pass over the general model.
    """
    def __init__(self, planes: str = 'exact', shared_z: bool = False, want_states: bool = False, opt_iters: typing.SupportsInt | typing.SupportsIndex = 3, opt_lr: typing.SupportsFloat | typing.SupportsIndex = 0.01, opt_br: typing.SupportsInt | typing.SupportsIndex = 3, opt_inter: typing.SupportsInt | typing.SupportsIndex = 1048576, opt_inter_iters: typing.SupportsInt | typing.SupportsIndex = 1, rounding: str = 'sound', opt_grid: typing.SupportsInt | typing.SupportsIndex = 8, opt_blocks: bool = True) -> None:
        """
        planes: "exact", "1d", "constant" or "optimized" (RECURRENCES.md §3b: opt_iters iterations per margin row, the first opt_br best responses, then Adam steps of size opt_lr; intermediate bounds of the last opt_inter steps of each chain refined with opt_inter_iters; best responses on an opt_grid x opt_grid grid of each plane's box, opt_grid cells of a line's interval, 0: at the sweep point itself; opt_blocks: the intermediate rows a block at a time, one sweep and one back-substitution of the block with every row's own relaxations, else row by row, the same bounds). rounding: "sound" (floating-point error charged to every bound, ROUNDING.md), "sound32" (the same, the recurrent steps' products in float32, ROUNDING.md §7) or "nearest".
        """
    @property
    def optimized(self) -> bool:
        ...
    @property
    def rounding(self) -> str:
        ...
    @property
    def shared_z(self) -> bool:
        ...
    @property
    def want_states(self) -> bool:
        ...
class ThreatModel:
    """
    The input set of a bound pass beyond the per-frame ball (cpp/threat_model.hpp): ball "frame" | "joint", frame_weights (T,) radius multipliers, domain_lo / domain_hi (T, n) box, substitutions (T arrays (k_t, n) of candidates; eps must be 0) with budget (most frames substituted at once).
    """
    def __init__(self, ball: str = 'frame', frame_weights: typing.Any = None, domain_lo: typing.Any = None, domain_hi: typing.Any = None, substitutions: typing.Any = None, budget: typing.SupportsInt | typing.SupportsIndex = 0) -> None:
        ...
    @property
    def ball(self) -> str:
        ...
    @property
    def budget(self) -> int:
        ...
def _blas_enabled() -> bool:
    """
    Whether the products use the BLAS (a BLAS build without POPQORN_NO_BLAS).
    """
def _exact_stats(arg0: str, arg1: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], arg2: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], arg3: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], arg4: typing.Annotated[numpy.typing.ArrayLike, numpy.float64]) -> tuple:
    """
    Diagnostics: pricing calls and convergence of the exact method per box.
    """
def _envelope_kernels(fx: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], gy: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], lx: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], ly: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], a: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], b: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], cx: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], cy: typing.Annotated[numpy.typing.ArrayLike, numpy.float64]) -> tuple:
    """
    Diagnostics: the envelope tables' lattice and winner kernels of planes='optimized' -> (lo, hi, winners).
    """
def _gemm(a: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], b: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], c: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], k: typing.SupportsInt | typing.SupportsIndex, n: typing.SupportsInt | typing.SupportsIndex, accumulate: bool) -> numpy.typing.NDArray[numpy.float64]:
    """
    Test hook: copy of c with c[:, :n] (+)= a[:, :k] @ b[:k, :n] (cpp/matmul.hpp).
    """
def _product_threads(threads: typing.SupportsInt | typing.SupportsIndex) -> int:
    """
    Threads for the products of the bound passes run on the calling thread from now on (row blocks, cpp/row_pool.hpp; same bounds as one thread); returns the previous count.
    """
def bound_activation(fn: str, l: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], u: typing.Annotated[numpy.typing.ArrayLike, numpy.float64]) -> tuple:
    """
    Lines alpha_l*z+beta_l <= fn(z) <= alpha_u*z+beta_u on [l, u] (fn: tanh|sigmoid|relu).
    """
def bound_product(surface: str, method: str, xl: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], xu: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], yl: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], yu: typing.Annotated[numpy.typing.ArrayLike, numpy.float64]) -> tuple:
    """
    Planes aL x+bL y+cL <= F <= aU x+bU y+cU on boxes (surface: tanh_sigmoid|x_sigmoid; method: exact|1d|constant).
    """
def general_bounds(frame: list, layers: list, readout: str, head: list, x: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], eps: typing.SupportsFloat | typing.SupportsIndex, p: typing.SupportsFloat | typing.SupportsIndex, frame_mask: typing.Annotated[numpy.typing.ArrayLike, numpy.bool], spec_weight: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], spec_bias: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], options: PassOptions, threat: ThreatModel = ...) -> dict:
    """
    Bounds of spec_weight @ logits + spec_bias for the general model (general_driver.hpp). frame / head: lists of (weight, bias, activation or None); layers: list of (kind, activation, [(w_ih, w_hh, b_ih, b_hh, h0 or None, c0 or None) per direction]). Returns lower, upper, slope (K,) (slope: how fast lower at least rises as the radius shrinks with these relaxations, RECURRENCES.md §5) and the states.
    """
def gru_bounds(weight_ih: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], weight_hh: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], bias_ih: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], bias_hh: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], h0: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], x: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], eps: typing.SupportsFloat | typing.SupportsIndex, p: typing.SupportsFloat | typing.SupportsIndex, frame_mask: typing.Annotated[numpy.typing.ArrayLike, numpy.bool], spec_weight: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], spec_bias: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], planes: str = 'exact', want_states: bool = False, opt_iters: typing.SupportsInt | typing.SupportsIndex = 3, opt_lr: typing.SupportsFloat | typing.SupportsIndex = 0.01, opt_br: typing.SupportsInt | typing.SupportsIndex = 3, opt_inter: typing.SupportsInt | typing.SupportsIndex = 1048576, opt_inter_iters: typing.SupportsInt | typing.SupportsIndex = 1, gru_shared_z: bool = False, opt_trace: bool = False, opt_grid: typing.SupportsInt | typing.SupportsIndex = 8) -> dict:
    """
    Bounds of spec_weight @ h_T + spec_bias for a GRU (RECURRENCES.md §0, §4). gru_shared_z: the shared-z relaxation of the hidden update with any plane method (implied by planes="optimized"); opt_trace: with "optimized", also opt_trace_lower (K, 2(iters+1)+2): per iteration the back-substituted and the forward-sweep lower bound, then |g|^2 and the finite-difference derivative along g at the first iterate (tests).
    """
def lstm_bounds(weight_ih: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], weight_hh: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], bias: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], h0: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], c0: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], x: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], eps: typing.SupportsFloat | typing.SupportsIndex, p: typing.SupportsFloat | typing.SupportsIndex, frame_mask: typing.Annotated[numpy.typing.ArrayLike, numpy.bool], spec_weight: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], spec_bias: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], planes: str = 'exact', want_states: bool = False, opt_iters: typing.SupportsInt | typing.SupportsIndex = 3, opt_lr: typing.SupportsFloat | typing.SupportsIndex = 0.01, opt_br: typing.SupportsInt | typing.SupportsIndex = 3, opt_inter: typing.SupportsInt | typing.SupportsIndex = 1048576, opt_inter_iters: typing.SupportsInt | typing.SupportsIndex = 1, opt_trace: bool = False, opt_grid: typing.SupportsInt | typing.SupportsIndex = 8) -> dict:
    """
    Bounds of spec_weight @ h_T + spec_bias for an LSTM (RECURRENCES.md §0, §4). planes="optimized" (§3b): opt_iters iterations per margin row (the first opt_br best responses, then Adam steps of size opt_lr), intermediate bounds of the last opt_inter steps refined with opt_inter_iters; best responses on an opt_grid x opt_grid grid of each box (0: at the sweep point); opt_trace: also opt_trace_lower as for gru_bounds (tests).
    """
def plane_offset(surface: str, a: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], b: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], xl: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], xu: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], yl: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], yu: typing.Annotated[numpy.typing.ArrayLike, numpy.float64]) -> tuple:
    """
    Exact (min, max) of F - a x - b y over each box (no safety margin).
    """
def product_candidates(surface: str, a: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], b: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], xl: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], xu: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], yl: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], yu: typing.Annotated[numpy.typing.ArrayLike, numpy.float64]) -> tuple:
    """
    Candidate extreme points (x, y) of F - a x - b y on one box (corners, edge and interior critical points).
    """
def rnn_bounds(weight_ih: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], weight_hh: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], bias: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], h0: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], activation: str, x: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], eps: typing.SupportsFloat | typing.SupportsIndex, p: typing.SupportsFloat | typing.SupportsIndex, frame_mask: typing.Annotated[numpy.typing.ArrayLike, numpy.bool], spec_weight: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], spec_bias: typing.Annotated[numpy.typing.ArrayLike, numpy.float64], want_states: bool = False, planes: str = 'exact', opt_iters: typing.SupportsInt | typing.SupportsIndex = 3, opt_inter: typing.SupportsInt | typing.SupportsIndex = 1048576, opt_inter_iters: typing.SupportsInt | typing.SupportsIndex = 1, opt_trace: bool = False, opt_grid: typing.SupportsInt | typing.SupportsIndex = 8) -> dict:
    """
    Bounds of spec_weight @ h_T + spec_bias for a vanilla RNN (RECURRENCES.md §0, §4).
    """
blas: str = 'scipy-openblas32'
