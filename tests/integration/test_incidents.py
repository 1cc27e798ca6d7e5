"""Incidents on real hosts: why a rollback happened is in the log, history and releases
show it, and an artifact that was rolled back stays out of deploy and promote unless forced."""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys

import pytest

from integration.test_promote import listing, stages  # noqa: F401  (a fixture)

pytestmark = pytest.mark.ssh


def ok(result):
    assert result.returncode == 0, result.stdout + result.stderr
    return result


def new_artifact(p, text: str) -> None:
    (p.root / "app" / "version.txt").write_text(text + "\n")


def test_rollback_reason_is_logged_on_every_host_and_shown(project):
    p = project
    p.deploy()
    new_artifact(p, "2")
    p.deploy()
    ok(p.invoke("rollback", "--stage=test", "--reason=errors after deploy \x1b[31m"))
    for index in range(3):
        rows = [e for e in p.log(index) if e["event"] == "rollback"]
        assert {(e["release"], e["status"], e.get("reason")) for e in rows} == {
            (1, "active", "errors after deploy [31m"),  # one line, no control character
            (2, "rolled-back", "errors after deploy [31m"),
        }
    history = ok(p.invoke("history", "--stage=test"))
    assert "errors after deploy" in history.stdout and "reason" in history.stdout.splitlines()[0]
    events = json.loads(ok(p.invoke("history", "--stage=test", "--json")).stdout)["events"]
    assert [e.get("reason") for e in events if e["event"] == "rollback"] == ["errors after deploy [31m"] * 2
    releases = json.loads(ok(p.invoke("releases", "--stage=test", "--json")).stdout)
    rows = {r["release"]: r for r in releases["hosts"][p.config().hosts[0].name]["releases"]}
    assert rows[2]["reason"] == "errors after deploy [31m" and rows[1]["reason"] is None
    assert "errors after deploy" in ok(p.invoke("releases", "--stage=test")).stdout


def test_rollback_without_a_reason_asks_on_a_terminal_and_records_none_elsewhere(project):
    p = project
    p.deploy()
    new_artifact(p, "2")
    p.deploy()
    new_artifact(p, "3")
    p.deploy()
    ok(p.invoke("rollback", "--stage=test"))  # no terminal: no question, no reason
    assert all("reason" not in e for e in p.log(0) if e["event"] == "rollback")
    primary, secondary = pty.openpty()
    out = p.root.parent / "rollback.out"
    with out.open("w") as handle:
        proc = subprocess.Popen(
            [sys.executable, "-m", "invoke", "rollback", "--stage=test"],
            cwd=p.root,
            stdin=secondary,
            stdout=handle,
            stderr=subprocess.STDOUT,
        )
        os.close(secondary)
        os.write(primary, b"disk full on web2\n")
        assert proc.wait(timeout=120) == 0, out.read_text()
    os.close(primary)
    assert "why roll back?" in out.read_text()
    reasons = [e.get("reason") for e in p.log(1) if e["event"] == "rollback"]
    assert reasons[-2:] == ["disk full on web2"] * 2
    assert p.current(1) == "releases/1"


def test_deploy_refuses_a_rolled_back_artifact_before_any_host_changes(project):
    p = project
    p.deploy()
    new_artifact(p, "2")
    p.deploy()
    ok(p.invoke("rollback", "--stage=test", "--reason=500s on checkout"))
    before = [p.snapshot(i) for i in range(3)]
    refused = p.invoke("deploy", "--stage=test")
    assert refused.returncode == 2, refused.stdout + refused.stderr
    line = refused.stderr.strip()
    assert line.count("\n") == 0 and "Traceback" not in refused.stderr
    assert "was rolled back on test (release 2, " in line and ": 500s on checkout; pass --force" in line
    assert [p.snapshot(i) for i in range(3)] == before
    ok(p.invoke("deploy", "--stage=test", "--force"))
    assert [p.current(i) for i in range(3)] == ["releases/3"] * 3


def test_promote_refuses_an_artifact_rolled_back_on_the_target(stages):  # noqa: F811
    p = stages
    ok(p.invoke("deploy", "--stage=staging"))
    ok(p.invoke("promote", "--from=staging", "--to=production"))
    new_artifact(p, "2")
    ok(p.invoke("deploy", "--stage=staging"))
    ok(p.invoke("promote", "--from=staging", "--to=production"))
    ok(p.invoke("rollback", "--stage=production", "--reason=bad migration"))
    before = listing(p, 2, "production")
    refused = p.invoke("promote", "--from=staging", "--to=production")
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert (
        "promote: artifact sha256" in refused.stderr
        and "rolled back on production (release 2" in refused.stderr
    )
    assert "bad migration" in refused.stderr
    assert listing(p, 2, "production") == before
    ok(p.invoke("promote", "--from=staging", "--to=production", "--force"))
    assert p.sh(2, f"readlink {p.deploy_to}-production/current").strip() == "releases/3"


def test_automatic_rollbacks_record_their_cause_and_reason(project):
    p = project
    d = p.deploy_to
    p.set(healthcheck={"command": f"test -e {d}/healthy || (echo 'no healthy file'; exit 1)", "retries": 1})
    for index in range(3):
        p.sh(index, f"mkdir -p {d} && touch {d}/healthy")
    p.deploy()
    p.sh(0, f"rm {d}/healthy")
    new_artifact(p, "2")
    failed = p.invoke("deploy", "--stage=test")
    assert failed.returncode == 1, failed.stdout + failed.stderr
    event = [e for e in p.log(1) if e["release"] == 2 and e["status"] == "failed"][-1]
    assert event["cause"] == "healthcheck" and "health check failed" in event["reason"]
    assert event["live_at"] <= event["at"]
    releases = json.loads(ok(p.invoke("releases", "--stage=test", "--json")).stdout)
    row = next(r for r in releases["hosts"][p.config().hosts[1].name]["releases"] if r["release"] == 2)
    assert row["status"] == "failed" and "health check failed" in row["reason"]
    refused = p.invoke("deploy", "--stage=test")
    assert refused.returncode == 2 and "failed its health check on test (release 2" in refused.stderr
    # A failed after_switch hook is an incident too, but it does not condemn the artifact.
    p.sh(0, f"touch {d}/healthy")
    new_artifact(p, "3")
    p.set(hooks={"after_switch": [{"command": "echo restart failed; exit 4"}]})
    assert p.invoke("deploy", "--stage=test").returncode == 1
    event = [e for e in p.log(0) if e["release"] == 3 and e["status"] == "failed"][-1]
    assert event["cause"] == "after_switch" and "restart failed" in event["reason"]
    p.set(hooks={"after_switch": []})
    ok(p.invoke("deploy", "--stage=test"))
    assert [p.current(i) for i in range(3)] == ["releases/4"] * 3
