"""after_healthcheck (traffic moves only after a batch is healthy) and maintenance mode,
on three fake hosts, without Docker. The same behaviours through nginx and gunicorn in
real containers are in tests/stack/."""

from __future__ import annotations

import json

from deployer.errors import DeployerError
from deployer.recipes.deploy import deploy
from deployer.recipes.maintenance import maintenance
from deployer.recipes.status import check, history, releases


def mark(phase: str) -> dict:
    """A hook that appends its phase and release to a file on its host, in order."""
    return {"command": f'echo "{phase} $DEPLOYER_RELEASE" >> "$DEPLOYER_DEPLOY_TO/order"'}


def order(stage, host: str) -> list[str]:
    path = stage.fleet[host].folder / "order"
    return path.read_text().splitlines() if path.exists() else []


def traffic_stage(stage):
    return stage.set(
        hooks={p: [mark(p)] for p in ("after_switch", "after_healthcheck", "after_rollback")},
        healthcheck={"command": 'echo "healthcheck" >> ../../order', "retries": 1, "interval": 0},
        rollout={"canary": 1, "batch_size": 2},
    )


def test_after_healthcheck_runs_per_batch_after_its_health_check(stage):
    traffic_stage(stage)
    everywhere = stage.root / "all-hosts"  # one file every fake host appends to: the global order
    hooks = stage.settings["hooks"]
    hooks["after_switch"].append({"command": f'echo "switch $PWD" >> {everywhere}'})
    hooks["after_healthcheck"].append({"command": f'echo "traffic $PWD" >> {everywhere}'})
    stage.set(hooks=hooks)
    deploy(stage.config(), stage.reporter(), opener=stage.fleet.opener)
    for host in ("web1", "web2", "web3"):
        assert order(stage, host) == ["after_switch 1", "healthcheck", "after_healthcheck 1"], host
    lines = everywhere.read_text().splitlines()
    steps = [(line.split()[0], line.split("/hosts/")[1].split("/")[0]) for line in lines]  # (what, host)
    # The canary moved its traffic before the next batch was even switched.
    assert steps[:2] == [("switch", "web1"), ("traffic", "web1")], steps
    assert sorted(steps[2:4]) == [("switch", "web2"), ("switch", "web3")], steps


def test_unhealthy_batch_never_runs_after_healthcheck_and_is_switched_back(stage):
    traffic_stage(stage)
    deploy(stage.config(), stage.reporter(), opener=stage.fleet.opener)
    stage.change_app("v2\n")
    for host in ("web1", "web2", "web3"):
        (stage.fleet[host].folder / "order").unlink()
    stage.fleet["web3"].fail("health check")
    try:
        deploy(stage.config(), stage.reporter(), opener=stage.fleet.opener)
    except DeployerError as exc:
        assert exc.exit_code == 1
    else:
        raise AssertionError("the deploy should have failed")
    # The canary (healthy) moved traffic; web3 (unhealthy) never did; both went back.
    assert order(stage, "web1") == [
        "after_switch 2",
        "healthcheck",
        "after_healthcheck 2",
        "after_rollback 1",
    ]
    assert "after_healthcheck 2" not in order(stage, "web3")
    assert order(stage, "web3")[-1] == "after_rollback 1"
    assert all(h.current() == "releases/1" for h in stage.fleet.hosts.values())


def test_a_failing_after_healthcheck_switches_every_host_back(stage):
    stage.set(hooks={"after_healthcheck": [{"command": "exit 3"}]})
    deploy_error = None
    try:
        deploy(stage.config(), stage.reporter(), opener=stage.fleet.opener)
    except DeployerError as exc:
        deploy_error = exc
    assert deploy_error is not None and "after_healthcheck hook `exit 3` exited 3" in deploy_error.message
    assert all(h.current() is None for h in stage.fleet.hosts.values())  # a first deploy: removed


