"""Steps sent together (one script, one round trip) leave the servers exactly as the
separate steps did: deploys and rollbacks to one real SSH server, state read on it."""

from __future__ import annotations

import pytest
from project import Project

from deployer.errors import DeployFailed

pytestmark = pytest.mark.ssh


@pytest.fixture
def one_host(tmp_path, ssh_hosts, ssh_key) -> Project:
    """A project deploying to the first shared host only, in its own deploy_to."""
    return Project.create(tmp_path, ssh_hosts[:1], ssh_key)


def statuses(project: Project, release: int) -> list[str]:
    return [e["status"] for e in project.log() if e.get("release") == release and e.get("status")]


def test_deploys_upload_prepare_and_clean_up_in_fewer_steps(one_host):
    one_host.set(
        keep_releases=2,
        shared={"dirs": ["log"]},
        templates=[{"src": "app.env.j2", "dest": "config/app.env", "mode": "0600"}],
    )
    for number in range(1, 5):
        (one_host.root / "app" / "index.html").write_text(f"release {number}\n")
        one_host.deploy()
    deploy_to = one_host.deploy_to
    assert one_host.current() == "releases/4"
    assert one_host.release_dirs() == [3, 4]
    assert one_host.read(0, "current/index.html") == "release 4\n"
    assert "RELEASE=4" in one_host.read(0, "current/config/app.env")
    assert one_host.sh(0, f"stat -c %a {deploy_to}/current/config/app.env").strip() == "600"
    assert one_host.sh(0, f"readlink {deploy_to}/releases/4/log").strip() == "../../shared/log"
    assert one_host.exists(0, "releases/4/.deployer-manifest.gz")  # it travelled ahead of the artifact
    assert statuses(one_host, 4) == ["staged", "active"]
    removed = [e["detail"] for e in one_host.log() if e["event"] == "cleanup"]
    assert removed == ["removed 1", "removed 2"]
    assert not one_host.lock_held()
    assert one_host.sh(0, f"ls -A {deploy_to}/.deployer").split() == ["log.jsonl"]  # no files tar left


def test_rollback_switches_logs_and_unlocks(one_host):
    for number in range(1, 3):
        (one_host.root / "app" / "index.html").write_text(f"release {number}\n")
        one_host.deploy()
    one_host.rollback()
    assert one_host.current() == "releases/1"
    assert one_host.read(0, "current/index.html") == "release 1\n"
    rollbacks = [(e["release"], e["status"]) for e in one_host.log() if e["event"] == "rollback"]
    assert rollbacks == [(1, "active"), (2, "rolled-back")]
    assert not one_host.lock_held()


def test_a_failed_prepare_switches_nothing_and_says_which_step(one_host):
    one_host.deploy()
    one_host.set(shared={"files": ["config/database.yml"]})
    with pytest.raises(DeployFailed, match="^host 127.0.0.1:[0-9]+: prepare release failed: missing shared"):
        one_host.deploy()
    assert one_host.current() == "releases/1"
    assert one_host.release_dirs() == [1]
    assert statuses(one_host, 2) == ["failed"]
    assert not one_host.lock_held()
