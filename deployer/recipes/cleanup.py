"""Cleanup: keep the newest ``keep_releases`` on each host; failed and half-built
releases go first; never ``current``, the rollback target, or anything we did not create.
A database snapshot goes once no kept release is older than the release it was taken for
(no rollback could restore it any more)."""

from __future__ import annotations

from .. import commands, migrations, plan, releaselog
from ..config import Config
from ..facts import HostFacts
from ..failures import checked
from ..fleet import Fleet, SessionOpener
from ..output import Reporter
from ..runner import Outcome
from ..transport import Session, open_session
from .eventlog import EventLog


def cleanup(
    config: Config, reporter: Reporter, opener: SessionOpener = open_session, dry_run: bool = False
) -> dict[str, list[int]]:
    """``invoke cleanup``: lock, remove what :func:`cleanup_after` would, unlock."""
    with (
        Fleet.connect(config, reporter, opener=opener, dry_run=dry_run) as fleet,
        fleet.locked("cleanup") as facts,
    ):
        victims = cleanup_after(fleet, facts)
    reporter.document({"command": "cleanup", "stage": config.stage, "ok": True, "removed": victims})
    if not any(victims.values()):
        reporter.line(f"nothing to clean up: every host keeps at most {config.keep_releases} releases")
    return victims


def cleanup_victims(fleet: Fleet, facts: dict[str, HostFacts]) -> dict[str, list[int]]:
    """Per host, the releases to remove (pure: decided from the facts)."""
    events = plan.merged_log(facts)
    statuses = releaselog.statuses(events)
    protected = set(plan.rollback_candidates(events, plan.current_release(facts))[:1])
    keep = fleet.config.keep_releases
    return {name: plan.cleanup_victims(f, keep, protected, statuses) for name, f in facts.items()}


def cleanup_detail(victims: dict[str, list[int]], snapshots: dict[str, list[int]]) -> str:
    """The cleanup event's detail: ``removed 1,2; removed snapshots 2`` ('' for nothing)."""
    removed = sorted({n for v in victims.values() for n in v})
    gone = sorted({n for v in snapshots.values() for n in v})
    parts = [f"removed {','.join(map(str, removed))}"] if removed else []
    parts += [f"removed snapshots {','.join(map(str, gone))}"] if gone else []
    return "; ".join(parts)


def unusable_snapshots(fact: HostFacts, removed: list[int]) -> list[int]:
    """Snapshots no rollback can use once ``removed`` are gone (deployer.migrations)."""
    kept = [n for n in fact.releases if n not in removed]
    return migrations.snapshots_to_remove(fact.snapshots, kept)


def cleanup_after(fleet: Fleet, facts: dict[str, HostFacts] | None = None) -> dict[str, list[int]]:
    """Remove releases beyond ``keep_releases`` on each host, never current or the rollback
    target, and leftover temporary links; logs what was removed. ``facts`` when fresh, else
    they are read again."""
    facts = facts or fleet.probe()
    victims = cleanup_victims(fleet, facts)
    snapshots = {name: unusable_snapshots(f, victims[name]) for name, f in facts.items()}

    def step(session: Session):
        name = session.host.name
        script = commands.cleanup(fleet.layout, victims[name], facts[name].tmp_links, snapshots[name])
        return checked(session, script, "cleanup")

    def done(outcome: Outcome) -> str:
        gone = snapshots[outcome.name]
        extra = f"; snapshots: {', '.join(map(str, gone))}" if gone else ""
        return f"removed releases: {', '.join(map(str, victims[outcome.name])) or 'none'}{extra}"

    todo = [n for n in fleet.names if victims[n] or facts[n].tmp_links or snapshots[n]]
    fleet.each_reported("cleanup", step, done, todo, strict=False)
    detail = cleanup_detail(victims, snapshots)
    if detail:
        log = EventLog(fleet, "cleanup")
        log.append(log.make(None, None, detail=detail), strict=False)
    return victims
