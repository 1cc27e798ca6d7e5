"""Switching ``current`` on many hosts, and putting it back exactly as it was.

A switch is all or nothing for the caller: if any host fails, :class:`SwitchFailed`
says which hosts did switch, so the caller can put them back with :func:`switch_back`.
"""

from __future__ import annotations

import secrets as token_source
from collections.abc import Callable, Sequence

from .. import commands
from ..errors import DeployFailed
from ..failures import checked, failed, raise_failures
from ..fleet import Fleet
from ..layout import current_target
from ..runner import Outcome
from ..transport import Result, Session


class SwitchFailed(Exception):
    """Some hosts did not switch; ``switched`` lists those that did."""

    def __init__(self, switched: list[str], failed: list[Outcome]) -> None:
        super().__init__("switch failed")
        self.switched = switched
        self.failed = failed


def switch_all(
    fleet: Fleet,
    targets: dict[str, int],
    step: str = "switch",
    then: dict[str, str] | None = None,
    then_step: str = "write release log",
    then_done: Callable[[str, Result], None] | None = None,
) -> list[str]:
    """Switch ``current`` on each named host to its target release; raises SwitchFailed
    when any host fails. ``then`` gives, per host, a script sent with the switch (one round
    trip, commands.after_switch), run only where the switch succeeded; ``then_done`` hears
    each such host's result. If ``then`` failed on a host that did switch, the error names
    ``then_step`` (``current`` stays switched, as when that step runs apart). Returns the
    hosts switched."""
    token_for = {name: token_source.token_hex(6) for name in targets}
    then = then or {}
    switched = {0, commands.EXIT_AFTER_SWITCH, commands.EXIT_CLEANUP_FAILED}

    def one(session: Session):
        name = session.host.name
        script = commands.switch(fleet.layout, targets[name], token_for[name])
        if name not in then:
            return checked(session, script, step)
        result = session.run(commands.after_switch(script, then[name]))
        if result.exit_code not in switched:
            raise DeployFailed(f"host {name}: {step} failed: {result.output_tail()}")
        return result

    outcomes = fleet.each(one, list(targets))
    for outcome in outcomes:
        if outcome.ok:
            fleet.reporter.step(
                outcome.name, step, f"current -> releases/{targets[outcome.name]}", outcome.seconds
            )
            if then_done and outcome.name in then:
                then_done(outcome.name, outcome.value)
    bad = failed(outcomes)
    if bad:
        raise SwitchFailed([o.name for o in outcomes if o.ok], bad)
    late = [o for o in outcomes if o.value.exit_code == commands.EXIT_AFTER_SWITCH]
    for outcome in late:  # switched; what was sent with the switch failed
        outcome.error = DeployFailed(
            f"host {outcome.name}: {then_step} failed: {outcome.value.output_tail()}"
        )
    raise_failures(late)
    return list(targets)


def restore(fleet: Fleet, previous: dict[str, str], names: Sequence[str], from_release: int) -> list[str]:
    """Put ``current`` back exactly where it pointed on each host (a release, or a link
    someone made by hand), or remove it after a first deploy. Returns the hosts where that
    was impossible."""

    def step(session: Session):
        before = previous.get(session.host.name) or ""
        if not before:
            script = commands.unswitch(fleet.layout, from_release)
        else:
            script = commands.point_current(fleet.layout, before, token_source.token_hex(6))
        return checked(session, commands.cancel_pending_switches(fleet.layout) + "\n" + script, "switch back")

    def done(outcome: Outcome) -> str:
        before = previous.get(outcome.name)
        return f"current -> {before}" if before else "current removed"

    outcomes = fleet.each_reported("switch back", step, done, names, strict=False)
    return [o.name for o in failed(outcomes)]


def switch_back(
    fleet: Fleet, previous: dict[str, str], names: Sequence[str], release: int
) -> tuple[list[str], str]:
    """:func:`restore` the named hosts; returns the hosts left on ``release`` and a note
    for the error message saying exactly which host now runs what."""
    stuck = restore(fleet, previous, names, release)
    if not stuck:
        return stuck, "every host was switched back"
    return stuck, f"could NOT switch back: {', '.join(stuck)}; " + who_runs_what(
        fleet.names, stuck, release, previous
    )


def who_runs_what(names: Sequence[str], stuck: Sequence[str], new: int, previous: dict[str, str]) -> str:
    """After a failed switch-back: exactly which host now runs which release."""

    def running(name: str) -> str:
        target = current_target(new) if name in stuck else previous.get(name)
        return target or "no release"

    return "hosts now run: " + ", ".join(f"{n}: {running(n)}" for n in names)
