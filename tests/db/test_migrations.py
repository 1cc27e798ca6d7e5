"""Migrations and rollback against a real PostgreSQL: the example app's SQL migrations and
runner (examples/hello), the README's `migrations:` config, the real CLI. Every check
reads the database itself (psql on the host) or the hosts' files, never the tool's output
alone.

The story every test starts from (fixture ``migrated``): deploy v1 (schema 1: notes with
an author name), insert two notes, deploy v2 (schema 2: authors move to their own table),
insert a third note.
"""

from __future__ import annotations

import json
import os
import pty
import select
import signal
import subprocess
import sys
import time

import pytest
import yaml
from shapes import RELEASES_SHAPE, conforms

from .conftest import Database, migrations_config

V1_ROWS = ["1|first|ann", "2|second|bob"]


def notes_v1(database) -> list[str]:
    return database.query("SELECT id, body, author FROM notes ORDER BY id")


def notes_v2(database) -> list[str]:
    return database.query(
        "SELECT n.id, n.body, a.name FROM notes n JOIN authors a ON a.id = n.author_id ORDER BY 1"
    )


@pytest.fixture
def migrated(app, database):
    app.deploy()
    database.query("INSERT INTO notes VALUES (1, 'first', 'ann'), (2, 'second', 'bob')")
    app.use_version(2)
    app.deploy()
    database.query("INSERT INTO notes (id, body, author_id) VALUES (3, 'third', 1)")
    assert database.version() == "2"
    return app


def last_line(proc) -> str:
    return (proc.stderr.strip() or proc.stdout.strip()).splitlines()[-1]


def state(app, database) -> tuple:
    """Everything a rollback could change: both hosts' trees and the database."""
    return (app.snapshot(0), app.snapshot(1), database.version(), database.tables(), notes_v2(database))


def test_a_deploy_migrates_once_on_the_db_host_and_records_schema_and_snapshot(migrated, database):
    app = migrated
    assert notes_v2(database) == ["1|first|ann", "2|second|bob", "3|third|ann"]
    events = {(e["release"], e["status"]): e for e in app.log(0) if e["event"] == "deploy"}
    first, second = events[(1, "active")], events[(2, "active")]
    assert (first["schema_before"], first["schema_after"]) == ("0", "1")
    assert (second["schema_before"], second["schema_after"]) == ("1", "2")
    snapshots = app.sh(0, f"cd {app.deploy_to}/.deployer && stat -c '%a %n' snapshots snapshots/*").split(
        "\n"
    )
    # 1.dump (before release 1's migrations) went with cleanup: no release older than 1 to roll back to
    assert snapshots[:2] == ["700 snapshots", "600 snapshots/2.dump"]
    assert second["snapshot"] == f"{app.deploy_to}/.deployer/snapshots/2.dump"
    assert second["snapshot_size"] == int(app.sh(0, f"stat -c %s {app.deploy_to}/.deployer/snapshots/2.dump"))
    assert not app.exists(1, ".deployer/snapshots")  # the web host (no PostgreSQL there) ran nothing
    shown = json.loads(app.invoke("releases", "--stage=test", "--json").stdout)
    assert conforms(shown, RELEASES_SHAPE)
    rows = shown["hosts"][app.hosts[0].name]["releases"]
    assert [(r["release"], r["schema_after"], bool(r["snapshot_bytes"])) for r in rows] == [
        (2, "2", True),
        (1, "1", False),
    ]
    check = app.invoke("check", "--stage=test")
    assert "database snapshots: 1 (" in check.stdout and "database schema 2" in check.stdout, check.stdout


def test_a_plain_rollback_across_migrations_refuses_and_changes_nothing(migrated, database):
    app = migrated
    before = state(app, database)
    for args in ((), ("--dry-run",)):
        proc = app.invoke("rollback", "--stage=test", *args)
        assert proc.returncode == 5, proc.stdout + proc.stderr
        line = last_line(proc)
        assert "rollback to release 1 crosses migrations" in line
        assert "release 2 moved the schema from 1 to 2" in line
        assert "--migrate-down" in line and "--with-data" in line and "--code-only" in line
        assert "Traceback" not in proc.stderr
    assert state(app, database) == before
    assert app.current(0) == app.current(1) == "releases/2"


