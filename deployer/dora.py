"""The four DORA keys of one stage, computed from its release log (plain data in, numbers out).

Definitions (docs/recipes.md says the same for users):

- a *deployment* is a release that went live by ``deploy`` or ``promote``: its first
  ``active`` event, or, for one switched back by the tool before it was logged active (a
  failed health check), the moment its first host was switched (``live_at``);
- *deployment frequency*: deployments in the window, over the window's length in days;
- *lead time for changes*: for each commit a deployment brought (the commits between the
  revision live before it and its own, as the local git repository knows them; else its
  own commit), the deployment's time minus the commit's time; median and p90;
- *change failure rate*: deployments in the window that turned bad (:mod:`.incidents`),
  over deployments in the window;
- *time to restore*: for each bad deployment, from going live to the first moment a good
  release was live again (a rollback, a later good deploy, or the tool's own switch back).

A value that cannot be known is ``None`` (null in JSON), never a guess: no deployments
means no failure rate; no revisions means no lead time.
"""

from __future__ import annotations

import math
import re
import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from . import incidents, releaselog
from .errors import ConfigError

DAY, WEEK, MONTH = 86400.0, 7 * 86400.0, 30 * 86400.0
HOUR = 3600.0
LIVE_EVENTS = ("deploy", "promote")


@dataclass(frozen=True)
class Deployment:
    release: int
    at: datetime
    event: str
    revision: str | None
    sha256: str | None


@dataclass(frozen=True)
class Incident:
    release: int
    went_live: datetime
    restored_at: datetime | None
    reason: str
    cause: str
    by: str = ""

    @property
    def seconds(self) -> float | None:
        return None if self.restored_at is None else (self.restored_at - self.went_live).total_seconds()


def parse_time(text: str) -> datetime | None:
    """An event's ``at`` as an aware UTC time; None for one that is not an ISO time."""
    try:
        when = datetime.fromisoformat(text)
    except (TypeError, ValueError):
        return None
    try:
        return when.replace(tzinfo=timezone.utc) if when.tzinfo is None else when.astimezone(timezone.utc)
    except OverflowError:  # year 1 or 9999 shifted past the calendar
        return None


_SPAN = re.compile(r"(\d{1,5})([hdw])")


def parse_since(text: str, now: datetime, flag: str = "--since") -> datetime:
    """``30d``, ``12h``, ``2w`` before ``now``, or an ISO date or time (UTC unless it says)."""
    match = _SPAN.fullmatch(text.strip())
    if match:
        count, unit = int(match.group(1)), match.group(2)
        return now - timedelta(seconds=count * {"h": HOUR, "d": DAY, "w": WEEK}[unit])
    when = parse_time(text.strip())
    if when is None:
        raise ConfigError(f"{flag}: {text!r} is neither a span (30d, 12h, 2w) nor an ISO date (2026-11-01)")
    return when


def deployments(events: Sequence[releaselog.Event]) -> list[Deployment]:
    """Every release that went live by deploy or promote, once, in time order."""
    found: dict[int, Deployment] = {}
    for event in events:
        number = event.release
        if number is None or number in found or event.event not in LIVE_EVENTS:
            continue
        when = None
        if event.status == releaselog.ACTIVE:
            when = parse_time(event.at)
        elif event.status == releaselog.FAILED and incidents.cause_of(event):
            when = parse_time(event.note("live_at")) or parse_time(event.at)
        if when is not None:
            found[number] = Deployment(number, when, event.event, event.revision, event.sha256)
    return sorted(found.values(), key=lambda d: d.at)


def incident_list(events: Sequence[releaselog.Event], deployed: Sequence[Deployment]) -> list[Incident]:
    """Each deployment that turned bad, with when a good release was live again."""
    verdicts = {v.release: v for v in incidents.verdicts(events)}
    result = []
    for dep in deployed:
        verdict = verdicts.get(dep.release)
        if verdict is None:
            continue
        restored = _restored_at(events, dep, set(verdicts))
        result.append(Incident(dep.release, dep.at, restored, verdict.reason, verdict.cause, verdict.by))
    return result


def _restored_at(events: Sequence[releaselog.Event], dep: Deployment, bad: set[int]) -> datetime | None:
    """The first moment after ``dep`` went live when it was switched away to a good release."""
    for event in events:
        when = parse_time(event.at)
        if when is None or when < dep.at:
            continue
        if event.release == dep.release and incidents.cause_of(event):
            return when  # the tool's own switch back, or the rollback that left it
        if event.status == releaselog.ACTIVE and event.release not in (dep.release, None, *bad):
            return when
    return None


