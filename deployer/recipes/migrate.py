"""Migrations: the schema step of a deploy, and what a rollback does about the data.

Deploy: on the migration host (the first ``db`` host, else the first), read the schema
version, take the snapshot if one is configured, run the migrations, read the version
again; the release log records both versions and the snapshot. Rollback: read the version
the database is at, compare it with the one the target release ran on, and when they differ
refuse, migrate down, restore the snapshot or switch the code only, as chosen.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass

from .. import commands, migrations, plan
from ..errors import ConfigError, DeployerError, DeployFailed, MigrationsCrossed
from ..facts import HostFacts
from ..failures import raise_failures
from ..fleet import Fleet
from ..output import human_bytes
from ..shell import quote
from ..transport import Result
from .hooks import hook_env


@dataclass
class SchemaChange:
    """What one deploy's migrations did so far (filled in as they run, so a failure's log
    entry still says what was known)."""

    before: str | None = None
    after: str | None = None
    snapshot_size: int | None = None
    snapshot_path: str = ""

    def fields(self) -> dict:
        if self.before is None:
            return {}
        if self.after is None:
            return {"schema_before": self.before}
        return migrations.schema_fields(self.before, self.after, self.snapshot_size, self.snapshot_path)


class Migrator:
    """Runs the configured migration commands on the fleet's migration host, like hooks."""

    def __init__(self, fleet: Fleet, command: str) -> None:
        self.fleet = fleet
        self.config = fleet.config
        self.spec = fleet.config.migrations
        assert self.spec is not None
        self.command = command
        self.host = migrations.migration_host(fleet.config.hosts).name  # even if unreachable: never another
        self.layout = fleet.layout

    def env(self, release: int | None, previous: int | None, **more: str) -> dict[str, str]:
        return {**hook_env(self.config, self.command, release, previous), **more}

    def run(self, key: str, directory: str, env: dict[str, str], read_only: bool = False) -> Result:
        """Run ``migrations.<key>``; a host that cannot run it raises its own error."""
        script = commands.run_hook(directory, getattr(self.spec, key), env)
        outcome = self.fleet.each(lambda s: s.run(script, read_only=read_only), [self.host])[0]
        raise_failures([outcome])
        return outcome.value

    def failure(self, key: str, result: Result) -> str:
        return (
            f"host {self.host}: migrations.{key} `{getattr(self.spec, key)}` exited {result.exit_code}: "
            f"{result.output_tail()}"
        )

    def version(self, directory: str, env: dict[str, str], read_only: bool = False) -> str:
        """The schema version the database is at, as ``migrations.version`` prints it."""
        result = self.run("version", directory, env, read_only)
        if not result.ok:
            raise DeployFailed(self.failure("version", result))
        found = migrations.parse_version(result.stdout)
        if found is None:
            raise DeployFailed(
                f"host {self.host}: migrations.version `{self.spec.version}` printed no schema version "
                f"(one line of at most {migrations.MAX_VERSION} printable characters): {result.output_tail()}"
            )
        return found

    def try_version(self, directory: str, env: dict[str, str]) -> str | None:
        try:
            return self.version(directory, env)
        except DeployFailed:
            return None

    def restore_hint(self, release: int) -> str:
        """Exactly how to load the snapshot taken before ``release``'s migrations by hand."""
        path = self.layout.snapshot(release)
        current, restore = quote(self.layout.current), quote(self.spec.restore or "")
        how = (
            f"cd {current} && DEPLOYER_SNAPSHOT={quote(path)} sh -c {restore}"
            if self.spec.restore
            else "your database's restore tool"
        )
        return f"the snapshot from before it is on host {self.host} at {path}; to restore it run there: {how}"


