"""A stage's hosts, connected: run a step everywhere, probe facts, hold the stage lock.

This is where per-host results become domain errors that name the host.
"""

from __future__ import annotations

import contextlib
import getpass
import json
import os
import secrets as token_source
import socket
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from . import commands
from .config import Config, Host
from .errors import DeployerError, DeployFailed, HostUnreachable, LockHeld
from .facts import HostFacts, parse_lock_info, parse_probe, probe_command
from .layout import Layout
from .localstate import cache_path
from .output import Reporter
from .runner import Outcome, each
from .transport import DryRunSession, Result, Session, open_session

T = TypeVar("T")
SessionOpener = Callable[[Config, Host], Session]


def whoami() -> str:
    """Who deploys: ``DEPLOYER_USER`` if set, else user@machine."""
    return os.environ.get("DEPLOYER_USER") or f"{getpass.getuser()}@{socket.gethostname()}"


def describe_lock(info: dict, now: float | None = None) -> str:
    """``alice@laptop (pid 42, deploy) for 3m12s``."""
    since = info.get("since")
    age = ""
    if isinstance(since, (int, float)):
        seconds = int((now or time.time()) - since)
        age = f" for {seconds // 60}m{seconds % 60:02d}s"
    extra = ", ".join(
        str(x) for x in (f"pid {info['pid']}" if "pid" in info else None, info.get("command")) if x
    )
    return f"{info.get('holder', 'unknown')}{f' ({extra})' if extra else ''}{age}"


