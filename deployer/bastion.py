"""Shared connections to jump hosts: one login per bastion, however many hosts are behind it.

Every host reached through a bastion gets its own ``direct-tcpip`` channel on the one
verified connection to that bastion, so 50 hosts behind it cost one bastion login, not 50.
A connection is counted by the sessions that lease it and closed with the last of them; a
chained hop (``a,b``) holds a lease on the hop before it.

A hop that failed is not asked again by the hosts that were waiting for it, nor by those
that ask within :data:`RETRY_AFTER` seconds (the next batch of hosts of the same task):
they fail at once with the same reason, instead of each waiting out its own timeout.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Any

from .errors import HostUnreachable
from .jumps import Hop

RETRY_AFTER = 5.0  # seconds a failed hop's reason is handed out instead of trying again

Dial = Callable[
    [tuple[Hop, ...], Any], Any
]  # (route to a hop, connection of the hop before it) -> its connection


@dataclass(eq=False)
class _Entry:
    """One hop's connection (or why it could not be opened) and who is using it."""

    ready: threading.Event = field(default_factory=threading.Event)
    conn: Any = None
    parent: Lease | None = None
    failure: HopFailed | None = None
    failed_at: float = 0.0
    users: int = 0


class HopFailed(Exception):
    """A hop could not be opened; ``depth`` says which (1 is the outermost)."""

    def __init__(self, depth: int, problem: str) -> None:
        super().__init__(problem)
        self.depth = depth
        self.problem = problem


@dataclass(eq=False)
class Lease:
    """A hold on the connection to the last hop of a route; ``release`` gives it back."""

    pool: Pool
    key: Hashable
    entry: _Entry

    @property
    def conn(self) -> Any:
        return self.entry.conn

    def release(self) -> None:
        self.pool.give_back(self.key, self.entry)


class Pool:
    """Open hop connections, by (ssh options, route prefix)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: dict[Hashable, _Entry] = {}

    def lease(self, scope: Hashable, route: tuple[Hop, ...], dial: Dial) -> Lease:
        """A lease on the connection to ``route[-1]``, opening every hop not yet open.
        Raises :class:`HopFailed` naming the depth of the hop that failed."""
        key = (scope, route)
        entry, mine = self._join(key)
        if mine:
            self._open(entry, scope, route, dial)
        else:
            entry.ready.wait()
        if entry.failure is not None:
            self.give_back(key, entry)
            raise entry.failure
        return Lease(self, key, entry)

    def _join(self, key: Hashable) -> tuple[_Entry, bool]:
        """The entry to wait for, and whether this caller must open it."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None and entry.ready.is_set() and _stale(entry):
                entry = None  # a dead connection, or a failure old enough to try again
            mine = entry is None
            if entry is None:
                entry = self._entries[key] = _Entry()
            entry.users += 1
            return entry, mine

    def _open(self, entry: _Entry, scope: Hashable, route: tuple[Hop, ...], dial: Dial) -> None:
        try:
            entry.parent = self.lease(scope, route[:-1], dial) if len(route) > 1 else None
            entry.conn = dial(route, entry.parent.conn if entry.parent else None)
        except HopFailed as exc:
            entry.failure = exc
        except HostUnreachable as exc:
            entry.failure = HopFailed(len(route), getattr(exc, "problem", exc.message))
        except Exception as exc:  # whatever it was, the waiting hosts must hear of it too
            entry.failure = HopFailed(len(route), f"{type(exc).__name__}: {exc}")
        finally:
            if entry.failure is None and entry.conn is None:  # Ctrl-C: nobody may wait for it in vain
                entry.failure = HopFailed(len(route), "interrupted")
            if entry.failure is not None:
                entry.failed_at = time.monotonic()
                if entry.parent is not None:
                    entry.parent.release()
                    entry.parent = None
            entry.ready.set()

    def give_back(self, key: Hashable, entry: _Entry) -> None:
        """One user fewer; the last one closes the connection (and its lease on the hop
        before it). A failed entry stays a little while, so the next hosts share its reason."""
        with self._lock:
            entry.users -= 1
            if entry.users > 0 or entry.failure is not None:
                return
            if self._entries.get(key) is entry:
                del self._entries[key]
        if entry.conn is not None:
            entry.conn.close()
        if entry.parent is not None:
            entry.parent.release()

    def open_count(self) -> int:
        """Connections held open now (tests check that a task leaves none behind)."""
        with self._lock:
            return sum(1 for e in self._entries.values() if e.conn is not None and e.failure is None)


def _stale(entry: _Entry) -> bool:
    if entry.failure is not None:
        return time.monotonic() - entry.failed_at > RETRY_AFTER
    transport = getattr(entry.conn, "transport", None)
    return transport is None or not transport.is_active()


POOL = Pool()
