"""Deploy and rollback: the recipes that change what ``current`` points to.

A deploy goes: check artifact and templates locally, connect, lock, probe, upload and
prepare the release everywhere, run before_switch hooks, switch everywhere, run
after_switch hooks, log, clean up, unlock. Any failure before the switch removes the new
release everywhere; any failure at or after it switches every host back.
"""

from __future__ import annotations

import contextlib
import json
import secrets as token_source
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING

from . import commands, git, plan, releaselog, templates
from .config import Config
from .errors import DeployerError, DeployFailed, Interrupted
from .facts import HostFacts
from .fleet import Fleet, SessionOpener, checked, raise_first, raise_on_failure, whoami
from .hooks import run_hooks
from .layout import MANIFEST_NAME, current_target
from .notify import notified
from .output import Reporter, human_bytes
from .transport import Session, open_session

if TYPE_CHECKING:
    from . import artifact as artifacts


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="microseconds")


@dataclass
class HostReport:
    """One row of the final summary."""

    host: str
    release: int | None
    previous: int | None
    status: str
    seconds: float = 0.0


@dataclass
class Summary:
    command: str
    stage: str
    release: int | None
    rows: list[HostReport] = field(default_factory=list)
    seconds: float = 0.0
    dry_run: bool = False
    revision: str | None = None

    def to_dict(self) -> dict:
        """The documented ``--json`` shape of deploy, rollback and promote."""
        return {
            "ok": True,
            "command": self.command,
            "stage": self.stage,
            "release": self.release,
            "dry_run": self.dry_run,
            "seconds": round(self.seconds, 3),
            "hosts": [
                {
                    "host": r.host,
                    "release": r.release,
                    "previous": r.previous,
                    "status": r.status,
                    "seconds": round(r.seconds, 3),
                }
                for r in self.rows
            ],
        }


class EventLog:
    """Builds events for one operation (one id) and appends them on hosts."""

    def __init__(
        self,
        fleet: Fleet,
        event: str,
        sha256: str | None = None,
        revision: str | None = None,
        extra: dict | None = None,
    ) -> None:
        self.fleet = fleet
        self.event = event
        self.id = uuid.uuid4().hex[:16]
        self.sha256 = sha256
        self.revision = revision
        self.extra = extra or {}

    def make(self, release: int | None, status: str | None, **fields) -> releaselog.Event:
        return releaselog.Event(
            id=self.id,
            event=fields.pop("event", self.event),
            at=now_iso(),
            by=whoami(),
            stage=self.fleet.config.stage,
            release=release,
            status=status,
            sha256=fields.pop("sha256", self.sha256),
            revision=fields.pop("revision", self.revision),
            extra={**self.extra, **fields.pop("extra", {})},
            **fields,
        )

    def append(
        self, *events: releaselog.Event, names: Sequence[str] | None = None, strict: bool = True
    ) -> None:
        """Write events on hosts. ``strict=False`` is for paths that are already failing."""
        script = commands.append_log(self.fleet.layout, [e.to_json() for e in events])
        outcomes = self.fleet.each(lambda s: checked(s, script, "write release log"), names)
        failed = [o for o in outcomes if not o.ok]
        if failed and strict:
            raise_first(failed, DeployFailed)


def switch_all(fleet: Fleet, targets: dict[str, int], step: str) -> list[str]:
    """Switch ``current`` on each named host; on any failure switch the others back and raise.

    Returns the hosts switched."""
    token_for = {name: f"{token_source.token_hex(6)}" for name in targets}
    outcomes = fleet.each(
        lambda s: checked(
            s, commands.switch(fleet.layout, targets[s.host.name], token_for[s.host.name]), step
        ),
        list(targets),
    )
    for outcome in outcomes:
        if outcome.ok:
            fleet.reporter.step(
                outcome.name, step, f"current -> releases/{targets[outcome.name]}", outcome.seconds
            )
    failed = [o for o in outcomes if not o.ok]
    if failed:
        raise SwitchFailed([o.name for o in outcomes if o.ok], failed)
    return list(targets)


