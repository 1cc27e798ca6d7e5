"""Pull mode: each host downloads the artifact itself (from an HTTP server on its own
loopback) and verifies its sha256 before unpacking."""

from __future__ import annotations

import hashlib
import os
import subprocess
import tarfile

import pytest

from deployer.errors import DeployFailed

pytestmark = pytest.mark.ssh
PORT = 8931


def serve(host, folder: str) -> None:
    """Start an HTTP server inside the container, bound to the container's own loopback."""
    host.sh(f"mkdir -p {folder}")
    subprocess.run(
        [
            "docker",
            "exec",
            "-d",
            "-u",
            "deploy",
            host.container_id,
            "python3",
            "-m",
            "http.server",
            str(PORT),
            "--bind",
            "127.0.0.1",
            "--directory",
            folder,
        ],
        check=True,
    )
    host.sh(
        f"for i in $(seq 1 50); do curl -fsS -o /dev/null http://127.0.0.1:{PORT}/ && exit 0; sleep 0.1; done; exit 1"
    )


def publish(host, folder: str, path, name: str) -> None:
    subprocess.run(["docker", "cp", str(path), f"{host.container_id}:{folder}/{name}"], check=True)
    host.sh(f"chmod a+r {folder}/{name}", user="root")


@pytest.fixture
def pull_project(project, tmp_path):
    (project.root / "app" / "payload.bin").write_bytes(os.urandom(1_500_000))
    artifact = tmp_path / "app.tar.gz"
    with tarfile.open(artifact, "w:gz") as tar:
        tar.add(project.root / "app", arcname=".")
    sha = hashlib.sha256(artifact.read_bytes()).hexdigest()
    folder = "/tmp/artifacts"
    for host in project.hosts:
        if not host.sh(f"curl -fsS -o /dev/null http://127.0.0.1:{PORT}/ && echo up", check=False).strip():
            serve(host, folder)
    project.set(artifact={"path": str(artifact), "url": f"http://127.0.0.1:{PORT}/{{sha256}}.tar.gz"})
    return project, artifact, sha, folder


def test_hosts_download_and_verify_the_artifact_themselves(pull_project):
    project, artifact, sha, folder = pull_project
    for host in project.hosts:
        publish(host, folder, artifact, f"{sha}.tar.gz")
    before = [int(h.sh("cat /sys/class/net/eth0/statistics/rx_bytes")) for h in project.hosts]
    project.deploy()
    sent = [
        int(h.sh("cat /sys/class/net/eth0/statistics/rx_bytes")) - b for h, b in zip(project.hosts, before)
    ]
    assert all(s < 300_000 for s in sent), sent  # the 1.5 MB payload did not travel over SSH
    for index in range(3):
        assert project.current(index) == "releases/1"
        assert project.sh(index, f"wc -c < {project.deploy_to}/current/payload.bin").strip() == "1500000"
        assert not project.exists(index, "releases/1/.deployer-download")
    assert "downloaded by the host" in "".join(project.output)


def test_a_tampered_download_is_refused_and_removed(pull_project, tmp_path):
    project, artifact, sha, folder = pull_project
    evil = tmp_path / "evil.tar.gz"
    with tarfile.open(evil, "w:gz") as tar:
        tar.add(project.root / "app" / "index.html", arcname="index.html")
    for index, host in enumerate(project.hosts):
        publish(host, folder, evil if index == 1 else artifact, f"{sha}.tar.gz")
    with pytest.raises(
        DeployFailed,
        match=f"host {project.hosts[1].name}: upload of release 1 failed: downloaded artifact does not match sha256",
    ):
        project.deploy()
    for index in range(3):
        assert project.current(index) == ""
        assert project.release_dirs(index) == []
        assert not project.lock_held(index)
