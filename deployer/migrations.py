"""Pure decisions about the database: schema versions per release, which snapshot a
rollback needs, and which way a rollback that crosses migrations goes.

The release log records, for each release whose migrations ran, the schema version before
and after and whether a snapshot was taken (``schema_before``, ``schema_after``,
``snapshot_size``). A rollback compares the version the database is at now with the one
its target release last ran on; when they differ it *crosses migrations* and needs one of
three choices (``--migrate-down``, ``--with-data``, ``--code-only``), else it refuses.
Nothing here does I/O: every rule is unit-tested on plain values.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

from . import untrusted
from .config import Host
from .releaselog import ACTIVE, FAILED, Event

REFUSE, MIGRATE_DOWN, WITH_DATA, CODE_ONLY = "refuse", "migrate-down", "with-data", "code-only"
MIGRATE_UP = "migrate-up"  # what --migrate-down does going forward: the target's own migrations
CHOICES = (MIGRATE_DOWN, WITH_DATA, CODE_ONLY)
FLAGS = {MIGRATE_DOWN: "--migrate-down", WITH_DATA: "--with-data", CODE_ONLY: "--code-only"}
MAX_VERSION = 100  # characters: a version is a label (a number, a timestamp, a hash), not text


def parse_version(stdout: str) -> str | None:
    """The schema version a ``version`` command printed: its last non-empty line, stripped,
    if that is 1 to MAX_VERSION printable characters. Anything else (nothing, control
    characters, a paragraph) is None: a host's output is never trusted as a version."""
    lines = [line.strip() for line in stdout.split("\n") if line.strip()]
    if not lines:
        return None
    return version_or_none(lines[-1])


def version_or_none(value: object) -> str | None:
    """A version from a host or a log: a printable one-line string of at most MAX_VERSION."""
    text = untrusted.text(value, MAX_VERSION)
    if not text or text != text.strip() or untrusted.printable(text) != text or "\n" in text:
        return None
    return text


def migration_host(hosts: Iterable[Host]) -> Host:
    """Where migrations run and the schema version is read: the first ``db`` host, else the first."""
    hosts = list(hosts)
    return next((h for h in hosts if "db" in h.roles), hosts[0])


@dataclass(frozen=True)
class Migrated:
    """What the migrations of one release did, as its log recorded it."""

    release: int
    before: str
    after: str
    at: str  # when the snapshot before them was taken (else when they were logged)
    snapshot: bool  # a snapshot from before them was taken and kept

    @property
    def changed(self) -> bool:
        return self.before != self.after

    def describe(self) -> str:
        return f"release {self.release} moved the schema from {self.before} to {self.after}"


def schema_fields(
    before: str, after: str, snapshot_size: int | None, snapshot_path: str = "", snapshot_at: str = ""
) -> dict:
    """The release log fields of one release's migrations (see :func:`recorded`). The path is
    for people reading the log: the tool itself always derives it from the release number."""
    fields: dict = {"schema_before": before, "schema_after": after}
    if snapshot_size is not None:
        fields["snapshot_size"] = snapshot_size
        fields.update({k: v for k, v in (("snapshot", snapshot_path), ("snapshot_at", snapshot_at)) if v})
    return fields


def timestamp(value: object) -> str | None:
    """An ISO 8601 time from a log, or None (it is shown to a person before data is lost)."""
    text = untrusted.text(value, 40)
    if text is None:
        return None
    try:
        datetime.fromisoformat(text)
    except ValueError:
        return None
    return text


def recorded(events: Iterable[Event]) -> dict[int, Migrated]:
    """For each release whose migrations ran, what they did (from its active or failed
    event; the newest record wins). Fields of the wrong type are ignored, never trusted."""
    found: dict[int, Migrated] = {}
    for event in events:
        if event.release is None or event.status not in (ACTIVE, FAILED):
            continue
        before = version_or_none(event.extra.get("schema_before"))
        after = version_or_none(event.extra.get("schema_after"))
        if before is None or after is None:
            continue
        size = untrusted.integer(event.extra.get("snapshot_size"))
        at = timestamp(event.extra.get("snapshot_at")) or timestamp(event.at) or "an unknown time"
        found[event.release] = Migrated(event.release, before, after, at, size is not None)
    return found


