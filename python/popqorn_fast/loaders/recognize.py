"""Map the symbolic logits of a graph (:mod:`.symbolic`) onto a RecurrentClassifier.

From the logits down: the head (Dense layers: an affine map, then an activation atom, ...),
the readout (which outputs of the top recurrent layer the head reads: the final states =
"last", every direction at t = T-1 = "last_step", the mean over t = "mean"), the recurrent
layers (recurrent nodes, or unrolled RNN chains ``h_t = act(R h_{t-1} + W u_t + b)`` that
the dynamo exporter writes for ``nn.RNN``), and the frame layers (Dense layers applied to
each input frame). Every step checks that the graph computes exactly that function (same
weights at every time step, the right time alignment), else it refuses and says where.
"""
from __future__ import annotations

from typing import Any, Optional

import numpy as np

from ..general import Dense, RecurrentClassifier, RecurrentLayer
from .onnx_ops import RecNode
from .symbolic import ActAtom, Atom, InputAtom, RecAtom, Sym, SymVec, dense

_RTOL = 1e-12   # tolerance for "the same matrix at every step" (sums of float32 values in float64)


def _same(a: Any, b: Any) -> bool:
    if not isinstance(a, np.ndarray) and not isinstance(b, np.ndarray):
        return a == b
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape:
        return False
    scale = max(float(np.max(np.abs(a), initial=0.0)), float(np.max(np.abs(b), initial=0.0)), 1e-300)
    return bool(np.max(np.abs(a - b), initial=0.0) <= _RTOL * scale)


class _Refuse(ValueError):
    pass


class Chain:
    """An unrolled RNN direction: ``steps`` in processing order, h_k = act(R h_{k-1} + u_k + c)."""

    def __init__(self, act: str, R: np.ndarray, c: np.ndarray, steps: list[ActAtom],
                 inputs: list[SymVec]) -> None:
        self.act, self.R, self.c, self.steps, self.inputs = act, R, c, steps, inputs


class Layer:
    """A recognised recurrent layer: kind, per direction ("f"/"b") the PyTorch parameters
    before folding its input map, and where each of its output atoms sits (d, t)."""

    def __init__(self) -> None:
        self.kind = "rnn"
        self.activation = "tanh"
        self.hidden = 0
        self.dirs: list[str] = []
        self.params: list[list[np.ndarray]] = []   # per direction [w_ih, w_hh, b_ih, b_hh]
        self.where: dict[Atom, tuple[int, int]] = {}
        self.below: Optional["Layer"] = None
        self.frames: tuple = ()
        self.h0: Optional[np.ndarray] = None
        self.c0: Optional[np.ndarray] = None
        self.name = ""


