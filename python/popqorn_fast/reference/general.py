"""Plain-NumPy POPQORN bounds of the general model (stacked, bidirectional, readouts,
frame layers, MLP head): :class:`popqorn_fast.general.RecurrentClassifier`.

Written from the mathematics (docs/RECURRENCES.md §1, §2, §4; ALGORITHM.md §4), with the
per-step back-substitutions of the one-layer oracle (``rnn.backward_step``,
``lstm.backward_step``, ``gru.backward_step`` / ``gru.u_backward``): their "A_k" is the
coefficient on the step's INPUT, which here is routed to the node that produced that input
(a frame layer's output, or layer l-1's two directions at the same time t).

The computation is a graph of nodes::

    ("x", t)             input frame x_t                                  (terminal)
    ("fz", j, t)         pre-activation z^j_t of frame layer j
    ("fa", j, t)         output act(z^j_t) of frame layer j; ("fa", -1, t) is x_t
    ("in", l, t)         input of recurrent layer l at time t (l = L: the top layer's output)
    ("step", l, d, t)    state of layer l, direction d (0 forward, 1 backward) after time t:
                         h_t (and c_t for LSTM), pending as ("h", l, d, t) / ("c", l, d, t)
    ("feat",)            the readout
    ("hz", j)            pre-activation of head layer j
    ("ha", j)            output of head layer j

Every bound is ONE back-substitution of a stacked objective ``[Lam; -Lam]`` (upper = minus the
lower bound of ``-Lam``, ordered by ``split_stacked``): coefficient matrices pending on nodes
are processed in reverse topological order, so a node's coefficients from every path (the
next step of its chain, the layer above, the readout) are summed before its relaxation picks
a side by their sign; they end on the frames ``x_t`` and §1 concretises
``d + sum_t A_t x_t - eps sum_{t moving} ||A_t||_q``.

Order in which bounds and relaxations are fixed:

1. frame layers j = 0..m-1, each at every t: bounds of z^j_t (``frame{j}_pre``), then the
   §2 lines of its activation (none for a linear layer);
2. recurrent layers l = 0..L-1, the forward direction over t = 0..T-1, then the backward one
   over t = T-1..0 (it reads the state of t+1; its initial state is zero; h0/c0 only on
   one-direction layers), each step exactly as the one-layer oracle: RNN pre -> lines;
   LSTM gates -> P^f (box of c_prev; the initial state at the chain's first step), P^ig ->
   cell -> P^o, hidden = corner min/max; GRU gates -> P^r -> u -> P^u, P^z (box of h_prev)
   or the shared-z variant -> hidden (back-substitution, every step);
3. head layers j = 0..H-1: bounds of z^j (``head{j}_pre``) for every j < H-1 (linear ones too)
   and for j = H-1 only if it has an activation, then its lines;
4. the specification on the logits (act(z^{H-1}) if the last layer has an activation).

Readouts: "last" puts the feature's columns on forward h_{T-1} and backward h_0 of the top
layer; "last_step" on the top layer's output at T-1; "mean" puts ``Lam / T`` on the output at
every t.  An LSTM step reached only through c (Lam_h absent) passes Lam_h = 0 through P^o.
"""
from __future__ import annotations

from typing import Any, Optional

import numpy as np

from . import gru as _gru
from . import lstm as _lstm
from . import rnn as _rnn
from .concretize import concretize_lower, concretize_slope, split_stacked, stack_objective
from .lines import Lines, bound_activation
from .planes import ProductBounds, core_bound_product
from .substitution import through_lines

_ACT = {"tanh": np.tanh, "relu": lambda z: np.maximum(z, 0.0)}


