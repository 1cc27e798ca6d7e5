"""What a rollback does about the database, before any host switches: read the schema
the database is at and, when the target release ran on another one, migrate down (or, going
forward with ``--to``, up), restore the snapshot, switch the code only, or refuse. The
decisions are :mod:`deployer.migrations`; this module runs them on the migration host.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

from .. import migrations, plan, releaselog
from ..errors import ConfigError, DeployFailed, MigrationsCrossed
from ..facts import HostFacts
from ..fleet import Fleet
from ..untrusted import printable
from .eventlog import now_iso
from .migrate import Migrator, migration_host_name, take_snapshot

MOVED = (migrations.MIGRATE_DOWN, migrations.MIGRATE_UP, migrations.WITH_DATA)  # the data was changed


@dataclass(frozen=True)
class DataChoice:
    """What the person asked a rollback to do about the database (flags)."""

    choice: str | None = None  # migrate-down | with-data | code-only; None: ask, else config
    yes: bool = False  # --with-data confirmed in advance
    may_ask: bool = True  # a person may be asked on a terminal


def ask(prompt: str) -> str:
    """A person's answer on the terminal; the prompt printed without control characters
    (it may quote a host's log), end of input (Ctrl-D) taken as no answer."""
    try:
        return input(printable(prompt))
    except EOFError:
        return ""


def before_rollback(fleet: Fleet, facts: dict[str, HostFacts], target: int, wanted: DataChoice) -> dict:
    """Settle the database for a rollback to ``target``, or refuse; returns the rollback
    event's fields about the data."""
    spec = fleet.config.migrations
    if spec is None:
        if wanted.choice:
            raise ConfigError(
                f"{migrations.FLAGS[wanted.choice]}: no migrations in config/{fleet.config.stage}.yml, so a "
                "rollback never touches the database"
            )
        return {}
    if wanted.choice == migrations.CODE_ONLY and migration_host_name(fleet.config) not in fleet.sessions:
        return {"data": migrations.CODE_ONLY}  # a subset without the migration host: the database is not read
    run = Migrator(fleet, "rollback")
    fact = facts[run.host]
    env = run.env(target, fact.current)
    now = run.version(fleet.layout.release_or_root(fact.current), env, read_only=True)
    events = plan.merged_log(facts)
    records, deployed = migrations.recorded(events), set(releaselog.deploy_info(events))
    cross = migrations.crossing(records, target, now, fact.snapshots, fact.current, deployed)
    if cross is None:
        if migrations.schema_of(target, records, deployed) is None:
            fleet.reporter.line(
                f"warning: release {target}'s schema is not recorded (deployed before migrations were, or "
                f"migrated by a hook); the database stays at {now}"
            )
        return {"schema": now}
    return _cross(run, fact, cross, _choose(fleet, cross, wanted), env, wanted)


def _cross(
    run: Migrator, fact: HostFacts, cross: migrations.Crossing, choice: str, env: dict, wanted: DataChoice
) -> dict:
    """Do the chosen way across the migrations (or refuse)."""
    config = run.config
    if choice == migrations.REFUSE:
        raise MigrationsCrossed(cross.refusal(config.stage, bool(run.spec.down), bool(run.spec.restore)))
    if config.subset and choice != migrations.CODE_ONLY:
        raise ConfigError(
            f"rollback --hosts/--roles: {migrations.FLAGS[choice]} would change the database every host of "
            f"{config.stage} uses while the others keep their code; roll back every host, or use --code-only"
        )
    run.fleet.reporter.line(f"crossing migrations ({choice}): {cross.summary()}")
    if choice == migrations.CODE_ONLY:
        run.fleet.reporter.line(
            f"warning: release {cross.target} (made for schema {cross.target_schema}) runs on schema "
            f"{cross.current_schema}"
        )
        return {"schema": cross.current_schema, "data": choice}
    if choice == migrations.MIGRATE_DOWN and cross.forward:
        return _migrate_up(run, cross, env)
    knowing = _newest_code(run.fleet, fact, cross)
    if choice == migrations.MIGRATE_DOWN:
        _migrate_down(run, cross, knowing, env)
        return {"schema": cross.target_schema, "data": choice}
    _restore(run, cross, knowing, env, wanted)
    kept = {"before_restore": run.layout.before_restore} if run.spec.snapshot else {}
    return {"schema": cross.target_schema, "data": choice, "restored_from": cross.snapshot.release, **kept}


def _choose(fleet: Fleet, cross: migrations.Crossing, wanted: DataChoice) -> str:
    """The flag, else the person's answer on a terminal, else ``migrations.rollback``."""
    default = fleet.config.migrations.rollback
    if wanted.choice:
        return wanted.choice
    if not (wanted.may_ask and sys.stdin.isatty()):
        return default
    answers = {"d": migrations.MIGRATE_DOWN, "r": migrations.WITH_DATA, "c": migrations.CODE_ONLY}
    answer = ask(
        f"rollback crosses migrations: {cross.summary()}.\n"
        f"[d] migrate down  [r] restore the snapshot (loses later writes)  [c] code only  [a] abort "
        f"(default: {default}) "
    )
    return answers.get(answer.strip().lower()[:1], migrations.REFUSE if answer.strip() else default)


def _expect(run: Migrator, cross: migrations.Crossing, directory: str, env: dict, what: str) -> None:
    """After a down migration or a restore, the database must be at the target's schema."""
    if run.fleet.dry_run:
        return
    found = run.version(directory, env)
    if found != cross.target_schema:
        raise DeployFailed(
            f"host {run.host}: after migrations.{what} the schema is at {found}, not {cross.target_schema} "
            f"(release {cross.target}'s); nothing was switched"
        )


def _newest_code(fleet: Fleet, fact: HostFacts, cross: migrations.Crossing) -> str:
    """Where down migrations and restores run: the newest release on the migration host
    among current and the crossed ones (a release switched back from after a failed health
    check is newer than current, and only its code knows its own down migrations)."""
    present = [m.release for m in cross.crossed if m.release in fact.complete]
    newest = max([*present, *([fact.current] if fact.current is not None else [])], default=None)
    return fleet.layout.release_or_root(newest)


def _migrate_up(run: Migrator, cross: migrations.Crossing, env: dict) -> dict:
    """Forward (``--to`` a newer release whose migrations go on from where the database is):
    like a deploy, a snapshot first, then the target's own migrations; the target's record
    in the log becomes what they did now."""
    directory = run.layout.release(cross.target)
    env = {**env, "DEPLOYER_SNAPSHOT": run.layout.snapshot(cross.target)}
    size, at = None, ""
    if run.spec.snapshot and not run.fleet.dry_run:
        at = now_iso()
        size = take_snapshot(run, run.layout.snapshot(cross.target), directory, env, cross.current_schema)
    result = run.run("command", directory, env)
    if not result.ok:
        now = run.try_version(directory, env) or "unknown"
        raise DeployFailed(f"{run.failure('command', result)}; the schema is at {now}; nothing was switched")
    _expect(run, cross, directory, env, "command")
    path = run.layout.snapshot(cross.target) if size is not None else ""
    fields = migrations.schema_fields(cross.current_schema, cross.target_schema, size, path, at)
    return {**fields, "schema": cross.target_schema, "data": migrations.MIGRATE_UP}


def _migrate_down(run: Migrator, cross: migrations.Crossing, directory: str, env: dict) -> None:
    if not run.spec.down:
        raise ConfigError(f"--migrate-down: migrations.down is not set in config/{run.config.stage}.yml")
    env = {**env, "DEPLOYER_TARGET_SCHEMA": cross.target_schema}
    result = run.run("down", directory, env)
    if not result.ok:
        now = run.try_version(directory, env) or "unknown"
        raise DeployFailed(f"{run.failure('down', result)}; the schema is at {now}; nothing was switched")
    _expect(run, cross, directory, env, "down")


def _restore(
    run: Migrator, cross: migrations.Crossing, directory: str, env: dict, wanted: DataChoice
) -> None:
    if not run.spec.restore:
        raise ConfigError(f"--with-data: migrations.restore is not set in config/{run.config.stage}.yml")
    if cross.snapshot is None:
        raise DeployFailed(
            f"rollback --with-data: host {run.host} keeps no snapshot from schema {cross.target_schema} "
            "(none was taken, or cleanup removed it); nothing was switched"
        )
    _confirm(run, cross, wanted)
    if run.spec.snapshot and not run.fleet.dry_run:  # the restore itself can be undone with this
        take_snapshot(run, run.layout.before_restore, directory, env, cross.current_schema)
    path = run.layout.snapshot(cross.snapshot.release)
    result = run.run("restore", directory, {**env, "DEPLOYER_SNAPSHOT": path})
    if not result.ok:
        now = run.try_version(directory, env) or "unknown"
        raise DeployFailed(
            f"{run.failure('restore', result)}; the database may be partly restored (schema at {now}); "
            f"nothing was switched; the snapshot is still at {path}"
        )
    _expect(run, cross, directory, env, "restore")
    if run.spec.snapshot and not run.fleet.dry_run:
        run.fleet.reporter.line(
            f"the data as it was before this restore is on host {run.host} at {run.layout.before_restore} "
            "(migrations.restore with DEPLOYER_SNAPSHOT set to it brings it back)"
        )


def _confirm(run: Migrator, cross: migrations.Crossing, wanted: DataChoice) -> None:
    """Losing writes needs a yes: --yes, or an answer on a terminal."""
    if wanted.yes or run.fleet.dry_run:
        return
    if not (wanted.may_ask and sys.stdin.isatty()):
        raise ConfigError(
            f"rollback --with-data: {cross.loss()}; pass --yes to confirm (nothing was changed)"
        )
    if ask(f"{cross.loss()}. Restore the snapshot? [y/N] ").strip().lower() not in ("y", "yes"):
        raise ConfigError("rollback --with-data: not confirmed; nothing was changed")


def still_moved(schema: dict) -> str | None:
    """After the data moved (down, up or restored), the hosts that switched must stay: switching
    them back would run the newer code on the older schema. The note saying so, else None."""
    if schema.get("data") not in MOVED:
        return None
    return f"the database is already at schema {schema['schema']} ({schema['data']})"
