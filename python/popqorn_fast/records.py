"""The certificates file of ``popqorn-fast certify --out``: JSON Lines, valid at every instant.

Line 1 is a header record (model, inputs, settings); every following line is one record,
appended and flushed as soon as it exists, so that the file on disk always holds every
finished certificate:

``{"type": "header", "format": FORMAT, ...}``
``{"type": "certificate", "input": i, <Certificate.to_dict()>, ...}``  one (input, norm)
``{"type": "error", "input": i, "p": "2", "error": "..."}``            an input that failed
``{"type": "stopped", "signal": "SIGINT", "records": k}``              a run stopped early
``{"type": "end", "records": k, "errors": e}``                         a run that finished

A line is written with one ``write`` while SIGINT/SIGTERM are blocked, so those signals
never leave half a line; only a hard kill (SIGKILL, power loss) can, and only the last
line: :meth:`CertsFile.lines` reports it as ``torn`` and :func:`drop_torn_tail` removes it before a
resumed run appends. Older single-JSON files (``LEGACY_FORMAT``) are read too.
"""
from __future__ import annotations

import json
import os
import signal
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Optional

FORMAT = "popqorn_fast.certificates.jsonl/1"
LEGACY_FORMAT = "popqorn_fast.certificates/1"
RECORD_TYPES = ("certificate", "error", "stopped", "end")
_BLOCKED = {signal.SIGINT, signal.SIGTERM}


class RecordsError(ValueError):
    """A file that is not a certificates file (the message says what was expected)."""


@dataclass(frozen=True)
class Line:
    """One line of a certificates file.

    Attributes
    ----------
    number : int
        1-based line number (legacy files: the certificate's position, 1-based).
    end : int
        Byte offset just past the line (its newline included).
    record : dict or None
        The parsed record, None when the line is not valid JSON.
    problem : str or None
        Why the line is unreadable (None when it is fine).
    torn : bool
        The last line, cut short (no newline or invalid JSON): a record whose write a
        hard kill interrupted.
    """
    number: int
    end: int
    record: Optional[dict[str, Any]]
    problem: Optional[str] = None
    torn: bool = False


@dataclass(frozen=True)
class CertsFile:
    """A certificates file opened for reading: its header and where its records start.

    Attributes
    ----------
    path : pathlib.Path
    header : dict
        ``model``, ``inputs``, ``settings`` (legacy files: converted to the same keys).
    legacy : bool
        A single-JSON file of the older format (its inputs are stored in it).
    body_start : int
        Byte offset of the first record line (JSON Lines files).
    """
    path: Path
    header: dict[str, Any]
    legacy: bool
    body_start: int = 0
    _legacy_records: tuple[dict[str, Any], ...] = field(default=(), repr=False)

    def lines(self) -> Iterator[Line]:
        """Every record line after the header, in file order (streamed: one line in memory)."""
        if self.legacy:
            for k, rec in enumerate(self._legacy_records):
                yield Line(k + 1, 0, {"type": "certificate", **rec})
            return
        yield from _scan_body(self.path, self.body_start)


def open_certs(path: str | os.PathLike[str]) -> CertsFile:
    """Open a certificates file (JSON Lines, or the older single-JSON format) for reading.

    Parameters
    ----------
    path : str or path-like

    Returns
    -------
    CertsFile

    Raises
    ------
    FileNotFoundError
        No such file.
    RecordsError
        Not a certificates file written by ``popqorn-fast certify --out``.
    """
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"certificates file not found: {p}")
    with open(p, "rb") as fh:
        first = fh.readline()
    try:
        head = json.loads(first)
    except (json.JSONDecodeError, UnicodeDecodeError):
        head = None
    if isinstance(head, dict) and head.get("format") == FORMAT:
        if not first.endswith(b"\n"):
            raise RecordsError(f"{p}: the header line is incomplete (the run was killed while starting); "
                               f"delete the file and run certify again")
        return CertsFile(p, head, False, len(first))
    return _open_legacy(p)