def test_migrate_down_brings_schema_1_back_with_every_row(migrated, database):
    app = migrated
    plan = app.invoke("rollback", "--stage=test", "--migrate-down", "--dry-run")
    assert plan.returncode == 0, plan.stderr
    assert "crossing migrations (migrate-down)" in plan.stdout and "bin/migrate --to" in plan.stdout
    assert database.version() == "2" and app.current(0) == "releases/2"
    proc = app.invoke("rollback", "--stage=test", "--migrate-down")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert app.current(0) == app.current(1) == "releases/1"
    assert database.version() == "1"
    assert "authors" not in database.tables()
    assert notes_v1(database) == [*V1_ROWS, "3|third|ann"]  # nothing lost, the later row converted
    event = [e for e in app.log(0) if e["event"] == "rollback"][-1]
    assert (event["data"], event["schema"]) == ("migrate-down", "1")
    forward = app.invoke("rollback", "--stage=test", "--to=2", "--migrate-down")  # release 2's own migrations
    assert forward.returncode == 0, forward.stdout + forward.stderr
    assert app.current(0) == "releases/2" and database.version() == "2"
    assert notes_v2(database) == ["1|first|ann", "2|second|bob", "3|third|ann"]


def test_with_data_restores_the_data_from_before_v2_and_asks_for_yes(migrated, database):
    app = migrated
    before = state(app, database)
    refused = app.invoke("rollback", "--stage=test", "--with-data")
    assert refused.returncode == 2
    assert "is lost" in last_line(refused) and "pass --yes" in last_line(refused)
    assert state(app, database) == before
    proc = app.invoke("rollback", "--stage=test", "--with-data", "--yes")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert app.current(0) == app.current(1) == "releases/1"
    assert database.version() == "1"
    assert notes_v1(database) == V1_ROWS  # exactly the pre-v2 data: the third note is gone, as promised
    assert database.tables() == ["notes", "schema_migrations"]
    event = [e for e in app.log(0) if e["event"] == "rollback"][-1]
    assert (event["data"], event["schema"], event["restored_from"]) == ("with-data", "1", 2)
    safety = event["before_restore"]  # the restore itself can be undone: the data it replaced
    assert app.sh(0, f"stat -c %a {safety}").strip() == "600"
    assert "third" in app.sh(0, f"pg_restore -a -f - {safety}")


def test_code_only_from_the_config_switches_and_leaves_schema_2(migrated, database):
    app = migrated
    app.set(migrations={"rollback": "code-only"})  # the default off a terminal
    proc = app.invoke("rollback", "--stage=test")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert app.current(0) == app.current(1) == "releases/1"
    assert database.version() == "2"
    assert notes_v2(database) == ["1|first|ann", "2|second|bob", "3|third|ann"]
    event = [e for e in app.log(0) if e["event"] == "rollback"][-1]
    assert (event["data"], event["schema"]) == ("code-only", "2")


def test_a_failing_migration_switches_nothing_and_says_how_to_restore_the_snapshot(migrated, database):
    app = migrated
    bad = "ALTER TABLE notes ADD COLUMN stars INTEGER;\nSELECT no_such_function();\n"
    app.use_version(2, {"003_stars.up.sql": bad})
    proc = app.invoke("deploy", "--stage=test")
    assert proc.returncode == 1
    line = last_line(proc)
    assert "migrations.command `./bin/migrate` exited 1" in line and "no_such_function" in line
    assert "the schema is still at 2" in line and "release 3 removed, current unchanged" in line
    assert app.current(0) == app.current(1) == "releases/2"
    assert app.release_dirs(0) == app.release_dirs(1) == [1, 2]
    assert database.version() == "2"
    assert "stars" not in "".join(database.query("SELECT column_name FROM information_schema.columns"))
    hint = line.split("to restore it run there: ", 1)[1].split(" (release 3 removed")[0]
    assert f"{app.deploy_to}/.deployer/snapshots/3.dump" in hint
    database.query("DELETE FROM notes WHERE id = 3")
    app.hosts[0].sh(hint)  # exactly what the message says, on the host it names
    assert notes_v2(database) == ["1|first|ann", "2|second|bob", "3|third|ann"]


def test_a_rollback_between_releases_on_the_same_schema_needs_no_flag(migrated, database):
    app = migrated
    (app.root / "app" / "VERSION").write_text("2.1\n")
    app.deploy()
    assert not app.exists(0, ".deployer/snapshots/3.dump")  # schema unchanged: no snapshot kept
    proc = app.invoke("rollback", "--stage=test")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert app.current(0) == "releases/2" and database.version() == "2"


