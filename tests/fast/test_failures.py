"""How per-host failures become one error: its kind (and so the exit code) is the first
failed host's own, and every other failed host is named. Also the lock's refusals."""

from __future__ import annotations

import json

import pytest

from deployer.errors import DeployerError, HostUnreachable, LockHeld
from deployer.recipes.admin import destroy
from deployer.recipes.deploy import deploy
from deployer.recipes.schedule import schedule_cleanup


def review_app(stage):
    """A template stage (review apps) with instance pr-1 deployed everywhere."""
    stage.set(deploy_to="/srv/demo-{instance}")
    from deployer.config import load

    config = load(stage.root, "test", "pr-1")
    deploy(config, stage.reporter(), opener=stage.fleet.opener)
    stage.fleet.forget()
    return config


def test_destroy_with_unreachable_hosts_exits_4_and_names_each(stage):
    config = review_app(stage)
    stage.fleet["web2"].fail("remove deploy_to", "drop")
    stage.fleet["web3"].fail("remove deploy_to", "drop")
    with pytest.raises(HostUnreachable) as raised:
        destroy(config, stage.reporter(), opener=stage.fleet.opener)
    assert raised.value.exit_code == 4
    assert raised.value.message.startswith("host web2: connection lost")
    assert "(and 1 more host(s): web3)" in raised.value.message
    # web1 really was destroyed; the hosts that dropped out still hold their instance.
    assert not (stage.fleet["web1"].root / "srv" / "demo-pr-1").exists()
    for name in ("web2", "web3"):
        assert (stage.fleet[name].root / "srv" / "demo-pr-1" / "releases" / "1").is_dir(), name


def test_schedule_with_unreachable_hosts_exits_4_and_names_each(stage):
    stage.set(schedule={"via": "auto"})
    stage.fleet["web1"].fail("detect systemd or cron", "drop")
    stage.fleet["web2"].fail("detect systemd or cron", "drop")
    stage.fleet["web3"].fail("detect systemd or cron")  # a plain failure comes after
    with pytest.raises(HostUnreachable) as raised:
        schedule_cleanup(stage.config(), stage.reporter(), opener=stage.fleet.opener)
    assert raised.value.exit_code == 4
    assert "host web1: connection lost" in raised.value.message
    assert "(and 2 more host(s): web2, web3)" in raised.value.message
    printed = "".join(stage.printed)
    for name in ("web1", "web2", "web3"):
        assert f"{name:<22} schedule         FAILED:" in printed, printed


def test_a_lock_held_on_one_host_changes_nothing_and_gives_ours_back(stage):
    holder = {"holder": "alice@desk", "pid": 42, "since": 0, "command": "deploy", "stage": "test"}
    lock = stage.fleet["web1"].folder / ".deployer" / "lock"
    lock.mkdir(parents=True)
    (lock / "info").write_text(json.dumps(holder))
    with pytest.raises(LockHeld) as raised:
        deploy(stage.config(), stage.reporter(), opener=stage.fleet.opener)
    assert raised.value.exit_code == 3 and "held by alice@desk (pid 42, deploy)" in raised.value.message
    # The first host decides: the others were never asked for the lock.
    assert stage.fleet["web2"].received == [] and stage.fleet["web3"].received == []
    assert json.loads((lock / "info").read_text())["holder"] == "alice@desk"


def test_an_unreachable_host_at_connect_stops_everything_before_a_byte(stage):
    stage.fleet.unreachable = {"web2", "web3"}
    with pytest.raises(DeployerError) as raised:
        deploy(stage.config(), stage.reporter(), opener=stage.fleet.opener)
    assert raised.value.exit_code == 4
    assert "host web2: cannot connect" in raised.value.message and "web3" in raised.value.message
    assert stage.fleet["web1"].received == []
