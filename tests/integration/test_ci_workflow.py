"""The CI examples of docs/ci.md, run as the CI systems run them: every ``run:`` step of
examples/ci/github-actions.yml (and every ``script:`` line of examples/ci/gitlab-ci.yml),
parsed from the YAML, in a subprocess with no terminal, each job on a fresh "runner" (its
own HOME with no ~/.ssh, its own state), the env variables set as the file sets them from
secrets, against SSH containers. The install step installs the wheel built from this
repository (pip is pointed at it, offline); the checkout step is the project folder.

Checked on the servers: staging got the release, production got the same artifact (same
sha256) by promote, and the job summaries were written.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import subprocess
import uuid
from pathlib import Path

import pytest
import yaml
from packaged import REPO, build, path_with, venv

pytestmark = [pytest.mark.ssh, pytest.mark.slow]
EXPRESSION = re.compile(r"\$\{\{\s*(secrets|vars)\.([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
KNOWN_ACTIONS = ("actions/checkout@", "actions/setup-python@")


@pytest.fixture(scope="module")
def wheels(tmp_path_factory) -> Path:
    _, wheel = build(tmp_path_factory.mktemp("build"))
    return wheel.parent


def checkout(tmp_path: Path, hosts, deploy_to: str) -> Path:
    """The repository a workflow checks out: an app, config/ (keys from the environment), git."""
    root = tmp_path / "repo"
    (root / "app").mkdir(parents=True)
    (root / "app" / "index.html").write_text("<h1>hello from CI</h1>\n")
    (root / "config").mkdir()
    deploy = {
        "application": "ciapp",
        "artifact": {"path": "app"},
        "ssh": {"identity_env": "DEPLOY_SSH_KEY", "known_hosts_env": "SSH_KNOWN_HOSTS", "connect_timeout": 5},
    }
    (root / "config" / "deploy.yml").write_text(yaml.safe_dump(deploy))
    for stage, chosen in (("staging", hosts[:1]), ("production", hosts[1:])):
        stage_hosts = [{"host": "127.0.0.1", "port": h.port, "user": "deploy"} for h in chosen]
        text = yaml.safe_dump({"deploy_to": f"{deploy_to}/{stage}", "hosts": stage_hosts})
        (root / "config" / f"{stage}.yml").write_text(text)
    git = {
        "GIT_AUTHOR_NAME": "ci",
        "GIT_AUTHOR_EMAIL": "ci@e",
        "GIT_COMMITTER_NAME": "ci",
        "GIT_COMMITTER_EMAIL": "ci@e",
    }
    for args in (["init", "-q"], ["add", "-A"], ["commit", "-qm", "app"]):
        subprocess.run(["git", *args], cwd=root, check=True, env={**os.environ, **git}, capture_output=True)
    return root


def resolved(env: dict, given: dict) -> dict[str, str]:
    """A job's ``env:`` with ``${{ secrets.X }}`` and ``${{ vars.X }}`` filled in, as GitHub does;
    any other expression fails the test (the example must stay this simple)."""
    out = {}
    for name, value in (env or {}).items():
        text = EXPRESSION.sub(lambda m: given[m.group(2)], str(value))
        assert "${{" not in text, f"{name}: an expression this test does not know: {value}"
        out[name] = text
    return out


def runner_env(tmp_path: Path, job: str, bin_dir: Path, wheels: Path) -> dict[str, str]:
    """A fresh runner: its own HOME (no ~/.ssh), state and cache; CI set; no SSH agent;
    pip offline, pointed at the wheel built here."""
    home = tmp_path / f"runner-{job}"
    home.mkdir()
    base = {k: v for k, v in os.environ.items() if not k.startswith(("SSH_", "XDG_", "PYTHON"))}
    return {
        **base, "HOME": str(home), "PATH": path_with(bin_dir), "CI": "true",
        "PIP_NO_INDEX": "1", "PIP_FIND_LINKS": str(wheels), "PIP_DISABLE_PIP_VERSION_CHECK": "1",
    }  # fmt: skip


def run_step(script: str, cwd: Path, env: dict[str, str], transcript: list[str]) -> None:
    transcript.append(f"$ {script.strip()}")
    proc = subprocess.run(
        ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", script],
        cwd=cwd, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    transcript += [
        line for line in (proc.stdout + proc.stderr).splitlines() if "WARNING: Location" not in line
    ]
    assert proc.returncode == 0, "\n".join(transcript)


def secrets_for(hosts, ssh_key: Path) -> dict[str, str]:
    return {
        "DEPLOY_SSH_KEY": ssh_key.read_text(),
        "SSH_KNOWN_HOSTS": "".join(h.host_key_line() + "\n" for h in hosts),
        "DEPLOYER_SEAL_KEY": secrets.token_hex(32),
    }


def server_state(hosts, deploy_to: str) -> dict[str, tuple[str, str | None]]:
    """Per stage and host: what current points to, and the sha256 of the live release."""
    found = {}
    for stage, chosen in (("staging", hosts[:1]), ("production", hosts[1:])):
        for host in chosen:
            base = f"{deploy_to}/{stage}"
            current = host.sh(f"readlink {base}/current || true").strip()
            meta = host.sh(f"cat {base}/current/.deployer-release.json 2>/dev/null || true")
            found[f"{stage} {host.name}"] = (current, json.loads(meta)["sha256"] if meta else None)
            assert host.sh(f"cat {base}/current/index.html") == "<h1>hello from CI</h1>\n"
    return found


def test_the_github_actions_workflow_deploys_staging_then_promotes_production(
    ssh_hosts, ssh_key, wheels, tmp_path
):
    workflow = yaml.safe_load((REPO / "examples" / "ci" / "github-actions.yml").read_text())
    assert workflow[True] == {"push": {"branches": ["main"]}}  # PyYAML reads the key `on` as True
    assert workflow["jobs"]["production"]["environment"] == "production"  # its reviewers approve
    assert workflow["jobs"]["production"]["needs"] == "staging"
    deploy_to = f"/home/deploy/apps/ci-{uuid.uuid4().hex[:8]}"
    repo = checkout(tmp_path, ssh_hosts, deploy_to)
    given = secrets_for(ssh_hosts, ssh_key)
    transcript: list[str] = []
    summaries = {}
    for job in ("staging", "production"):
        spec = workflow["jobs"][job]
        env = {
            **runner_env(tmp_path, job, venv(tmp_path / f"python-{job}"), wheels),
            **resolved(spec["env"], given),
        }
        transcript.append(f"# job {job} (environment {spec['environment']})")
        for index, step in enumerate(spec["steps"]):
            if "uses" in step:  # the checkout is `repo`; setup-python is the fresh venv
                assert step["uses"].startswith(KNOWN_ACTIONS), step["uses"]
                continue
            summary = tmp_path / f"summary-{job}-{index}.md"
            step_env = {**env, **resolved(step.get("env"), given), "GITHUB_STEP_SUMMARY": str(summary)}
            step_env |= {"GITHUB_ACTIONS": "true", "GITHUB_WORKSPACE": str(repo)}
            run_step(step["run"], repo, step_env, transcript)
            if summary.exists():
                summaries[job] = summary.read_text()
        assert not (Path(env["HOME"]) / ".ssh").exists()
    print("\n".join(transcript))  # shown with -s: what the run's log would show
    for job, text in summaries.items():
        print(f"# job summary of {job} (GITHUB_STEP_SUMMARY):\n{text}")
    state = server_state(ssh_hosts, deploy_to)
    assert {current for current, _ in state.values()} == {"releases/1"}
    assert len({sha for _, sha in state.values()}) == 1, state  # production runs staging's artifact
    assert summaries["staging"].startswith("### sternway: `deploy of release 1 to staging` done in ")
    assert f"| `127.0.0.1:{ssh_hosts[0].port}` | `1` | - | `active` |" in summaries["staging"]
    assert summaries["production"].startswith("### sternway: `promote of release 1 to production` done in ")
    for host in ssh_hosts[1:]:
        assert f"| `127.0.0.1:{host.port}` | `1` | - | `active` |" in summaries["production"]
    key_line = given["DEPLOY_SSH_KEY"].splitlines()[1]
    assert key_line not in "\n".join(transcript) and all(key_line not in s for s in summaries.values())


def test_the_gitlab_ci_jobs_deploy_staging_then_promote_production(ssh_hosts, ssh_key, wheels, tmp_path):
    pipeline = yaml.safe_load((REPO / "examples" / "ci" / "gitlab-ci.yml").read_text())
    production = pipeline["promote-production"]
    assert production["rules"][0]["when"] == "manual" and production["needs"] == ["deploy-staging"]
    deploy_to = f"/home/deploy/apps/ci-{uuid.uuid4().hex[:8]}"
    repo = checkout(tmp_path, ssh_hosts, deploy_to)
    variables = secrets_for(ssh_hosts, ssh_key)  # CI/CD variables reach the job as env
    transcript: list[str] = []
    for job in ("deploy-staging", "promote-production"):
        spec = pipeline[job]
        env = {**runner_env(tmp_path, job, venv(tmp_path / f"python-{job}"), wheels), **variables}
        env |= {"GITLAB_CI": "true", "CI_COMMIT_BRANCH": "main"}
        transcript.append(f"# job {job}")
        for line in [*pipeline["default"]["before_script"], *spec["script"]]:
            run_step(line, repo, env, transcript)
    print("\n".join(transcript))
    state = server_state(ssh_hosts, deploy_to)
    assert {current for current, _ in state.values()} == {"releases/1"}
    assert len({sha for _, sha in state.values()}) == 1, state