class SwitchFailed(Exception):
    def __init__(self, switched: list[str], failed) -> None:
        super().__init__("switch failed")
        self.switched = switched
        self.failed = failed


def restore(fleet: Fleet, previous: dict[str, str], names: Sequence[str], from_release: int) -> list[str]:
    """Put ``current`` back exactly where it pointed on each host (a release, or a link
    someone made by hand), or remove it after a first deploy. Returns the hosts where that
    was impossible."""

    def step(session: Session):
        before = previous.get(session.host.name) or ""
        if not before:
            return checked(session, commands.unswitch(fleet.layout, from_release), "switch back")
        return checked(
            session, commands.point_current(fleet.layout, before, token_source.token_hex(6)), "switch back"
        )

    outcomes = fleet.each(step, names)
    for outcome in outcomes:
        before = previous.get(outcome.name)
        label = f"current -> {before}" if before else "current removed"
        fleet.reporter.step(
            outcome.name,
            "switch back",
            label if outcome.ok else f"FAILED: {outcome.reason()}",
            outcome.seconds,
        )
    return [o.name for o in outcomes if not o.ok]


def who_runs_what(names: Sequence[str], stuck: Sequence[str], new: int, previous: dict[str, str]) -> str:
    """After a failed switch-back: exactly which host now runs which release."""

    def running(name: str) -> str:
        target = current_target(new) if name in stuck else previous.get(name)
        return target or "no release"

    return "hosts now run: " + ", ".join(f"{n}: {running(n)}" for n in names)


