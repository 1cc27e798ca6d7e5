"""Events of one operation for the release log, and appending them on the hosts."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime, timezone

from .. import commands, releaselog
from ..failures import checked, raise_failures
from ..fleet import Fleet
from ..localstate import whoami


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="microseconds")


class EventLog:
    """Builds events for one operation (one id) and appends them on hosts."""

    def __init__(
        self,
        fleet: Fleet,
        event: str,
        sha256: str | None = None,
        revision: str | None = None,
        extra: dict | None = None,
    ) -> None:
        self.fleet = fleet
        self.event = event
        self.id = uuid.uuid4().hex[:16]
        self.sha256 = sha256
        self.revision = revision
        self.extra = extra or {}

    def make(self, release: int | None, status: str | None, **fields) -> releaselog.Event:
        return releaselog.Event(
            id=self.id,
            event=fields.pop("event", self.event),
            at=now_iso(),
            by=whoami(),
            stage=self.fleet.config.stage,
            release=release,
            status=status,
            sha256=fields.pop("sha256", self.sha256),
            revision=fields.pop("revision", self.revision),
            extra={**self.extra, **fields.pop("extra", {})},
            **fields,
        )

    def script(self, events: Sequence[releaselog.Event]) -> str:
        return commands.append_log(self.fleet.layout, [e.to_json() for e in events])

    def append(
        self,
        *events: releaselog.Event,
        names: Sequence[str] | None = None,
        strict: bool = True,
        unlock: bool = False,
    ) -> None:
        """Write events on hosts. ``strict=False`` is for paths that are already failing;
        ``unlock`` releases the stage lock in the same round trip where the log was written
        (for the last step under the lock)."""
        script = self.script(events)
        if unlock:
            script = self.fleet.unlocking(script)
        outcomes = self.fleet.each(lambda s: checked(s, script, "write release log"), names)
        if unlock:
            self.fleet.unlocked([o.name for o in outcomes if o.ok])
        if strict:
            raise_failures(outcomes)
