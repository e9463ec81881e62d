"""Inputs read a chunk at a time: a ``.npy`` of any size is memory-mapped one chunk at a
time (each chunk its own short-lived mapping), so a dataset run holds one chunk of inputs
in memory, not N; a ``.npz`` (compressed, not mappable) is read whole."""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Optional

import numpy as np

from .model_io import as_batch, load_inputs

# inputs per chunk when hashing or reading a file (about 8 MB of float64 for T·n = 1000)
DEFAULT_CHUNK = 1024


@dataclass(frozen=True)
class InputSource:
    """N input sequences (T, n) and optional labels, read a chunk at a time.

    Attributes
    ----------
    path : str
        The file (resolved).
    shape : (N, T, n)
        After ``count``.
    labels : numpy.ndarray of int, shape (N,), or None
    """
    path: str
    shape: tuple[int, int, int]
    labels: Optional[np.ndarray]
    _dtype: np.dtype = field(default=np.dtype(np.float64), repr=False)
    _offset: int = field(default=0, repr=False)
    _array: Optional[np.ndarray] = field(default=None, repr=False)  # in memory (.npz, Fortran order)

    def __len__(self) -> int:
        return self.shape[0]

    def chunk(self, start: int, stop: int) -> np.ndarray:
        """Inputs ``start:stop`` as a float64 C-order array of shape (stop - start, T, n)."""
        N, T, n = self.shape
        start, stop = max(0, start), min(stop, N)
        if stop <= start:
            return np.zeros((0, T, n))
        if self._array is not None:
            return np.array(self._array[start:stop], dtype=np.float64, order="C")
        row = T * n * self._dtype.itemsize
        mm = np.memmap(self.path, dtype=self._dtype, mode="r", offset=self._offset + start * row,
                       shape=(stop - start, T, n))
        out = np.array(mm, dtype=np.float64, order="C")
        del mm  # the last reference: unmapped now, its pages leave this process
        return out

    def take(self, indices: np.ndarray) -> np.ndarray:
        """The inputs at ``indices`` (increasing), float64, shape (len(indices), T, n)."""
        idx = np.asarray(indices, dtype=np.int64)
        if idx.size == 0:
            return np.zeros((0,) + self.shape[1:])
        lo, hi = int(idx.min()), int(idx.max()) + 1
        return self.chunk(lo, hi)[idx - lo]

    def chunks(self, size: int = DEFAULT_CHUNK) -> Iterator[tuple[int, np.ndarray]]:
        """``(start, inputs[start:start + size])`` over the whole source."""
        for s in range(0, len(self), size):
            yield s, self.chunk(s, s + size)

    def sha256(self, size: int = DEFAULT_CHUNK) -> str:
        """SHA-256 of every input's float64 C-order bytes in order (equal to
        :func:`popqorn_fast.certificate.input_sha256` of the whole (N, T, n) array)."""
        h = hashlib.sha256()
        for _, X in self.chunks(size):
            h.update(X.tobytes())
        return h.hexdigest()

    def labels_sha256(self) -> Optional[str]:
        """SHA-256 of the labels as int64, None without labels."""
        if self.labels is None:
            return None
        return hashlib.sha256(np.ascontiguousarray(self.labels, dtype=np.int64).tobytes()).hexdigest()


def open_inputs(path: str | os.PathLike[str], count: Optional[int] = None,
                labels: Optional[np.ndarray] = None) -> InputSource:
    """Open an inputs file for chunked reading.

    Parameters
    ----------
    path : str or path-like
        ``.npy`` holding (N, T, n) or one (T, n) sequence (memory-mapped chunk by chunk),
        or ``.npz`` with ``X`` and optional labels ``y`` (read whole).
    count : int, optional
        Use only the first ``count`` inputs.
    labels : numpy.ndarray, optional
        Labels to use instead of the file's ``y`` (shape (N,) after ``count``).

    Returns
    -------
    InputSource
    """
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"inputs file not found: {p}")
    if p.suffix.lower() == ".npy":
        try:
            lazy = np.load(p, mmap_mode="r", allow_pickle=False)
        except Exception as exc:  # noqa: BLE001 - any unreadable file
            raise ValueError(f"{p} is not a readable .npy file: {exc}") from exc
        lazy = as_batch(lazy, p)
        if not (np.issubdtype(lazy.dtype, np.floating) or np.issubdtype(lazy.dtype, np.integer)):
            raise ValueError(f"{p}: inputs must be a real numeric array, got dtype {lazy.dtype}")
        N, T, n = lazy.shape
        N = N if count is None else min(N, count)
        contiguous = isinstance(lazy, np.memmap) and lazy.flags.c_contiguous
        src = InputSource(str(p.resolve()), (N, T, n), None, lazy.dtype,
                          int(lazy.offset) if contiguous else 0, None if contiguous else lazy)
        del lazy  # (a C-order file: every chunk maps its own pages)
        file_labels = None
    else:
        X, file_labels = load_inputs(p)
        N = len(X) if count is None else min(len(X), count)
        src = InputSource(str(p.resolve()), (N,) + tuple(X.shape[1:]), None, _array=X)  # type: ignore[arg-type]
    y = labels if labels is not None else file_labels
    if y is not None:
        y = np.asarray(y)[:N].astype(np.int64)
        if y.shape != (N,):
            raise ValueError(f"labels must be {N} integers (one per input), got shape {y.shape}")
    return InputSource(src.path, src.shape, y, src._dtype, src._offset, src._array)


class BlockReader:
    """Reads inputs of an :class:`InputSource` through a cache of one aligned block, so that
    callers asking for a few inputs at a time (in increasing order) map each block once."""

    def __init__(self, source: InputSource, block: int = 256) -> None:
        self.source, self.block = source, max(1, int(block))
        self._start, self._data = -1, np.zeros((0,) + source.shape[1:])

    def take(self, indices: tuple[int, ...] | list[int]) -> np.ndarray:
        """The inputs at ``indices``, float64, shape (len(indices), T, n)."""
        rows = []
        for i in indices:
            if not self._start <= i < self._start + len(self._data):
                self._start = (i // self.block) * self.block
                self._data = self.source.chunk(self._start, self._start + self.block)
            rows.append(self._data[i - self._start])
        return np.stack(rows) if rows else np.zeros((0,) + self.source.shape[1:])
