"""The last steps of a deploy under the lock, in one round trip per host: log the release
active, remove old releases, unlock (on a single host, sent with the switch itself).

Which releases go is decided from the facts read when the lock was taken, plus what this
deploy did since (``plan.after_switch``): the lock was held throughout, so they are what a
fresh probe would read, and cleanup's rules (never ``current``, never the rollback target)
apply to them unchanged. A log that cannot be written fails the deploy with one line, the
lock left for the usual way out; a cleanup that fails only warns, and the lock is released.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .. import commands, plan, releaselog
from ..errors import DeployFailed
from ..facts import HostFacts
from ..failures import raise_failures
from ..fleet import Fleet
from ..runner import Outcome
from ..transport import Result
from .cleanup import cleanup_after, cleanup_detail, cleanup_victims, unusable_snapshots
from .eventlog import EventLog

if TYPE_CHECKING:
    from .deploy import DeployRun


@dataclass(frozen=True)
class Finish:
    """Per host, the script that logs, cleans up and unlocks; and what it removes."""

    scripts: dict[str, str]
    victims: dict[str, list[int]]


def plan_finish(
    fleet: Fleet, facts: dict[str, HostFacts], number: int, events: Sequence[releaselog.Event]
) -> Finish:
    """The scripts for every host, once release ``number`` is live: ``events`` are this
    deploy's (staged, then active, which the script appends); the cleanup event goes in
    the same append, as cleanup writes it."""
    after = plan.after_switch(facts, number, events)
    victims = cleanup_victims(fleet, after)
    snapshots = {name: unusable_snapshots(f, victims[name]) for name, f in after.items()}
    written = list(events[-1:])
    detail = cleanup_detail(victims, snapshots)
    if detail:
        log = EventLog(fleet, "cleanup")
        written.append(log.make(None, None, detail=detail))
    append = commands.append_log(fleet.layout, [e.to_json() for e in written])
    unlock = commands.release_lock(fleet.layout, fleet.lock_token or "")
    scripts = {}
    for name in fleet.names:
        links, gone = after[name].tmp_links, snapshots[name]
        todo = victims[name] or links or gone
        rm = commands.cleanup(fleet.layout, victims[name], links, gone) if todo else None
        scripts[name] = commands.finish(append, rm, unlock)
    return Finish(scripts, victims)


def heard(fleet: Fleet, finish: Finish, name: str, result: Result) -> None:
    """One host's finish came back: note the released lock, report the cleanup."""
    if result.ok or result.exit_code == commands.EXIT_CLEANUP_FAILED:
        fleet.unlocked([name])
    if result.exit_code == commands.EXIT_CLEANUP_FAILED:
        fleet.reporter.step(name, "cleanup", f"FAILED: host {name}: cleanup failed: {result.output_tail()}")
    elif result.ok and finish.victims[name]:
        fleet.reporter.step(name, "cleanup", f"removed releases: {', '.join(map(str, finish.victims[name]))}")


def run_finish(fleet: Fleet, finish: Finish) -> None:
    """Log, clean up and unlock on every host at once (when the switch went apart)."""
    outcomes = fleet.each(lambda s: s.run(finish.scripts[s.host.name]))
    late: list[Outcome] = []
    for outcome in outcomes:
        if not outcome.ok:
            late.append(outcome)
            continue
        heard(fleet, finish, outcome.name, outcome.value)
        if not outcome.value.ok and outcome.value.exit_code != commands.EXIT_CLEANUP_FAILED:
            tail = outcome.value.output_tail()
            outcome.error = DeployFailed(f"host {outcome.name}: write release log failed: {tail}")
            late.append(outcome)
    raise_failures(late)


def carried(run: DeployRun, group: list[str]) -> tuple[dict[str, str], Callable | None]:
    """What the switch of ``group`` carries: on a single host with nothing to run after its
    switch (no after_switch or after_healthcheck hook, no health check, no watch window),
    the log, cleanup and unlock, all that is left (``run.finished``); else nothing."""
    config = run.config
    alone = len(run.fleet.names) == 1 and group == run.fleet.names
    after = any(config.hooks.get(phase) for phase in ("after_switch", "after_healthcheck"))
    if not alone or after or config.healthcheck is not None or config.rollout.watch is not None:
        return {}, None
    finish = plan_finish(run.fleet, run.facts, run.number, [run.staged_event(), run.active_event()])
    run.finished = True
    return finish.scripts, lambda name, result: heard(run.fleet, finish, name, result)


def finish_apart(run: DeployRun) -> None:
    """After the switch: log the release active, clean up, unlock; one round trip per host
    unless a watch window runs between the log and the cleanup."""
    if run.config.rollout.watch is None:
        run_finish(
            run.fleet, plan_finish(run.fleet, run.facts, run.number, [run.staged_event(), run.active_event()])
        )
        return
    run.log.append(run.active_event())
    run.watch()
    cleanup_after(run.fleet)
