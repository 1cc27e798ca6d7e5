"""Which releases went wrong, when and why, read from the release log (pure, no I/O).

A release is *bad* when a person rolled back from it (``rolled-back``) or when the tool
switched it back on its own: its health check, its ``after_switch`` or
``after_healthcheck`` hooks or its watch window failed after hosts were switched (a
``failed`` event with a ``cause``). A deploy that failed before any switch (a lost
connection, a failed migration) never went live and says nothing about the artifact, so
it is not bad.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from . import releaselog

# The causes the tool records when it switches a release back by itself.
HEALTHCHECK, AFTER_SWITCH, WATCH, ROLLBACK = "healthcheck", "after_switch", "watch", "rollback"
AFTER_HEALTHCHECK = "after_healthcheck"
SWITCHED_BACK = (HEALTHCHECK, AFTER_SWITCH, AFTER_HEALTHCHECK, WATCH)
# Causes that condemn the artifact itself: deploy and promote refuse it afterwards.
REFUSED_CAUSES = frozenset({HEALTHCHECK, WATCH, ROLLBACK})


@dataclass(frozen=True)
class Verdict:
    """One event that marked a release bad."""

    release: int
    at: str
    by: str
    cause: str
    reason: str
    sha256: str | None


def cause_of(event: releaselog.Event) -> str | None:
    """Why this event marks its release bad, or None when it does not."""
    if event.release is None:
        return None
    if event.status == releaselog.ROLLED_BACK:
        return ROLLBACK
    if event.status == releaselog.FAILED:
        cause = event.note("cause")
        return cause if cause in SWITCHED_BACK else None
    return None


def verdicts(events: Iterable[releaselog.Event]) -> list[Verdict]:
    """Every event that marked a release bad, in log order, with the artifact it ran."""
    events = list(events)
    shas = releaselog.artifact_shas(events)
    found = []
    for event in events:
        cause = cause_of(event)
        if cause is not None and event.release is not None:
            reason = event.note("reason") or (event.detail or "" if cause != ROLLBACK else "")
            found.append(Verdict(event.release, event.at, event.by, cause, reason, shas.get(event.release)))
    return found


def reasons(events: Iterable[releaselog.Event]) -> dict[int, str]:
    """The latest recorded reason each bad release was switched away from ('' if none given)."""
    return {v.release: v.reason for v in verdicts(events)}


def refusal(events: Iterable[releaselog.Event], sha256: str) -> Verdict | None:
    """The latest verdict against this artifact (rolled back, failed health check or
    failed watch on this stage), or None when nothing holds it back."""
    against = [v for v in verdicts(events) if v.sha256 == sha256 and v.cause in REFUSED_CAUSES]
    return against[-1] if against else None


def describe_refusal(command: str, stage: str, verdict: Verdict) -> str:
    """The one line that refuses a bad artifact, naming the release, when and why."""
    what = {
        ROLLBACK: "was rolled back",
        HEALTHCHECK: "failed its health check",
        WATCH: "failed its watch",
    }[verdict.cause]
    why = f": {verdict.reason}" if verdict.reason else " (no reason given)"
    return (
        f"{command}: artifact sha256 {verdict.sha256 and verdict.sha256[:12]} {what} on {stage} "
        f"(release {verdict.release}, {verdict.at[:19].replace('T', ' ')} UTC, by {verdict.by or '?'}){why}; "
        "pass --force to ship it anyway"
    )
