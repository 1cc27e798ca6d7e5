"""Hooks at every phase, local and remote, with sudo, seeing DEPLOYER_* variables."""

from __future__ import annotations

import uuid

import pytest

from deployer.errors import HookFailed

pytestmark = pytest.mark.ssh


def test_every_phase_runs_in_order_with_its_environment(project):
    trace = "$DEPLOYER_DEPLOY_TO/trace"
    remote = lambda phase: {
        "command": f'echo "{phase} $DEPLOYER_COMMAND $DEPLOYER_RELEASE $(basename $(pwd))" >> {trace}'
    }
    project.set(
        hooks={
            "before_deploy": [
                {
                    "command": 'echo "$DEPLOYER_COMMAND $DEPLOYER_STAGE $DEPLOYER_RELEASE" > local-trace',
                    "local": True,
                },
                remote("before_deploy"),
            ],
            "after_upload": [remote("after_upload")],
            "before_switch": [remote("before_switch")],
            "after_switch": [remote("after_switch")],
        }
    )
    project.deploy()
    assert (project.root / "local-trace").read_text() == "deploy test \n"
    name = project.deploy_to.rsplit("/", 1)[-1]
    for index in range(3):
        assert project.read(index, "trace").splitlines() == [
            f"before_deploy deploy  {name}",
            "after_upload deploy 1 1",
            "before_switch deploy 1 1",
            "after_switch deploy 1 1",
        ]


def test_failing_local_hook_stops_before_anything_is_uploaded(project):
    project.set(hooks={"before_deploy": [{"command": "echo CI is red >&2; exit 1", "local": True}]})
    with pytest.raises(
        HookFailed, match="local before_deploy hook `echo CI is red >&2; exit 1` exited 1: CI is red"
    ):
        project.deploy()
    for index in range(3):
        assert project.release_dirs(index) == [] and not project.lock_held(index)


def test_on_failure_runs_after_a_failure_and_its_own_failure_only_warns(project):
    failing = 'echo "second $DEPLOYER_RELEASE" > $DEPLOYER_DEPLOY_TO/failure2; echo paging failed >&2; exit 1'
    project.set(
        hooks={
            "before_switch": [{"command": "exit 5"}],
            "on_failure": [
                {"command": 'echo "failed $DEPLOYER_RELEASE" > $DEPLOYER_DEPLOY_TO/failure'},
                {"command": failing},
            ],
        }
    )
    result = project.invoke("deploy", "--stage=test")
    # The deploy's own error is the one reported (exit 1, one line), not the on_failure one.
    assert result.returncode == 1, result.stderr
    assert result.stderr.strip().splitlines() == [result.stderr.strip()], result.stderr
    assert result.stderr.startswith("error: host ")
    assert "before_switch hook `exit 5` exited 5" in result.stderr
    for index in range(3):
        assert project.read(index, "failure") == "failed 1\n"
        assert project.read(index, "failure2") == "second 1\n"  # the failing on_failure hook really ran
        assert project.release_dirs(index) == [] and not project.lock_held(index)
        assert project.log(index)[-1]["status"] == "failed"
    assert "warning: host" in result.stdout and "paging failed" in result.stdout


def test_sudo_hooks_run_as_root_or_the_chosen_user_with_the_environment(project):
    tag = uuid.uuid4().hex[:8]
    project.set(
        hooks={
            "after_switch": [
                {"command": f"id -un > /tmp/root-{tag}-$DEPLOYER_RELEASE", "sudo": True, "once": True},
                {
                    "command": f"id -un > /tmp/nobody-{tag}-$DEPLOYER_RELEASE",
                    "sudo": True,
                    "sudo_user": "nobody",
                    "once": True,
                },
            ]
        }
    )
    project.deploy()
    assert project.sh(0, f"cat /tmp/root-{tag}-1").strip() == "root"
    assert project.sh(0, f"cat /tmp/nobody-{tag}-1").strip() == "nobody"


def test_hooks_can_be_limited_to_roles(project):
    project.set(hooks={"after_switch": [{"command": "touch $DEPLOYER_DEPLOY_TO/db-only", "roles": ["db"]}]})
    project.deploy()
    assert [project.exists(i, "db-only") for i in range(3)] == [True, False, False]
