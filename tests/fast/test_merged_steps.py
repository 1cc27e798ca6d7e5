"""Steps sent as one script (one round trip) fail exactly as the separate steps did.

On one host, rollback sends the switch, the log and the unlock as one script. A failed
switch logs nothing and is undone; a log that cannot be written leaves the switch in place
and says so in one line, as when the log was a step of its own; the lock is released on
every way out.
"""

from __future__ import annotations

import pytest
from story import label

from deployer.errors import DeployFailed
from deployer.recipes.deploy import deploy
from deployer.recipes.rollback import rollback


@pytest.fixture
def one_host(stage):
    """Releases 1 and 2 on web1 alone, 2 live; then record afresh."""
    stage.set(hosts=[{"host": "web1"}])
    deploy(stage.config(), stage.reporter(), opener=stage.fleet.opener)
    stage.change_app("hello again\n")
    deploy(stage.config(), stage.reporter(), opener=stage.fleet.opener)
    stage.fleet.forget()
    return stage


def sent(stage) -> list[str]:
    return [label(s) for s in stage.fleet.hosts["web1"].received]


def rollbacks(host) -> list[tuple]:
    return [(e["release"], e["status"]) for e in host.log() if e["event"] == "rollback"]


def test_one_host_rollback_is_two_scripts(one_host):
    rollback(one_host.config(), one_host.reporter(), opener=one_host.fleet.opener)
    host = one_host.fleet.hosts["web1"]
    assert sent(one_host) == [
        "lock + read state",
        "switch current -> releases/1 + log: rollback 1 active; rollback 2 rolled-back + unlock",
    ]
    assert host.current() == "releases/1"
    assert rollbacks(host) == [(1, "active"), (2, "rolled-back")]
    assert not host.locked()


def test_a_failed_switch_logs_nothing_and_releases_the_lock(one_host):
    host = one_host.fleet.hosts["web1"].fail("switch current -> releases/1")
    with pytest.raises(DeployFailed, match="^rollback: host web1: switch failed"):
        rollback(one_host.config(), one_host.reporter(), opener=one_host.fleet.opener)
    assert host.current() == "releases/2"
    assert rollbacks(host) == []
    assert not host.locked()
    assert sent(one_host)[-1] == "unlock"


def test_a_log_that_cannot_be_written_leaves_the_switch_and_says_so(one_host):
    host = one_host.fleet.hosts["web1"]
    log = host.folder / ".deployer" / "log.jsonl"
    kept = log.read_text()
    log.unlink()
    log.mkdir()  # appending to it fails, even as root
    (log / "kept").write_text(kept)
    with pytest.raises(DeployFailed, match="^host web1: write release log failed") as raised:
        rollback(one_host.config(), one_host.reporter(), opener=one_host.fleet.opener)
    assert "\n" not in raised.value.message
    assert host.current() == "releases/1"  # as when the log was a step of its own
    assert not host.locked()
    assert sent(one_host)[-1] == "unlock"


@pytest.fixture
def fresh_host(stage):
    """web1 alone, nothing deployed yet, no hooks."""
    return stage.set(hosts=[{"host": "web1"}], keep_releases=2)


def test_one_host_deploy_is_three_scripts_and_cleans_up(fresh_host):
    host = fresh_host.fleet.hosts["web1"]
    for number in range(1, 4):
        fresh_host.change_app(f"release {number}\n")
        fresh_host.fleet.forget()
        deploy(fresh_host.config(), fresh_host.reporter(), opener=fresh_host.fleet.opener)
    assert sent(fresh_host) == [
        "lock + read state",  # release 2's manifest is known here: nothing is read back
        "copy release 3 from release 2 (delta) + prepare release 3 + log: deploy 3 staged",
        "switch current -> releases/3 + log: deploy 3 active; cleanup removed 1 + remove releases 1 + unlock",
    ]
    assert host.current() == "releases/3"
    assert host.releases() == [2, 3]  # keep_releases 2: the rollback target stays
    assert (host.folder / "current" / "index.html").read_text() == "release 3\n"
    assert [e["status"] for e in host.log() if e.get("release") == 3] == ["staged", "active"]
    assert not host.locked()
    assert not (host.folder / ".deployer" / "lock").exists()


def test_one_host_deploy_whose_switch_fails_removes_the_release(fresh_host):
    deploy(fresh_host.config(), fresh_host.reporter(), opener=fresh_host.fleet.opener)
    fresh_host.change_app("second\n")
    host = fresh_host.fleet.hosts["web1"].fail("switch current -> releases/2")
    with pytest.raises(DeployFailed, match="^host web1: switch failed"):
        deploy(fresh_host.config(), fresh_host.reporter(), opener=fresh_host.fleet.opener)
    assert host.current() == "releases/1"
    assert host.releases() == [1]
    assert [e["status"] for e in host.log() if e.get("release") == 2] == ["staged", "failed"]
    assert not host.locked()


def test_one_host_deploy_whose_log_fails_at_the_switch_stays_switched(fresh_host):
    deploy(fresh_host.config(), fresh_host.reporter(), opener=fresh_host.fleet.opener)
    fresh_host.change_app("second\n")
    host = fresh_host.fleet.hosts["web1"]
    log = "/srv/demo/.deployer/log.jsonl"  # as the fake host's scripts name it
    # The log becomes unwritable between the upload and the switch (the after_upload hook).
    breaker = f"mv {log} {log}.kept && mkdir {log}"
    fresh_host.set(hooks={"after_upload": [{"command": breaker}]})
    with pytest.raises(DeployFailed, match="^host web1: write release log failed") as raised:
        deploy(fresh_host.config(), fresh_host.reporter(), opener=fresh_host.fleet.opener)
    assert "\n" not in raised.value.message
    assert host.current() == "releases/2"  # as when the log was a step of its own
    assert not host.locked()
