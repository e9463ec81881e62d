"""Running chunks of inputs on any ``concurrent.futures.Executor`` so that a lost worker
costs only resubmission.

A chunk whose future fails (a killed worker process: Dask's ``KilledWorker``, a closed
connection, a broken pool; or an error of the computation itself) is split into its
single inputs and each is resubmitted; an input whose task fails ``max_attempts`` times is
given up and reported with its last error, so nothing is retried forever. Results come
back per input, in completion order, each exactly once, with a count of inputs done
that never counts a resubmitted input twice. At most ``window`` chunks are in flight,
and a chunk's inputs are read only when it is submitted, so N inputs need the memory of
``window`` chunks.
"""
from __future__ import annotations

import concurrent.futures as cf
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Iterator, Optional

DEFAULT_ATTEMPTS = 3


@dataclass(frozen=True)
class Work:
    """A chunk of inputs of one group (e.g. one norm): ``indices`` into the inputs."""
    group: int
    indices: tuple[int, ...]
    attempt: int = 1


@dataclass(frozen=True)
class Outcome:
    """The result for one input: ``value`` when it succeeded, else ``error`` (its text)."""
    group: int
    index: int
    value: Any = None
    error: Optional[str] = None
    attempts: int = 1

    @property
    def ok(self) -> bool:
        return self.error is None


class IncompleteRunError(RuntimeError):
    """Some inputs failed on every attempt; the others' results are attached.

    Attributes
    ----------
    results : list
        One entry per input, None where the input failed.
    errors : dict of int to str
        The failed inputs and their last error.
    """

    def __init__(self, results: list[Any], errors: dict[int, str], attempts: int) -> None:
        self.results, self.errors = results, errors
        first = "; ".join(f"input {i}: {e}" for i, e in sorted(errors.items())[:3])
        more = f" (and {len(errors) - 3} more)" if len(errors) > 3 else ""
        super().__init__(f"{len(errors)} of {len(results)} input(s) failed after {attempts} attempt(s) "
                         f"each: {first}{more}; the other results are in .results")


def _describe(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _call(fn: Callable[..., list[Any]], args: tuple[Any, ...], attempt: int) -> list[Any]:
    """The task an executor runs (``attempt`` makes a resubmission a new task, e.g. a new Dask key)."""
    return fn(*args)


def run_resilient(works: Iterable[Work], fn: Callable[..., list[Any]],
                  payload: Callable[[Work], tuple[Any, ...]], executor: Optional[cf.Executor] = None,
                  max_attempts: int = DEFAULT_ATTEMPTS, window: int = 16,
                  poll: float = 0.5) -> Iterator[Outcome]:
    """Run ``fn(*payload(work))`` for every work (a list of per-input results), surviving lost workers.

    Parameters
    ----------
    works : iterable of Work
        Consumed lazily (at most ``window`` chunks ahead of the results).
    fn : callable
        Importable (it travels to the workers); returns one result per index of the work.
    payload : callable
        ``payload(work)`` -> the arguments of ``fn``, built when the work is (re)submitted.
    executor : concurrent.futures.Executor, optional
        None: run in this thread (an error is then final at once: there is no worker to lose).
    max_attempts : int
        Tries per input before it is reported as failed.
    window : int
        Chunks in flight at once.
    poll : float
        Seconds between checks while waiting (keeps the waiting thread responsive to signals).

    Yields
    ------
    Outcome
        One per input, in completion order.
    """
    if max_attempts < 1:
        raise ValueError(f"max_attempts must be >= 1, got {max_attempts}")
    if executor is None:
        yield from _run_inline(works, fn, payload)
        return
    pending = iter(works)
    retry: list[Work] = []
    flying: dict[cf.Future, Work] = {}

    def submit_more() -> None:
        while len(flying) < window:
            if retry:
                w = retry.pop()
            else:
                w = next(pending, None)
                if w is None:
                    return
            flying[executor.submit(_call, fn, payload(w), w.attempt)] = w

    try:
        submit_more()
        while flying:
            done, _ = cf.wait(list(flying), timeout=poll, return_when=cf.FIRST_COMPLETED)
            for fut in done:
                w = flying.pop(fut)
                try:
                    res = fut.result()
                    if len(res) != len(w.indices):
                        raise RuntimeError(f"a task returned {len(res)} results for {len(w.indices)} inputs")
                except Exception as exc:  # noqa: BLE001 - a lost worker or a failing input: retry
                    if w.attempt >= max_attempts and len(w.indices) == 1:
                        yield Outcome(w.group, w.indices[0], error=_describe(exc), attempts=w.attempt)
                    else:  # split: one bad input must not sink the others of its chunk
                        nxt = min(w.attempt + 1, max_attempts)
                        retry.extend(Work(w.group, (i,), nxt) for i in reversed(w.indices))
                    continue
                for i, v in zip(w.indices, res):
                    yield Outcome(w.group, i, value=v, attempts=w.attempt)
            submit_more()
    finally:  # an interrupt (or the consumer stopping early): drop what has not run
        for fut in flying:
            fut.cancel()


def _run_inline(works: Iterable[Work], fn: Callable[..., list[Any]],
                payload: Callable[[Work], tuple[Any, ...]]) -> Iterator[Outcome]:
    for w in works:
        for i in w.indices:  # one input at a time: each result is out as soon as it exists
            single = Work(w.group, (i,), w.attempt)
            try:
                res = fn(*payload(single))
            except Exception as exc:  # noqa: BLE001 - reported per input
                yield Outcome(w.group, i, error=_describe(exc), attempts=w.attempt)
                continue
            yield Outcome(w.group, i, value=res[0], attempts=w.attempt)