def test_cleanup_drops_snapshots_no_rollback_can_use_and_keeps_the_one_it_needs(migrated, database):
    app = migrated
    app.set(keep_releases=2)
    tags = {"003_tags.up.sql": "CREATE TABLE tags (name TEXT);", "003_tags.down.sql": "DROP TABLE tags;"}
    app.use_version(2, tags)
    app.deploy()  # release 3, schema 2 -> 3; cleanup keeps 3 and 2 (the rollback target)
    assert app.release_dirs(0) == [2, 3]
    assert app.sh(0, f"ls {app.deploy_to}/.deployer/snapshots").split() == ["3.dump"]
    database.query("INSERT INTO tags VALUES ('lost')")
    proc = app.invoke("rollback", "--stage=test", "--with-data", "--yes")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert database.version() == "2" and "tags" not in database.tables()
    assert notes_v2(database) == ["1|first|ann", "2|second|bob", "3|third|ann"]


def test_promote_runs_the_target_stages_migrations(migrated, database, db_host):
    app = migrated
    production = f"t_{database.name[2:]}_prod"
    db_host.sh(f"createdb {production}")
    try:
        stage = yaml.safe_load((app.root / "config" / "test.yml").read_text())
        stage["deploy_to"] += "-production"
        stage["vars"]["db"] = production
        stage["migrations"] = migrations_config(production)
        (app.root / "config" / "production.yml").write_text(yaml.safe_dump(stage))
        proc = app.invoke("promote", "--from=test", "--to=production")
        assert proc.returncode == 0, proc.stdout + proc.stderr
        target = Database(db_host, production)
        assert target.version() == "2" and target.tables() == ["authors", "notes", "schema_migrations"]
        event = [e for e in app.log(0) if e["event"] == "deploy"][-1]  # test stage's log: untouched
        assert event["release"] == 2
        logged = app.sh(0, f"cat {stage['deploy_to']}/.deployer/log.jsonl").splitlines()
        active = [json.loads(line) for line in logged if '"active"' in line][-1]
        assert (active["event"], active["schema_before"], active["schema_after"]) == ("promote", "0", "2")
    finally:
        db_host.sh(f"dropdb --if-exists {production}", check=False)


def on_a_terminal(
    app, args: list[str], answers: list[tuple[str, str]], timeout: float = 120
) -> tuple[int, str]:
    """Run the CLI with a pseudo-terminal as stdin and stdout, answering each prompt (the
    text it ends with) as a person would; returns the exit code and everything printed."""
    main, child = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "invoke", *args], cwd=app.root, stdin=child, stdout=child, stderr=child,
        close_fds=True, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )  # fmt: skip
    os.close(child)
    seen, pending = b"", list(answers)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([main], [], [], 1)
        if ready:
            try:
                chunk = os.read(main, 4096)
            except OSError:  # the child closed the terminal
                break
            if not chunk:
                break
            seen += chunk
            if pending and seen.rstrip().endswith(pending[0][0].encode()):
                os.write(main, pending.pop(0)[1].encode() + b"\n")
        elif proc.poll() is not None:
            break
    os.close(main)
    return proc.wait(timeout=30), seen.decode(errors="replace")


def test_on_a_terminal_it_asks_which_way_and_confirms_the_loss(migrated, database):
    app = migrated
    reason = ("(recorded in the release log; empty for no reason)", "bad deploy")
    choose = ("(default: refuse)", "r")
    code, seen = on_a_terminal(app, ["rollback", "--stage=test"], [reason, choose, ("[y/N]", "n")])
    assert code == 2 and "not confirmed; nothing was changed" in seen, seen
    assert app.current(0) == "releases/2" and database.version() == "2"
    code, seen = on_a_terminal(app, ["rollback", "--stage=test"], [reason, choose, ("[y/N]", "y")])
    assert code == 0, seen
    assert "is lost" in seen  # it said what is lost, and from when, before asking
    assert app.current(0) == app.current(1) == "releases/1"
    assert notes_v1(database) == V1_ROWS


