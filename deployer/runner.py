"""Run one step on many hosts at once, capped by ``parallel``; failures come back as values.

Ctrl-C sets the shared cancel event, which uploads and waiting commands check, so the
caller regains control quickly and can undo what was started.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from .errors import DeployerError

T = TypeVar("T")


@dataclass
class Outcome(Generic[T]):
    """What one host's step gave: a value or an error, and how long it took."""

    name: str
    value: T | None = None
    error: BaseException | None = None
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.error is None

    def reason(self) -> str:
        if isinstance(self.error, DeployerError):
            return self.error.message
        return f"{type(self.error).__name__}: {self.error}"


def each(
    items: Iterable[tuple[str, Any]],
    step: Callable[[Any], T],
    parallel: int,
    cancel: threading.Event,
) -> list[Outcome[T]]:
    """Apply ``step`` to each item (named by the first element), at most ``parallel`` at once."""
    items = list(items)

    def timed(name: str, item: Any) -> Outcome[T]:
        start = time.monotonic()
        try:
            return Outcome(name, value=step(item), seconds=time.monotonic() - start)
        except Exception as exc:  # a failure on one host is a value, not a crash
            return Outcome(name, error=exc, seconds=time.monotonic() - start)

    if len(items) == 1:
        name, item = items[0]
        return [timed(name, item)]
    pool = ThreadPoolExecutor(max_workers=max(1, min(parallel, len(items))))
    futures = []
    try:
        # Submitting is inside the try: Ctrl-C may land between two submits, and then the
        # steps already running must be told to stop and waited for like any others.
        futures += [pool.submit(timed, name, item) for name, item in items]
        pending = set(futures)
        while pending:
            _, pending = wait(pending, timeout=0.2, return_when=FIRST_COMPLETED)
    except BaseException:
        cancel.set()
        raise
    finally:
        _wait_for_all(pool, cancel)
    return [f.result() for f in futures]


def _wait_for_all(pool: ThreadPoolExecutor, cancel: threading.Event) -> None:
    """Let every started step finish before the caller goes on (an undo must never run
    beside the step it undoes); a second Ctrl-C meanwhile only repeats the request to stop."""
    interrupted = False
    while True:
        try:
            pool.shutdown(wait=True)
            break
        except KeyboardInterrupt:
            interrupted = True
            cancel.set()
    if interrupted:
        raise KeyboardInterrupt