class Recognizer:
    def __init__(self, T: int, source: str) -> None:
        self.T = T
        self.source = source
        self.chain_of: dict[Atom, Chain] = {}
        self.tried: set[Atom] = set()
        self.layers: dict[Any, Layer] = {}
        self.frame_t: dict[Atom, Optional[int]] = {}

    def refuse(self, msg: str) -> _Refuse:
        return _Refuse(f"{self.source}: unsupported graph: {msg}")

    # ------------------------------------------------------------------ unrolled chains
    def _links(self, a: ActAtom, R: Optional[np.ndarray]) -> list[tuple[ActAtom, Any]]:
        H = a.dim
        out = []
        for b, m in a.arg.terms.items():
            if isinstance(b, ActAtom) and b.act == a.act and b.dim == H:
                if R is None or _same(dense(m, H, H), R):
                    out.append((b, m))
        return out

    def _walk(self, top: ActAtom, first: ActAtom, R: np.ndarray) -> Optional[Chain]:
        steps = [top, first]
        cur = first
        while len(steps) <= self.T:
            links = self._links(cur, R)
            if not links:
                break
            if len(links) > 1:
                return None
            cur = links[0][0]
            steps.append(cur)
        if len(steps) != self.T:
            return None
        steps.reverse()
        c = steps[-1].arg.const
        inputs = []
        shapes = None
        for k, s in enumerate(steps):
            if not _same(s.arg.const, c):
                return None
            rest = {b: m for b, m in s.arg.terms.items() if not (k and b is steps[k - 1])}
            if k and len(rest) != len(s.arg.terms) - 1:
                return None
            sig = [np.shape(dense(m, s.dim, b.dim)) for b, m in rest.items()]
            if shapes is None:
                shapes = sig
            elif sig != shapes:
                return None
            inputs.append(SymVec(np.zeros(s.dim), rest))
        return Chain(top.act, R, c, steps, inputs)

    def find_chains(self, atoms: Any) -> None:
        """Register every unrolled chain whose last step is among ``atoms``."""
        for a in atoms:
            if not isinstance(a, ActAtom) or a in self.chain_of or a in self.tried or self.T < 2:
                continue
            self.tried.add(a)
            found = []
            for b, m in self._links(a, None):
                R = dense(m, a.dim, a.dim)
                ch = self._walk(a, b, R)
                if ch is not None:
                    found.append(ch)
            if len(found) == 1:
                for s in found[0].steps:
                    self.chain_of[s] = found[0]

    # ------------------------------------------------------------------ frames
    def _first_steps(self, v: SymVec) -> None:
        """Register lone first steps of unrolled backward directions that ``v`` reads beside an
        unrolled chain: a bidirectional layer's output at t = T-1 is the backward direction's
        first step ``act(W u_{T-1} + b)`` (its recurrent weights are unused: zero initial state),
        as ``last_step`` reads it."""
        chains = {id(self.chain_of[a]): self.chain_of[a] for a in v.terms if a in self.chain_of}
        if len(chains) != 1 or self.T < 2:
            return
        ch = next(iter(chains.values()))
        for a in v.terms:
            if (isinstance(a, ActAtom) and a not in self.chain_of and a.act == ch.act
                    and a.dim == ch.steps[0].dim
                    and not any(self.chain_of.get(b) is ch for b in a.arg.terms)):
                self.chain_of[a] = Chain(a.act, np.zeros((a.dim, a.dim)), a.arg.const, [a],
                                         [SymVec(np.zeros(a.dim), dict(a.arg.terms))])

    def frame_time(self, a: Atom) -> Optional[int]:
        """The one input frame ``a`` depends on, if it is a per-frame quantity, else None."""
        if a in self.chain_of:
            return None
        if a in self.frame_t:
            return self.frame_t[a]
        t: Optional[int] = None
        if isinstance(a, InputAtom):
            t = a.t
        elif isinstance(a, ActAtom):
            ts = {self.frame_time(b) for b in a.arg.terms}
            t = ts.pop() if len(ts) == 1 else None
        self.frame_t[a] = t
        return t

    def peel_frames(self, a: Atom) -> list[Dense]:
        """The Dense layers computing per-frame atom ``a`` from the input frame."""
        if isinstance(a, InputAtom):
            return []
        assert isinstance(a, ActAtom)
        if len(a.arg.terms) != 1:
            raise self.refuse(f"the per-frame quantity computed by {a.where} mixes {len(a.arg.terms)} "
                              f"inputs; frame layers must be a chain of Dense layers")
        (b, m), = a.arg.terms.items()
        act = a.act
        return self.peel_frames(b) + [Dense(dense(m, a.dim, b.dim), a.arg.const, act)]

    # ------------------------------------------------------------------ layers
    def is_output(self, a: Atom) -> bool:
        return (isinstance(a, RecAtom) and not a.cell) or a in self.chain_of

    def layer_of(self, atoms: list[Atom]) -> Layer:
        recs = {a.rec for a in atoms if isinstance(a, RecAtom)}
        chains = {id(self.chain_of[a]): self.chain_of[a] for a in atoms if a in self.chain_of}
        cells = [a for a in atoms if isinstance(a, RecAtom) and a.cell]
        if cells:
            raise self.refuse(f"the model reads the cell state Y_c of {cells[0].rec.name}; a classifier "
                              f"reads hidden states only")
        if recs and chains or len(recs) > 1:
            raise self.refuse("one layer's consumers read the outputs of several recurrent nodes at "
                              "once (" + ", ".join(sorted(r.name for r in recs)) + ")")
        if recs:
            rec = recs.pop()
            if rec not in self.layers:
                self.layers[rec] = self._layer_from_node(rec)
            return self.layers[rec]
        key = frozenset(chains)
        if key not in self.layers:
            self.layers[key] = self._layer_from_chains(list(chains.values()))
        return self.layers[key]

    def _layer_from_node(self, rec: RecNode) -> Layer:
        L = Layer()
        L.kind, L.activation, L.hidden, L.dirs, L.name = rec.kind, rec.activation, rec.hidden, \
            list(rec.dirs), rec.name
        L.h0, L.c0 = rec.h0, rec.c0
        for (d, t), a in rec.atoms.items():
            L.where[a] = (d, t)
        below, times, E, c = self.below(rec.inputs, f"the input of {rec.name}")
        if times != list(range(self.T)):
            raise self.refuse(f"{rec.name} reads its input in the order of frames {times}; a "
                              f"recurrent node must read frame t at step t")
        for (w_ih, w_hh, b_ih, b_hh) in rec.params:
            if isinstance(E, np.ndarray) or E != 1.0 or np.any(c):
                Ed = E if isinstance(E, np.ndarray) else E * np.eye(c.size)
                b_ih = b_ih + w_ih @ c
                w_ih = w_ih @ Ed
            L.params.append([w_ih, w_hh, b_ih, b_hh])
        L.below, L.frames = below
        return L

    def _layer_from_chains(self, chains: list[Chain]) -> Layer:
        L = Layer()
        L.hidden = chains[0].steps[0].dim
        L.name = f"the unrolled recurrence ending at {chains[0].steps[-1].where}"
        if any(ch.act != chains[0].act for ch in chains) or chains[0].act not in ("tanh", "relu"):
            raise self.refuse(f"{L.name} uses activation {chains[0].act}; an RNN uses tanh or relu")
        L.activation = chains[0].act
        unders = []
        for ch in chains:
            below, times, E, c = self.below(ch.inputs, f"the input of {L.name}")
            if times == list(range(self.T)):
                direction = "f"
            elif times == list(range(self.T))[::-1] or (len(ch.steps) == 1 and times == [self.T - 1]):
                direction = "b"
            else:
                raise self.refuse(f"{L.name} reads the frames in the order {times}")
            H = L.hidden
            L.dirs.append(direction)
            L.params.append([E if isinstance(E, np.ndarray) else E * np.eye(H),
                             ch.R, ch.c + c, np.zeros(H)])
            for k, s in enumerate(ch.steps):
                L.where[s] = (len(L.dirs) - 1, times[k])
            unders.append(below)
        if len(L.dirs) != len(set(L.dirs)):
            raise self.refuse(f"{L.name}: two unrolled recurrences of the same direction read the same layer")
        if len(unders) == 2 and (unders[0][0] is not unders[1][0] or len(unders[0][1]) != len(unders[1][1])):
            raise self.refuse(f"{L.name}: the two directions read different inputs")
        if L.dirs == ["b", "f"]:
            L.dirs.reverse()
            L.params.reverse()
            L.where = {a: (1 - d, t) for a, (d, t) in L.where.items()}
        L.below, L.frames = unders[0]
        return L

    def below(self, svs: list[SymVec], what: str) -> tuple:
        """What per-step inputs ``svs`` are: ((lower Layer or None, frame Dense layers), the
        time of each step, the map E (one for all steps) and offset c)."""
        atoms: dict[Atom, None] = {}
        for v in svs:
            atoms.update(dict.fromkeys(v.terms))
        if not atoms:
            raise self.refuse(f"{what} does not depend on the graph input")
        self.find_chains(atoms)
        if all(self.frame_time(a) is not None for a in atoms):
            times, E, c, frames = [], None, None, None
            for v in svs:
                if len(v.terms) != 1:
                    raise self.refuse(f"{what} mixes {len(v.terms)} per-frame quantities at one step")
                (a, m), = v.terms.items()
                f = self.peel_frames(a)
                if frames is None:
                    frames, E, c = f, m, v.const
                elif not (self._same_dense(frames, f) and _same(dense(m, v.size, a.dim),
                                                                 dense(E, v.size, a.dim))
                          and _same(v.const, c)):
                    raise self.refuse(f"{what} applies different per-frame maps at different steps")
                times.append(self.frame_time(a))
            return (None, tuple(frames)), times, E, c
        bad = [a for a in atoms if not self.is_output(a)]
        if bad:
            a = bad[0]
            where = a.where if isinstance(a, ActAtom) else "the input"
            raise self.refuse(f"{what} depends on {where} in a way that is neither a frame layer nor "
                              f"the output of a recurrent layer")
        lower = self.layer_of(list(atoms))
        times, E, c = [], None, None
        H, D = lower.hidden, len(lower.dirs)
        for v in svs:
            ts = {lower.where[a][1] for a in v.terms}
            if len(ts) != 1:
                raise self.refuse(f"{what} mixes the outputs of {lower.name} at different times {sorted(ts)}")
            blocks = [np.zeros((v.size, H)) for _ in range(D)]
            for a, m in v.terms.items():
                blocks[lower.where[a][0]] = dense(m, v.size, H)
            Ev = np.concatenate(blocks, axis=1)
            if E is None:
                E, c = Ev, v.const
            elif not (_same(Ev, E) and _same(v.const, c)):
                raise self.refuse(f"{what} maps the outputs of {lower.name} differently at different steps")
            times.append(ts.pop())
        if E.shape[0] == E.shape[1] and np.array_equal(E, np.eye(E.shape[0])):
            E = 1.0
        return (lower, ()), times, E, c

    @staticmethod
    def _same_dense(a: list[Dense], b: list[Dense]) -> bool:
        return len(a) == len(b) and all(
            x.activation == y.activation and _same(x.weight, y.weight) and _same(x.bias, y.bias)
            for x, y in zip(a, b))

    # ------------------------------------------------------------------ the whole model
    def model(self, out: SymVec) -> RecurrentClassifier:
        head: list[Dense] = []
        act: Optional[str] = None
        v = out
        while True:
            if not v.terms:
                raise self.refuse("the logits do not depend on the input")
            self.find_chains(v.terms)
            self._first_steps(v)
            if all(self.is_output(a) for a in v.terms):
                break
            if len(v.terms) == 1:
                (a, m), = v.terms.items()
                if isinstance(a, ActAtom) and self.frame_time(a) is None:
                    head.insert(0, Dense(dense(m, v.size, a.dim), v.const, act))
                    act, v = a.act, a.arg
                    continue
            a = next(a for a in v.terms if not self.is_output(a))
            where = a.where if isinstance(a, ActAtom) else ("the input frame directly" if
                                                          isinstance(a, InputAtom) else
                                                          f"the cell state Y_c of {a.rec.name}")
            hint = (" (with T = 1 time step an unrolled recurrence cannot be told from a Dense layer: "
                    "export with a sequence of 2 or more steps)" if self.T == 1 else "")
            raise self.refuse(f"the head reads {where}; expected Dense layers on the outputs of the "
                              f"top recurrent layer{hint}")
        top = self.layer_of(list(v.terms))
        readout, W = self.readout(v, top)
        head.insert(0, Dense(W, v.const, act))
        layers: list[RecurrentLayer] = []
        L: Optional[Layer] = top
        frames: tuple = ()
        while L is not None:
            layers.insert(0, self.to_layer(L))
            frames = L.frames
            L = L.below
        return RecurrentClassifier(tuple(layers), tuple(head), readout=readout, frame_layers=frames)

    def readout(self, v: SymVec, L: Layer) -> tuple[str, np.ndarray]:
        T, H, D = self.T, L.hidden, len(L.dirs)
        used: list[dict[int, Any]] = [dict() for _ in range(D)]
        for a, m in v.terms.items():
            d, t = L.where[a]
            used[d][t] = dense(m, v.size, H)
        last = [T - 1 if L.dirs[d] == "f" else 0 for d in range(D)]
        present = [d for d in range(D) if used[d]]

        def weight(pick: Any) -> np.ndarray:
            return np.concatenate([pick(d) if used[d] else np.zeros((v.size, H)) for d in range(D)], axis=1)

        if all(set(used[d]) == {last[d]} for d in present):
            return "last", weight(lambda d: used[d][last[d]])
        if all(set(used[d]) == {T - 1} for d in present):
            return "last_step", weight(lambda d: used[d][T - 1])
        if all(set(used[d]) == set(range(T)) and all(_same(used[d][t], used[d][0]) for t in range(T))
               for d in present):
            return "mean", weight(lambda d: used[d][0] * T)
        desc = {L.dirs[d]: sorted(used[d]) for d in present}
        raise self.refuse(f"the head reads the outputs of {L.name} at times {desc} (direction: times); "
                          f"supported readouts: the final states (last), every direction at the last "
                          f"step (last_step), the mean over time (mean)")

    def to_layer(self, L: Layer) -> RecurrentLayer:
        if L.dirs == ["b"]:
            raise self.refuse(f"{L.name} runs backward only; a one-direction layer must run forward "
                              f"(a backward-only layer is not part of the general model)")
        rev = tuple(L.params[1]) if len(L.dirs) == 2 else None
        return RecurrentLayer(L.kind, *L.params[0], activation=L.activation, reverse=rev,
                              h0=L.h0, c0=L.c0)


def recognize(out: Sym, T: int, source: str) -> RecurrentClassifier:
    """The RecurrentClassifier that the symbolic output ``out`` computes (T time steps)."""
    if out.slots.size != 1:
        raise _Refuse(f"{source}: unsupported graph: the output has shape {out.shape}; expected "
                      f"(batch, classes)")
    v = out.slots.reshape(-1)[0]
    return Recognizer(T, source).model(v)
