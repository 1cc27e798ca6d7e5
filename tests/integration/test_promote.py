"""Promote: what is live on staging goes to production, same sha256, no rebuild."""

from __future__ import annotations

import json
import subprocess

import pytest
import yaml

from deployer.config import deep_merge

pytestmark = pytest.mark.ssh


@pytest.fixture
def stages(project):
    base = project.base_stage()
    staging = deep_merge(
        base,
        {
            "hosts": base["hosts"][:2],
            "deploy_to": project.deploy_to + "-staging",
            "vars": {"greeting": "staging hi"},
        },
    )
    production = deep_merge(
        base,
        {
            "hosts": base["hosts"][2:],
            "deploy_to": project.deploy_to + "-production",
            "vars": {"greeting": "production hi"},
            "hooks": {"after_switch": [{"command": "echo $DEPLOYER_COMMAND > $DEPLOYER_DEPLOY_TO/cmd"}]},
        },
    )
    for name, data in (("staging", staging), ("production", production)):
        (project.root / "config" / f"{name}.yml").write_text(yaml.safe_dump(data))
    return project


def run(p, *args):
    result = p.invoke(*args)
    assert result.returncode == 0, result.stdout + result.stderr
    return result


def listing(p, index, stage) -> str:
    """Every path under the stage's deploy_to on a host (type, name, link, size), or "absent"."""
    d = f"{p.deploy_to}-{stage}"
    return p.sh(
        index, f"if [ -e {d} ]; then cd {d} && find . -printf '%y %p %l %s\\n' | sort; else echo absent; fi"
    )


def sha_of(p, index, stage, number):
    log = p.sh(index, f"cat {p.deploy_to}-{stage}/.deployer/log.jsonl")
    return {
        json.loads(l).get("sha256") for l in log.splitlines() if json.loads(l).get("release") == number
    } - {None}


def git(p, *args):
    ident = ["-c", "user.name=Ada", "-c", "user.email=ada@example.com"]
    return subprocess.run(
        ["git", *ident, *args], cwd=p.root, check=True, capture_output=True, text=True
    ).stdout


def test_promote_deploys_the_same_artifact_rendered_for_the_target(stages):
    p = stages
    git(p, "init", "-q", "-b", "main")
    git(p, "add", "-A")
    git(p, "commit", "-q", "-m", "what staging runs")
    run(p, "deploy", "--stage=staging")
    (p.root / "app" / "index.html").write_text("changed locally, never built\n")
    git(p, "commit", "-q", "-am", "not deployed anywhere")
    run(p, "promote", "--from=staging", "--to=production")
    prod = f"{p.deploy_to}-production"
    assert p.sh(2, f"readlink {prod}/current").strip() == "releases/1"
    assert p.sh(2, f"cat {prod}/current/index.html") == "hello\n"  # what staging runs, not the working tree
    assert "GREETING=production hi" in p.sh(2, f"cat {prod}/current/app.env")
    assert p.sh(2, f"cat {prod}/cmd").strip() == "promote"
    assert sha_of(p, 2, "production", 1) == sha_of(p, 0, "staging", 1)
    revision = lambda i, stage: {
        json.loads(l).get("revision")
        for l in p.sh(i, f"cat {p.deploy_to}-{stage}/.deployer/log.jsonl").splitlines()
        if json.loads(l).get("release") == 1
    }
    assert revision(2, "production") == revision(0, "staging") == {git(p, "rev-parse", "HEAD~1").strip()}
    events = [json.loads(l) for l in p.sh(2, f"cat {prod}/.deployer/log.jsonl").splitlines()]
    assert events[-1]["event"] == "promote" and events[-1]["detail"] == "from staging release 1"
    # Promoting the same thing again sends no payload: the host already has that artifact.
    again = run(p, "promote", "--from=staging", "--to=production")
    assert "identical to release 1: no upload" in again.stdout


def test_promote_refuses_when_source_hosts_disagree_or_release_is_missing(stages):
    p = stages
    run(p, "deploy", "--stage=staging")
    run(p, "deploy", "--stage=staging", f"--hosts={p.hosts[0].name}")
    result = p.invoke("promote", "--from=staging", "--to=production")
    assert result.returncode == 1
    assert "the hosts of staging disagree on what is current" in result.stderr
    missing = p.invoke("promote", "--from=staging", "--to=production", "--release=7")
    assert missing.returncode == 1 and "release 7 is not on any host of staging" in missing.stderr
    assert p.sh(2, f"ls {p.deploy_to}-production 2>/dev/null || true").strip() == ""
    chosen = run(p, "promote", "--from=staging", "--to=production", "--release=1")
    assert "release 1 of staging" in chosen.stdout


def test_promote_refuses_a_release_changed_on_the_server(stages):
    p = stages
    run(p, "deploy", "--stage=staging")
    for index in range(2):
        p.sh(
            index,
            f"rm {p.deploy_to}-staging/releases/1/index.html && echo hacked > {p.deploy_to}-staging/releases/1/index.html",
        )
    staging_before = [listing(p, i, "staging") for i in range(2)]
    result = p.invoke("promote", "--from=staging", "--to=production")
    assert result.returncode == 1 and "was changed on the server since it was deployed" in result.stderr
    assert listing(p, 2, "production") == "absent\n"  # untouched
    assert [listing(p, i, "staging") for i in range(2)] == staging_before  # nor the source (no lock left)


def test_promote_dry_run_changes_nothing_and_shows_what_would_be_sent(stages):
    p = stages
    run(p, "deploy", "--stage=staging")
    staging = [listing(p, i, "staging") for i in range(2)]
    dry = run(p, "promote", "--from=staging", "--to=production", "--dry-run")
    assert "dry run: nothing was changed" in dry.stdout, dry.stdout
    assert "tar -x" in dry.stdout  # the unpack it would run on the production host
    assert listing(p, 2, "production") == "absent\n"
    assert [listing(p, i, "staging") for i in range(2)] == staging
    run(p, "promote", "--from=staging", "--to=production")  # the real one then works
    assert p.sh(2, f"readlink {p.deploy_to}-production/current").strip() == "releases/1"


@pytest.mark.parametrize(
    "args", [("--from=staging",), ("--to=production",), ()], ids=["no-to", "no-from", "neither"]
)
def test_promote_needs_from_and_to_and_contacts_no_host(stages, args):
    p = stages
    logins = [h.logins() for h in p.hosts]
    result = p.invoke("promote", *args)
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip() == "error: promote: give both --from=<stage> and --to=<stage>", result.stderr
    assert [h.logins() for h in p.hosts] == logins
