"""Fixtures for the fault-injection suite (issue 3).

Beyond tests/conftest.py (three SSH servers shared by the session, ``project``):
- ``fresh_hosts(count, **docker_run_kwargs)``: brand-new containers owned by one test, for
  destructive faults (docker kill, pause, tmpfs); removed afterwards even when paused;
- ``big_artifact``: a 200 MB tar of random data, built once per session, so an upload
  takes long enough to be interrupted while it runs;
- ``fresh_project``: a throwaway project deploying to hosts a test passes in.
"""

from __future__ import annotations

import io
import os
import tarfile
from pathlib import Path

import pytest
from project import Project

from .support import remove_containers

BIG_MB = 200


def _app_tar(path: Path, big_name: str, big_mb: int) -> Path:
    """A tar holding the test app (index.html, bin/migrate) plus ``big_mb`` MB of random bytes.

    It also holds a hard link inside the release (``index.htm`` -> ``index.html``), which
    is safe and makes the tool skip delta uploads: the upload starts at once instead of
    after building a 200 MB delta that would be thrown away."""
    with tarfile.open(path, "w") as tar:
        for name, data, mode in (
            ("index.html", b"big hello\n", 0o644),
            ("bin/migrate", b"#!/bin/sh\necho migrate\n", 0o755),
        ):
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), mode
            tar.addfile(info, io.BytesIO(data))
        link = tarfile.TarInfo("index.htm")
        link.type, link.linkname = tarfile.LNKTYPE, "index.html"
        tar.addfile(link)
        blob = path.with_suffix(".blob")
        with blob.open("wb") as fh:
            for _ in range(big_mb):
                fh.write(os.urandom(1024 * 1024))
        tar.add(blob, arcname=big_name)
        blob.unlink()
    return path


@pytest.fixture(scope="session")
def big_artifact(tmp_path_factory) -> Path:
    """200 MB of incompressible data: an upload to three hosts takes a few seconds."""
    return _app_tar(tmp_path_factory.mktemp("big") / "big.tar", "data/big.bin", BIG_MB)


@pytest.fixture(scope="session")
def medium_artifact(tmp_path_factory) -> Path:
    """16 MB of random data: twice what the 8 MB tmpfs of the disk-full test can hold."""
    return _app_tar(tmp_path_factory.mktemp("medium") / "medium.tar", "data/medium.bin", 16)


@pytest.fixture
def fresh_hosts(ssh_image, ssh_key):
    """Start containers that belong to this test only; all are removed at the end."""
    from sshd.hosts import start_hosts

    started: list = []

    def start(count: int = 3, **docker_run_kwargs):
        hosts = start_hosts(
            ssh_image, (ssh_key.parent / "id_ed25519.pub").read_text().strip(), count, **docker_run_kwargs
        )
        started.extend(hosts)
        return hosts

    yield start
    remove_containers(started)


@pytest.fixture
def fresh_project(tmp_path, ssh_key):
    """``fresh_project(hosts)``: a project deploying to the given hosts."""
    count = [0]

    def make(hosts) -> Project:
        count[0] += 1
        return Project.create(tmp_path / f"p{count[0]}", list(hosts), ssh_key)

    return make
