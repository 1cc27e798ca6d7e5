"""Fleets behind a bastion: targets on an internal Docker network with no published port,
reachable only through a bastion whose port is published on 127.0.0.1.

State is read on the targets with docker exec; logins are counted in each sshd's own log.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import yaml
from project import Project
from sshd.bastion import HiddenFleet, hidden_fleet
from sshd.hosts import start_hosts

from deployer import bastion
from deployer.config import deep_merge

pytestmark = pytest.mark.ssh
TARGETS = ["web1", "web2", "web3"]


@pytest.fixture(scope="module")
def fleet(ssh_image, ssh_key):
    public = (ssh_key.parent / "id_ed25519.pub").read_text().strip()
    with hidden_fleet(ssh_image, public, TARGETS, inner=("jump2",)) as made:
        yield made


def behind(tmp_path, fleet: HiddenFleet, ssh_key, trust_bastion: bool = True) -> Project:
    """A project whose three hosts are the hidden targets, through the fleet's bastion."""
    project = Project.create(tmp_path, list(fleet.targets), ssh_key)
    known = project.root / "known_hosts"
    lines = [h.host_key_line() for h in fleet.targets + fleet.inner]
    if trust_bastion:
        lines.append(fleet.bastion.host_key_line())
    known.write_text("".join(line + "\n" for line in lines))
    hosts = [{"host": h.alias, "user": "deploy", "roles": ["web"]} for h in fleet.targets]
    hosts[0]["roles"] = ["web", "db"]
    project.set(hosts=hosts, ssh={"proxy_jump": fleet.jump()})
    project.overrides["hosts"] = hosts  # deep_merge replaces lists: keep ours on later set()s
    return project


def run(project: Project, *args: str, env: dict | None = None, code: int = 0) -> subprocess.CompletedProcess:
    result = project.invoke(*args, env=env)
    assert result.returncode == code, result.stdout + result.stderr
    return result


def last_line(result: subprocess.CompletedProcess) -> str:
    return result.stderr.strip().splitlines()[-1]


def logins(fleet: HiddenFleet) -> dict[str, int]:
    return {h.name: h.logins() for h in [fleet.bastion, *fleet.targets, *fleet.inner]}