def migrate(fleet: Fleet, release: int, previous: int | None, change: SchemaChange, command: str) -> None:
    """The deploy's schema step, before the switch. Raises DeployFailed (nothing switched
    yet) saying where the schema was left and how to restore the snapshot."""
    started = time.monotonic()
    run = Migrator(fleet, command)
    directory = fleet.layout.release(release)
    env = run.env(release, previous, DEPLOYER_SNAPSHOT=fleet.layout.snapshot(release))
    if fleet.dry_run:
        _plan(run, release, directory, env)
        return
    change.before = run.version(directory, env)
    if run.spec.snapshot:
        change.snapshot_size = _snapshot(run, release, directory, env, change.before)
        change.snapshot_path = fleet.layout.snapshot(release)
    result = run.run("command", directory, env)
    if not result.ok:
        change.after = run.try_version(directory, env)
        raise DeployFailed(f"{run.failure('command', result)}; {_left_at(run, change, release)}")
    change.after = run.version(directory, env)
    if change.after == change.before and change.snapshot_size is not None:
        _run_script(run, commands.remove_snapshots(run.layout, [release]))  # kept only if it changed
        change.snapshot_size = None
    fleet.reporter.step(run.host, "migrations", _describe(change), time.monotonic() - started)


def schema_left(change: SchemaChange | None, back_to: int | None, stage: str) -> list[str]:
    """A deploy switched back after its migrations changed the schema: the old code now runs
    on the new schema. Say so, and how to bring the data back."""
    if change is None or change.after is None or change.after == change.before or back_to is None:
        return []
    return [
        f"the database stays at schema {change.after}, release {back_to} ran on {change.before}: "
        f"`invoke rollback --stage={stage} --to={back_to} --migrate-down` (or --with-data) brings it back"
    ]


def _plan(run: Migrator, release: int, directory: str, env: dict[str, str]) -> None:
    """--dry-run: the same commands into the plan, none run."""
    run.run("version", directory, env)
    if run.spec.snapshot:
        _run_script(run, commands.snapshot(run.layout, release, directory, run.spec.snapshot, env))
    run.run("command", directory, env)
    run.run("version", directory, env)
    steps = "version, snapshot, command, version" if run.spec.snapshot else "version, command, version"
    run.fleet.reporter.step(run.host, "migrations", f"would run {steps}")


def _run_script(run: Migrator, script: str) -> Result:
    outcome = run.fleet.each(lambda s: s.run(script), [run.host])[0]
    raise_failures([outcome])
    return outcome.value


def _describe(change: SchemaChange) -> str:
    if change.after == change.before:
        return f"schema unchanged at {change.before}"
    kept = f" (snapshot {human_bytes(change.snapshot_size)})" if change.snapshot_size is not None else ""
    return f"schema {change.before} -> {change.after}{kept}"


def _left_at(run: Migrator, change: SchemaChange, release: int) -> str:
    """Where a failed migration left the schema, and how to get the data back."""
    if change.after is None:
        where = f"the schema version could not be read after it (it was {change.before})"
    elif change.after == change.before:
        where = f"the schema is still at {change.before}"
    else:
        where = f"the schema moved from {change.before} to {change.after} before it failed"
    if change.snapshot_size is None:
        return where
    return f"{where}; {run.restore_hint(release)}"


def _snapshot(run: Migrator, release: int, directory: str, env: dict[str, str], version: str) -> int:
    """Take the snapshot (``commands.snapshot``); its size in bytes."""
    script = commands.snapshot(run.layout, release, directory, run.spec.snapshot, env)
    result = _run_script(run, script)
    unchanged = f"the schema is unchanged at {version} (nothing was switched)"
    if result.exit_code == commands.EXIT_EMPTY_SNAPSHOT:
        raise DeployFailed(
            f"host {run.host}: migrations.snapshot `{run.spec.snapshot}` wrote nothing to $DEPLOYER_SNAPSHOT "
            f"({run.layout.snapshot(release)}); {unchanged}"
        )
    if not result.ok:
        raise DeployFailed(f"{run.failure('snapshot', result)}; {unchanged}")
    tail = [line for line in result.stdout.split("\n") if line.startswith("snapshot_size ")]
    size = tail[-1].split(" ", 1)[1] if tail else ""
    return int(size) if size.isdigit() and len(size) < 16 else 0


