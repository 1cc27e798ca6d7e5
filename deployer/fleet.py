"""A stage's hosts, connected: run a step everywhere, probe facts, hold the stage lock.

This is where per-host results become domain errors that name the host.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets as token_source
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from . import commands, program_name
from .config import Config, Host
from .errors import DeployFailed, HostUnreachable, LockHeld
from .facts import HostFacts, parse_lock_info, parse_probe
from .failures import checked, raise_failures
from .layout import Layout
from .localstate import LeftLocks, whoami
from .output import Reporter
from .runner import Outcome, each
from .transport import DryRunSession, Result, Session, open_session
from .untrusted import one_line

T = TypeVar("T")
SessionOpener = Callable[[Config, Host], Session]


def describe_lock(info: dict, now: float | None = None) -> str:
    """``alice@laptop (pid 42, deploy) for 3m12s``."""
    since = info.get("since")
    age = ""
    if isinstance(since, (int, float)):
        seconds = int((now or time.time()) - since)
        age = f" for {seconds // 60}m{seconds % 60:02d}s"
    parts = (f"pid {info['pid']}" if "pid" in info else None, info.get("command"))
    extra = ", ".join(str(x) for x in parts if x)
    return one_line(f"{info.get('holder', 'unknown')}{f' ({extra})' if extra else ''}{age}")


class Fleet:
    """Open sessions to every host of a stage, for the length of one task.

    ``unreachable`` names the hosts that could not be connected (only with
    ``allow_missing``), ``plans`` collects each host's commands in a dry run, and
    ``prepared`` is what the local work done alongside the handshakes returned."""

    def __init__(
        self,
        config: Config,
        sessions: dict[str, Session],
        reporter: Reporter,
        unreachable: dict[str, str] | None = None,
        dry_run: bool = False,
        prepared: Any = None,
    ) -> None:
        self.config = config
        self.reporter = reporter
        self.layout = Layout(config.deploy_to)
        self.cancel = threading.Event()
        self.dead: dict[str, str] = {}
        self.unreachable = dict(unreachable or {})
        self.dry_run = dry_run
        self.prepared = prepared
        self.plans: dict[str, list[str]] = {name: [] for name in sessions}
        self.lock_token: str | None = None  # while :meth:`locked` holds the stage lock
        self.released: set[str] = set()  # hosts whose lock a merged last step gave back already
        self.elapsed: dict[str, float] = {}  # time spent on each host, for the summary
        if dry_run:
            sessions = {name: DryRunSession(s, self.plans[name]) for name, s in sessions.items()}
        self.sessions = sessions
        for name, session in sessions.items():
            session.cancel = self.cancel
            session.trace = lambda script, name=name: reporter.command(name, script)

    @classmethod
    @contextlib.contextmanager
    def connect(
        cls,
        config: Config,
        reporter: Reporter,
        opener: SessionOpener = open_session,
        allow_missing: bool = False,
        dry_run: bool = False,
        alongside: Callable[[], object] | None = None,
    ) -> Iterator[Fleet]:
        """Connect to every host in parallel; if any fails (and ``allow_missing`` is off),
        close the rest and raise one error naming every unreachable host.

        ``alongside`` (local work such as checking the artifact) runs in this thread while
        the SSH handshakes happen in others; its result is ``fleet.prepared``. If it fails,
        the connections are closed and its error wins: nothing was changed on any host."""
        outcomes, prepared = _open_all(config, opener, alongside)
        sessions = {o.name: o.value for o in outcomes if o.ok}
        if not allow_missing and any(not o.ok for o in outcomes):
            _close(sessions.values())
            if hasattr(prepared, "discard"):
                prepared.discard()  # nobody else will get to clean it up
            raise_failures(outcomes, HostUnreachable)
        unreachable = {o.name: o.reason() for o in outcomes if not o.ok}
        fleet = cls(config, sessions, reporter, unreachable, dry_run, prepared)
        try:
            yield fleet
            if dry_run:
                fleet.print_plan()
        finally:
            _close(fleet.sessions.values())

    def print_plan(self) -> None:
        """--dry-run: every command that would have run, per host, in order."""
        self.reporter.final(f"dry run: nothing was changed; the plan for {self.config.stage}:")
        for name, commands_run in self.plans.items():
            self.reporter.final(f"{name}:")
            for index, text in enumerate(commands_run, 1):
                body = text.replace("\n", "\n      ")
                self.reporter.final(f"  {index:>2}. {body}")

    @property
    def names(self) -> list[str]:
        return list(self.sessions)

    def host(self, name: str) -> Host:
        return self.sessions[name].host

    def each(self, step: Callable[[Session], T], names: Sequence[str] | None = None) -> list[Outcome[T]]:
        """Run ``step`` on the named hosts (default: all), in parallel.

        A host that stopped answering is not asked again in this task: each further step
        would only wait out another timeout. It gets a failed outcome at once instead."""
        chosen = self.names if names is None else list(names)

        def guarded(session: Session) -> T:
            if session.host.name in self.dead:
                raise HostUnreachable(f"host {session.host.name}: skipped, {self.dead[session.host.name]}")
            return step(session)

        outcomes = each(((n, self.sessions[n]) for n in chosen), guarded, self.config.parallel, self.cancel)
        for outcome in outcomes:
            self.elapsed[outcome.name] = self.elapsed.get(outcome.name, 0.0) + outcome.seconds
            if isinstance(outcome.error, HostUnreachable) and outcome.name not in self.dead:
                self.dead[outcome.name] = "unreachable earlier in this task"
        return outcomes

    def each_reported(
        self,
        label: str,
        step: Callable[[Session], T],
        done: Callable[[Outcome[T]], str],
        names: Sequence[str] | None = None,
        strict: bool = True,
    ) -> list[Outcome[T]]:
        """Run ``step``, print one line per host (``done(outcome)``, or FAILED and why),
        then raise one error for every host that failed (unless ``strict`` is off)."""
        outcomes = self.each(step, names)
        for outcome in outcomes:
            result = done(outcome) if outcome.ok else f"FAILED: {outcome.reason()}"
            self.reporter.step(outcome.name, label, result, outcome.seconds)
        if strict:
            raise_failures(outcomes)
        return outcomes

    def probe(self) -> dict[str, HostFacts]:
        script = commands.probe(self.layout)
        outcomes = self.each(lambda s: checked(s, script, "read state", read_only=True))
        raise_failures(outcomes)
        return {o.name: parse_probe(o.value.stdout) for o in outcomes}

    @contextlib.contextmanager
    def locked(self, command: str, force: bool = False) -> Iterator[dict[str, HostFacts]]:
        """Hold the stage lock on every host; released on every way out, Ctrl-C included.
        Yields each host's facts, read in the same round trip that took the lock.

        ``force`` first breaks a lock left by a killed run (never the default)."""
        if force:
            self.break_locks()
        token = token_source.token_hex(8)
        taken, outcomes = self._take_all(command, token)
        self.lock_token, self.released = token, set()
        try:
            by_name = {o.name: o for o in outcomes}
            facts = self.probe() if self.dry_run else {n: parse_probe(by_name[n].value.stdout) for n in taken}
            yield facts
        finally:
            self.cancel.clear()
            self.lock_token = None
            self._release(token, [n for n in taken if n not in self.released])

    def unlocking(self, script: str) -> str:
        """``script`` and, only if it succeeds, the release of this task's lock: the last step
        under the lock and the unlock in one round trip. Pass the hosts where the whole
        script exited 0 to :meth:`unlocked`; everywhere else the lock is released as usual."""
        assert self.lock_token is not None, "unlocking() outside locked()"
        return commands.then_unlock(script, commands.release_lock(self.layout, self.lock_token))

    def unlocked(self, names: Sequence[str]) -> None:
        """These hosts' lock was released by an :meth:`unlocking` script."""
        self.released.update(names)

    def _take_all(self, command: str, token: str) -> tuple[list[str], list[Outcome[Result]]]:
        """Take the lock everywhere, or give back what was taken and raise why not."""
        info = json.dumps(
            {"holder": whoami(), "pid": os.getpid(), "since": int(time.time()), "command": command,
             "stage": self.config.stage, "token": token},
            sort_keys=True,
        )  # fmt: skip
        script = commands.lock_and_probe(self.layout, info)
        try:
            # The first host decides: two deploys racing for the stage meet there first, so
            # exactly one goes on (locking all hosts at once could let each win some hosts
            # and both fail).
            outcomes = self._take(script, self.names[:1])
            if outcomes[0].ok and outcomes[0].value.ok:
                outcomes += self._take(script, self.names[1:])
        except BaseException:
            # Interrupted while taking it: give back whatever we got (only ours is removed).
            self.cancel.clear()
            self._release(token, self.names)
            raise
        taken = [o.name for o in outcomes if o.ok and o.value.ok]
        if len(taken) < len(outcomes):
            self._release(token, taken)
            self._refuse([o for o in outcomes if o.name not in taken])
        return taken, outcomes

    def _refuse(self, problems: list[Outcome[Result]]) -> None:
        """Why the lock could not be taken: held by someone (exit 3), else the host's error."""
        held = [o for o in problems if o.ok and o.value.exit_code == commands.EXIT_LOCK_HELD]
        if held:
            first = held[0]
            info = parse_lock_info(first.value.stdout.strip())
            stage = info.get("stage") or self.config.stage
            raise LockHeld(
                f"host {first.name}: deploy lock for stage {stage} held by {describe_lock(info)}; "
                f"wait, or break a stale lock with: {program_name()} unlock --stage={self.config.stage}"
            )
        first = problems[0]
        raise_failures(problems)
        raise DeployFailed(
            f"host {first.name}: cannot take the lock in {self.layout.state}: {first.value.output_tail()}"
        )

    def _take(self, script: str, names: Sequence[str]) -> list[Outcome[Result]]:
        """Try the lock on ``names``. A lock this machine had to leave behind when a host
        dropped out mid-task (its token is remembered) is released and taken again; any
        other holder's lock stays: breaking it is ``invoke unlock``."""
        outcomes = self.each(lambda s: s.run(script), names)
        left = LeftLocks()
        ours = {}
        for o in outcomes:
            if o.ok and o.value.exit_code == commands.EXIT_LOCK_HELD:
                token = parse_lock_info(o.value.stdout.strip()).get("token")
                if token and left.contains(self.layout.deploy_to, token):
                    ours[o.name] = token
        if not ours:
            return outcomes
        self.each(lambda s: s.run(commands.release_lock(self.layout, ours[s.host.name])), list(ours))
        for name, token in ours.items():
            left.forget(token)
            self.reporter.step(
                name, "lock", "released a lock an earlier run had to leave when this host dropped out"
            )
        retried = {o.name: o for o in self.each(lambda s: s.run(script), list(ours))}
        return [retried.get(o.name, o) for o in outcomes]

    def break_locks(self) -> dict[str, dict]:
        """Remove the lock on every host; returns (and reports) who held it where."""
        script = commands.break_lock(self.layout)

        def done(outcome: Outcome[Result]) -> str:
            text = outcome.value.stdout.strip()
            return f"removed lock held by {describe_lock(parse_lock_info(text))}" if text else "no lock"

        outcomes = self.each_reported("unlock", lambda s: checked(s, script, "unlock"), done)
        return {o.name: parse_lock_info(o.value.stdout.strip()) for o in outcomes if o.value.stdout.strip()}

    def _release(self, token: str, names: Sequence[str]) -> None:
        """Give the lock back; where a host cannot be reached, remember our token so the
        next run from this machine can release it (a killed run remembers nothing, so its
        lock stays until ``unlock``)."""
        script = commands.release_lock(self.layout, token)
        failed = [o.name for o in self.each(lambda s: s.run(script), names) if not (o.ok and o.value.ok)]
        if failed:
            left = LeftLocks()
            for name in failed:
                left.remember(self.layout.deploy_to, name, token)
            self.reporter.line(
                f"warning: could not release the deploy lock on {', '.join(failed)} (unreachable); "
                "the next deploy from this machine releases it"
            )


def _open_all(
    config: Config, opener: SessionOpener, alongside: Callable[[], object] | None
) -> tuple[list[Outcome[Session]], object]:
    """Open a session per host in parallel, running ``alongside`` meanwhile in this thread."""
    items = [(h.name, h) for h in config.hosts]
    cancel = threading.Event()
    if alongside is None:
        return each(items, lambda h: opener(config, h), config.parallel, cancel), None
    with ThreadPoolExecutor(max_workers=1) as background:
        pending = background.submit(each, items, lambda h: opener(config, h), config.parallel, cancel)
        try:
            prepared = alongside()
        except BaseException:
            _close(o.value for o in pending.result() if o.ok)
            raise
        return pending.result(), prepared


def _close(sessions) -> None:
    for session in sessions:
        with contextlib.suppress(Exception):
            session.close()
