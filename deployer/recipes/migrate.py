"""Migrations: the schema step of a deploy, and what a rollback does about the data.

Deploy: on the migration host (the first ``db`` host, else the first), read the schema
version, take the snapshot if one is configured, run the migrations, read the version
again; the release log records both versions and the snapshot. Rollback: read the version
the database is at, compare it with the one the target release ran on, and when they differ
refuse, migrate down, restore the snapshot or switch the code only, as chosen.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from .. import commands, migrations, program_name
from ..errors import ConfigError, DeployerError, DeployFailed
from ..facts import HostFacts
from ..failures import raise_failures
from ..fleet import Fleet
from ..output import human_bytes
from ..shell import quote
from ..transport import Result
from .eventlog import now_iso
from .hooks import hook_env


@dataclass
class SchemaChange:
    """What one deploy's migrations did so far (filled in as they run, so a failure's log
    entry still says what was known)."""

    before: str | None = None
    after: str | None = None
    snapshot_size: int | None = None
    snapshot_path: str = ""
    snapshot_at: str = ""

    def fields(self) -> dict:
        if self.before is None:
            return {}
        if self.after is None:
            return {"schema_before": self.before}
        return migrations.schema_fields(
            self.before, self.after, self.snapshot_size, self.snapshot_path, self.snapshot_at
        )


def migration_host_name(config) -> str:
    """The migration host of the whole stage, even when --hosts/--roles chose a subset."""
    return migrations.migration_host(config.all_hosts or config.hosts).name


class Migrator:
    """Runs the configured migration commands on the fleet's migration host, like hooks."""

    def __init__(self, fleet: Fleet, command: str) -> None:
        self.fleet = fleet
        self.config = fleet.config
        self.spec = fleet.config.migrations
        assert self.spec is not None
        self.command = command
        self.host = migration_host_name(fleet.config)
        self.layout = fleet.layout
        if self.host not in fleet.sessions:
            raise ConfigError(
                f"--hosts/--roles: migrations run on {self.host} (the first host with role db), which is "
                "not among the chosen hosts; include it, or leave out --hosts/--roles"
            )

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

    def restore_hint(self, release: int, live: int | None) -> str:
        """Exactly how to load the snapshot taken before ``release``'s migrations by hand: the
        restore command as the tool would run it (its environment, in the live release)."""
        path = self.layout.snapshot(release)
        if not self.spec.restore:
            return (
                f"the snapshot from before it is on host {self.host} at {path} (no migrations.restore is set)"
            )
        where = self.layout.release_or_root(live)
        env = self.env(live, None, DEPLOYER_SNAPSHOT=path)
        exports = " ".join(f"{k}={quote(v)}" for k, v in env.items())
        how = f"cd {quote(where)} && env {exports} sh -c {quote(self.spec.restore)}"
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
        change.snapshot_at = now_iso()
        change.snapshot_size = take_snapshot(
            run, fleet.layout.snapshot(release), directory, env, change.before
        )
        change.snapshot_path = fleet.layout.snapshot(release)
    result = run.run("command", directory, env)
    if not result.ok:
        change.after = run.try_version(directory, env)
        raise DeployFailed(f"{run.failure('command', result)}; {_left_at(run, change, release, previous)}")
    try:
        change.after = run.version(directory, env)
    except DeployFailed as exc:
        raise DeployFailed(f"{exc.message}; {_left_at(run, change, release, previous)}") from None
    if change.after == change.before and change.snapshot_size is not None:
        _run_script(run, commands.remove_snapshots(run.layout, [release]))  # kept only if it changed
        change.snapshot_size = None
    fleet.reporter.step(run.host, "migrations", _describe(change), time.monotonic() - started)


def changed_schema(change: SchemaChange | None) -> bool:
    """The migrations of a deploy being undone moved the schema (or may have: unreadable)."""
    return change is not None and change.before is not None and change.after != change.before


def migrate_into(
    fleet: Fleet, release: int, previous: int | None, change: SchemaChange, command: str, log
) -> None:
    """:func:`migrate`, and what it did (so far, when it fails) into ``log``'s later entries."""
    try:
        migrate(fleet, release, previous, change, command)
    finally:
        log.extra.update(change.fields())


def schema_left(change: SchemaChange | None, back_to: int | None, stage: str) -> list[str]:
    """A deploy undone after its migrations changed the schema: the old code now runs on the
    new schema. Say so, and how to bring the data back."""
    if not changed_schema(change) or change.after is None or back_to is None:
        return []
    return [
        f"the database stays at schema {change.after}, release {back_to} ran on {change.before}: "
        f"`{program_name()} rollback --stage={stage} --to={back_to} --migrate-down` (or --with-data) "
        "brings it back"
    ]


def _plan(run: Migrator, release: int, directory: str, env: dict[str, str]) -> None:
    """--dry-run: the same commands into the plan, none run."""
    run.run("version", directory, env)
    if run.spec.snapshot:
        path = run.layout.snapshot(release)
        _run_script(run, commands.snapshot(run.layout, path, directory, run.spec.snapshot, env))
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


def _left_at(run: Migrator, change: SchemaChange, release: int, live: int | None) -> str:
    """Where a failed migration left the schema, and how to get the data back."""
    if change.after is None:
        where = f"the schema version could not be read after it (it was {change.before})"
    elif change.after == change.before:
        where = f"the schema is still at {change.before}"
    else:
        where = f"the schema moved from {change.before} to {change.after} before it failed"
    if change.snapshot_size is None:
        return where
    return f"{where}; {run.restore_hint(release, live)}"


def take_snapshot(run: Migrator, path: str, directory: str, env: dict[str, str], version: str) -> int:
    """Take a snapshot into ``path`` (``commands.snapshot``); its size in bytes."""
    env = {**env, "DEPLOYER_SNAPSHOT": path}
    script = commands.snapshot(run.layout, path, directory, run.spec.snapshot, env)
    result = _run_script(run, script)
    unchanged = f"the schema is unchanged at {version} (nothing was switched)"
    if result.exit_code == commands.EXIT_EMPTY_SNAPSHOT and result.stdout.endswith("snapshot_empty\n"):
        raise DeployFailed(
            f"host {run.host}: migrations.snapshot `{run.spec.snapshot}` wrote nothing to $DEPLOYER_SNAPSHOT "
            f"({path}); {unchanged}"
        )
    if not result.ok:
        raise DeployFailed(f"{run.failure('snapshot', result)}; {unchanged}")
    tail = [line for line in result.stdout.split("\n") if line.startswith("snapshot_size ")]
    size = tail[-1].split(" ", 1)[1] if tail else ""
    return int(size) if size.isdigit() and len(size) < 16 else 0


def note_schema(fleet: Fleet, report, facts: HostFacts) -> None:
    """``check`` on the migration host: the schema version the database is at (a problem if
    ``migrations.version`` fails there, so a deploy would stop before the switch)."""
    if report.name != migration_host_name(fleet.config):
        return
    run = Migrator(fleet, "check")
    current = facts.current
    directory = fleet.layout.release_or_root(current)
    try:
        version = run.version(directory, run.env(current, None), read_only=True)
    except DeployerError as exc:
        report.problems.append(exc.message)
        return
    report.notes.append(f"database schema {version}")
