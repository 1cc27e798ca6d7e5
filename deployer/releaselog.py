"""The release log: append-only JSON lines in ``.deployer/log.jsonl`` on every host.

Each line is one event (deploy, rollback, cleanup, failure). Reading is forgiving: a line
that is not a JSON object (a truncated last line after a power loss) is skipped, so the
log never stops ``releases`` or ``rollback`` from working.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from . import untrusted

REVISION = re.compile(r"[0-9a-f]{4,64}(-dirty)?")
STAGED, ACTIVE, FAILED, ROLLED_BACK = "staged", "active", "failed", "rolled-back"
BAD_STATUSES = frozenset({FAILED, ROLLED_BACK})


@dataclass(frozen=True)
class Event:
    """One line of the log."""

    id: str
    event: str
    at: str
    by: str
    stage: str
    release: int | None = None
    status: str | None = None
    previous: int | None = None
    sha256: str | None = None
    revision: str | None = None
    detail: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def note(self, key: str) -> str:
        """A free-form string field beyond the known ones (``author``, ``subject``), or ''
        when it is missing or not a string."""
        return untrusted.text(self.extra.get(key)) or ""

    def to_json(self) -> str:
        data = {k: v for k, v in self.__dict__.items() if k != "extra" and v is not None}
        data.update(self.extra)
        return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


# The type each known field must have; a line where one has another type is not an event
# (a hand-edited or hostile log must not reach arithmetic, sorting or a shell).
_STRINGS = ("id", "event", "at", "by", "stage", "status", "revision", "detail")
_INTEGERS = ("release", "previous")
_FIELDS = (*_STRINGS, *_INTEGERS, "sha256")


def parse_line(line: str) -> Event | None:
    """One event, or None for a line that is not a well-formed event: not a JSON object,
    a known field of the wrong type, or a digest that is not a full hex sha256."""
    data = untrusted.json_object(line)
    if data is None or not isinstance(data.get("event"), str):
        return None
    if any(data.get(k) is not None and untrusted.text(data[k]) is None for k in _STRINGS):
        return None
    if any(data.get(k) is not None and untrusted.release_number(data[k]) is None for k in _INTEGERS):
        return None
    if data.get("sha256") is not None and not untrusted.is_sha256(data["sha256"]):
        return None
    if data.get("revision") is not None and not REVISION.fullmatch(data["revision"]):
        return None  # it reaches git (pending, promote): only what we write, a commit sha
    known = {k: data.get(k) for k in _FIELDS}
    extra = {k: v for k, v in data.items() if k not in _FIELDS}
    for k in ("id", "at", "by", "stage"):
        known[k] = known[k] or ""
    return Event(**known, extra=extra)


def parse(text: str) -> list[Event]:
    """Every well-formed event of a log, in file order."""
    events = (parse_line(line) for line in text.split("\n") if line.strip())
    return [e for e in events if e is not None]


def merge(logs: Iterable[list[Event]]) -> list[Event]:
    """One timeline from several hosts' logs: the same event written to many hosts counts once."""
    seen: set[tuple] = set()
    merged: list[Event] = []
    for log in logs:
        for event in log:
            key = (event.id, event.event, event.release, event.status)
            if key not in seen:
                seen.add(key)
                merged.append(event)
    return sorted(merged, key=lambda e: e.at)


def statuses(events: Iterable[Event]) -> dict[int, str]:
    """The latest status of each release."""
    latest: dict[int, str] = {}
    for event in events:
        if event.release is not None and event.status:
            latest[event.release] = event.status
    return latest


def highest_release(events: Iterable[Event]) -> int:
    """The highest release number the log has ever mentioned (0 if none)."""
    return max((e.release for e in events if e.release is not None), default=0)


def artifact_shas(events: Iterable[Event]) -> dict[int, str]:
    """The artifact sha256 each release was deployed (or promoted) with."""
    return {n: e.sha256 for n, e in deploy_info(events).items() if e.sha256}


def deploy_info(events: Iterable[Event]) -> dict[int, Event]:
    """For each release, the event that first staged or activated it by a deploy."""
    info: dict[int, Event] = {}
    for event in events:
        if event.event in ("deploy", "promote") and event.release is not None and event.release not in info:
            info[event.release] = event
    return info
