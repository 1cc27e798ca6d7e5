"""The pure decisions about the database (deployer.migrations): facts + log in, which way a
rollback goes, which snapshot it restores and what it says, as golden cases."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from deployer import migrations
from deployer.config import Host
from deployer.facts import parse_probe
from deployer.releaselog import ACTIVE, FAILED, Event, parse


def deployed(
    release: int, before: str, after: str, at: str, snapshot: int | None = 10, status=ACTIVE
) -> Event:
    extra = migrations.schema_fields(before, after, snapshot)
    return Event(
        id=f"d{release}",
        event="deploy",
        at=at,
        by="me",
        stage="prod",
        release=release,
        status=status,
        extra=extra,
    )


LOG = [
    deployed(1, "0", "1", "2026-01-01T00:00"),
    deployed(2, "1", "2", "2026-01-02T00:00"),
    deployed(3, "2", "2", "2026-01-03T00:00", snapshot=None),
    deployed(4, "2", "3", "2026-01-04T00:00"),
]


@pytest.mark.parametrize(
    ("target", "now", "snapshots", "expected"),
    [
        # same schema: a plain switch
        (3, "2", [4], None),
        # 4 -> 3 crosses release 4's migrations; its snapshot is from schema 2
        (3, "3", [4], ("2", ("4",), 4)),
        # 4 -> 1 crosses 2 and 4; the data from when schema 1 was last live is 2's snapshot
        (1, "3", [2, 4], ("1", ("2", "4"), 2)),
        # ... unless cleanup removed it: nothing to restore
        (1, "3", [4], ("1", ("2", "4"), None)),
    ],
)
def test_which_way_a_rollback_goes(target, now, snapshots, expected):
    found = migrations.crossing(migrations.recorded(LOG), target, now, snapshots)
    if expected is None:
        assert found is None
        return
    schema, crossed, snapshot = expected
    assert found.target_schema == schema
    assert tuple(str(m.release) for m in found.crossed) == crossed
    assert (found.snapshot.release if found.snapshot else None) == snapshot


def test_the_newest_departure_from_the_target_schema_is_restored():
    """Deploy 2 (1->2), migrate down to 1, deploy 3 (1->2 again): rolling back to 1 restores
    3's snapshot, the data from the last moment schema 1 was live, not 2's older one."""
    log = [
        deployed(1, "0", "1", "2026-01-01T00:00"),
        deployed(2, "1", "2", "2026-01-02T00:00"),
        deployed(3, "1", "2", "2026-01-05T00:00"),
    ]
    found = migrations.crossing(migrations.recorded(log), 1, "2", [2, 3])
    assert found.snapshot.release == 3
    assert found.loss() == (
        "every write to the database since 2026-01-05T00:00 (the snapshot taken just before release 3's "
        "migrations) is lost"
    )


def test_the_refusal_names_releases_versions_and_the_three_choices():
    found = migrations.crossing(migrations.recorded(LOG), 1, "3", [2, 4])
    assert found.refusal("production", can_down=True, can_restore=True) == (
        "rollback to release 1 crosses migrations: release 1 ran on schema 1, the database is at 3 "
        "(release 2 moved the schema from 1 to 2; release 4 moved the schema from 2 to 3); nothing was "
        "switched. Choose --migrate-down (run migrations.down to 1), --with-data (restore the snapshot "
        "from before, losing later writes) or --code-only (the target's code on schema 3), or set "
        "migrations.rollback in config/production.yml"
    )
    # only the ways that can work: no down command, no snapshot kept
    bare = migrations.crossing(migrations.recorded(LOG), 1, "3", [])
    assert "Choose --code-only (the target's code on schema 3), or set" in bare.refusal("p", False, True)


def test_a_release_from_before_migrations_were_recorded_takes_the_next_ones_before():
    records = migrations.recorded(LOG[1:])  # release 1 has no record
    assert migrations.schema_of(1, records) == "1"
    assert migrations.schema_of(9, records) is None  # nothing known: not a crossing
    assert migrations.crossing(records, 9, "3", []) is None


def test_a_failed_release_still_records_what_its_migrations_did():
    log = [*LOG, deployed(5, "3", "4", "2026-01-06T00:00", status=FAILED)]
    assert migrations.recorded(log)[5].after == "4"


@pytest.mark.parametrize(
    "bad",
    [{"schema_before": 1, "schema_after": "2"}, {"schema_before": "1\n2", "schema_after": "2"},
     {"schema_before": "x" * 101, "schema_after": "2"}, {"schema_before": "\x1b[2J", "schema_after": "2"},
     {"schema_before": "1"}],
)  # fmt: skip
def test_hostile_or_partial_schema_fields_in_a_log_are_not_records(bad):
    def log_with(fields: dict) -> list[Event]:
        base = {
            "id": "x",
            "event": "deploy",
            "at": "t",
            "by": "b",
            "stage": "s",
            "release": 2,
            "status": "active",
        }
        return parse(json.dumps({**base, **fields}))

    assert migrations.recorded(log_with({"schema_before": "1", "schema_after": "2"}))[2].after == "2"
    assert migrations.recorded(log_with(bad)) == {}


@pytest.mark.parametrize(
    ("stdout", "version"),
    [("2\n", "2"), ("applying...\n20240101_add_users\n\n", "20240101_add_users"), ("", None),
     ("  \n", None), ("\x1b]0;owned\x07\n", None), ("x" * 101, None)],
)  # fmt: skip
def test_a_version_is_one_printable_line(stdout, version):
    assert migrations.parse_version(stdout) == version


def test_snapshots_go_once_no_kept_release_is_older():
    assert migrations.snapshots_to_remove([1, 2, 4], [2, 3, 4]) == [1, 2]
    assert migrations.snapshots_to_remove([5], [3, 4]) == []  # a failed release 5's: 3 and 4 may need it
    assert migrations.snapshots_to_remove([2], []) == [2]


def test_the_probe_reports_only_snapshot_names_we_write():
    facts = parse_probe(
        "snapshot 3.dump 1200\nsnapshot ../3.dump 5\nsnapshot 0.dump 1\nsnapshot 4.dump big\n"
    )
    assert facts.snapshots == {3: 1200}


def test_migrations_run_on_the_first_db_host_else_the_first():
    web, db = Host("web1", roles=("web",)), Host("db1", roles=("db",))
    assert migrations.migration_host([web, db]).name == "db1"
    assert migrations.migration_host([web]).name == "web1"


def test_forward_to_a_newer_release_continues_from_where_the_database_is():
    """Rolled back to 2 with migrate-down (database at 2), then --to=4: release 4's line goes
    on from schema 2, so its own migrations bring the database up."""
    found = migrations.crossing(migrations.recorded(LOG), 4, "2", [4], current=2)
    assert found.forward and [m.release for m in found.crossed] == [4]
    assert "run the target's migrations.command to 3" in found.refusal("p", True, True)


def test_forward_by_number_but_back_by_schema_after_a_code_only_rollback():
    """Code-only rollback from 4 to 1 (database still at 3), then --to=2: release 2 is newer
    than current but ran on an older schema than the database: it is a way down, not up."""
    found = migrations.crossing(migrations.recorded(LOG), 2, "3", [4], current=1)
    assert not found.forward
    assert [m.release for m in found.crossed] == [4]
    assert found.snapshot.release == 4  # the data from when schema 2 was last live


def test_a_failed_release_switched_back_is_crossed_too():
    """Release 5's migrations ran (3 -> 4) and its health check failed: current is 4 again but
    the database is at 4; a rollback --to=4 crosses release 5's migrations."""
    log = [*LOG, deployed(5, "3", "4", "2026-01-06T00:00", status=FAILED)]
    found = migrations.crossing(migrations.recorded(log), 4, "4", [5], current=4)
    assert [m.release for m in found.crossed] == [5] and found.target_schema == "3"
    assert found.snapshot.release == 5