class DeployRun:
    """One deploy of one artifact to a connected, locked fleet."""

    def __init__(
        self,
        fleet: Fleet,
        art: artifacts.Artifact,
        secrets: templates.Secrets,
        command: str = "deploy",
        detail: str | None = None,
        revision: git.Revision | None = None,
        local_revision: bool = True,
    ) -> None:
        self.detail = detail
        self.fleet = fleet
        self.config = fleet.config
        self.art = art
        self.secrets = secrets
        self.command = command
        self.reporter = fleet.reporter
        if revision is None and local_revision:  # a promote carries the source's revision instead
            revision = git.describe(self.config.root)
        extra = (
            {"author": revision.author, "subject": revision.subject} if revision and revision.subject else {}
        )
        if len(fleet.names) < len(self.config.all_hosts or self.config.hosts):
            extra["hosts"] = fleet.names  # a deploy to a subset says so in the log
        self.log = EventLog(
            fleet, command, sha256=art.sha256, revision=revision.label if revision else None, extra=extra
        )
        self.switched: list[str] = []
        self.staged = False

    def execute(self, facts: dict[str, HostFacts]) -> Summary:
        start = time.monotonic()
        self.previous = {name: f.current for name, f in facts.items()}
        self.previous_raw = {name: f.current_raw for name, f in facts.items()}
        self.number = plan.next_release(facts)
        self.reporter.line(
            f"{self.command} {self.config.application} to {self.config.stage}: release {self.number} on "
            f"{len(self.fleet.names)} host(s), artifact {human_bytes(self.art.size)} sha256 {self.art.sha256[:12]}"
        )
        try:
            run_hooks(
                self.fleet,
                "before_deploy",
                self.command,
                None,
                self.previous,
                directory=self.fleet.layout.deploy_to,
            )
            self.upload(facts)
            run_hooks(self.fleet, "after_upload", self.command, self.number, self.previous)
            run_hooks(self.fleet, "before_switch", self.command, self.number, self.previous)
            self.roll_out()
        except (DeployerError, KeyboardInterrupt, SwitchFailed) as exc:
            self.fleet.cancel.clear()
            error = self.undo(exc)
            self.on_failure()
            raise error from None
        self.log.append(
            self.log.make(self.number, releaselog.ACTIVE, previous=self._previous_value(), detail=self.detail)
        )
        cleanup_after(self.fleet)
        rows = [
            HostReport(n, self.number, self.previous[n], "active", self.fleet.elapsed.get(n, 0.0))
            for n in self.fleet.names
        ]
        return Summary(
            self.command,
            self.config.stage,
            self.number,
            rows,
            time.monotonic() - start,
            revision=self.log.revision,
        )

    def _previous_value(self) -> int | None:
        values = {v for v in self.previous.values() if v is not None}
        return max(values) if values else None

    def upload(self, facts: dict[str, HostFacts]) -> None:
        from .upload import IDENTICAL, Upload, Uploader  # not needed by rollback

        layout, number = self.fleet.layout, self.number
        metadata = json.dumps(
            {
                "release": number,
                "sha256": self.art.sha256,
                "deployed_at": now_iso(),
                "deployed_by": whoami(),
                "revision": self.log.revision,
                "stage": self.config.stage,
                "application": self.config.application,
            },
            sort_keys=True,
        )
        uploader = Uploader(
            self.art,
            layout,
            self.config.delta,
            releaselog.artifact_shas(plan.merged_log(facts)),
            self.artifact_url(),
            self.reporter,
        )

        def step(session: Session) -> Upload:
            upload = uploader.upload(session, facts[session.host.name], number)
            files = templates.render_host(self.config, session.host, number, self.secrets)
            if upload.mode != IDENTICAL:
                files[MANIFEST_NAME] = (self.art.manifest_bytes(), 0o644)
            script = commands.finish_release(
                layout, number, self.config.shared_dirs, self.config.shared_files, metadata, bool(files)
            )
            checked(session, script, "prepare release", templates.to_tar(files) if files else None)
            return upload

        self.staged = True
        try:
            outcomes = self.fleet.each(step)
        finally:
            self.reporter.end_progress()
            uploader.discard()
        for outcome in outcomes:
            result = outcome.value.describe(human_bytes) if outcome.ok else f"FAILED: {outcome.reason()}"
            if self.fleet.dry_run and outcome.ok:
                result = "would be " + result.replace(" sent", " to send")
            self.reporter.step(outcome.name, "upload", result, outcome.seconds)
        failed = [o for o in outcomes if not o.ok]
        if failed:
            raise_first(failed, DeployFailed)
        self.log.append(self.log.make(number, releaselog.STAGED, detail=self.detail))

    def artifact_url(self) -> str | None:
        url = self.config.artifact_url
        if not url:
            return None
        values = {
            "sha256": self.art.sha256,
            "application": self.config.application,
            "stage": self.config.stage,
        }
        for key, value in values.items():
            url = url.replace("{" + key + "}", value)
        return url

    def roll_out(self) -> None:
        """Switch hosts batch by batch (one batch of all hosts unless ``rollout`` says
        otherwise); each batch runs after_switch and the health check before the next."""
        rollout = self.config.rollout
        groups = plan.batches(self.fleet.names, rollout.canary, rollout.batch_size)
        for index, group in enumerate(groups):
            if len(groups) > 1:
                label = "canary" if index == 0 and rollout.canary else f"batch {index + 1}/{len(groups)}"
                self.reporter.line(f"{label}: {', '.join(group)}")
            try:
                switch_all(self.fleet, dict.fromkeys(group, self.number), "switch")
                self.switched += group
            except SwitchFailed as exc:
                self.switched += exc.switched
                raise
            except BaseException:
                # Interrupted while renames were in flight: some may have landed. Putting
                # back a host that never switched is harmless, missing one is not.
                self.switched += [n for n in group if n not in self.switched]
                raise
            run_hooks(self.fleet, "after_switch", self.command, self.number, self.previous, names=group)
            self.check_health(group)
            if rollout.wait and index < len(groups) - 1:
                self.reporter.line(f"waiting {rollout.wait:g}s before the next batch")
                time.sleep(rollout.wait)

    def check_health(self, names: list[str]) -> None:
        hc = self.config.healthcheck
        if hc is None:
            return
        script = commands.healthcheck(
            self.fleet.layout.release(self.number), hc.command, hc.url, hc.retries, hc.interval, hc.timeout
        )
        outcomes = self.fleet.each(lambda s: s.run(script), names)
        for outcome in outcomes:
            healthy = outcome.ok and outcome.value.ok
            self.reporter.step(
                outcome.name, "healthcheck", "healthy" if healthy else "UNHEALTHY", outcome.seconds
            )
        raise_on_failure(
            outcomes,
            DeployFailed,
            lambda o: (
                f"host {o.name}: health check failed for release {self.number}: {o.value.output_tail()}"
            ),
        )

    def on_failure(self) -> None:
        """``on_failure`` hooks always run after a failed deploy; their own failure only warns."""
        try:
            run_hooks(
                self.fleet,
                "on_failure",
                self.command,
                self.number,
                self.previous,
                directory=self.fleet.layout.deploy_to,
            )
        except DeployerError as exc:
            self.reporter.line(f"warning: {self.secrets.mask(exc.message)}")

    def undo(self, exc: BaseException) -> DeployerError:
        """Leave the hosts as they were: switch back, run after_rollback, remove or mark the
        release. Returns the error to raise, its message saying what was done."""
        if isinstance(exc, SwitchFailed):
            first = exc.failed[0]
            error: DeployerError = DeployFailed(f"host {first.name}: switch failed: {first.reason()}")
        elif isinstance(exc, KeyboardInterrupt):
            error = Interrupted("interrupted")
        else:
            error = exc  # type: ignore[assignment]
        notes = []
        stuck: list[str] = []
        if self.switched:
            stuck = restore(self.fleet, self.previous_raw, self.switched, self.number)
            with contextlib.suppress(DeployerError):
                run_hooks(
                    self.fleet,
                    "after_rollback",
                    self.command,
                    self._previous_value() or self.number,
                    self.previous,
                    [n for n in self.switched if n not in stuck and self.previous.get(n) is not None],
                )
            notes.append(
                "every host was switched back"
                if not stuck
                else f"could NOT switch back: {', '.join(stuck)}; "
                + who_runs_what(self.fleet.names, stuck, self.number, self.previous_raw)
            )
        if self.staged:
            if not self.switched:
                script = commands.remove_releases(self.fleet.layout, [self.number])
                self.fleet.each(lambda s: s.run(script))
                notes.append(f"release {self.number} removed, current unchanged")
            with contextlib.suppress(DeployerError):
                self.log.append(
                    self.log.make(
                        self.number, releaselog.FAILED, detail=self.secrets.mask(error.message)[:500]
                    ),
                    strict=False,
                )
        message = self.secrets.mask(error.message)
        if notes:
            message += " (" + "; ".join(notes) + ")"
        return type(error)(message)