class _Model:
    """The model's arrays in the shapes the recurrences use."""

    def __init__(self, model: Any, T: int) -> None:
        self.model = model
        self.T = T
        self.frames = list(model.frame_layers)
        self.m = len(self.frames)
        self.layers = list(model.layers)
        self.L = len(self.layers)
        self.head = list(model.head)
        self.H = len(self.head)
        # per (l, d): kind-specific parameters
        self.params: dict[tuple[int, int], Any] = {}
        self.init: dict[tuple[int, int], tuple[np.ndarray, np.ndarray]] = {}
        for l, layer in enumerate(self.layers):
            s = layer.hidden_size
            for d, dr in enumerate(layer.directions()):
                w_ih, w_hh, b_ih, b_hh = (np.asarray(a, dtype=np.float64)
                                          for a in (dr.weight_ih, dr.weight_hh, dr.bias_ih, dr.bias_hh))
                if layer.kind == "gru":
                    self.params[l, d] = _gru.GRUParams.from_pytorch(w_ih, w_hh, b_ih, b_hh)
                else:
                    self.params[l, d] = (w_ih, w_hh, b_ih + b_hh)
                h0 = np.zeros(s) if (d == 1 or layer.h0 is None) else np.asarray(layer.h0, dtype=np.float64)
                c0 = np.zeros(s) if (d == 1 or layer.c0 is None) else np.asarray(layer.c0, dtype=np.float64)
                self.init[l, d] = (h0, c0)
        # forward (topological) order of the nodes that carry coefficients
        order: list[tuple] = []
        for t in range(T):
            for j in range(self.m):
                order += [("fz", j, t), ("fa", j, t)]
        for l, layer in enumerate(self.layers):
            order += [("in", l, t) for t in range(T)]
            for d in range(layer.num_directions):
                order += [("step", l, d, t) for t in self.times(d)]
        order += [("in", self.L, t) for t in range(T)]
        order.append(("feat",))
        for j in range(self.H):
            order += [("hz", j), ("ha", j)]
        self.order = order

    def times(self, d: int) -> range:
        """Times of direction d in the order it runs."""
        return range(self.T) if d == 0 else range(self.T - 1, -1, -1)

    def prev(self, d: int, t: int) -> Optional[int]:
        """The time whose state step (d, t) reads, None at the chain's first step."""
        k = t - 1 if d == 0 else t + 1
        return k if 0 <= k < self.T else None