def _open_legacy(p: Path) -> CertsFile:
    try:
        doc = json.loads(p.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise RecordsError(f"{p} is not a certificates file: its first line is not a {FORMAT!r} header "
                           f"and it is not JSON ({exc})") from exc
    if not isinstance(doc, dict) or doc.get("format") != LEGACY_FORMAT:
        raise RecordsError(f"{p} is not a certificates file written by 'popqorn-fast certify --out' "
                           f"(expected format {FORMAT!r}, or the older {LEGACY_FORMAT!r})")
    for key in ("model", "inputs", "certificates"):
        if key not in doc:
            raise RecordsError(f"{p}: missing {key!r}; found {sorted(doc)}")
    seqs = {int(s["index"]): s for s in doc["inputs"].get("sequences", [])}
    recs = []
    for rec in doc["certificates"]:
        seq = seqs.get(rec.get("input", -1)) if isinstance(rec, dict) else None
        recs.append(dict(rec, x=seq["x"]) if seq is not None and "x" not in rec else rec)
    header = {k: v for k, v in doc.items() if k != "certificates"}
    return CertsFile(p, header, True, 0, tuple(recs))


def _scan_body(p: Path, start: int) -> Iterator[Line]:
    with open(p, "rb") as fh:
        fh.seek(start)
        number, pos = 1, start
        while True:
            raw = fh.readline()
            if not raw:
                return
            number += 1
            pos += len(raw)
            torn = not raw.endswith(b"\n")  # one write per line: only a cut-short write lacks it
            try:
                rec = json.loads(raw)
                if not isinstance(rec, dict):
                    raise ValueError("not a JSON object")
            except (ValueError, UnicodeDecodeError) as exc:
                why = ("incomplete last record (the run was killed while writing it; --resume "
                       "certifies it again)" if torn else f"not a JSON record: {exc}")
                yield Line(number, pos, None, why, torn)
                continue
            if torn:  # valid JSON but no newline: the write was cut short
                yield Line(number, pos, None, "incomplete last record (no end of line)", True)
                continue
            yield Line(number, pos, rec)


def drop_torn_tail(path: str | os.PathLike[str]) -> Optional[Line]:
    """Cut a torn last line off a JSON Lines certificates file (before appending to it).

    Returns
    -------
    Line or None
        The line removed, None if the file ended with a complete record.
    """
    cf = open_certs(path)
    if cf.legacy:
        return None
    good_end, torn = cf.body_start, None
    for line in cf.lines():
        if line.torn:
            torn = line
        else:
            good_end = line.end
    if torn is not None:
        with open(cf.path, "r+b") as fh:
            fh.truncate(good_end)
            fh.flush()
            os.fsync(fh.fileno())
    return torn


class RecordWriter:
    """Appends records to a JSON Lines certificates file, each one on disk when ``write`` returns.

    Every record is one ``write`` of a whole line, made while SIGINT and SIGTERM are blocked
    (they are delivered right after), then flushed to the operating system (it survives the
    death of the process) and ``fsync``-ed to the disk (it survives a crash of the machine)
    at most every ``fsync_interval`` seconds (0: after every record).

    Parameters
    ----------
    path : str or path-like
    header : dict, optional
        Written as line 1 when the file is created; None to append to an existing file.
    fsync_interval : float
        Seconds between ``fsync`` calls (0: every record); the file is synced on close anyway.
    """

    def __init__(self, path: str | os.PathLike[str], header: Optional[dict[str, Any]] = None,
                 fsync_interval: float = 0.0) -> None:
        self.path = Path(path)
        self.fsync_interval = float(fsync_interval)
        self._last_sync = 0.0
        self._dirty = False
        self.count = 0         # records written (after the header)
        self.certificates = 0  # of which certificate records
        self._fh = open(self.path, "wb" if header is not None else "ab")
        if header is not None:
            self.write({"type": "header", "format": FORMAT, **header})
            self.count = 0

    def write(self, record: dict[str, Any]) -> None:
        """Append one record (a JSON object) as one line, on disk when this returns."""
        data = (json.dumps(record, allow_nan=False, separators=(",", ":")) + "\n").encode()
        main = threading.current_thread() is threading.main_thread()
        old = signal.pthread_sigmask(signal.SIG_BLOCK, _BLOCKED) if main else None
        try:
            self._fh.write(data)
            self.certificates += record.get("type") == "certificate"
            self._fh.flush()
            self._dirty = True
            now = time.monotonic()
            if now - self._last_sync >= self.fsync_interval:
                os.fsync(self._fh.fileno())
                self._last_sync, self._dirty = now, False
        finally:
            if old is not None:
                signal.pthread_sigmask(signal.SIG_SETMASK, old)
        self.count += 1

    def close(self) -> None:
        """Sync and close the file (idempotent)."""
        if self._fh.closed:
            return
        if self._dirty:
            self._fh.flush()
            os.fsync(self._fh.fileno())
        self._fh.close()

    def __enter__(self) -> "RecordWriter":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