def cleanup_after(fleet: Fleet, facts: dict[str, HostFacts] | None = None) -> dict[str, list[int]]:
    """Remove releases beyond ``keep_releases`` on each host, never current or the rollback
    target, and leftover temporary links; logs what was removed. ``facts`` when fresh, else
    they are read again."""
    facts = facts or fleet.probe()
    events = plan.merged_log(facts)
    statuses = releaselog.statuses(events)
    current = plan.current_release(facts)
    protected = set(plan.rollback_candidates(events, current)[:1])
    victims = {
        name: plan.cleanup_victims(f, fleet.config.keep_releases, protected, statuses)
        for name, f in facts.items()
    }

    def step(session: Session):
        name = session.host.name
        script = (
            commands.remove_releases(fleet.layout, victims[name])
            + " && "
            + commands.remove_tmp_links(fleet.layout, facts[name].tmp_links)
        )
        return checked(session, script, "cleanup")

    todo = [n for n in fleet.names if victims[n] or facts[n].tmp_links]
    outcomes = fleet.each(step, todo)
    for outcome in outcomes:
        removed = ", ".join(map(str, victims[outcome.name])) or "none"
        fleet.reporter.step(
            outcome.name,
            "cleanup",
            f"removed releases: {removed}" if outcome.ok else f"FAILED: {outcome.reason()}",
            outcome.seconds,
        )
    removed_any = sorted({n for v in victims.values() for n in v})
    if removed_any:
        log = EventLog(fleet, "cleanup")
        log.append(log.make(None, None, detail="removed " + ",".join(map(str, removed_any))), strict=False)
    return victims


