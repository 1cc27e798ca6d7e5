"""Deploy, rollback and cleanup against three real SSH servers; state is read on the servers."""

from __future__ import annotations

import pytest

from deployer.errors import DeployFailed, HookFailed

pytestmark = pytest.mark.ssh


def active_deploys(log: list[dict]) -> list[int]:
    return [e["release"] for e in log if e["event"] == "deploy" and e.get("status") == "active"]


def test_seven_deploys_keep_three_on_every_host(project):
    project.set(keep_releases=3)
    for _ in range(7):
        project.deploy()
    for index in range(3):
        assert project.release_dirs(index) == [5, 6, 7]
        assert project.current(index) == "releases/7"
        assert active_deploys(project.log(index)) == [1, 2, 3, 4, 5, 6, 7]
        assert not project.lock_held(index)


def test_release_contents_shared_links_and_per_host_templates(project):
    project.set(
        shared={"dirs": ["log"], "files": ["config/secrets.yml"]},
        templates=[{"src": "app.env.j2", "dest": "config/app.env", "mode": "0600"}],
    )
    for index in range(3):
        project.sh(
            index,
            f"mkdir -p {project.deploy_to}/shared/config && echo s3cret > {project.deploy_to}/shared/config/secrets.yml",
        )
    project.deploy()
    project.deploy()
    for index, host in enumerate(project.hosts):
        assert project.read(index, "current/index.html") == "hello\n"
        assert project.read(index, "current/config/secrets.yml") == "s3cret\n"
        assert project.sh(index, f"readlink {project.deploy_to}/releases/2/log").strip() == "../../shared/log"
        env = project.read(index, "current/config/app.env")
        assert f"HOST={host.name}" in env and "RELEASE=2" in env and "GREETING=hi" in env
        assert project.sh(index, f"stat -c %a {project.deploy_to}/current/config/app.env").strip() == "600"
        assert project.sh(index, f"stat -c %a {project.deploy_to}/current/config").strip() == "755"
        # A file written through the shared link survives the next deploy.
        project.sh(index, f"echo kept > {project.deploy_to}/current/log/app.log")
    project.deploy()
    for index in range(3):
        assert project.read(index, "current/log/app.log") == "kept\n"
        assert project.read(index, "current/config/secrets.yml") == "s3cret\n"


def test_missing_shared_file_fails_naming_it_and_switches_nothing(project):
    project.deploy()
    project.set(shared={"files": ["config/database.yml"]})
    with pytest.raises(DeployFailed, match="shared/config/database.yml"):
        project.deploy()
    for index in range(3):
        assert project.current(index) == "releases/1"
        assert project.release_dirs(index) == [1]
        assert not project.lock_held(index)


def test_rollback_goes_to_previous_then_to_chosen_release_without_upload(project):
    for _ in range(3):
        project.deploy()
    logins_before = [h.logins() for h in project.hosts]
    project.rollback()
    assert [project.current(i) for i in range(3)] == ["releases/2"] * 3
    project.rollback(to=1)
    assert [project.current(i) for i in range(3)] == ["releases/1"] * 3
    for index in range(3):
        assert project.release_dirs(index) == [1, 2, 3]
        log = project.log(index)
        assert not [e for e in log[-4:] if e.get("status") == "staged"]
        assert {"release": 3, "status": "rolled-back"}.items() <= next(
            e for e in log if e.get("release") == 3 and e.get("status") == "rolled-back"
        ).items()
    # one connection per host per command
    assert [h.logins() - b for h, b in zip(project.hosts, logins_before)] == [2, 2, 2]


def test_rollback_skips_releases_rolled_back_from(project):
    for _ in range(3):
        project.deploy()
    project.rollback()
    assert project.current(0) == "releases/2"
    (project.root / "app" / "fix.txt").write_text("a new artifact: the rolled-back one is refused\n")
    project.deploy()
    assert project.current(0) == "releases/4"
    project.rollback()
    assert [project.current(i) for i in range(3)] == ["releases/2"] * 3


