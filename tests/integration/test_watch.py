"""The watch window on real hosts: a passing watch keeps the release; a check that starts
failing half-way switches every host back and records why; Ctrl-C ends the watch only.

The check counts its runs in a file on each host and fails once the test creates
``bad`` on a host: the test decides when, from what it reads on the hosts (no sleeps).
"""

from __future__ import annotations

import json
import signal

import pytest
from faults.support import CliRun

pytestmark = pytest.mark.ssh


def watched(p, duration: float) -> None:
    d = p.deploy_to
    check = f"echo run >> {d}/watch.count; if [ -e {d}/bad ]; then echo 'error rate 7%'; exit 1; fi"
    p.set(
        rollout={"watch": {"command": check, "duration": duration, "interval": 0.2}},
        hooks={"after_rollback": [{"command": "echo $DEPLOYER_RELEASE >> $DEPLOYER_DEPLOY_TO/rolled_back"}]},
    )


def runs(p, index: int) -> int:
    return len(p.sh(index, f"cat {p.deploy_to}/watch.count 2>/dev/null || true").split())


def watching(p, at_least: int):
    return lambda: all(runs(p, i) >= at_least for i in range(3))


def test_a_passing_watch_checks_every_host_and_keeps_the_release(project):
    p = project
    p.deploy()
    watched(p, duration=1)
    (p.root / "app" / "v2.txt").write_text("2\n")
    p.deploy()
    assert all(runs(p, i) >= 2 for i in range(3))  # checked more than once, on every host
    assert [p.current(i) for i in range(3)] == ["releases/2"] * 3
    assert not any(e["status"] == "failed" for e in p.log(0))
    out = "".join(p.output)
    assert "watching release 2 for 1s" in out and "s left" in out and "watch passed" in out


def test_a_watch_failing_half_way_switches_every_host_back_and_records_why(project):
    p = project
    p.deploy()
    watched(p, duration=600)
    (p.root / "app" / "v2.txt").write_text("2\n")
    run = CliRun(p, "deploy", "--stage=test")
    try:
        p.wait_until(lambda: watching(p, 2)() or not run.running(), "two good watch rounds on every host")
        assert run.running(), run.finish().stderr
        assert [p.current(i) for i in range(3)] == ["releases/2"] * 3  # live while watched
        p.sh(1, f"touch {p.deploy_to}/bad")
        result = run.finish(timeout=120)
    finally:
        run.kill()
    assert result.code == 1, result.stdout + result.stderr
    error = result.stderr.strip()
    assert error.count("\n") == 0 and "watch failed for release 2" in error and "error rate 7%" in error
    assert [p.current(i) for i in range(3)] == ["releases/1"] * 3
    assert all(p.read(i, "rolled_back").split() == ["1"] for i in range(3))
    assert not any(p.lock_held(i) for i in range(3))
    for index in range(3):
        failed = [e for e in p.log(index) if e["release"] == 2 and e["status"] == "failed"]
        assert len(failed) == 1 and failed[0]["cause"] == "watch" and "error rate 7%" in failed[0]["reason"]
    report = json.loads(p.invoke("metrics", "--stage=test", "--json").stdout)
    assert [(i["release"], i["cause"]) for i in report["incidents"]] == [(2, "watch")]
    assert report["change_failure_rate"] == 0.5
    refused = p.invoke("deploy", "--stage=test")  # the same artifact stays out
    assert refused.returncode == 2 and "failed its watch on test (release 2" in refused.stderr


def test_ctrl_c_during_the_watch_ends_it_and_leaves_the_release_live(project):
    p = project
    p.deploy()
    watched(p, duration=600)
    (p.root / "app" / "v2.txt").write_text("2\n")
    run = CliRun(p, "deploy", "--stage=test")
    try:
        p.wait_until(lambda: watching(p, 1)() or not run.running(), "a watch round on every host")
        assert run.running(), run.finish().stderr
        run.send(signal.SIGINT)
        result = run.finish(timeout=120)
    finally:
        run.kill()
    assert result.code == 0, result.stdout + result.stderr
    assert "watch ended by Ctrl-C" in result.stdout and "release 2 stays live" in result.stdout
    assert [p.current(i) for i in range(3)] == ["releases/2"] * 3
    assert not any(p.lock_held(i) for i in range(3))
    assert not any(e["status"] == "failed" for e in p.log(0))
    assert not p.exists(0, "rolled_back")
