"""Nominal floating-point work of one bound pass (docs/RECURRENCES.md §4).

Counts the dense products of the back-substitutions (2 flops per multiply-add),
which dominate a pass: the figure behind the GFLOP/s column of bench/run.py.
"""
from __future__ import annotations


def step_flops(kind: str, rows: int, s: int, n: int) -> int:
    """One back-substitution step of ``rows`` objective rows: products with W_hh and W_ih."""
    G = {"rnn": 1, "lstm": 4, "gru": 3}[kind]
    return 2 * rows * G * s * (s + n)


def pass_flops(kind: str, T: int, s: int, n: int, K: int) -> int:
    """Nominal flops of one bound pass with K specification rows."""
    total = 0
    for t in range(1, T + 1):
        if kind == "rnn":
            total += (t - 1) * step_flops(kind, 2 * s, s, n)           # z_t
        elif kind == "lstm":
            total += (t - 1) * step_flops(kind, 8 * s, s, n)           # gates y_t
            total += t * step_flops(kind, 2 * s, s, n)                 # c_t (enters at step t)
        else:
            total += (t - 1) * step_flops(kind, 6 * s, s, n)           # gates r, z, v
            total += t * step_flops(kind, 2 * s, s, n)                 # u_t (through step t's gates)
            total += t * step_flops(kind, 2 * s, s, n)                 # h_t
    total += T * step_flops(kind, 2 * K, s, n)                         # margins (lower and upper)
    return total


def stacked_pass_flops(kind: str, L: int, T: int, s: int, n: int, K: int) -> int:
    """Nominal flops of one bound pass of L stacked one-direction layers of width s (layer 0
    reads n features, the others s): an objective entering layer l at step t is carried back
    through that layer's earlier steps, then through every lower layer from step t down."""
    rows = {"rnn": [2 * s], "lstm": [8 * s, 2 * s], "gru": [6 * s, 2 * s, 2 * s]}[kind]

    def down(l: int, t: int, R: int) -> int:  # steps t..1 of layers l-1..0
        return sum(t * step_flops(kind, R, s, n if j == 0 else s) for j in range(l))

    total = 0
    for l in range(L):
        nl = n if l == 0 else s
        for t in range(1, T + 1):
            total += (t - 1) * step_flops(kind, rows[0], s, nl) + down(l, t, rows[0])
            for R in rows[1:]:
                total += t * step_flops(kind, R, s, nl) + down(l, t, R)
    total += T * sum(step_flops(kind, 2 * K, s, n if l == 0 else s) for l in range(L))  # the margins
    return total