def new_logins(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    return {name: after[name] - before[name] for name in after}


def test_the_targets_publish_no_port_and_only_the_bastion_reaches_them(fleet):
    def docker(*args: str):
        return json.loads(
            subprocess.run(["docker", *args], capture_output=True, text=True, check=True).stdout
        )

    for target in fleet.targets:
        ports = docker("inspect", "-f", "{{json .NetworkSettings.Ports}}", target.container_id)
        assert not ports, f"{target.name} publishes {ports}"
        networks = docker("inspect", "-f", "{{json .NetworkSettings.Networks}}", target.container_id)
        assert list(networks) == [fleet.network.name], networks  # not on the default bridge
    network = docker("network", "inspect", fleet.network.name)[0]
    assert network["Internal"] is True
    members = {c["Name"] for c in network["Containers"].values()}
    ours = {h.container.get_wrapped_container().name for h in [fleet.bastion, *fleet.targets, *fleet.inner]}
    assert members == ours
    for hop in [fleet.bastion, *fleet.inner]:  # names from /etc/hosts only: no DNS query can leave
        assert hop.sh("cat /etc/resolv.conf").strip() == "nameserver 127.0.0.1"
        assert hop.sh("getent hosts web1").split()[0] == fleet.addresses()["web1"]


def test_deploy_and_rollback_through_the_bastion_with_one_bastion_login_each(fleet, tmp_path, ssh_key):
    project = behind(tmp_path, fleet, ssh_key)
    counts = []
    for args in (("deploy", "--stage=test"), ("deploy", "--stage=test"), ("rollback", "--stage=test")):
        before = logins(fleet)
        run(project, *args)
        counts.append(new_logins(before, logins(fleet)))
    for index, target in enumerate(fleet.targets):
        assert project.current(index) == "releases/1", target.name
        assert project.release_dirs(index) == [1, 2]
        assert f"HOST={target.alias}" in project.read(index, "current/app.env")
        assert project.read(index, "current/index.html") == "hello\n"
        statuses = [(e["event"], e["release"], e.get("status")) for e in project.log(index)]
        assert ("rollback", 1, "active") in statuses and ("rollback", 2, "rolled-back") in statuses
    for count in counts:
        assert count[fleet.bastion.name] == 1, count  # three hosts behind it, one bastion login
        assert all(count[t.name] == 1 for t in fleet.targets), count


def test_promote_from_staging_to_production_through_the_bastion(fleet, tmp_path, ssh_key):
    project = behind(tmp_path, fleet, ssh_key)
    base = yaml.safe_load((project.root / "config" / "test.yml").read_text())
    for name, hosts in (("staging", base["hosts"][:1]), ("production", base["hosts"][1:])):
        stage = deep_merge(base, {"hosts": hosts, "deploy_to": f"{project.deploy_to}-{name}"})
        (project.root / "config" / f"{name}.yml").write_text(yaml.safe_dump(stage))
    run(project, "deploy", "--stage=staging")
    before = logins(fleet)
    run(project, "promote", "--from=staging", "--to=production")
    count = new_logins(before, logins(fleet))
    staged = project.sh(0, f"cat {project.deploy_to}-staging/current/.deployer-release.json")
    for index in (1, 2):
        assert project.sh(index, f"readlink {project.deploy_to}-production/current").strip() == "releases/1"
        promoted = project.sh(index, f"cat {project.deploy_to}-production/current/.deployer-release.json")
        assert json.loads(promoted)["sha256"] == json.loads(staged)["sha256"]
        assert project.sh(index, f"cat {project.deploy_to}-production/current/index.html") == "hello\n"
    # It reads staging, closes, then deploys production: one bastion login for each stage.
    assert count[fleet.bastion.name] == 2, count
    assert project.sh(1, f"test -e {project.deploy_to}-staging && echo yes || echo no").strip() == "no"


def test_an_unknown_bastion_key_is_refused_and_nothing_changes(fleet, tmp_path, ssh_key):
    project = behind(tmp_path, fleet, ssh_key, trust_bastion=False)
    before = logins(fleet)
    result = run(project, "deploy", "--stage=test", code=4)
    line = last_line(result)
    assert f"host web1 via bastion {fleet.jump()}: unknown host key ssh-ed25519" in line, line
    assert "Traceback" not in result.stderr
    assert new_logins(before, logins(fleet)) == dict.fromkeys(before, 0)
    assert all(not project.exists(i, "") for i in range(3))  # deploy_to never created
    assert "127.0.0.1" not in (project.root / "known_hosts").read_text()  # strict: nothing recorded


def test_a_changed_bastion_key_is_refused_and_nothing_changes(fleet, tmp_path, ssh_key):
    project = behind(tmp_path, fleet, ssh_key, trust_bastion=False)
    impostor = fleet.targets[0].host_key_line().split()[1:]  # another host's real key
    with (project.root / "known_hosts").open("a") as fh:
        fh.write(f"[127.0.0.1]:{fleet.bastion.port} {' '.join(impostor)}\n")
    before = logins(fleet)
    result = run(project, "deploy", "--stage=test", code=4)
    line = last_line(result)
    assert f"host web1 via bastion {fleet.jump()}: host key CHANGED" in line, line
    assert f"ssh-keygen -R '[127.0.0.1]:{fleet.bastion.port}'" in line
    assert new_logins(before, logins(fleet)) == dict.fromkeys(before, 0)
    assert all(not project.exists(i, "") for i in range(3))


def test_a_target_behind_the_bastion_is_verified_under_its_own_name(fleet, tmp_path, ssh_key):
    project = behind(tmp_path, fleet, ssh_key)
    known = project.root / "known_hosts"
    known.write_text("".join(l + "\n" for l in known.read_text().splitlines() if not l.startswith("web2 ")))
    before = logins(fleet)
    result = run(project, "deploy", "--stage=test", code=4)
    line = last_line(result)
    assert line.startswith("error: host web2: unknown host key ssh-ed25519"), line
    assert new_logins(before, logins(fleet))["web2"] == 0
    assert all(not project.exists(i, "") for i in range(3))  # no host was touched, web1 and web3 neither


def test_accept_new_records_the_bastion_key_like_any_host_key(fleet, tmp_path, ssh_key):
    project = behind(tmp_path, fleet, ssh_key, trust_bastion=False)
    project.set(ssh={"host_key_policy": "accept-new"})
    run(project, "deploy", "--stage=test")
    assert fleet.bastion.host_key_line() in (project.root / "known_hosts").read_text().splitlines()
    assert project.current(2) == "releases/1"


@pytest.fixture
def spare(fleet, ssh_image, ssh_key):
    """A bastion of this test's own in front of the fleet, to kill or freeze; removed at the end."""
    public = (ssh_key.parent / "id_ed25519.pub").read_text().strip()
    host = start_hosts(ssh_image, public, 1)[0]
    fleet.attach(host)
    yield host
    subprocess.run(["docker", "rm", "-f", host.container_id], capture_output=True)


def test_a_dead_bastion_is_named_and_nothing_changes(fleet, tmp_path, ssh_key, spare):
    project = behind(tmp_path, fleet, ssh_key)
    jump = f"deploy@127.0.0.1:{spare.port}"
    project.set(ssh={"proxy_jump": jump})
    with (project.root / "known_hosts").open("a") as fh:
        fh.write(spare.host_key_line() + "\n")
    subprocess.run(["docker", "kill", spare.container_id], capture_output=True, check=True)
    result = run(project, "deploy", "--stage=test", code=4)
    line = last_line(result)
    assert f"host web1 via bastion {jump}: cannot connect" in line, line
    assert "(and 2 more host(s): web2, web3)" in line
    assert all(not project.exists(i, "") for i in range(3))


def test_a_silent_bastion_fails_within_its_own_connect_timeout(fleet, tmp_path, ssh_key, spare):
    project = behind(tmp_path, fleet, ssh_key)
    jump = f"deploy@127.0.0.1:{spare.port}"
    project.set(ssh={"proxy_jump": jump, "connect_timeout": 2})
    subprocess.run(["docker", "pause", spare.container_id], capture_output=True, check=True)
    result = run(project, "check", "--stage=test", code=4)
    out = result.stdout + result.stderr
    assert f"host web1 via bastion {jump}: no SSH answer within 2s (ssh.connect_timeout)" in out, out
    assert f"bastion {jump}: FAILED for 3 host(s): web1, web2, web3: no SSH answer" in out, out


def test_a_bastion_lost_mid_deploy_is_named_and_nothing_is_switched(fleet, tmp_path, ssh_key, spare):
    project = behind(tmp_path, fleet, ssh_key)
    jump = f"deploy@127.0.0.1:{spare.port}"
    with (project.root / "known_hosts").open("a") as fh:
        fh.write(spare.host_key_line() + "\n")
    project.set(
        ssh={"proxy_jump": jump, "command_timeout": 10},
        hooks={"before_switch": [{"command": project.barrier_hook("mid")}]},
    )
    deploy = subprocess.Popen(
        [sys.executable, "-m", "invoke", "deploy", "--stage=test"],
        cwd=project.root, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        project.wait_until(
            lambda: deploy.poll() is not None or project.reached("mid"), "the hook on every host"
        )
        assert deploy.poll() is None, deploy.communicate()
        subprocess.run(["docker", "kill", spare.container_id], capture_output=True, check=True)
        out, err = deploy.communicate(timeout=120)
    finally:
        deploy.kill()
        project.release_barrier("mid")
    assert deploy.returncode == 4, out + err
    line = err.strip().splitlines()[-1]
    assert f"(through bastion {jump}): " in line and (
        "connection lost" in line or "stopped answering" in line
    ), line
    assert all(project.current(i) == "" for i in range(3))  # nothing was switched anywhere


def test_chained_bastions_each_verified_and_logged_in_to_once(fleet, tmp_path, ssh_key):
    project = behind(tmp_path, fleet, ssh_key)
    project.set(ssh={"proxy_jump": f"{fleet.jump()},deploy@jump2"})
    before = logins(fleet)
    run(project, "deploy", "--stage=test")
    count = new_logins(before, logins(fleet))
    assert count["jump2"] == 1 and count[fleet.bastion.name] == 1, count
    assert all(project.current(i) == "releases/1" for i in range(3))
    # The inner bastion's key is checked too: forget it and the deploy is refused there.
    known = project.root / "known_hosts"
    known.write_text(
        "".join(line + "\n" for line in known.read_text().splitlines() if not line.startswith("jump2"))
    )
    result = run(project, "deploy", "--stage=test", code=4)
    line = last_line(result)
    assert f"host web1 via bastion deploy@jump2 (through {fleet.jump()}): unknown host key" in line, line
    assert all(project.release_dirs(i) == [1] for i in range(3))


def test_proxy_jump_from_ssh_config_is_honoured_and_verified(fleet, tmp_path, ssh_key):
    project = behind(tmp_path, fleet, ssh_key, trust_bastion=False)
    project.set(ssh={"proxy_jump": None})
    data = yaml.safe_load((project.root / "config" / "test.yml").read_text())
    del data["ssh"]["proxy_jump"]
    (project.root / "config" / "test.yml").write_text(yaml.safe_dump(data))
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    (home / ".ssh" / "config").write_text(f"Host web*\n  ProxyJump {fleet.jump()}\n")
    env = {"HOME": str(home)}
    # Fabric's own gateway for this line would trust any bastion key: ours refuses it.
    result = run(project, "deploy", "--stage=test", env=env, code=4)
    assert f"host web1 via bastion {fleet.jump()}: unknown host key" in last_line(result)
    with (project.root / "known_hosts").open("a") as fh:
        fh.write(fleet.bastion.host_key_line() + "\n")
    before = logins(fleet)
    run(project, "deploy", "--stage=test", env=env)
    assert new_logins(before, logins(fleet))[fleet.bastion.name] == 1
    assert all(project.current(i) == "releases/1" for i in range(3))


def test_proxy_jump_none_on_a_host_connects_it_directly(fleet, tmp_path, ssh_key):
    project = behind(tmp_path, fleet, ssh_key)
    direct = {"host": "127.0.0.1", "port": fleet.bastion.port, "user": "deploy", "proxy_jump": "none"}
    hosts = [project.overrides["hosts"][0], direct]
    project.overrides["hosts"] = hosts
    project.write_stage()
    before = logins(fleet)
    result = run(project, "check", "--stage=test")
    assert f"127.0.0.1:{fleet.bastion.port}: ok" in result.stdout
    assert f"web1: ok (via bastion {fleet.jump()};" in result.stdout
    assert f"bastion {fleet.jump()}: ok, one login serves 1 host(s): web1" in result.stdout
    # One login as the bastion of web1, one as a host of its own.
    assert new_logins(before, logins(fleet))[fleet.bastion.name] == 2


def test_check_reports_each_hop_and_a_host_the_bastion_cannot_reach(fleet, tmp_path, ssh_key):
    project = behind(tmp_path, fleet, ssh_key)
    project.overrides["hosts"] = project.overrides["hosts"] + [
        {"host": "web1", "port": 2222, "user": "deploy"}
    ]
    project.write_stage()
    result = run(project, "check", "--stage=test", "--json", code=4)
    document = json.loads(result.stdout)
    assert document["hosts"]["web2"]["via"] == [f"bastion {fleet.jump()}"]
    assert document["bastions"][f"bastion {fleet.jump()}"]["hosts"] == ["web1", "web2", "web3", "web1:2222"]
    problem = document["hosts"]["web1:2222"]["problems"][0]
    assert problem.startswith(f"host web1:2222: bastion {fleet.jump()} cannot reach web1:2222"), problem


def test_an_in_process_task_leaves_no_bastion_connection_open(fleet, tmp_path, ssh_key):
    project = behind(tmp_path, fleet, ssh_key)
    before = logins(fleet)
    project.deploy()
    project.releases()
    assert bastion.POOL.open_count() == 0
    assert new_logins(before, logins(fleet))[fleet.bastion.name] == 2  # one per task
