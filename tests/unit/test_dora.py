"""The four DORA keys on crafted histories whose answers are worked out by hand."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest

from deployer import dora, incidents, releaselog
from deployer.errors import ConfigError

T0 = datetime(2026, 11, 1, tzinfo=timezone.utc)
SHA = {n: (f"{n}" * 64)[:64] for n in range(1, 10)}


def at(hours: float) -> str:
    return (T0 + timedelta(hours=hours)).isoformat()


def ev(hours: float, event: str, release: int, status: str, by: str = "ann", **extra) -> releaselog.Event:
    data = {"id": f"{event}{release}{status}{hours}", "event": event, "at": at(hours), "by": by}
    data.update(stage="prod", release=release, status=status, **extra)
    event_ = releaselog.parse_line(json.dumps(data))
    assert event_ is not None, data
    return event_


def deploy(hours: float, release: int, revision: str | None = None) -> list[releaselog.Event]:
    rev = {"revision": revision} if revision else {}
    return [
        ev(hours - 0.01, "deploy", release, "staged", sha256=SHA[release], **rev),
        ev(hours, "deploy", release, "active", sha256=SHA[release], **rev),
    ]


def rollback(
    hours: float, target: int, left: int, reason: str = "", by: str = "ann"
) -> list[releaselog.Event]:
    note = {"reason": reason} if reason else {}
    return [
        ev(hours, "rollback", target, "active", by=by, **note),
        ev(hours, "rollback", left, "rolled-back", by=by, **note),
    ]


def history() -> list[releaselog.Event]:
    """Day 1: deploy 1 (h 1), 2 (h 5), rollback from 2 to 1 at h 7 ("errors").
    Day 2: deploy 3 (h 30), which fails its watch at h 30.5 (switched back by the tool).
    Day 3: deploy 4 (h 50): its canary fails the health check, live from h 50 to h 50.25.
    Day 3: deploy 5 (h 60): good. A failed upload (release 6) never went live."""
    return [
        *deploy(1, 1, "aaa1"),
        *deploy(5, 2, "aaa2"),
        *rollback(7, 1, 2, "errors"),
        *deploy(30, 3, "aaa3"),
        ev(30.5, "deploy", 3, "failed", cause="watch", reason="watch failed: 500s", detail="x"),
        ev(49.99, "deploy", 4, "staged", sha256=SHA[4]),
        ev(50.25, "deploy", 4, "failed", cause="healthcheck", reason="unhealthy", live_at=at(50)),
        *deploy(60, 5, "aaa5"),
        ev(61, "deploy", 6, "staged", sha256=SHA[6]),
        ev(61.1, "deploy", 6, "failed", detail="connection lost"),
    ]


def test_known_answers_over_three_days():
    commits = {1: [T0.timestamp()], 2: [(T0 + timedelta(hours=4)).timestamp()], 3: None, 5: []}
    report = dora.compute(history(), T0, T0 + timedelta(days=3), commits)
    assert report["deploys"] == 5  # 1, 2, 3, 4 (live on its canary), 5; not 6
    assert report["deploys_per_day"] == pytest.approx(5 / 3, abs=1e-4)
    assert report["change_failure_rate"] == pytest.approx(3 / 5)
    assert [(i["release"], i["seconds"], i["reason"], i["cause"]) for i in report["incidents"]] == [
        (2, 2 * 3600.0, "errors", "rollback"),
        (3, 0.5 * 3600, "watch failed: 500s", "watch"),
        (4, 0.25 * 3600, "unhealthy", "healthcheck"),
    ]
    assert report["time_to_restore_seconds"] == {"median": 1800.0, "samples": 3}
    # Release 1: committed at h 0, live at h 1; release 2: at h 4, live at h 5.
    assert report["lead_time_seconds"] == {"median": 3600.0, "p90": 3600.0, "samples": 2}
    assert report["bands"] == {
        "deploys_per_day": "elite",
        "lead_time_seconds": "elite",
        "change_failure_rate": "low",
        "time_to_restore_seconds": "elite",
    }
    assert report["per_day"][:3] == [
        {"day": "2026-11-01", "deploys": 2, "failures": 1},
        {"day": "2026-11-02", "deploys": 1, "failures": 1},
        {"day": "2026-11-03", "deploys": 2, "failures": 1},
    ]
    assert any("release(s) 4" in n and "no revision" in n for n in report["notes"])
    assert any("lacks the commits of release(s) 3" in n for n in report["notes"])


def test_an_empty_window_has_counts_of_zero_and_no_made_up_rates():
    report = dora.compute(history(), T0 + timedelta(days=10), T0 + timedelta(days=11), {})
    assert report["deploys"] == 0 and report["deploys_per_day"] == 0
    assert report["change_failure_rate"] is None
    assert report["lead_time_seconds"] == {"median": None, "p90": None, "samples": 0}
    assert report["time_to_restore_seconds"] == {"median": None, "samples": 0}
    assert report["incidents"] == []
    assert report["bands"] == dict.fromkeys(report["bands"])
    assert "no release went live in this window" in report["notes"]


def test_a_log_without_revisions_has_no_lead_time():
    events = [*deploy(1, 1), *deploy(2, 2)]
    inputs = dora.lead_time_inputs(events, dora.deployments(events))
    assert inputs == [(1, None, None), (2, None, None)]
    report = dora.compute(events, T0, T0 + timedelta(days=1), dict.fromkeys([1, 2]))
    assert report["lead_time_seconds"]["median"] is None
    assert report["change_failure_rate"] == 0 and report["bands"]["change_failure_rate"] == "elite"
    assert any("no revision logged for release(s) 1, 2" in n for n in report["notes"])


def test_lead_time_inputs_pair_each_revision_with_the_one_live_before():
    events = history()
    rows = dora.lead_time_inputs(events, dora.deployments(events))
    # After the rollback to 1, release 3 brought what lies between a1 and a3.
    assert rows == [
        (1, "aaa1", None),
        (2, "aaa2", "aaa1"),
        (3, "aaa3", "aaa1"),
        (4, None, "aaa1"),
        (5, "aaa5", "aaa1"),
    ]


def test_p90_is_nearest_rank_and_median_is_the_middle():
    values = [float(v) for v in range(1, 11)]
    assert dora.percentile(values, 0.9) == 9.0
    assert dora.median(values) == 5.5
    assert dora.percentile([], 0.9) is None


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("deploys_per_day", 1.0, "elite"),
        ("deploys_per_day", 0.5, "high"),
        ("deploys_per_day", 1 / 7, "high"),
        ("deploys_per_day", 0.1, "medium"),
        ("deploys_per_day", 0.01, "low"),
        ("lead_time_seconds", 3600, "elite"),
        ("lead_time_seconds", 2 * 86400, "high"),
        ("lead_time_seconds", 10 * 86400, "medium"),
        ("lead_time_seconds", 40 * 86400, "low"),
        ("change_failure_rate", 0.05, "elite"),
        ("change_failure_rate", 0.10, "high"),
        ("change_failure_rate", 0.15, "medium"),
        ("change_failure_rate", 0.2, "low"),
        ("time_to_restore_seconds", 60, "elite"),
        ("time_to_restore_seconds", 7200, "high"),
        ("time_to_restore_seconds", 3 * 86400, "medium"),
        ("time_to_restore_seconds", 8 * 86400, "low"),
        ("time_to_restore_seconds", None, None),
    ],
)
def test_bands_follow_the_2023_report(key, value, expected):
    assert dora.band(key, value) == expected


def test_since_takes_spans_and_dates_and_refuses_the_rest():
    assert dora.parse_since("2d", T0) == T0 - timedelta(days=2)
    assert dora.parse_since("12h", T0) == T0 - timedelta(hours=12)
    assert dora.parse_since("2026-10-01", T0) == datetime(2026, 10, 1, tzinfo=timezone.utc)
    with pytest.raises(ConfigError, match=r"--since: 'yesterday' is neither"):
        dora.parse_since("yesterday", T0)


def test_a_host_written_time_that_is_not_a_time_is_left_out():
    events = [*deploy(1, 1), ev(2, "deploy", 2, "active")]
    bad = releaselog.parse_line(
        json.dumps({"id": "x", "event": "deploy", "at": "soon", "release": 3, "status": "active"})
    )
    assert bad is not None
    report = dora.compute([*events, bad], T0, T0 + timedelta(days=1), {})
    assert report["deploys"] == 2


def test_refusal_names_the_release_when_and_why_and_ignores_other_failures():
    events = history()
    verdict = incidents.refusal(events, SHA[2])
    assert verdict is not None and verdict.release == 2 and verdict.cause == "rollback"
    line = incidents.describe_refusal("deploy", "prod", verdict)
    assert "was rolled back on prod (release 2, 2026-11-01 07:00:00 UTC, by ann): errors" in line
    assert line.endswith("pass --force to ship it anyway")
    assert incidents.refusal(events, SHA[4]).cause == "healthcheck"
    assert incidents.refusal(events, SHA[6]) is None  # a failed upload condemns nothing
    assert incidents.refusal(events, SHA[5]) is None


def test_range_times_walks_a_merge_like_git_log_old_dot_dot_new():
    from deployer.git import range_times

    # a(1) - b(2) - d(4) - m(5, merge of d and c);  a - c(3) on a branch;  old = b, new = m
    graph = {
        "a": (1.0, ()),
        "b": (2.0, ("a",)),
        "c": (3.0, ("a",)),
        "d": (4.0, ("b",)),
        "m": (5.0, ("d", "c")),
    }
    assert sorted(range_times(graph, "b", "m")) == [3.0, 4.0, 5.0]  # c, d, m; not a or b
    assert range_times(graph, "m", "m") == []  # a redeploy brings nothing new
    assert range_times(graph, None, "d") == [4.0]  # nothing live before: the commit alone
    assert sorted(range_times(graph, "c", "m")) == [2.0, 4.0, 5.0]
