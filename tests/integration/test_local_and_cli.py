"""The local transport (same behaviour, a temporary folder) and the real `invoke` CLI."""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path

import pytest

from deployer.errors import DeployFailed, HookFailed

REPO = Path(__file__).resolve().parents[2]


def test_local_deploys_rollback_and_cleanup(local_project):
    p = local_project
    p.set(keep_releases=2)
    for _ in range(4):
        p.deploy()
    assert p.release_dirs() == [3, 4]
    assert p.current() == "releases/4"
    assert "RELEASE=4" in p.read(0, "current/app.env")
    p.rollback()
    assert p.current() == "releases/3"
    with pytest.raises(DeployFailed, match="no earlier good release"):
        p.rollback()
    p.rollback(to=4)
    assert p.current() == "releases/4"
    p.set(keep_releases=1)
    p.cleanup()
    assert p.release_dirs() == [3, 4]  # 3 is what rollback would use
    assert [e["release"] for e in p.log() if e.get("status") == "active" and e["event"] == "deploy"] == [
        1,
        2,
        3,
        4,
    ]


def test_local_failing_hooks(local_project):
    p = local_project
    p.deploy()
    p.set(hooks={"before_switch": [{"command": "exit 9"}]})
    with pytest.raises(HookFailed):
        p.deploy()
    assert p.current() == "releases/1" and p.release_dirs() == [1]
    p.set(hooks={"before_switch": [], "after_switch": [{"command": "exit 4"}]})
    with pytest.raises(HookFailed):
        p.deploy()
    assert p.current() == "releases/1"
    assert not p.lock_held()


def test_first_deploy_with_failing_after_switch_leaves_no_current(local_project):
    p = local_project
    p.set(hooks={"after_switch": [{"command": "false"}]})
    with pytest.raises(HookFailed):
        p.deploy()
    assert p.current() == ""


def test_cli_lists_tasks_with_help(local_project):
    result = local_project.invoke("--list")
    assert result.returncode == 0
    for name in ("deploy", "rollback", "releases", "cleanup", "check", "unlock"):
        assert f"  {name} " in result.stdout


def test_cli_deploy_releases_check_in_a_copied_project(local_project):
    """tasks.py + config/ + templates/ copied into another folder work there."""
    p = local_project
    deployed = p.invoke("deploy", "--stage=test")
    assert deployed.returncode == 0, deployed.stderr
    assert "deploy of release 1 to test: done" in deployed.stdout
    assert (p.root / "deployed" / "current").is_symlink()
    listing = p.invoke("releases", "--stage=test")
    assert listing.returncode == 0
    assert "* " in listing.stdout and "active" in listing.stdout
    check = p.invoke("check", "--stage=test")
    assert check.returncode == 0, check.stdout + check.stderr
    assert "ok (" in check.stdout


@pytest.mark.parametrize(
    "stage_text, message",
    [
        ("deploy_to: [1\n", "config/test.yml: line 2: bad YAML"),
        (
            "deploy_to: x\nkeep_releases: -1\n",
            "config/test.yml: keep_releases: expected an integer of at least 1, got -1",
        ),
        ("deploy_to: x\ncolour: blue\n", "config/test.yml: colour: unknown key"),
        (
            "deploy_to: x\nhosts: [{host: a, port: abc}]\n",
            "config/test.yml: hosts[0].port: expected an integer from 1 to 65535",
        ),
        (
            "transport: ssh\ndeploy_to: /srv/x\n",
            "config/test.yml: hosts: a stage with transport ssh needs at least one host",
        ),
        (
            "deploy_to: x\nhooks: {after_switch: [{once: true}]}\n",
            "config/test.yml: hooks.after_switch[0].command: required key is missing",
        ),
    ],
)
def test_cli_config_errors_are_one_line_exit_2(local_project, stage_text, message):
    (local_project.root / "config" / "test.yml").write_text(stage_text)
    result = local_project.invoke("deploy", "--stage=test")
    assert result.returncode == 2
    assert result.stderr.startswith(f"error: {message}"), result.stderr
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert not (local_project.root / "deployed").exists()


def test_cli_missing_stage_lists_stages(local_project):
    result = local_project.invoke("deploy", "--stage=nope")
    assert result.returncode == 2
    assert result.stderr.strip() == "error: config/nope.yml: no such stage file (stages: test)"


def test_bundled_example_deploys_locally(tmp_path):
    """The README's first command: the example app of this repository, transport local."""
    import shutil
    import subprocess
    import sys

    for item in ("tasks.py", "config", "templates", "examples"):
        src = REPO / item
        (shutil.copytree if src.is_dir() else shutil.copy)(src, tmp_path / item)
    run = lambda *a: subprocess.run(
        [sys.executable, "-m", "invoke", *a], cwd=tmp_path, capture_output=True, text=True
    )
    first = run("deploy", "--stage=local")
    assert first.returncode == 0, first.stderr
    second = run("deploy")  # default_stage: local
    assert second.returncode == 0, second.stderr
    current = tmp_path / ".deploy" / "local" / "current"
    assert os.readlink(current) == "releases/2"
    assert "GREETING=Hello from the local stage" in (current / ".env").read_text()
    database = sqlite3.connect(tmp_path / ".deploy/local/shared/hello.sqlite3")
    assert database.execute("SELECT max(version) FROM schema_migrations").fetchone() == (2,)
    log = [
        json.loads(line) for line in (tmp_path / ".deploy/local/.deployer/log.jsonl").read_text().splitlines()
    ]
    schemas = [
        (e["release"], e["schema_before"], e["schema_after"]) for e in log if e.get("status") == "active"
    ]
    assert schemas == [(1, "0", "2"), (2, "2", "2")]
    back = run("rollback")
    assert back.returncode == 0, back.stderr
    assert os.readlink(current) == "releases/1"


def test_a_silent_command_times_out_and_the_deploy_is_undone(local_project):
    """The hook waits at a barrier the test opens only after the deploy has ended: it can
    only end by the timeout, however slow the machine."""
    p = local_project
    hook = {"command": p.barrier_hook("never", ticking=False)}
    p.set(ssh={"command_timeout": 1}, hooks={"before_switch": [hook]})
    try:
        result = p.invoke("deploy", "--stage=test")
    finally:
        p.release_barrier("never")
    assert p.exists(0, "never.reached")  # the hook really ran
    assert result.returncode == 1, result.stderr
    assert "ran past 1s (ssh.command_timeout)" in result.stderr and "release 1 removed" in result.stderr
    assert p.release_dirs() == [] and not p.lock_held()
    p.set(hooks={"before_switch": []})
    assert p.invoke("deploy", "--stage=test").returncode == 0