def percentile(values: Sequence[float], share: float) -> float | None:
    """Nearest-rank percentile: the smallest value with at least ``share`` of all at or below."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]


def median(values: Sequence[float]) -> float | None:
    return statistics.median(values) if values else None


def lead_time_inputs(
    events: Sequence[releaselog.Event], deployed: Sequence[Deployment]
) -> list[tuple[int, str | None, str | None]]:
    """For each deployment: (release, its revision, the revision live just before it), so
    the caller can ask git which commits it brought. Revisions lose their ``-dirty``."""
    info = releaselog.deploy_info(events)
    live = live_track(events)

    def rev(number: int | None) -> str | None:
        event = info.get(number) if number is not None else None
        return event.revision.removesuffix("-dirty") if event and event.revision else None

    rows = []
    for dep in deployed:
        before = [n for when, n in live if when < dep.at and n != dep.release]
        rows.append((dep.release, rev(dep.release), rev(before[-1]) if before else None))
    return rows


def live_track(events: Sequence[releaselog.Event]) -> list[tuple[datetime, int]]:
    """When each release became the live one: an ``active`` event makes it live; the tool's
    own switch back of the live release (a verdict with a cause) makes the one before it
    live again, though no ``active`` event says so."""
    track: list[tuple[datetime, int]] = []
    before: dict[int, int | None] = {}
    for event in events:
        when, number = parse_time(event.at), event.release
        if when is None or number is None:
            continue
        current = track[-1][1] if track else None
        if event.status == releaselog.ACTIVE and number != current:
            before[number] = current
            track.append((when, number))
        elif event.status == releaselog.FAILED and number == current and incidents.cause_of(event):
            back = before.get(number)
            if back is not None:
                track.append((when, back))
    return track


def band(key: str, value: float | None) -> str | None:
    """The DORA band (2023 Accelerate State of DevOps Report) of one key's value."""
    if value is None:
        return None
    if key == "deploys_per_day":  # on demand (daily or more) / weekly / monthly / less
        cuts, better = (1.0, 1 / 7, 1 / 30), "higher"
    elif key == "lead_time_seconds":  # < 1 day / < 1 week / < 1 month / more
        cuts, better = (DAY, WEEK, MONTH), "lower"
    elif key == "change_failure_rate":  # the report's clusters: 5%, 10%, 15%, 64%
        cuts, better = (0.05, 0.10, 0.15), "lower"
    else:  # time_to_restore_seconds: < 1 hour / < 1 day / < 1 week / more
        cuts, better = (HOUR, DAY, WEEK), "lower"
    names = ("elite", "high", "medium")
    for name, cut in zip(names, cuts, strict=True):
        if (better == "higher" and value >= cut) or (
            better == "lower" and (value <= cut if key == "change_failure_rate" else value < cut)
        ):
            return name
    return "low"


def compute(
    events: Iterable[releaselog.Event],
    since: datetime,
    until: datetime,
    commits: Mapping[int, Sequence[float] | None],
) -> dict:
    """The report (the documented ``metrics --json`` shape, less stage and hosts).

    ``commits`` maps a deployment's release to the commit times (epoch seconds) it
    brought, or None when the local repository could not say (no revision logged, or a
    commit it does not have); a release missing from it is treated as None."""
    events = list(events)
    every = deployments(events)
    window = [d for d in every if since <= d.at <= until]
    numbers = {d.release for d in window}
    found = [i for i in incident_list(events, every) if i.release in numbers]
    days = max((until - since).total_seconds() / DAY, 1 / 24)
    lead = _lead_times(window, commits)
    restore = [i.seconds for i in found if i.seconds is not None]
    report = {
        "since": since.isoformat(),
        "until": until.isoformat(),
        "deploys": len(window),
        "deploys_per_day": round(len(window) / days, 4),
        "lead_time_seconds": {
            "median": median(lead["all"]),
            "p90": percentile(lead["all"], 0.9),
            "samples": len(lead["all"]),
        },
        "change_failure_rate": round(len(found) / len(window), 4) if window else None,
        "time_to_restore_seconds": {"median": median(restore), "samples": len(restore)},
        "incidents": [_incident_json(i) for i in found],
        "per_day": _per_day(window, {i.release for i in found}, since, until),
        "lead_time_by_release": lead["by_release"],
        "notes": _notes(window, commits, lead["missing"]),
    }
    report["bands"] = {
        "deploys_per_day": band("deploys_per_day", report["deploys_per_day"] if window else None),
        "lead_time_seconds": band("lead_time_seconds", report["lead_time_seconds"]["median"]),
        "change_failure_rate": band("change_failure_rate", report["change_failure_rate"]),
        "time_to_restore_seconds": band("time_to_restore_seconds", median(restore)),
    }
    return report


def _lead_times(window: Sequence[Deployment], commits: Mapping[int, Sequence[float] | None]) -> dict:
    every: list[float] = []
    by_release = []
    missing = []
    for dep in window:
        times = commits.get(dep.release)
        if times is None:
            missing.append(dep.release)
            continue
        samples = [dep.at.timestamp() - t for t in times]
        every += samples
        by_release.append({"release": dep.release, "at": dep.at.isoformat(), "median": median(samples)})
    return {"all": every, "by_release": by_release, "missing": missing}


def _incident_json(incident: Incident) -> dict:
    return {
        "release": incident.release,
        "went_live": incident.went_live.isoformat(),
        "restored_at": incident.restored_at.isoformat() if incident.restored_at else None,
        "seconds": incident.seconds,
        "reason": incident.reason or None,
        "cause": incident.cause,
        "by": incident.by or None,
    }


def _per_day(window: Sequence[Deployment], bad: set[int], since: datetime, until: datetime) -> list[dict]:
    """One row per UTC day of the window (at most the last 366): deploys and failures."""
    first = max(since.date(), until.date() - timedelta(days=365))
    days = [first + timedelta(days=i) for i in range((until.date() - first).days + 1)]
    rows = {day: {"day": day.isoformat(), "deploys": 0, "failures": 0} for day in days}
    for dep in window:
        row = rows.get(dep.at.date())
        if row is not None:
            row["deploys"] += 1
            row["failures"] += dep.release in bad
    return list(rows.values())


def _notes(window: Sequence[Deployment], commits: Mapping, missing: list[int]) -> list[str]:
    """Plain words for what could not be measured."""
    notes = []
    if not window:
        notes.append("no release went live in this window")
    unlogged = [d.release for d in window if not d.revision]
    if unlogged:
        notes.append(f"no revision logged for release(s) {', '.join(map(str, unlogged))}: no lead time")
    unknown = [n for n in missing if n not in unlogged]
    if unknown:
        notes.append(
            f"the local repository lacks the commits of release(s) {', '.join(map(str, unknown))} "
            "(git fetch?): no lead time"
        )
    return notes
