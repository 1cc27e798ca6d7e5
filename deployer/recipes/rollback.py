"""Rollback: switch every host back to the previous good release, instantly (no upload).

The story: lock and read each host's state, choose the target from the release log
(skipping failed and rolled-back releases, never moving forward) and refuse if any host
lacks it, settle the database when the rollback crosses migrations (recipes/migrate),
switch the hosts not on it yet, log the rollback, run after_rollback. A switch that
fails, or Ctrl-C, puts every host back where it was.
"""

from __future__ import annotations

import sys
import time

from .. import plan, program_name, releaselog
from ..config import Config
from ..errors import DeployFailed, Interrupted
from ..facts import HostFacts
from ..fleet import Fleet, SessionOpener
from ..notify import notifying
from ..output import Reporter
from ..transport import open_session
from ..untrusted import one_line
from .dataroll import DataChoice, ask, before_rollback, still_moved
from .eventlog import EventLog
from .hooks import run_hooks
from .summary import HostReport, Summary
from .switch import SwitchFailed, restore, switch_all, switch_back


def ask_reason(given: str | None, may_ask: bool) -> str | None:
    """The reason to log: as given, else asked when a person is at a terminal (never in
    CI or scripts, which get none); one printable line of at most 500 characters."""
    if given is None and may_ask and sys.stdin.isatty():
        given = ask("why roll back? (recorded in the release log; empty for no reason) ")
    return one_line(given or "").strip()[:500] or None


@notifying("rollback", "rollback")
def rollback(
    config: Config,
    reporter: Reporter,
    to: int | None = None,
    opener: SessionOpener = open_session,
    dry_run: bool = False,
    reason: str | None = None,
    data: DataChoice | None = None,
) -> Summary:
    """Switch every host back to the previous good release (or ``to``), no upload.
    ``reason`` (why, in a person's words) is recorded with the rollback in the log; ``data``
    says what to do when the rollback crosses migrations (recipes/migrate)."""
    start = time.monotonic()
    with (
        Fleet.connect(config, reporter, opener=opener, dry_run=dry_run) as fleet,
        fleet.locked("rollback") as facts,
    ):
        target = plan.choose_rollback(facts, to)
        previous = {name: f.current for name, f in facts.items()}
        reporter.line(f"rollback {config.application} on {config.stage} to release {target}")
        schema = before_rollback(fleet, facts, target, data or DataChoice())
        todo = {name: target for name in fleet.names if previous[name] != target}
        log, events = _events(fleet, facts, target, {"reason": reason, **schema} if reason else schema)
        last = not config.hooks.get("after_rollback")  # nothing else runs under the lock
        if last and len(fleet.names) == 1 and list(todo) == fleet.names:  # one host: one round trip
            script = fleet.unlocking(log.script(events))
            _switch_or_undo(fleet, facts, todo, target, schema, dict.fromkeys(todo, script))
        else:
            _switch_or_undo(fleet, facts, todo, target, schema)
            log.append(*events, unlock=last)
        run_hooks(fleet, "after_rollback", "rollback", target, previous)
        rows = [HostReport(n, target, previous[n], "active", fleet.elapsed.get(n, 0.0)) for n in fleet.names]
        return Summary("rollback", config.stage, target, rows, time.monotonic() - start, dry_run)


def _switch_or_undo(
    fleet: Fleet, facts: dict[str, HostFacts], todo: dict[str, int], target: int, schema: dict, then=None
) -> None:
    """Switch (with ``then`` sent along, see switch_all), or put back every host that
    switched and raise what happened (when the database was already brought to the
    target's schema, the hosts that switched stay: say so)."""
    previous_raw = {name: f.current_raw for name, f in facts.items()}
    moved = still_moved(schema)
    command = f"{program_name()} rollback --stage={fleet.config.stage} --to={target}"
    again = f"`{command}` again finishes it (no flag needed)"

    def done(name: str, result) -> None:
        if result.ok:
            fleet.unlocked([name])

    try:
        switch_all(fleet, todo, then=then, then_done=done)
    except SwitchFailed as exc:
        if moved:  # switching back would run the newer code on the older schema
            reason = exc.failed[0].reason()
            raise DeployFailed(f"rollback: {reason} ({moved}: hosts that switched stay; {again})") from None
        _, note = switch_back(fleet, previous_raw, exc.switched, target)
        raise DeployFailed(f"rollback: {exc.failed[0].reason()} ({note})") from None
    except KeyboardInterrupt:
        fleet.cancel.clear()
        if moved:
            raise Interrupted(f"interrupted ({moved}: hosts that switched stay; {again})") from None
        restore(fleet, previous_raw, list(todo), target)
        raise Interrupted("interrupted; hosts switched back to where they were") from None


def _events(fleet: Fleet, facts: dict[str, HostFacts], target: int, extra: dict):
    """The events to log once the target is active again; only releases newer than it were
    rolled back *from*: rolling forward (``--to`` a newer release) does not make the one we
    leave bad. ``extra``: the reason, and what was done about the database."""
    log = EventLog(fleet, "rollback", extra=extra or None)
    sha = releaselog.artifact_shas(plan.merged_log(facts))
    events = [
        log.make(target, releaselog.ACTIVE, previous=plan.current_release(facts), sha256=sha.get(target))
    ]
    left = {f.current for f in facts.values() if f.current is not None and f.current > target}
    events += [log.make(old, releaselog.ROLLED_BACK) for old in sorted(left)]
    return log, events