def note_schema(fleet: Fleet, report, facts: HostFacts) -> None:
    """``check`` on the migration host: the schema version the database is at (a problem if
    ``migrations.version`` fails there, so a deploy would stop before the switch)."""
    run = Migrator(fleet, "check")
    if report.name != run.host:
        return
    current = facts.current
    directory = fleet.layout.release(current) if current is not None else fleet.layout.deploy_to
    try:
        version = run.version(directory, run.env(current, None), read_only=True)
    except DeployerError as exc:
        report.problems.append(exc.message)
        return
    report.notes.append(f"database schema {version}")


@dataclass(frozen=True)
class DataChoice:
    """What the person asked a rollback to do about the database (flags)."""

    choice: str | None = None  # migrate-down | with-data | code-only; None: ask, else config
    yes: bool = False  # --with-data confirmed in advance
    may_ask: bool = True  # a person may be asked on a terminal


def before_rollback(fleet: Fleet, facts: dict[str, HostFacts], target: int, wanted: DataChoice) -> dict:
    """Before any host switches: read the schema the database is at, and when the target
    ran on another one, do what was chosen (or refuse). Returns the rollback event's
    fields about the data."""
    spec = fleet.config.migrations
    if spec is None:
        if wanted.choice:
            raise ConfigError(
                f"{migrations.FLAGS[wanted.choice]}: no migrations in config/{fleet.config.stage}.yml, so a "
                "rollback never touches the database"
            )
        return {}
    run = Migrator(fleet, "rollback")
    current = facts[run.host].current
    directory = fleet.layout.release(current) if current is not None else fleet.layout.deploy_to
    env = run.env(target, current)
    now = run.version(directory, env, read_only=True)
    records = migrations.recorded(plan.merged_log(facts))
    cross = migrations.crossing(records, target, now, facts[run.host].snapshots, current)
    if cross is None:
        if migrations.schema_of(target, records) is None:
            fleet.reporter.line(
                f"warning: release {target}'s schema is not recorded (deployed before migrations were); "
                f"the database stays at {now}"
            )
        return {"schema": now}
    choice = _choose(fleet, cross, wanted)
    if choice == migrations.REFUSE:
        raise MigrationsCrossed(cross.refusal(fleet.config.stage))
    fleet.reporter.line(f"crossing migrations ({choice}): {cross.summary()}")
    if choice == migrations.CODE_ONLY:
        fleet.reporter.line(
            f"warning: release {target} (schema {cross.target_schema}) will run on schema {now}"
        )
        return {"schema": now, "data": choice}
    knowing = _newest_code(fleet, facts[run.host], cross, current)
    if choice == migrations.MIGRATE_DOWN:
        _migrate_up(run, cross, env) if cross.forward else _migrate_down(run, cross, knowing, env)
        return {"schema": cross.target_schema, "data": choice}
    _restore(run, cross, knowing, env, wanted)
    return {"schema": cross.target_schema, "data": choice, "restored_from": cross.snapshot.release}


def _choose(fleet: Fleet, cross: migrations.Crossing, wanted: DataChoice) -> str:
    """The flag, else the person's answer on a terminal, else ``migrations.rollback``."""
    default = fleet.config.migrations.rollback
    if wanted.choice:
        return wanted.choice
    if not (wanted.may_ask and sys.stdin.isatty()):
        return default
    answers = {"d": migrations.MIGRATE_DOWN, "r": migrations.WITH_DATA, "c": migrations.CODE_ONLY}
    answer = input(
        f"rollback crosses migrations: {cross.summary()}.\n"
        f"[d] migrate down  [r] restore the snapshot (loses later writes)  [c] code only  [a] abort "
        f"(default: {default}) "
    )
    return answers.get(answer.strip().lower()[:1], migrations.REFUSE if answer.strip() else default)


