"""``invoke metrics`` on a crafted history with known answers, read from real hosts' logs
(each host holds part of it, some events on several hosts, one host adds junk) and the
project's own git repository (commits at known times)."""

from __future__ import annotations

import base64
import json
import subprocess
from datetime import datetime, timedelta, timezone

import pytest
from shapes import METRICS_SHAPE, conforms

T0 = datetime(2026, 11, 1, tzinfo=timezone.utc)
HOUR = 3600.0
HOSTILE = "<img src=x onerror=alert(1)>unhealthy"


def at(hours: float) -> str:
    return (T0 + timedelta(hours=hours)).isoformat()


def commit(root, hours: float, message: str) -> str:
    """A commit made at a known time (author and committer)."""
    when = at(hours)
    env = {"GIT_AUTHOR_DATE": when, "GIT_COMMITTER_DATE": when, "PATH": "/usr/bin:/bin"}
    ident = ["-c", "user.name=Ada", "-c", "user.email=ada@example.com"]
    subprocess.run(
        ["git", *ident, "commit", "-q", "--allow-empty", "-m", message], cwd=root, env=env, check=True
    )
    return subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True
    ).stdout.strip()


def crafted(root) -> list[dict]:
    """The history of tests/unit/test_dora.py, with real commits:
    c1 (h 0) -> release 1 live at h 1; c2 (h 2), c3 (h 4) -> release 2 at h 5, rolled back to 1 at h 7;
    release 3 (a commit this repository lacks) at h 30, fails its watch at h 30.5; release 4 (no
    revision) live on its canary at h 50, fails its health check at h 50.25; c5 (h 40) -> release 5
    at h 60. A failed upload (release 6) never went live."""
    subprocess.run(["git", "init", "-q"], cwd=root, check=True)
    c1, _, c3, c5 = (
        commit(root, 0, "one"),
        commit(root, 2, "two"),
        commit(root, 4, "three"),
        commit(root, 40, "five"),
    )
    sha = {n: (str(n) * 64)[:64] for n in range(1, 7)}

    def e(hours, event, release, status, **extra):
        return {"id": f"{event}-{release}-{hours}", "event": event, "at": at(hours), "by": "ann", "stage": "test",
                "release": release, "status": status, **extra}  # fmt: skip

    def live(hours, release, revision=None):
        rev = {"revision": revision} if revision else {}
        return [e(hours - 0.01, "deploy", release, "staged", sha256=sha[release], **rev),
                e(hours, "deploy", release, "active", sha256=sha[release], **rev)]  # fmt: skip

    return [
        *live(1, 1, c1), *live(5, 2, c3),
        e(7, "rollback", 1, "active", reason="errors"), e(7, "rollback", 2, "rolled-back", reason="errors"),
        *live(30, 3, "deadbeef" * 5),
        e(30.5, "deploy", 3, "failed", cause="watch", reason="watch failed: 500s"),
        e(49.99, "deploy", 4, "staged", sha256=sha[4]),
        e(50.25, "deploy", 4, "failed", cause="healthcheck", reason=HOSTILE, live_at=at(50)),
        *live(60, 5, c5),
        e(61, "deploy", 6, "staged", sha256=sha[6]), e(61.1, "deploy", 6, "failed", detail="connection lost"),
    ]  # fmt: skip


def write_logs(p, events: list[dict]) -> None:
    """Host 1 has everything, host 2 only the deploys, host 3 everything plus junk lines."""
    deploys = [ev for ev in events if ev["event"] == "deploy"]
    junk = ['{"event": "deploy", "release": "7"}', "not json", '{"event": "deploy", "at": 5}']
    for index, lines in enumerate([events, deploys, events]):
        text = "\n".join([json.dumps(ev) for ev in lines] + (junk if index == 2 else [])) + "\n"
        payload = base64.b64encode(text.encode()).decode()
        d = p.absolute_deploy_to
        p.sh(
            index if p.hosts else 0,
            f"mkdir -p {d}/.deployer && echo {payload} | base64 -d > {d}/.deployer/log.jsonl",
        )
        if not p.hosts:
            break


def metrics(p, *args: str) -> dict:
    result = p.invoke("metrics", "--stage=test", "--json", *args)
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(result.stdout)
    assert conforms(report, METRICS_SHAPE), report  # the shape docs/json.md documents
    return report


EXPECTED_KEYS = {
    "deploys": 5,
    "deploys_per_day": round(5 / 3, 4),
    # samples: release 1: c1 (1 h); 2: c2, c3 (3 h, 1 h); 5, after 1 was live again: c2, c3, c5 (58, 56, 20 h)
    "lead_time_seconds": {"median": 11.5 * HOUR, "p90": 58 * HOUR, "samples": 6},
    "change_failure_rate": 0.6,
    "time_to_restore_seconds": {"median": 0.5 * HOUR, "samples": 3},
    "bands": {
        "deploys_per_day": "elite",
        "lead_time_seconds": "elite",
        "change_failure_rate": "low",
        "time_to_restore_seconds": "elite",
    },
}


@pytest.mark.ssh
def test_every_key_on_a_crafted_history_read_from_three_hosts(project):
    p = project
    write_logs(p, crafted(p.root))
    report = metrics(p, "--since=2026-11-01", "--until=2026-11-04", "--html=dash.html")
    assert {k: report[k] for k in EXPECTED_KEYS} == EXPECTED_KEYS
    assert report["stage"] == "test" and report["since"].startswith("2026-11-01T00:00:00")
    assert [(i["release"], i["seconds"], i["reason"]) for i in report["incidents"]] == [
        (2, 2 * HOUR, "errors"),
        (3, 0.5 * HOUR, "watch failed: 500s"),
        (4, 0.25 * HOUR, HOSTILE),
    ]
    assert report["incidents"][0]["went_live"] == at(5) and report["incidents"][0]["restored_at"] == at(7)
    assert any("lacks the commits of release(s) 3" in n for n in report["notes"])
    assert any("no revision logged for release(s) 4" in n for n in report["notes"])
    page = (p.root / "dash.html").read_text()
    assert page.count('class="incident"') == 3 and HOSTILE not in page and "&lt;img src=x" in page
    text = p.invoke("metrics", "--stage=test", "--since=2026-11-01", "--until=2026-11-04")
    assert "change failure rate" in text.stdout and "60.0% (3 of 5)" in text.stdout and "elite" in text.stdout


@pytest.mark.ssh
def test_an_empty_window_is_reported_plainly(project):
    p = project
    write_logs(p, crafted(p.root))
    report = metrics(p, "--since=2026-12-01", "--until=2026-12-02")
    assert report["deploys"] == 0 and report["deploys_per_day"] == 0
    assert report["change_failure_rate"] is None and report["incidents"] == []
    assert (
        report["lead_time_seconds"]["median"] is None and report["time_to_restore_seconds"]["median"] is None
    )
    assert set(report["bands"].values()) == {None}
    assert "no release went live in this window" in report["notes"]
    text = p.invoke("metrics", "--stage=test", "--since=2026-12-01", "--until=2026-12-02").stdout
    assert "note: no release went live in this window" in text


def test_a_bad_since_is_one_line_and_contacts_no_host(local_project):
    p = local_project
    result = p.invoke("metrics", "--stage=test", "--since=yesterday")
    assert result.returncode == 2 and result.stderr.strip().startswith(
        "error: --since: 'yesterday' is neither"
    )
    assert not (p.root / p.deploy_to).exists()