def test_a_deploy_switched_back_after_its_migrations_says_the_data_stays_and_how_to_fix_it(app, database):
    app.deploy()
    database.query("INSERT INTO notes VALUES (1, 'first', 'ann'), (2, 'second', 'bob')")
    app.use_version(2)
    app.set(healthcheck={"command": "false", "retries": 1, "interval": 0})
    proc = app.invoke("deploy", "--stage=test")
    assert proc.returncode == 1
    line = last_line(proc)
    assert "the database stays at schema 2, release 1 ran on 1" in line, line
    hint = line.split("`invoke ", 1)[1].split("`", 1)[0]
    assert hint == "rollback --stage=test --to=1 --migrate-down"
    assert app.current(0) == app.current(1) == "releases/1" and database.version() == "2"
    fixed = app.invoke(*hint.split())  # the down migration only release 2 knows, run from release 2
    assert fixed.returncode == 0, fixed.stdout + fixed.stderr
    assert database.version() == "1" and notes_v1(database) == V1_ROWS
    assert app.current(0) == app.current(1) == "releases/1"


def test_a_down_or_restore_that_fails_or_misses_the_target_switches_nothing(migrated, database):
    app = migrated
    before = state(app, database)
    app.set(migrations={"down": "true"})  # "succeeds" without migrating
    missed = app.invoke("rollback", "--stage=test", "--migrate-down")
    assert missed.returncode == 1
    assert "after migrations.down the schema is at 2, not 1 (release 1's); nothing was switched" in last_line(
        missed
    )
    app.set(migrations={"down": "exit 3"})
    failed = app.invoke("rollback", "--stage=test", "--migrate-down")
    assert failed.returncode == 1
    assert "migrations.down `exit 3` exited 3" in last_line(failed) and "nothing was switched" in last_line(
        failed
    )
    snapshot = f"{app.deploy_to}/.deployer/snapshots/2.dump"
    app.sh(0, f"head -c 100 {snapshot} > /tmp/cut && cat /tmp/cut > {snapshot}")  # a corrupt snapshot
    broken = app.invoke("rollback", "--stage=test", "--with-data", "--yes")
    assert broken.returncode == 1
    assert "migrations.restore" in last_line(broken) and "nothing was switched" in last_line(broken)
    after = state(app, database)
    assert after[2:] == before[2:]  # schema, tables and every row as they were: nothing was dropped
    assert app.current(0) == app.current(1) == "releases/2"


def test_a_failure_after_the_migrations_keeps_the_release_that_knows_how_to_undo_them(migrated, database):
    app = migrated
    tags = {"003_tags.up.sql": "CREATE TABLE tags (name TEXT);", "003_tags.down.sql": "DROP TABLE tags;"}
    app.use_version(2, tags)
    app.set(hooks={"before_switch": [{"command": "exit 9"}]})
    proc = app.invoke("deploy", "--stage=test")
    assert proc.returncode == 1
    line = last_line(proc)
    assert "before_switch hook `exit 9` exited 9" in line
    assert "release 3 kept: only its code knows how to undo its migrations" in line
    assert "`invoke rollback --stage=test --to=2 --migrate-down`" in line
    assert app.current(0) == app.current(1) == "releases/2" and database.version() == "3"
    assert 3 in app.release_dirs(0)
    app.set(hooks={"before_switch": []})
    fixed = app.invoke("rollback", "--stage=test", "--to=2", "--migrate-down")
    assert fixed.returncode == 0, fixed.stdout + fixed.stderr
    assert database.version() == "2" and "tags" not in database.tables()


def test_a_subset_never_moves_the_database_under_the_other_hosts(migrated, database):
    app = migrated
    db_name, web_name = app.hosts[0].name, app.hosts[1].name
    before = state(app, database)
    deploy = app.invoke("deploy", "--stage=test", f"--hosts={web_name}")
    assert deploy.returncode == 2
    assert f"migrations run on {db_name} (the first host with role db)" in last_line(deploy)
    down = app.invoke("rollback", "--stage=test", f"--hosts={db_name}", "--migrate-down")
    assert down.returncode == 2 and "roll back every host, or use --code-only" in last_line(down)
    assert state(app, database) == before
    code = app.invoke("rollback", "--stage=test", f"--hosts={web_name}", "--code-only")
    assert code.returncode == 0, code.stdout + code.stderr
    assert (app.current(0), app.current(1)) == ("releases/2", "releases/1") and database.version() == "2"