class _Pass:
    """One back-substitution: pending coefficients per node, a constant, and the A_t."""

    def __init__(self, net: _Model, relax: dict, rows: int, n: int, const: np.ndarray) -> None:
        self.net = net
        self.relax = relax          # the relaxations fixed so far (keys as the node names)
        self.rows = rows
        self.pending: dict[tuple, np.ndarray] = {}
        self.const = np.asarray(const, dtype=np.float64).copy()
        self.A = np.zeros((net.T, rows, n))

    def add(self, node: tuple, lam: np.ndarray) -> None:
        if node[0] == "x":
            self.A[node[1]] += lam
        elif node in self.pending:
            self.pending[node] = self.pending[node] + lam
        else:
            self.pending[node] = lam

    def _to_state(self, l: int, d: int, t: Optional[int], lam_h: np.ndarray,
                  lam_c: Optional[np.ndarray]) -> None:
        """Coefficients on the state a step reads: step (l, d, t), or the initial state if t is None."""
        if t is None:
            h0, c0 = self.net.init[l, d]
            self.const = self.const + lam_h @ h0
            if lam_c is not None:
                self.const = self.const + lam_c @ c0
            return
        self.add(("h", l, d, t), lam_h)
        if lam_c is not None:
            self.add(("c", l, d, t), lam_c)

    def _input_of_frame_layer(self, j: int, t: int) -> tuple:
        """The node that frame layer j reads at t (frame layer j-1's output, or x_t)."""
        return ("fa", j - 1, t) if j > 0 else ("x", t)

    # -- the step entries (objectives entering inside a step) ------------------------------------------
    def enter_gates(self, l: int, d: int, t: int, lam: np.ndarray) -> None:
        """``lam`` on the step's gate pre-activations (RNN z_t; LSTM y_t; GRU [y^r; y^z; v])."""
        net = self.net
        kind = net.layers[l].kind
        prm = net.params[l, d]
        if kind == "gru":
            s = net.layers[l].hidden_size
            self.add(("in", l, t), lam[:, :2 * s] @ prm.w_irz)
            self.const = self.const + lam @ prm.b_gates
            lam_h = lam @ prm.w_hh
        else:
            w_ih, w_hh, bias = prm
            self.add(("in", l, t), lam @ w_ih)
            self.const = self.const + lam @ bias
            lam_h = lam @ w_hh
        lam_c = np.zeros((lam.shape[0], net.layers[l].hidden_size)) if kind == "lstm" else None
        self._to_state(l, d, net.prev(d, t), lam_h, lam_c)

    def enter_cell(self, l: int, d: int, t: int, lam: np.ndarray, step_planes: Any) -> None:
        """LSTM: ``lam`` on c_t (P^o unused)."""
        w_ih, w_hh, bias = self.net.params[l, d]
        lam_h, lam_c, A_k, c = _lstm.backward_step(None, lam, step_planes, w_ih, w_hh, bias)
        self.add(("in", l, t), A_k)
        self.const = self.const + c
        self._to_state(l, d, self.net.prev(d, t), lam_h, lam_c)

    def enter_u(self, l: int, d: int, t: int, lam: np.ndarray, step_planes: Any) -> None:
        """GRU: ``lam`` on u_t."""
        lam_h, A_k, c = _gru.u_backward(lam, np.zeros_like(lam), np.zeros_like(lam), step_planes,
                                        self.net.params[l, d])
        self.add(("in", l, t), A_k)
        self.const = self.const + c
        self._to_state(l, d, self.net.prev(d, t), lam_h, None)

    # -- processing --------------------------------------------------------------------------------
    def _process(self, node: tuple) -> None:
        net = self.net
        tag = node[0]
        if tag == "step":
            _, l, d, t = node
            lam_h = self.pending.pop(("h", l, d, t), None)
            lam_c = self.pending.pop(("c", l, d, t), None)
            if lam_h is None and lam_c is None:
                return
            layer = net.layers[l]
            s = layer.hidden_size
            if lam_h is None:
                lam_h = np.zeros((self.rows, s))
            relax = self.relax["step", l, d, t]
            if layer.kind == "rnn":
                w_ih, w_hh, bias = net.params[l, d]
                lam_prev, A_k, c = _rnn.backward_step(lam_h, relax, w_ih, w_hh, bias)
                lam_c_prev = None
            elif layer.kind == "lstm":
                w_ih, w_hh, bias = net.params[l, d]
                if lam_c is None:
                    lam_c = np.zeros((self.rows, s))
                lam_prev, lam_c_prev, A_k, c = _lstm.backward_step(lam_h, lam_c, relax, w_ih, w_hh, bias)
            else:
                lam_prev, A_k, c = _gru.backward_step(lam_h, relax, net.params[l, d])
                lam_c_prev = None
            self.add(("in", l, t), A_k)
            self.const = self.const + c
            self._to_state(l, d, net.prev(d, t), lam_prev, lam_c_prev)
            return
        lam = self.pending.pop(node, None)
        if lam is None:
            return
        if tag == "fz":
            _, j, t = node
            dl = net.frames[j]
            self.add(self._input_of_frame_layer(j, t), lam @ dl.weight)
            self.const = self.const + lam @ dl.bias
        elif tag == "fa":
            _, j, t = node
            self._through_activation(lam, net.frames[j].activation, ("fz", j, t))
        elif tag == "in":
            _, l, t = node
            if l == 0:
                self.add(("fa", net.m - 1, t) if net.m else ("x", t), lam)
            else:
                below = net.layers[l - 1]
                s = below.hidden_size
                self.add(("h", l - 1, 0, t), lam[:, :s])
                if below.bidirectional:
                    self.add(("h", l - 1, 1, t), lam[:, s:])
        elif tag == "feat":
            top = net.layers[-1]
            s = top.hidden_size
            T = net.T
            if net.model.readout == "last":
                self.add(("h", net.L - 1, 0, T - 1), lam[:, :s])
                if top.bidirectional:
                    self.add(("h", net.L - 1, 1, 0), lam[:, s:])
            elif net.model.readout == "last_step":
                self.add(("in", net.L, T - 1), lam)
            else:  # mean
                for t in range(T):
                    self.add(("in", net.L, t), lam / T)
        elif tag == "hz":
            j = node[1]
            dl = net.head[j]
            self.add(("ha", j - 1) if j > 0 else ("feat",), lam @ dl.weight)
            self.const = self.const + lam @ dl.bias
        elif tag == "ha":
            j = node[1]
            self._through_activation(lam, net.head[j].activation, ("hz", j))
        else:
            raise AssertionError(node)

    def _through_activation(self, lam: np.ndarray, activation: Optional[str], pre: tuple) -> None:
        if activation is None:
            self.add(pre, lam)
            return
        lines: Lines = self.relax[pre]
        lam_z, c = through_lines(lam, lines.alpha_l, lines.beta_l, lines.alpha_u, lines.beta_u)
        self.add(pre, lam_z)
        self.const = self.const + c

    def lower(self, x: np.ndarray, eps: float, p: float, frame_mask: np.ndarray,
              threat: Any = None) -> np.ndarray:
        """Run the substitution to the frames and concretise (§1, over ``threat`` if given)."""
        for node in reversed(self.net.order):
            self._process(node)
        assert not self.pending, f"unprocessed nodes {sorted(self.pending)}"
        return concretize_lower(self.A, self.const, x, eps, p, frame_mask, threat)


