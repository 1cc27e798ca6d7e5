"""Deploy: put a new release on every host and switch ``current`` to it.

The story: check the artifact and templates locally (while the SSH handshakes run), lock
and read each host's state, run before_deploy, upload and prepare the release
everywhere, run after_upload, the migrations (recipes/migrate) and before_switch, switch
batch by batch (each batch runs after_switch, the health check and after_healthcheck),
log, clean up, unlock. Any failure before the switch removes the new release everywhere;
any failure at or after it switches every host back, and the message says what was undone.
"""

from __future__ import annotations

import contextlib
import time
from typing import TYPE_CHECKING

from .. import commands, git, incidents, ledger, plan, releaselog, templates
from ..config import Config
from ..errors import ArtifactError, DeployerError, DeployFailed, Interrupted
from ..facts import HostFacts
from ..failures import raise_failures, raise_on_failure
from ..fleet import Fleet, SessionOpener
from ..layout import MANIFEST_NAME
from ..notify import notifying
from ..output import Reporter, Secrets, human_bytes
from ..transport import Session, open_session
from ..untrusted import one_line
from .eventlog import EventLog, now_iso
from .finish import carried, finish_apart
from .hooks import run_hooks
from .metadata import artifact_url, release_metadata
from .migrate import Migrator, SchemaChange, changed_schema, migrate_into, schema_left
from .summary import HostReport, Summary
from .switch import SwitchFailed, switch_all, switch_back

if TYPE_CHECKING:
    from .. import artifact as artifacts
    from ..upload import Upload


@notifying("deploy", "success")
def deploy(
    config: Config,
    reporter: Reporter,
    opener: SessionOpener = open_session,
    force_unlock: bool = False,
    dry_run: bool = False,
    ref: str | None = None,
    force: bool = False,
) -> Summary:
    """Deploy the configured artifact to every host of the stage (built from ``ref`` if given);
    ``force`` ships it even if it was rolled back or failed its checks on this stage."""
    from .. import artifact as artifacts  # only deploys read artifacts: keep rollback's start-up light

    revision: git.Revision | None = None

    def prepare() -> artifacts.Artifact:
        """Local checks, while the SSH handshakes run: a bad artifact or template fails
        here, before anything changes on any host."""
        nonlocal revision
        revision = git.describe(config.root, ref)
        art = artifacts.prepare(config, ref)
        ledger.remember(art.sha256, ledger.content_digest(art.manifest))  # promote checks against it
        try:
            for host in config.hosts:
                templates.render_host(config, host, 0, reporter.secrets)
        except BaseException:
            art.discard()
            raise
        return art

    art = None
    try:
        with Fleet.connect(config, reporter, opener=opener, dry_run=dry_run, alongside=prepare) as fleet:
            art = fleet.prepared
            with fleet.locked("deploy", force=force_unlock) as facts:
                return DeployRun(fleet, art, facts, revision=revision, force=force).execute()
    finally:
        if art is not None:
            art.discard()


