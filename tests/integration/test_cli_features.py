"""--json shapes, --dry-run, --hosts/--roles, --verbose/--quiet and secret masking, through the real CLI."""

from __future__ import annotations

import json

import pytest
from shapes import (
    CHECK_SHAPE,
    CLEANUP_SHAPE,
    DEPLOY_SHAPE,
    ERROR_SHAPE,
    HISTORY_SHAPE,
    RELEASES_SHAPE,
    conforms,
)


def state(p, index=0) -> str:
    """Everything under deploy_to, with file checksums: proves a dry run changed nothing."""
    d = p.absolute_deploy_to
    return p.sh(
        index,
        f"cd {d} 2>/dev/null && find . -printf '%y %p %l %s %m\\n' | sort && "
        f"find . -type f -exec sha256sum {{}} + | sort || true",
    )


def test_json_documents_have_their_documented_shapes(local_project):
    p = local_project
    for args, shape in [
        (("deploy",), DEPLOY_SHAPE),
        (("deploy",), DEPLOY_SHAPE),
        (("rollback",), DEPLOY_SHAPE),
        (("releases",), RELEASES_SHAPE),
        (("history",), HISTORY_SHAPE),
        (("check",), CHECK_SHAPE),
        (("cleanup",), CLEANUP_SHAPE),
    ]:
        result = p.invoke(*args, "--stage=test", "--json")
        assert result.returncode == 0, result.stderr
        data = json.loads(result.stdout)
        assert conforms(data, shape), (args, data)
    releases = json.loads(p.invoke("releases", "--stage=test", "--json").stdout)
    assert [r["release"] for r in releases["hosts"]["localhost"]["releases"] if r["current"]] == [1]
    history = json.loads(p.invoke("history", "--stage=test", "--json").stdout)
    assert [e["event"] for e in history["events"]].count("rollback") == 2  # target active + the one left
    failed = p.invoke("rollback", "--stage=test", "--json", "--to=9")
    assert failed.returncode == 1
    assert conforms(json.loads(failed.stdout), ERROR_SHAPE)


@pytest.mark.parametrize("command", ["deploy", "rollback", "cleanup"])
def test_dry_run_changes_nothing_and_shows_the_commands(local_project, command):
    p = local_project
    p.set(keep_releases=1)
    p.deploy()
    p.deploy()
    before = state(p)
    result = p.invoke(command, "--stage=test", "--dry-run")
    assert result.returncode == 0, result.stderr
    assert state(p) == before
    assert "dry run: nothing was changed" in result.stdout
    expected = {"deploy": "tar -x", "rollback": "mv -T", "cleanup": "rm -rf"}[command]
    if command == "deploy":
        expected = "cp -al"  # identical artifact: a hard-linked copy would be made
    assert expected in result.stdout


def test_secrets_from_env_are_masked_everywhere(local_project):
    p = local_project
    (p.root / "templates" / "app.env.j2").write_text("TOKEN={{ env('APP_TOKEN') }}\n")
    p.set(
        templates=[{"src": "app.env.j2", "dest": "app.env", "mode": "0600"}],
        hooks={"after_switch": [{"command": "echo $(cat app.env) >&2; exit 1"}]},
    )
    secret = "s3cr3t-value-42"
    result = p.invoke("deploy", "--stage=test", "-v", env={"APP_TOKEN": secret})
    assert result.returncode == 1
    assert secret not in result.stdout + result.stderr
    assert "******" in result.stderr
    assert secret not in json.dumps(p.log())
    assert oct((p.root / "deployed" / "releases" / "1" / "app.env").stat().st_mode & 0o777) == "0o600"
    dry = p.invoke("deploy", "--stage=test", "--dry-run", env={"APP_TOKEN": secret})
    assert secret not in dry.stdout + dry.stderr


def test_verbose_shows_commands_and_quiet_only_the_end(local_project):
    p = local_project
    verbose = p.invoke("deploy", "--stage=test", "-v")
    assert "$ set -e" in verbose.stdout and "mv -T" in verbose.stdout
    quiet = p.invoke("deploy", "--stage=test", "--quiet")
    lines = [l for l in quiet.stdout.splitlines() if l.strip()]
    assert lines[-1].startswith("deploy of release 2 to test: done in")
    assert not any("upload" in l for l in lines)


@pytest.mark.ssh
def test_hosts_and_roles_select_a_subset(project):
    second = project.hosts[1].name
    result = project.invoke("deploy", "--stage=test", f"--hosts={second}")
    assert result.returncode == 0, result.stderr
    assert [project.current(i) for i in range(3)] == ["", "releases/1", ""]
    result = project.invoke("deploy", "--stage=test", "--roles=db")
    assert result.returncode == 0, result.stderr
    assert [project.current(i) for i in range(3)] == ["releases/1", "releases/1", ""]
    bad = project.invoke("deploy", "--stage=test", "--hosts=nope:1")
    assert bad.returncode == 2 and bad.stderr.startswith("error: --hosts: nope:1 is not a host of stage test")
    none = project.invoke("deploy", "--stage=test", "--roles=nothing")
    assert none.returncode == 2 and "--roles: no host of stage test" in none.stderr
