"""An executor wrapper that loses a worker: the task of one chosen submission kills the
process running it (SIGKILL, once: a marker file records it), as a crashed or pre-empted
worker would. Importable by Dask worker processes (the tests folder is on their path)."""
from __future__ import annotations

import os
import signal
from concurrent.futures import Executor, Future
from pathlib import Path
from typing import Any, Callable


def _die_once_then(marker: str, fn: Callable[..., Any], *args: Any) -> Any:
    """Kill this process the first time (the marker does not exist yet), else run ``fn``."""
    try:
        fd = os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError:
        return fn(*args)
    os.write(fd, str(os.getpid()).encode())
    os.close(fd)
    os.kill(os.getpid(), signal.SIGKILL)
    raise AssertionError("unreachable")


class KillingExecutor(Executor):
    """Passes submissions to ``inner``; submission number ``kill_at`` (1-based) runs in a task
    that kills its worker process before it computes anything."""

    def __init__(self, inner: Executor, marker: Path, kill_at: int = 2) -> None:
        self.inner, self.marker, self.kill_at, self.submitted = inner, Path(marker), kill_at, 0

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future:
        self.submitted += 1
        if self.submitted == self.kill_at:
            return self.inner.submit(_die_once_then, str(self.marker), fn, *args, **kwargs)
        return self.inner.submit(fn, *args, **kwargs)

    @property
    def killed_pid(self) -> int | None:
        return int(self.marker.read_text()) if self.marker.exists() else None
