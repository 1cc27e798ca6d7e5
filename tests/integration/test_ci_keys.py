"""Deploys as CI runs them: the key and the host keys in environment variables
(ssh.identity_env, ssh.known_hosts_env), a HOME with no ~/.ssh, no terminal. Checked on
the servers, through a bastion too, and for the key never reaching a file or the output."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from project import Project
from sshd.bastion import hidden_fleet

pytestmark = pytest.mark.ssh


def ci_stage(project: Project, **ssh) -> None:
    """The test stage with keys from the environment only: no identity_file, no known_hosts file."""
    path = project.root / "config" / f"{project.stage}.yml"
    stage = yaml.safe_load(path.read_text())
    stage["ssh"] = {
        "identity_env": "DEPLOY_SSH_KEY",
        "known_hosts_env": "SSH_KNOWN_HOSTS",
        "connect_timeout": 5,
        **ssh,
    }
    path.write_text(yaml.safe_dump(stage, sort_keys=False))
    (project.root / "known_hosts").unlink()


def run_ci(project: Project, home: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    home.mkdir(exist_ok=True)
    clean = {k: v for k, v in os.environ.items() if not k.startswith("SSH_")}  # no agent either
    return subprocess.run(
        [sys.executable, "-m", "deployer.program", *args],
        cwd=project.root,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=120,
        env={**clean, "HOME": str(home), "CI": "true", **env},
    )


def files_holding(folder: Path, needle: str) -> list[Path]:
    return [p for p in folder.rglob("*") if p.is_file() and needle.encode() in p.read_bytes()]


def test_key_and_host_keys_from_the_environment_deploy_to_every_host(project, ssh_hosts, ssh_key, tmp_path):
    ci_stage(project)
    key = ssh_key.read_text()
    env = {"DEPLOY_SSH_KEY": key, "SSH_KNOWN_HOSTS": "".join(h.host_key_line() + "\n" for h in ssh_hosts)}
    home = tmp_path / "home"
    result = run_ci(project, home, env, "deploy", "--stage=test", "--verbose")
    assert result.returncode == 0, result.stdout + result.stderr
    assert [project.current(i) for i in range(3)] == ["releases/1"] * 3
    assert not (home / ".ssh").exists()
    body = key.splitlines()[1]
    assert body not in result.stdout + result.stderr
    assert files_holding(project.root, body) == [] and files_holding(home, body) == []
    # A host missing from the variable is refused like a host missing from a file.
    env["SSH_KNOWN_HOSTS"] = ssh_hosts[0].host_key_line() + "\n"
    refused = run_ci(project, home, env, "deploy", "--stage=test")
    assert refused.returncode == 4
    assert (
        f"error: host 127.0.0.1:{ssh_hosts[1].port}: unknown host key ssh-ed25519 SHA256:" in refused.stderr
    )
    assert "(not in $SSH_KNOWN_HOSTS (ssh.known_hosts_env), ssh.host_key_policy is strict)" in refused.stderr
    assert [project.current(i) for i in range(3)] == ["releases/1"] * 3


def test_a_missing_variable_is_one_line_exit_2_and_touches_no_host(project, ssh_hosts, tmp_path):
    ci_stage(project)
    before = project.snapshot(0)
    result = run_ci(project, tmp_path / "home", {}, "deploy", "--stage=test")
    assert result.returncode == 2
    assert result.stderr == (
        "error: config/test.yml: ssh.identity_env: the environment variable DEPLOY_SSH_KEY is not set\n"
    )
    assert project.snapshot(0) == before
    logins = ssh_hosts[0].logins()
    assert (
        run_ci(project, tmp_path / "home", {"DEPLOY_SSH_KEY": "garbage"}, "check", "--stage=test").returncode
        == 2
    )
    assert ssh_hosts[0].logins() == logins


def test_an_encrypted_rsa_pem_key_from_the_environment_through_a_bastion(ssh_image, tmp_path):
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.BestAvailableEncryption(b"correct horse"),
    ).decode()
    public = private.public_key().public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
    )
    with hidden_fleet(ssh_image, public.decode(), ["web1"]) as fleet:
        project = Project.create(tmp_path, list(fleet.targets), None)
        project.set(hosts=[{"host": "web1", "user": "deploy", "roles": ["web", "db"]}])
        ci_stage(project, identity_passphrase_env="DEPLOY_SSH_PASSPHRASE", proxy_jump=fleet.jump())
        known = "".join(h.host_key_line() + "\n" for h in [fleet.bastion, *fleet.targets])
        env = {"DEPLOY_SSH_KEY": pem, "DEPLOY_SSH_PASSPHRASE": "correct horse", "SSH_KNOWN_HOSTS": known}
        result = run_ci(project, tmp_path / "home", env, "deploy", "--stage=test")
        assert result.returncode == 0, result.stdout + result.stderr
        assert fleet.targets[0].sh(f"readlink {project.deploy_to}/current").strip() == "releases/1"
        assert fleet.bastion.logins() == 1 and fleet.targets[0].logins() == 1
        # The bastion's key is checked from the variable too: without it, no hop is trusted.
        env["SSH_KNOWN_HOSTS"] = fleet.targets[0].host_key_line() + "\n"
        refused = run_ci(project, tmp_path / "home", env, "check", "--stage=test")
        assert refused.returncode == 4
        assert "via bastion" in refused.stdout + refused.stderr
        assert "unknown host key" in refused.stdout + refused.stderr
        env.update(SSH_KNOWN_HOSTS=known, DEPLOY_SSH_PASSPHRASE="wrong")
        wrong = run_ci(project, tmp_path / "home", env, "deploy", "--stage=test")
        assert wrong.returncode == 2 and wrong.stderr == (
            "error: config/test.yml: ssh.identity_passphrase_env: DEPLOY_SSH_PASSPHRASE is not the "
            "passphrase of the key in DEPLOY_SSH_KEY\n"
        )