def general_bounds_with(product_bounds: ProductBounds, model: Any, x: np.ndarray, eps: float, p: float,
                        frame_mask: np.ndarray, spec_weight: np.ndarray, spec_bias: np.ndarray,
                        planes: str = "exact", want_states: bool = False,
                        gru_shared_z: bool = False, threat: Any = None,
                        margins_eps: Optional[float] = None) -> dict:
    """``general_bounds`` with the plane function given explicitly (see ``general_bounds``)."""
    x = np.asarray(x, dtype=np.float64)
    spec_weight = np.asarray(spec_weight, dtype=np.float64)
    spec_bias = np.asarray(spec_bias, dtype=np.float64)
    frame_mask = np.asarray(frame_mask, dtype=bool)
    eps = float(eps)
    p = float(p)
    T, n = x.shape
    net = _Model(model, T)
    relax: dict[tuple, Any] = {}
    states: dict[str, np.ndarray] = {}

    def bound(rows: int, enter) -> tuple[np.ndarray, np.ndarray]:
        """Bounds of an objective of ``rows`` rows: ``enter(pass, stacked lam)`` places it."""
        ps = _Pass(net, relax, 2 * rows, n, np.zeros(2 * rows))
        enter(ps, stack_objective(np.eye(rows)))
        return split_stacked(ps.lower(x, eps, p, frame_mask, threat), rows)

    # 1. frame layers
    for j, dl in enumerate(net.frames):
        w = dl.out_features
        lo, up = np.zeros((T, w)), np.zeros((T, w))
        for t in range(T):
            lo[t], up[t] = bound(w, lambda ps, lam: ps.add(("fz", j, t), lam))
            if dl.activation is not None:
                relax["fz", j, t] = bound_activation(dl.activation, lo[t], up[t])
        states[f"frame{j}_pre"] = (lo, up)

    # 2. recurrent layers, each direction step by step
    for l, layer in enumerate(net.layers):
        s = layer.hidden_size
        for d in range(layer.num_directions):
            tag = f"L{l}{'fb'[d]}_"
            h0, c0 = net.init[l, d]
            if layer.kind == "rnn":
                pre_l, pre_u = np.zeros((T, s)), np.zeros((T, s))
                for t in net.times(d):
                    pre_l[t], pre_u[t] = bound(s, lambda ps, lam: ps.enter_gates(l, d, t, lam))
                    relax["step", l, d, t] = bound_activation(layer.activation, pre_l[t], pre_u[t])
                act = _ACT[layer.activation]
                states[tag + "pre"] = (pre_l, pre_u)
                states[tag + "hidden"] = (act(pre_l), act(pre_u))
            elif layer.kind == "lstm":
                g_l, g_u = np.zeros((T, 4 * s)), np.zeros((T, 4 * s))
                c_l, c_u = np.zeros((T, s)), np.zeros((T, s))
                h_l, h_u = np.zeros((T, s)), np.zeros((T, s))
                for t in net.times(d):
                    g_l[t], g_u[t] = bound(4 * s, lambda ps, lam: ps.enter_gates(l, d, t, lam))
                    yl, yu = np.split(g_l[t], 4), np.split(g_u[t], 4)  # i, f, g, o
                    k = net.prev(d, t)
                    cl_prev, cu_prev = (c0, c0) if k is None else (c_l[k], c_u[k])
                    p_f = product_bounds("x_sigmoid", cl_prev.copy(), cu_prev.copy(), yl[1].copy(),
                                         yu[1].copy(), planes)
                    p_ig = product_bounds("tanh_sigmoid", yl[2].copy(), yu[2].copy(), yl[0].copy(),
                                          yu[0].copy(), planes)
                    entry = _lstm.StepPlanes(f=p_f, ig=p_ig, o=None)
                    c_l[t], c_u[t] = bound(s, lambda ps, lam: ps.enter_cell(l, d, t, lam, entry))
                    p_o = product_bounds("tanh_sigmoid", c_l[t].copy(), c_u[t].copy(), yl[3].copy(),
                                         yu[3].copy(), planes)
                    relax["step", l, d, t] = _lstm.StepPlanes(f=p_f, ig=p_ig, o=p_o)
                    corners = np.array([np.tanh(c) * _lstm._sigmoid(y)
                                        for c in (c_l[t], c_u[t]) for y in (yl[3], yu[3])])
                    h_l[t], h_u[t] = corners.min(axis=0), corners.max(axis=0)
                states[tag + "gates"] = (g_l, g_u)
                states[tag + "cell"] = (c_l, c_u)
                states[tag + "hidden"] = (h_l, h_u)
            else:  # gru
                g_l, g_u = np.zeros((T, 3 * s)), np.zeros((T, 3 * s))
                u_l, u_u = np.zeros((T, s)), np.zeros((T, s))
                h_l, h_u = np.zeros((T, s)), np.zeros((T, s))
                for t in net.times(d):
                    g_l[t], g_u[t] = bound(3 * s, lambda ps, lam: ps.enter_gates(l, d, t, lam))
                    yr_l, yz_l, v_l = np.split(g_l[t], 3)
                    yr_u, yz_u, v_u = np.split(g_u[t], 3)
                    p_r = product_bounds("x_sigmoid", v_l.copy(), v_u.copy(), yr_l.copy(), yr_u.copy(), planes)
                    entry = _gru.StepPlanes(r=p_r, u=None, z=None)
                    u_l[t], u_u[t] = bound(s, lambda ps, lam: ps.enter_u(l, d, t, lam, entry))
                    k = net.prev(d, t)
                    hl_prev, hu_prev = (h0, h0) if k is None else (h_l[k], h_u[k])
                    relax["step", l, d, t] = _gru.hidden_planes(product_bounds, p_r, u_l[t], u_u[t], yz_l, yz_u,
                                                                hl_prev, hu_prev, planes, gru_shared_z)
                    h_l[t], h_u[t] = bound(s, lambda ps, lam: ps.add(("h", l, d, t), lam))
                states[tag + "gates"] = (g_l, g_u)
                states[tag + "u"] = (u_l, u_u)
                states[tag + "hidden"] = (h_l, h_u)

    # 4. head layers: pre-activations that need lines (every one but a linear last layer)
    for j, dl in enumerate(net.head):
        if j == net.H - 1 and dl.activation is None:
            break
        lo, up = bound(dl.out_features, lambda ps, lam: ps.add(("hz", j), lam))
        if dl.activation is not None:
            relax["hz", j] = bound_activation(dl.activation, lo, up)
        states[f"head{j}_pre"] = (lo[None, :], up[None, :])

    # 5. the specification on the logits
    K = spec_weight.shape[0]
    last = net.H - 1
    top = ("ha", last) if net.head[last].activation is not None else ("hz", last)
    ps = _Pass(net, relax, 2 * K, n, np.concatenate([spec_bias, -spec_bias]))
    ps.add(top, stack_objective(spec_weight))
    lower, upper = split_stacked(ps.lower(x, eps if margins_eps is None else margins_eps, p, frame_mask, threat), K)
    out = {"lower": lower, "upper": upper, "slope": concretize_slope(ps.A[:, :K], x, eps, p, frame_mask, threat)}
    if want_states:
        for name, (lo, up) in states.items():
            out[name + "_lower"] = lo
            out[name + "_upper"] = up
    return out


