"""A full upload as the artifact's zstd copy to hosts that have zstd, gzip to one that has not."""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import tarfile

import pytest

from deployer.transcode import cached_copy

pytestmark = [
    pytest.mark.ssh,
    pytest.mark.skipif(shutil.which("zstd") is None, reason="no zstd on this machine (.ci/run installs it)"),
]


def gzipped_artifact(project) -> tuple[str, dict[str, bytes]]:
    """A .tar.gz of a few files (one executable); returns its name and the files' bytes."""
    files = {"index.html": b"hello zstd\n", "data/blob.bin": os.urandom(300_000), "bin/run": b"#!/bin/sh\n"}
    path = project.root / "app.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o755 if name.startswith("bin/") else 0o644
            tar.addfile(info, io.BytesIO(data))
    (project.root / "config" / "deploy.yml").write_text(
        "application: demo\nkeep_releases: 5\nartifact:\n  path: app.tar.gz\n  compression: zstd\n"
    )
    return hashlib.sha256(path.read_bytes()).hexdigest(), files


def assert_tree(project, index: int, files: dict[str, bytes]) -> None:
    d = project.deploy_to
    for name, data in files.items():
        digest = project.sh(index, f"sha256sum {d}/current/{name}").split()[0]
        assert digest == hashlib.sha256(data).hexdigest(), name
    assert project.sh(index, f"stat -c %a {d}/current/bin/run").strip() == "755"


def test_hosts_with_zstd_unpack_the_zstd_copy(project, tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    sha256, files = gzipped_artifact(project)
    project.deploy()
    out = "".join(project.output)
    assert out.count("as zstd") == 3, out
    for index in range(3):
        assert_tree(project, index, files)
        assert sha256 in {e.get("sha256") for e in project.log(index)}  # the artifact the user built
    assert cached_copy(sha256).is_file()


def test_a_host_without_zstd_gets_the_artifact_itself(project, ssh_image, ssh_key, tmp_path, monkeypatch):
    """A dedicated container loses its zstd; the shared host beside it still gets zstd."""
    from sshd.hosts import start_hosts

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    (bare,) = start_hosts(ssh_image, (ssh_key.parent / "id_ed25519.pub").read_text().strip(), 1)
    try:
        bare.sh("rm /usr/bin/zstd", user="root")
        project.hosts = [project.hosts[0], bare]
        (project.root / "known_hosts").write_text("".join(h.host_key_line() + "\n" for h in project.hosts))
        project.set(hosts=[{"host": "127.0.0.1", "port": h.port, "user": "deploy"} for h in project.hosts])
        _, files = gzipped_artifact(project)
        project.deploy()
        lines = [line for line in "".join(project.output).splitlines() if "full upload" in line]
        assert len(lines) == 2 and sum("as zstd" in line for line in lines) == 1, lines
        assert any(f":{bare.port} " in line and "as zstd" not in line for line in lines), lines
        for index in range(2):
            assert_tree(project, index, files)
    finally:
        bare.stop()


def test_a_damaged_cached_copy_fails_one_deploy_and_is_made_again(project, tmp_path, monkeypatch):
    from deployer.errors import DeployFailed

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    sha256, files = gzipped_artifact(project)
    cached_copy(sha256).parent.mkdir(parents=True)
    cached_copy(sha256).write_bytes(b"\x28\xb5\x2f\xfd" + os.urandom(5000))  # zstd magic, then noise
    with pytest.raises(DeployFailed, match="upload of release 1 failed"):
        project.deploy()
    assert not cached_copy(sha256).exists()
    project.output.clear()
    project.deploy()
    assert "".join(project.output).count("as zstd") == 3
    for index in range(3):
        assert_tree(project, index, files)
