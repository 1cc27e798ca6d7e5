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