def test_an_unrecorded_release_in_between_makes_the_schema_unknown():
    """Releases 1 and 2 migrated through a before_switch hook (nothing recorded), then
    migrations: came with release 3 (2 -> 2). Release 2 ran on what 3 found; release 1 may
    not have (2's hook may have migrated), so its schema is unknown, never guessed."""
    records = migrations.recorded([deployed(3, "2", "2", "2026-01-03T00:00", snapshot=None)])
    assert migrations.schema_of(2, records, deployed={1, 2, 3}) == "2"
    assert migrations.schema_of(1, records, deployed={1, 2, 3}) is None


def test_a_log_time_that_is_not_a_time_is_never_shown_as_one():
    event = deployed(2, "1", "2", "\x1b[8mhidden")
    assert migrations.recorded([event])[2].at == "an unknown time"
    later = Event(**{**event.__dict__, "extra": {**event.extra, "snapshot_at": "2026-01-02T00:00:00+00:00"}})
    assert migrations.recorded([later])[2].at == "2026-01-02T00:00:00+00:00"


@given(
    kept=st.sets(st.integers(1, 12), min_size=1),
    snapshots=st.sets(st.integers(1, 12)),
    changes=st.lists(st.booleans(), min_size=12, max_size=12),
)
def test_cleanup_never_removes_the_snapshot_a_rollback_to_a_kept_release_would_restore(
    kept, snapshots, changes
):
    """Any history of 12 releases (each changing the schema or not), any kept releases and
    snapshots: after cleanup, every rollback from the newest to a kept release that --with-data
    could serve before still finds its snapshot."""
    schema, log = 0, []
    for n in range(1, 13):
        after = schema + 1 if changes[n - 1] else schema
        log.append(deployed(n, str(schema), str(after), f"2026-01-{n:02d}T00:00"))
        schema = after
    records = migrations.recorded(log)
    remaining = set(snapshots) - set(migrations.snapshots_to_remove(snapshots, kept))
    for target in kept:
        before = migrations.crossing(records, target, str(schema), snapshots, current=12)
        after = migrations.crossing(records, target, str(schema), remaining, current=12)
        if before is not None and before.snapshot is not None:
            assert after.snapshot == before.snapshot