def test_rollback_with_nothing_earlier_is_an_error_that_changes_nothing(project):
    project.deploy()
    before = [project.snapshot(i) for i in range(3)]
    with pytest.raises(DeployFailed, match="no earlier good release"):
        project.rollback()
    assert [project.snapshot(i) for i in range(3)] == before


def test_rollback_to_release_missing_on_a_host_names_it(project):
    project.deploy()
    project.deploy()
    project.sh(2, f"rm -rf {project.deploy_to}/releases/1")
    before = [project.snapshot(i) for i in range(3)]
    with pytest.raises(DeployFailed, match=f"not on host\\(s\\) {project.hosts[2].name}"):
        project.rollback(to=1)
    assert [project.snapshot(i) for i in range(3)] == before
    assert not project.lock_held(0)


def test_failing_after_switch_hook_puts_every_host_back(project):
    project.deploy()
    marker = f"{project.deploy_to}/after_rollback_ran"
    project.set(
        hooks={
            "after_switch": [{"command": "exit 3"}],
            "after_rollback": [{"command": f"echo $DEPLOYER_RELEASE >> {marker}"}],
        }
    )
    with pytest.raises(HookFailed, match="after_switch hook `exit 3` exited 3"):
        project.deploy()
    for index in range(3):
        assert project.current(index) == "releases/1"
        assert project.read(index, "after_rollback_ran") == "1\n"
        assert {"release": 2, "status": "failed"}.items() <= project.log(index)[-1].items()
        assert not project.lock_held(index)
    project.set(hooks={"after_switch": []})
    project.deploy()
    assert project.current(0) == "releases/3"
    # cleanup removed the failed release first
    assert 2 not in project.release_dirs(0)


def test_failing_before_switch_hook_switches_nothing_and_leaves_no_release(project):
    project.deploy()
    project.set(hooks={"before_switch": [{"command": "echo migration exploded >&2; exit 1"}]})
    with pytest.raises(HookFailed, match="migration exploded"):
        project.deploy()
    for index in range(3):
        assert project.current(index) == "releases/1"
        assert project.release_dirs(index) == [1]
        assert not project.lock_held(index)
    project.set(hooks={"before_switch": []})
    project.deploy()
    assert [project.current(i) for i in range(3)] == ["releases/3"] * 3  # 2 is never reused


def test_once_hook_runs_on_exactly_one_host_the_db_one(project):
    project.set(hooks={"before_switch": [{"command": "./bin/migrate", "once": True}]})
    project.deploy()
    counts = [
        project.sh(i, f"cat {project.deploy_to}/migrations.log 2>/dev/null | wc -l").strip() for i in range(3)
    ]
    assert counts == ["1", "0", "0"]


def test_hooks_see_release_environment(project):
    out = f"{project.deploy_to}/env.txt"
    project.set(
        hooks={
            "after_switch": [
                {
                    "command": f'echo "$DEPLOYER_STAGE $DEPLOYER_RELEASE $DEPLOYER_PREVIOUS_RELEASE $DEPLOYER_RELEASE_PATH $(pwd -P)" > {out}'
                }
            ]
        }
    )
    project.deploy()
    project.deploy()
    path = f"{project.deploy_to}/releases/2"
    assert project.read(1, "env.txt") == f"test 2 1 {path} {path}\n"


def test_cleanup_task_keeps_current_and_rollback_target(project):
    for _ in range(4):
        project.deploy()
    project.rollback(to=1)
    project.set(keep_releases=1)
    project.cleanup()
    for index in range(3):
        # current (1) is never removed; keep_releases=1 keeps the newest good release, 4
        # (rolled back from, not failed); 2 and 3 go. Nothing is older than 1, so there is
        # no rollback target to protect.
        assert project.release_dirs(index) == [1, 4]
        assert project.current(index) == "releases/1"
        last = project.log(index)[-1]
        assert last["event"] == "cleanup" and last["detail"] == "removed 2,3", last
        assert not project.lock_held(index)


def test_deploy_opens_one_connection_per_host(project):
    project.set(hooks={"before_switch": [{"command": "true"}], "after_switch": [{"command": "true"}]})
    before = [h.logins() for h in project.hosts]
    project.deploy()
    assert [h.logins() - b for h, b in zip(project.hosts, before)] == [1, 1, 1]
