"""Shared fixtures: SSH hosts in containers and throwaway projects that deploy to them."""

from __future__ import annotations

import signal
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

# A run started in the background by a non-interactive shell inherits SIGINT ignored; the
# Ctrl-C tests (fake hosts press it with _thread.interrupt_main) need what a terminal gives.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

from project import Project
from sshd.hosts import build_image, make_keypair, start_hosts


@pytest.fixture(scope="session")
def ssh_image() -> str:
    return build_image()


@pytest.fixture(scope="session")
def ssh_key(tmp_path_factory) -> Path:
    return make_keypair(tmp_path_factory.mktemp("keys"))


@pytest.fixture(scope="session")
def ssh_hosts(ssh_image, ssh_key):
    """Three SSH servers shared by the session; tests isolate by deploy_to."""
    hosts = start_hosts(ssh_image, (ssh_key.parent / "id_ed25519.pub").read_text().strip(), 3)
    yield hosts
    for host in hosts:
        host.stop()


@pytest.fixture
def project(tmp_path, ssh_hosts, ssh_key) -> Project:
    """A project deploying to the three shared hosts, each test in its own deploy_to."""
    return Project.create(tmp_path, ssh_hosts, ssh_key)


@pytest.fixture
def local_project(tmp_path) -> Project:
    """A project using the local transport in a temporary folder."""
    return Project.create(tmp_path, [], None)


def pytest_collection_modifyitems(items) -> None:
    """Every test that needs a container is marked ``ssh``, so ``-m "not ssh"`` is the
    fast tier (unit tests, fake hosts, the local transport) whatever a file forgot to mark."""
    for item in items:
        if {"ssh_hosts", "ssh_image"} & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.ssh)