def schema_of(release: int, records: Mapping[int, Migrated], deployed: Collection[int] = ()) -> str | None:
    """The schema a release ran on: what its own migrations left, else (a release deployed
    before migrations were recorded) what the next recorded release found before its own,
    but only if no release deployed in between went unrecorded (its migrations, run by a
    hook, may have changed the schema): None when it cannot be known."""
    if release in records:
        return records[release].after
    later = sorted(n for n in records if n > release)
    if not later or any(release < n < later[0] for n in deployed):
        return None
    return records[later[0]].before


@dataclass(frozen=True)
class Crossing:
    """A rollback whose target ran on another schema than the database is at now."""

    target: int
    target_schema: str
    current_schema: str
    crossed: tuple[Migrated, ...]  # the releases between whose migrations changed the schema
    snapshot: Migrated | None  # what --with-data restores: from when the schema last left the target's
    forward: bool = False  # --to a newer release, continuing from the schema the database is at

    def summary(self) -> str:
        ran = "; ".join(m.describe() for m in self.crossed) or "the schema changed outside deploys"
        return (
            f"release {self.target} ran on schema {self.target_schema}, the database is at "
            f"{self.current_schema} ({ran})"
        )

    def refusal(self, stage: str, can_down: bool, can_restore: bool) -> str:
        """The one line of a refusal, offering only the ways that can work here."""
        how = "the target's migrations.command" if self.forward else "migrations.down"
        ways = [f"--migrate-down (run {how} to {self.target_schema})"] if can_down or self.forward else []
        if can_restore and self.snapshot is not None:
            ways.append("--with-data (restore the snapshot from before, losing later writes)")
        ways.append(f"--code-only (the target's code on schema {self.current_schema})")
        return (
            f"rollback to release {self.target} crosses migrations: {self.summary()}; nothing was "
            f"switched. Choose {', '.join(ways[:-1]) + ' or ' if len(ways) > 1 else ''}{ways[-1]}, or set "
            f"migrations.rollback in config/{stage}.yml"
        )

    def loss(self) -> str:
        """What --with-data loses, in a person's words."""
        assert self.snapshot is not None
        return (
            f"every write to the database since {self.snapshot.at} (the snapshot taken just before release "
            f"{self.snapshot.release}'s migrations) is lost"
        )


def crossing(
    records: Mapping[int, Migrated],
    target: int,
    current_schema: str,
    snapshots: Iterable[int],
    current: int | None = None,
    deployed: Collection[int] = (),
) -> Crossing | None:
    """None when the target ran on the schema the database is at (or its schema is unknown:
    see :func:`schema_of`); else what the rollback crosses: going back, the migrations of
    every newer release (a failed one's too); going forward (``--to`` past ``current``), those
    up to the target. The snapshot to restore is the newest kept one taken when the database
    moved away from the target's schema: data from the last moment that schema was live, so
    nothing older than needed is lost."""
    target_schema = schema_of(target, records, deployed)
    if target_schema is None or target_schema == current_schema:
        return None
    between = [m for n, m in sorted(records.items()) if current is not None and current < n <= target]
    forward = any(m.before == current_schema and m.changed for m in between)  # the target's line goes on
    low, high = (current, target) if forward else (target, None)
    crossed = tuple(
        m for n, m in sorted(records.items()) if n > low and (high is None or n <= high) and m.changed
    )
    kept = set(snapshots)
    departures = [
        m
        for m in sorted(records.values(), key=lambda m: m.at)
        if m.before == target_schema and m.changed and m.snapshot and m.release in kept
    ]
    snapshot = departures[-1] if departures else None
    return Crossing(target, target_schema, current_schema, crossed, snapshot, forward)


def snapshots_to_remove(snapshots: Iterable[int], kept_releases: Iterable[int]) -> list[int]:
    """Snapshots no rollback can use any more: a snapshot taken before release N's migrations
    serves a rollback to a release older than N, so it goes once no kept release is older
    than N (a failed release's snapshot stays while the release live before it is kept)."""
    kept = list(kept_releases)
    if not kept:
        return sorted(snapshots)
    oldest = min(kept)
    return sorted(n for n in snapshots if n <= oldest)