def general_bounds(model: Any, x: np.ndarray, eps: float, p: float, frame_mask: np.ndarray,
                   spec_weight: np.ndarray, spec_bias: np.ndarray, planes: str = "exact",
                   want_states: bool = False, gru_shared_z: bool = False, threat: Any = None,
                   margins_eps: Optional[float] = None) -> dict:
    """Lower/upper bounds of ``spec_weight @ logits + spec_bias`` for a general model.

    Parameters
    ----------
    model : popqorn_fast.general.RecurrentClassifier
        (``as_general`` turns a one-layer RNNWeights / LSTMWeights / GRUWeights into one).
        h0 / c0 of one-direction layers are their forward initial states; else zeros.
    x : (T, n) clean input; eps >= 0; p in {1.0, 2.0, inf}
    frame_mask : (T,) bool, True where the frame moves (each in its own lp ball)
    spec_weight : (K, C), spec_bias : (K,)
    planes : {"exact", "1d", "constant"} (the core's planes, ``reference.planes``)
    want_states : bool, also return ``<name>_lower`` / ``<name>_upper`` for every state name of
        :mod:`popqorn_fast.general_forward` (``frame{j}_pre`` (T, w); ``L{l}{d}_<name>`` (T, width),
        row t = time t for both directions; ``head{j}_pre`` (1, w) for the head layers whose
        pre-activation is bounded: all but the last, and the last if it has an activation)
    gru_shared_z : bool, the shared-z hidden update of GRU layers (reference/gru.py)
    threat : popqorn_fast.threat.ThreatModel, optional: the input set (default the per-frame balls)
    margins_eps : float, optional: the margins' linear bounds (every relaxation fixed at ``eps``)
        concretised over the set of this radius instead (<= eps; RECURRENCES.md §5)

    Returns
    -------
    dict
        ``lower``, ``upper`` (K,), ``slope`` (K,) (how fast ``lower`` rises as the radius
        shrinks with these relaxations, ``concretize_slope``) and, with ``want_states``, the
        state bounds.
    """
    return general_bounds_with(core_bound_product, model, x, eps, p, frame_mask, spec_weight, spec_bias,
                               planes, want_states, gru_shared_z, threat, margins_eps)