class DeployRun:
    """One deploy of one artifact to a connected, locked fleet whose facts were just read."""

    def __init__(
        self,
        fleet: Fleet,
        art: artifacts.Artifact,
        facts: dict[str, HostFacts],
        command: str = "deploy",
        detail: str | None = None,
        revision: git.Revision | None = None,
        force: bool = False,
    ) -> None:
        self.fleet = fleet
        self.config = fleet.config
        self.reporter = fleet.reporter
        self.secrets: Secrets = fleet.reporter.secrets
        self.art = art
        self.facts = facts
        self.command = command
        self.detail = detail
        self.previous = {name: f.current for name, f in facts.items()}
        self.previous_raw = {name: f.current_raw for name, f in facts.items()}
        self.number = plan.next_release(facts)
        self.log = EventLog(
            fleet,
            command,
            sha256=art.sha256,
            revision=revision.label if revision else None,
            extra=self._extra(revision),
        )
        self.switched: list[str] = []
        self.staged = False
        self.force = force
        self.cause: str | None = None  # what the step under way proves bad if it fails
        self.live_at: str | None = None  # when the first host switched
        self.schema: SchemaChange | None = None  # what this release's migrations did
        self.finished = False  # the log, cleanup and unlock went with the switch (one host)
        self.late: DeployerError | None = None  # and that log failed

    def _extra(self, revision: git.Revision | None) -> dict:
        extra: dict = (
            {"author": revision.author, "subject": revision.subject} if revision and revision.subject else {}
        )
        if self.config.subset:
            extra["hosts"] = self.fleet.names  # a deploy to a subset says so in the log
        if not self.art.vouched:  # never sealed: only its source host vouched for it
            extra["unverified"] = True
            return extra
        content = ledger.content_digest(self.art.manifest)
        sealed = ledger.seal(self.art.sha256, content)
        if sealed:  # lets a promote from any machine holding the key trust this release
            extra.update(content=content, seal=sealed)
        return extra

    def execute(self) -> Summary:
        start = time.monotonic()
        self.reporter.line(
            f"{self.command} {self.config.application} to {self.config.stage}: release {self.number} on "
            f"{len(self.fleet.names)} host(s), artifact {human_bytes(self.art.size)} "
            f"sha256 {self.art.sha256[:12]}"
        )
        if self.fleet.dry_run:
            self.reporter.line(f"  {self.art.contents()}")
        self._refuse_bad_artifact()
        if self.config.migrations is not None:
            Migrator(self.fleet, self.command)  # a subset without the migration host: refused now
        try:
            self._hooks("before_deploy", None, directory=self.fleet.layout.deploy_to)
            self.upload()
            self._hooks("after_upload", self.number)
            self._migrate()
            self._hooks("before_switch", self.number)
            self.roll_out()
        except BaseException as exc:  # every failure, expected or not, is undone first
            self.fleet.cancel.clear()
            error = self.undo(exc)
            self.on_failure()
            raise error from None
        if self.late is not None:  # the switch carried the log, which failed: as when apart
            raise self.late
        if not self.finished:
            finish_apart(self)
        rows = [
            HostReport(n, self.number, self.previous[n], "active", self.fleet.elapsed.get(n, 0.0))
            for n in self.fleet.names
        ]
        seconds = time.monotonic() - start
        return Summary(
            self.command, self.config.stage, self.number, rows, seconds, self.fleet.dry_run, self.log.revision
        )

    def active_event(self) -> releaselog.Event:
        return self.log.make(
            self.number, releaselog.ACTIVE, previous=self._newest_previous(), detail=self.detail
        )

    def _refuse_bad_artifact(self) -> None:
        """An artifact rolled back, or failed its health check or watch, on this stage stays
        out unless forced: decided from the facts already read, before any host changes."""
        verdict = incidents.refusal(plan.merged_log(self.facts), self.art.sha256)
        if verdict is None:
            return
        message = incidents.describe_refusal(self.command, self.config.stage, verdict)
        if not self.force:
            raise ArtifactError(message)
        self.reporter.line(f"warning (--force): {one_line(message.split('; pass --force')[0])}")

    def watch(self) -> None:
        """The watch window (``rollout.watch``); its failure is undone like any other."""
        from .watch import watch

        try:
            watch(self)
        except BaseException as exc:
            self.fleet.cancel.clear()
            error = self.undo(exc)
            self.on_failure()
            raise error from None

    def _migrate(self) -> None:
        """``migrations`` (recipes/migrate): their record goes into every later log entry."""
        if self.config.migrations is not None:
            self.schema = SchemaChange()
            migrate_into(
                self.fleet, self.number, self._newest_previous(), self.schema, self.command, self.log
            )

    def _hooks(self, phase: str, release: int | None, **where) -> None:
        run_hooks(self.fleet, phase, self.command, release, self.previous, **where)

    def _newest_previous(self) -> int | None:
        values = {v for v in self.previous.values() if v is not None}
        return max(values) if values else None

    def upload(self) -> None:
        """Every host gets the release (identical copy, delta, full upload or download),
        its shared links, rendered templates, manifest and metadata."""
        from ..transcode import zstd_copy
        from ..upload import Uploader  # not needed by rollback

        shas = releaselog.artifact_shas(plan.merged_log(self.facts))
        uploader = Uploader(
            self.art,
            self.fleet.layout,
            self.config.delta,
            shas,
            artifact_url(self.config, self.art.sha256, self.secrets),
            self.reporter,
            zstd_copy(self.art, self.config, self.facts, self.fleet.dry_run),
        )
        self.staged = True
        try:
            outcomes = self.fleet.each(lambda session: self._prepare_host(session, uploader))
        finally:
            self.reporter.end_progress()
            uploader.discard()
        for outcome in outcomes:
            result = outcome.value.describe(human_bytes) if outcome.ok else f"FAILED: {outcome.reason()}"
            if self.fleet.dry_run and outcome.ok:
                result = "would be " + result.replace(" sent", " to send")
            self.reporter.step(outcome.name, "upload", result, outcome.seconds)
        raise_failures(outcomes)
        if len(self.fleet.names) > 1:  # on one host it went with the upload
            self.log.append(self.staged_event())

    def _prepare_host(self, session: Session, uploader) -> Upload:
        """Make the release and prepare it (shared links, rendered templates, manifest,
        metadata) in one round trip; on a single host the staged event goes along too."""
        from ..upload import IDENTICAL

        def then(mode: str) -> tuple[str, bytes]:
            files = templates.render_host(self.config, session.host, self.number, self.secrets)
            if mode != IDENTICAL:
                files[MANIFEST_NAME] = (self.art.manifest_bytes(), 0o644)
            config = self.config
            script = commands.finish_release(
                self.fleet.layout,
                self.number,
                config.shared_dirs,
                config.shared_files,
                release_metadata(self.config, self.number, self.art.sha256, self.log.revision),
                bool(files),
                file_paths=list(files),
                files_from=uploader.files_path(),
            )
            if len(self.fleet.names) == 1:  # nothing to wait for: the staged event goes along
                script = commands.then_also(script, self.log.script([self.staged_event()]))
            return script, templates.to_tar(files) if files else b""

        return uploader.upload(session, self.facts[session.host.name], self.number, then)

    def staged_event(self):
        return self.log.make(self.number, releaselog.STAGED, detail=self.detail)

    def roll_out(self) -> None:
        """Switch hosts batch by batch (one batch of all hosts unless ``rollout`` says
        otherwise); each batch runs after_switch, the health check and after_healthcheck before
        the next (so an app server started by after_switch is checked before it gets traffic)."""
        rollout = self.config.rollout
        groups = plan.batches(self.fleet.names, rollout.canary, rollout.batch_size)
        for index, group in enumerate(groups):
            if len(groups) > 1:
                label = "canary" if index == 0 and rollout.canary else f"batch {index + 1}/{len(groups)}"
                self.reporter.line(f"{label}: {', '.join(group)}")
            self._switch(group)
            self.cause = incidents.AFTER_SWITCH
            self._hooks("after_switch", self.number, names=group)
            self.cause = incidents.HEALTHCHECK
            self.check_health(group)
            self.cause = incidents.AFTER_HEALTHCHECK
            self._hooks("after_healthcheck", self.number, names=group)
            self.cause = None
            if rollout.wait and index < len(groups) - 1:
                self.reporter.line(f"waiting {rollout.wait:g}s before the next batch")
                time.sleep(rollout.wait)

    def _switch(self, group: list[str]) -> None:
        """Switch one batch, remembering every host that may have switched."""
        self.live_at = self.live_at or now_iso()
        then, done = carried(self, group)
        try:
            switch_all(self.fleet, dict.fromkeys(group, self.number), then=then, then_done=done)
            self.switched += group
        except DeployFailed as exc:  # raised only for the log sent along: the switch succeeded
            self.switched += group
            self.late = exc
        except SwitchFailed as exc:
            self.switched += exc.switched
            raise
        except BaseException:
            # Interrupted while renames were in flight: some may have landed. Putting
            # back a host that never switched is harmless, missing one is not.
            self.switched += [n for n in group if n not in self.switched]
            raise

    def check_health(self, names: list[str]) -> None:
        hc = self.config.healthcheck
        if hc is None:
            return
        directory = self.fleet.layout.release(self.number)
        script = commands.healthcheck(directory, hc.command, hc.url, hc.retries, hc.interval, hc.timeout)
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
            self._hooks("on_failure", self.number, directory=self.fleet.layout.deploy_to)
        except DeployerError as exc:
            self.reporter.line(f"warning: {self.secrets.mask(exc.message)}")

    def undo(self, exc: BaseException) -> DeployerError:
        """Leave the hosts as they were: switch back, run after_rollback, remove or mark the
        release. Returns the error to raise, its message saying what was done."""
        if isinstance(exc, SwitchFailed):
            error: DeployerError = DeployFailed(exc.failed[0].reason())  # names host and step
        elif isinstance(exc, KeyboardInterrupt):
            error = Interrupted("interrupted")
        elif isinstance(exc, DeployerError):
            error = exc
        else:  # a bug or an unforeseen failure: still undone, still one line
            error = DeployFailed(f"unexpected {type(exc).__name__}: {exc}")
        notes = []
        if self.switched:
            notes.append(self._switch_back())
        if self.staged and not self.switched and changed_schema(self.schema):
            notes.append(f"release {self.number} kept: only its code knows how to undo its migrations")
        elif self.staged and not self.switched:
            script = commands.remove_releases(self.fleet.layout, [self.number])
            self.fleet.each(lambda s: s.run(script))
            notes.append(f"release {self.number} removed, current unchanged")
        notes += schema_left(self.schema, self._newest_previous(), self.config.stage)
        if self.staged:
            with contextlib.suppress(DeployerError):
                failed = self.log.make(
                    self.number,
                    releaselog.FAILED,
                    detail=self.secrets.mask(error.message)[:500],
                    extra=self._verdict(error),
                )
                self.log.append(failed, strict=False)
        message = self.secrets.mask(error.message)
        if notes:
            message += " (" + "; ".join(notes) + ")"
        return type(error)(message)

    def _verdict(self, error: DeployerError) -> dict:
        """For a release the tool switched back by itself: why (the release log's incident),
        and since when it was live. Ctrl-C condemns nothing."""
        if not self.switched or self.cause is None or isinstance(error, Interrupted):
            return {}
        reason = self.secrets.mask(error.message)[:500]
        return {"cause": self.cause, "reason": reason, "live_at": self.live_at}

    def _switch_back(self) -> str:
        """Put every switched host back and run after_rollback where that worked."""
        stuck, note = switch_back(self.fleet, self.previous_raw, self.switched, self.number)
        back = [n for n in self.switched if n not in stuck and self.previous.get(n) is not None]
        with contextlib.suppress(DeployerError):
            self._hooks("after_rollback", self._newest_previous() or self.number, names=back)
        return note