def deploy(
    config: Config,
    reporter: Reporter,
    opener: SessionOpener = open_session,
    force_unlock: bool = False,
    dry_run: bool = False,
    ref: str | None = None,
) -> Summary:
    """Deploy the configured artifact to every host of the stage (built from ``ref`` if given)."""
    return notified(
        config,
        reporter,
        "deploy",
        "success",
        lambda: _deploy(config, reporter, opener, force_unlock, dry_run, ref),
        dry_run,
    )


def _deploy(
    config: Config,
    reporter: Reporter,
    opener: SessionOpener,
    force_unlock: bool,
    dry_run: bool,
    ref: str | None,
) -> Summary:
    secrets = reporter.secrets

    from . import (
        artifact as artifacts,  # only deploys read artifacts: keep rollback's start-up light
    )

    def prepare() -> artifacts.Artifact:
        """Local checks, while the SSH handshakes run: a bad artifact or template fails
        here, before anything changes on any host."""
        art = artifacts.prepare(config, ref)
        try:
            for host in config.hosts:
                templates.render_host(config, host, 0, secrets)
        except BaseException:
            art.discard()
            raise
        return art

    revision = git.describe(config.root, ref) if ref else None
    art = None
    try:
        with Fleet.connect(config, reporter, opener=opener, dry_run=dry_run, alongside=prepare) as fleet:
            art = fleet.prepared
            with fleet.locked("deploy", force=force_unlock) as facts:
                summary = DeployRun(fleet, art, secrets, revision=revision).execute(facts)
                summary.dry_run = dry_run
                return summary
    finally:
        if art is not None:
            art.discard()


def rollback(
    config: Config,
    reporter: Reporter,
    to: int | None = None,
    opener: SessionOpener = open_session,
    dry_run: bool = False,
) -> Summary:
    """Switch every host back to the previous good release (or ``to``), no upload."""
    return notified(
        config,
        reporter,
        "rollback",
        "rollback",
        lambda: _rollback(config, reporter, to, opener, dry_run),
        dry_run,
    )


def _rollback(
    config: Config, reporter: Reporter, to: int | None, opener: SessionOpener, dry_run: bool
) -> Summary:
    start = time.monotonic()
    with (
        Fleet.connect(config, reporter, opener=opener, dry_run=dry_run) as fleet,
        fleet.locked("rollback") as facts,
    ):
        target = plan.choose_rollback(facts, to)
        previous = {name: f.current for name, f in facts.items()}
        previous_raw = {name: f.current_raw for name, f in facts.items()}
        reporter.line(f"rollback {config.application} on {config.stage} to release {target}")
        todo = {name: target for name in fleet.names if previous[name] != target}
        try:
            switch_all(fleet, todo, "switch")
        except SwitchFailed as exc:
            stuck = restore(fleet, previous_raw, exc.switched, target)
            first = exc.failed[0]
            note = (
                "every host was switched back"
                if not stuck
                else (
                    f"could NOT switch back: {', '.join(stuck)}; "
                    + who_runs_what(fleet.names, stuck, target, previous_raw)
                )
            )
            raise DeployFailed(
                f"host {first.name}: rollback switch failed: {first.reason()} ({note})"
            ) from None
        except KeyboardInterrupt:
            fleet.cancel.clear()
            restore(fleet, previous_raw, list(todo), target)
            raise Interrupted("interrupted; hosts switched back to where they were") from None
        log = EventLog(fleet, "rollback")
        sha = releaselog.artifact_shas(plan.merged_log(facts))
        events = [
            log.make(target, releaselog.ACTIVE, previous=plan.current_release(facts), sha256=sha.get(target))
        ]
        # Only releases newer than the target were rolled back *from*; rolling forward
        # (--to a newer release) does not make the one we leave bad.
        for old in sorted({p for p in previous.values() if p is not None and p > target}):
            events.append(log.make(old, releaselog.ROLLED_BACK))
        log.append(*events)
        run_hooks(fleet, "after_rollback", "rollback", target, previous)
        rows = [HostReport(n, target, previous[n], "active", fleet.elapsed.get(n, 0.0)) for n in fleet.names]
        return Summary("rollback", config.stage, target, rows, time.monotonic() - start, dry_run)