def _expect(
    run: Migrator, cross: migrations.Crossing, directory: str, env: dict[str, str], what: str
) -> None:
    """After a down migration or a restore, the database must be at the target's schema."""
    if run.fleet.dry_run:
        return
    found = run.version(directory, env)
    if found != cross.target_schema:
        raise DeployFailed(
            f"host {run.host}: after migrations.{what} the schema is at {found}, not {cross.target_schema} "
            f"(release {cross.target}'s); nothing was switched"
        )


def _newest_code(fleet: Fleet, fact: HostFacts, cross: migrations.Crossing, current: int | None) -> str:
    """Where down migrations and restores run: the newest release on the migration host
    among current and the crossed ones (a release switched back from after a failed health
    check is newer than current, and only its code knows its own down migrations)."""
    present = [m.release for m in cross.crossed if m.release in fact.complete]
    newest = max([*present, *([current] if current is not None else [])], default=None)
    return fleet.layout.release(newest) if newest is not None else fleet.layout.deploy_to


def _migrate_up(run: Migrator, cross: migrations.Crossing, env: dict[str, str]) -> None:
    """Forward (``--to`` a newer release): the target's own migrations bring the schema up."""
    directory = run.layout.release(cross.target)
    result = run.run("command", directory, env)
    if not result.ok:
        now = run.try_version(directory, env) or "unknown"
        raise DeployFailed(f"{run.failure('command', result)}; the schema is at {now}; nothing was switched")
    _expect(run, cross, directory, env, "command")


def _migrate_down(run: Migrator, cross: migrations.Crossing, directory: str, env: dict[str, str]) -> None:
    if not run.spec.down:
        raise ConfigError(f"--migrate-down: migrations.down is not set in config/{run.config.stage}.yml")
    env = {**env, "DEPLOYER_TARGET_SCHEMA": cross.target_schema}
    result = run.run("down", directory, env)
    if not result.ok:
        now = run.try_version(directory, env) or "unknown"
        raise DeployFailed(f"{run.failure('down', result)}; the schema is at {now}; nothing was switched")
    _expect(run, cross, directory, env, "down")


def _restore(
    run: Migrator, cross: migrations.Crossing, directory: str, env: dict[str, str], wanted: DataChoice
) -> None:
    if not run.spec.restore:
        raise ConfigError(f"--with-data: migrations.restore is not set in config/{run.config.stage}.yml")
    if cross.snapshot is None:
        raise DeployFailed(
            f"rollback --with-data: host {run.host} keeps no snapshot from schema {cross.target_schema} "
            "(none was taken, or cleanup removed it); nothing was switched"
        )
    _confirm(run, cross, wanted)
    path = run.layout.snapshot(cross.snapshot.release)
    result = run.run("restore", directory, {**env, "DEPLOYER_SNAPSHOT": path})
    if not result.ok:
        now = run.try_version(directory, env) or "unknown"
        raise DeployFailed(
            f"{run.failure('restore', result)}; the database may be partly restored (schema at {now}); "
            f"nothing was switched; the snapshot is still at {path}"
        )
    _expect(run, cross, directory, env, "restore")


def _confirm(run: Migrator, cross: migrations.Crossing, wanted: DataChoice) -> None:
    """Losing writes needs a yes: --yes, or an answer on a terminal."""
    if wanted.yes or run.fleet.dry_run:
        return
    if not (wanted.may_ask and sys.stdin.isatty()):
        raise ConfigError(
            f"rollback --with-data: {cross.loss()}; pass --yes to confirm (nothing was changed)"
        )
    answer = input(f"{cross.loss()}. Restore the snapshot? [y/N] ")
    if answer.strip().lower() not in ("y", "yes"):
        raise ConfigError("rollback --with-data: not confirmed; nothing was changed")