def test_maintenance_on_writes_page_and_record_and_off_removes_them(stage):
    result = maintenance(stage.config(), stage.reporter(), True, "db <upgrade>", opener=stage.fleet.opener)
    assert result["maintenance"] == "on" and result["hosts"]["web1"] == {"was_on": False}
    for fake in stage.fleet.hosts.values():
        page = (fake.folder / "shared" / "maintenance.html").read_text()
        assert "db &lt;upgrade&gt;" in page  # autoescaped
        record = json.loads((fake.folder / ".deployer" / "maintenance.json").read_text())
        assert record["reason"] == "db <upgrade>" and record["since"] == result["since"]
        assert not fake.locked() and not fake.received[-1].count("lock")
        assert [e["status"] for e in fake.log() if e["event"] == "maintenance"] == ["on"]
        assert not list((fake.folder / "shared").glob(".maintenance.html.tmp-*"))
    again = maintenance(stage.config(), stage.reporter(), False, opener=stage.fleet.opener)
    assert again["hosts"]["web2"] == {"was_on": True}
    for fake in stage.fleet.hosts.values():
        assert not (fake.folder / "shared" / "maintenance.html").exists()
        assert not (fake.folder / ".deployer" / "maintenance.json").exists()
        assert [e["status"] for e in fake.log() if e["event"] == "maintenance"] == ["on", "off"]


def test_maintenance_is_shown_by_releases_check_and_history(stage):
    maintenance(stage.config(), stage.reporter(), True, "disk swap", opener=stage.fleet.opener)
    data = releases(stage.config(), stage.reporter(), opener=stage.fleet.opener)
    assert data["hosts"]["web1"]["maintenance"]["reason"] == "disk swap"
    assert any("maintenance on since" in line and "(disk swap)" in line for line in stage.printed)
    reports = check(stage.config(), stage.reporter(), opener=stage.fleet.opener)
    assert any(n.startswith("maintenance on since") for n in reports["web2"].notes)
    events = history(stage.config(), stage.reporter(), opener=stage.fleet.opener)["events"]
    assert [(e["event"], e["status"], e.get("detail")) for e in events] == [
        ("maintenance", "on", "disk swap")
    ]


def test_a_hostile_record_is_shown_harmless(stage):
    """The record is the host's data: escapes and non-strings never reach the terminal."""
    maintenance(stage.config(), stage.reporter(), True, "x", opener=stage.fleet.opener)
    record = stage.fleet["web1"].folder / ".deployer" / "maintenance.json"
    record.write_text(
        json.dumps({"since": "\x1b[2Jnow", "reason": "ok\x1b]0;pwned\x07 \u202eevil", "by": 42})
    )
    data = releases(stage.config(), stage.reporter(), opener=stage.fleet.opener)
    shown = data["hosts"]["web1"]["maintenance"]
    assert shown == {"on": True, "since": None, "reason": "ok ]0;pwned evil", "by": None}
    assert not any("\x1b" in line or "\u202e" in line for line in stage.printed)


def test_maintenance_dry_run_changes_nothing(stage):
    result = maintenance(stage.config(), stage.reporter(), True, "x", dry_run=True, opener=stage.fleet.opener)
    assert result["dry_run"] is True
    for fake in stage.fleet.hosts.values():
        assert not (fake.folder / "shared" / "maintenance.html").exists()
        assert not fake.log()


def test_maintenance_on_some_hosts_only(stage):
    from deployer.targets import select_hosts

    config = select_hosts(stage.config(), "web2", None)
    maintenance(config, stage.reporter(), True, "one box", opener=stage.fleet.opener)
    on = {
        name for name, fake in stage.fleet.hosts.items() if (fake.folder / "shared/maintenance.html").exists()
    }
    assert on == {"web2"}


def test_the_projects_own_page_is_used_and_a_broken_one_stops_before_any_host(stage):
    from deployer.errors import ConfigError

    page = stage.root / "templates" / "maintenance.html.j2"
    page.write_text("{{ application }} on {{ stage }}: {{ reason }} since {{ since[:4] }}\n")
    maintenance(stage.config(), stage.reporter(), True, "<b>", opener=stage.fleet.opener)
    shown = (stage.fleet["web1"].folder / "shared" / "maintenance.html").read_text()
    assert shown.startswith("demo on test: &lt;b&gt; since 20")
    page.write_text("{% if %}\n")
    for fake in stage.fleet.hosts.values():
        fake.received.clear()
    try:
        maintenance(stage.config(), stage.reporter(), True, "x", opener=stage.fleet.opener)
    except ConfigError as exc:
        assert exc.exit_code == 2 and exc.message.startswith(
            "templates/maintenance.html.j2: line 1: syntax error"
        )
    else:
        raise AssertionError("a broken template must fail")
    assert all(not fake.received for fake in stage.fleet.hosts.values())  # no host was even asked