class Fleet:
    """Open sessions to every host of a stage, for the length of one task."""

    def __init__(self, config: Config, sessions: dict[str, Session], reporter: Reporter) -> None:
        self.config = config
        self.sessions = sessions
        self.reporter = reporter
        self.layout = Layout(config.deploy_to)
        self.cancel = threading.Event()
        self.dead: dict[str, str] = {}
        self.dry_run = False
        self.elapsed: dict[str, float] = {}  # time spent on each host, for the summary
        for name, session in sessions.items():
            session.cancel = self.cancel
            session.trace = lambda script, name=name: reporter.command(name, script)

    @classmethod
    @contextlib.contextmanager
    def connect(
        cls,
        config: Config,
        reporter: Reporter,
        hosts: Sequence[Host] | None = None,
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
        hosts = list(hosts or config.hosts)
        cancel = threading.Event()
        prepared = None
        if alongside is None:
            outcomes = each(
                ((h.name, h) for h in hosts), lambda h: opener(config, h), config.parallel, cancel
            )
        else:
            with ThreadPoolExecutor(max_workers=1) as background:
                pending = background.submit(
                    each, [(h.name, h) for h in hosts], lambda h: opener(config, h), config.parallel, cancel
                )
                try:
                    prepared = alongside()
                except BaseException:
                    for outcome in pending.result():
                        if outcome.ok:
                            with contextlib.suppress(Exception):
                                outcome.value.close()
                    raise
                outcomes = pending.result()
        sessions = {o.name: o.value for o in outcomes if o.ok}
        failed = [o for o in outcomes if not o.ok]
        if failed and not allow_missing:
            for session in sessions.values():
                session.close()
            if hasattr(prepared, "discard"):
                prepared.discard()  # nobody else will get to clean it up
            raise_first(failed, HostUnreachable)
        plans: dict[str, list[str]] = {name: [] for name in sessions}
        if dry_run:
            sessions = {name: DryRunSession(s, plans[name]) for name, s in sessions.items()}
        fleet = cls(config, sessions, reporter)
        fleet.unreachable = {o.name: o.reason() for o in failed}
        fleet.dry_run = dry_run
        fleet.plans = plans
        fleet.prepared = prepared
        try:
            yield fleet
            if dry_run:
                fleet.print_plan()
        finally:
            for session in sessions.values():
                with contextlib.suppress(Exception):
                    session.close()

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

    def probe(self) -> dict[str, HostFacts]:
        script = probe_command(self.layout)
        outcomes = self.each(lambda s: checked(s, script, "read state", read_only=True))
        failed = [o for o in outcomes if not o.ok]
        if failed:
            raise_first(failed, DeployFailed)
        return {o.name: parse_probe(o.value.stdout) for o in outcomes}

    @contextlib.contextmanager
    def locked(self, command: str, force: bool = False) -> Iterator[dict[str, HostFacts]]:
        """Hold the stage lock on every host; released on every way out, Ctrl-C included.
        Yields each host's facts, read in the same round trip that took the lock.

        ``force`` first breaks a lock left by a killed run (never the default)."""
        if force:
            self.break_locks()
        token = token_source.token_hex(8)
        info = json.dumps(
            {
                "holder": whoami(),
                "pid": os.getpid(),
                "since": int(time.time()),
                "command": command,
                "stage": self.config.stage,
                "token": token,
            },
            sort_keys=True,
        )
        script = commands.acquire_lock(self.layout, info) + "\nset +e\n" + probe_command(self.layout)
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
        problems = [o for o in outcomes if o.name not in taken]
        if problems:
            self._release(token, taken)
            held = [o for o in problems if o.ok and o.value.exit_code == commands.EXIT_LOCK_HELD]
            if held:
                first = held[0]
                info = parse_lock_info(first.value.stdout.strip())
                raise LockHeld(
                    f"host {first.name}: deploy lock for stage {info.get('stage') or self.config.stage} held by "
                    f"{describe_lock(info)}; "
                    f"wait, or break a stale lock with: invoke unlock --stage={self.config.stage}"
                )
            first = problems[0]
            if not first.ok:
                raise_first([first], DeployFailed)
            raise DeployFailed(
                f"host {first.name}: cannot take the lock in {self.layout.state}: {first.value.output_tail()}"
            )
        by_name = {o.name: o for o in outcomes}
        facts = (
            self.probe() if self.dry_run else {n: parse_probe(by_name[n].value.stdout) for n in self.names}
        )
        try:
            yield facts
        finally:
            self.cancel.clear()
            self._release(token, taken)

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
        held: dict[str, dict] = {}
        for outcome in self.each(lambda s: checked(s, script, "unlock")):
            if not outcome.ok:
                raise_first([outcome], DeployFailed)
            text = outcome.value.stdout.strip()
            if text:
                held[outcome.name] = parse_lock_info(text)
                self.reporter.step(
                    outcome.name, "unlock", f"removed lock held by {describe_lock(held[outcome.name])}"
                )
            else:
                self.reporter.step(outcome.name, "unlock", "no lock")
        return held

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


class LeftLocks:
    """Locks this machine could not give back: their tokens (random, so unique) with the
    deploy_to and host, in a small JSON file in the user's cache folder. Keyed by token,
    not by address, so a host that comes back on another address is still recognised."""

    def __init__(self) -> None:
        self.path = cache_path("left-locks.json")

    def _load(self) -> dict[str, str]:
        try:
            data = json.loads(self.path.read_text())
            return data if isinstance(data, dict) else {}
        except (OSError, ValueError):
            return {}

    def _save(self, data: dict[str, str]) -> None:
        with contextlib.suppress(OSError):
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.path.write_text(json.dumps(data, indent=1, sort_keys=True))

    def remember(self, deploy_to: str, host: str, token: str) -> None:
        data = self._load()
        data[token] = f"{deploy_to} on {host}"
        self._save(data)

    def contains(self, deploy_to: str, token: str) -> bool:
        return str(self._load().get(token, "")).startswith(f"{deploy_to} on ")

    def forget(self, token: str) -> None:
        data = self._load()
        if data.pop(token, None) is not None:
            self._save(data)


def checked(
    session: Session, script: str, what: str, stdin: bytes | None = None, read_only: bool = False
) -> Result:
    """Run a script; a non-zero exit becomes DeployFailed naming host, step and output."""
    result = session.run(script, stdin, read_only=read_only)
    if not result.ok:
        raise DeployFailed(f"host {session.host.name}: {what} failed: {result.output_tail()}")
    return result


def raise_on_failure(
    outcomes: Sequence[Outcome[Result]], kind: type[DeployerError], explain: Callable[[Outcome[Result]], str]
) -> None:
    """For steps whose command may exit non-zero: the first host that could not run it
    raises its own error; the first command that failed raises ``kind(explain(outcome))``."""
    for outcome in outcomes:
        if not outcome.ok:
            raise_first([outcome], kind)
        if not outcome.value.ok:
            raise kind(explain(outcome))


def raise_first(failed: Sequence[Outcome], default: type[DeployerError]) -> None:
    """Raise the first failure, mentioning how many other hosts failed too."""
    first = failed[0]
    others = (
        f" (and {len(failed) - 1} more host(s): {', '.join(o.name for o in failed[1:])})"
        if len(failed) > 1
        else ""
    )
    if isinstance(first.error, DeployerError):
        error = type(first.error)(first.error.message + others)
    else:
        error = default(f"host {first.name}: {first.reason()}{others}")
    raise error
