"""Commands start without waiting for the host's replies (``deployer.channels``): the exec
request is not waited for and the next channel is opened while a command runs. What a
host receives and returns must be exactly what it was before, and a host that allows one
session at a time must still be deployed to."""

from __future__ import annotations

import hashlib

import pytest
from project import Project
from sshd.hosts import start_hosts

from deployer import dial
from deployer.config import load
from deployer.ssh import connect

pytestmark = pytest.mark.ssh


def test_stdin_sent_before_the_exec_reply_arrives_whole_and_in_order(project):
    config = load(project.root, "test")
    session = connect(config, config.hosts[0])
    try:
        payload = bytes(range(256)) * 8192  # 2 MiB: far more than one window
        for n in range(20):  # each command on the spare opened during the one before it
            result = session.run(f"echo {n}; sha256sum", stdin=payload)
            assert result.ok and result.stdout.split() == [str(n), hashlib.sha256(payload).hexdigest(), "-"]
        assert session.spares.enabled
    finally:
        session.close()


def test_a_failing_command_on_a_spare_channel_reports_its_code_and_stderr(project):
    config = load(project.root, "test")
    session = connect(config, config.hosts[0])
    try:
        assert session.run("true").ok
        failed = session.run("echo nope >&2; exit 7")
        assert (failed.exit_code, failed.stderr) == (7, "nope\n")
        assert session.run("echo after").stdout == "after\n"
    finally:
        session.close()


@pytest.fixture
def one_session_host(ssh_image, ssh_key):
    """An sshd that allows one session per connection (``MaxSessions 1``), as some hardened
    hosts do: the spare channel is refused while a command runs. (The image's entry point
    sets MaxSessions on sshd's command line, which no drop-in file overrides.)"""
    one = "sed 's/MaxSessions=64/MaxSessions=1/' /usr/local/bin/start-sshd > /tmp/start && exec sh /tmp/start"
    key = (ssh_key.parent / "id_ed25519.pub").read_text().strip()
    (host,) = start_hosts(ssh_image, key, 1, entrypoint=["/bin/sh", "-c", one])
    try:
        assert "MaxSessions=1" in host.sh("ps -o args= -C sshd", user="root")
        yield host
    finally:
        host.stop()


def test_a_host_that_allows_one_session_is_deployed_and_rolled_back(tmp_path, one_session_host, ssh_key):
    project = Project.create(tmp_path, [one_session_host], ssh_key)
    for _ in range(2):
        result = project.invoke("deploy", "--stage=test")
        assert result.returncode == 0, result.stderr
    assert project.current() == "releases/2" and project.release_dirs() == [1, 2]
    result = project.invoke("rollback", "--stage=test")
    assert result.returncode == 0, result.stderr
    assert project.current() == "releases/1"
    config = load(project.root, "test")
    session = connect(config, config.hosts[0])
    try:
        assert [session.run(f"echo {n}").stdout for n in range(3)] == ["0\n", "1\n", "2\n"]
        assert not session.spares.enabled  # refused once, then one channel at a time
    finally:
        session.close()


def test_a_host_dialled_during_start_up_is_still_verified_against_known_hosts(project):
    """The command line dials hosts before Paramiko loads (deployer.dial); the key exchange
    on that socket is checked exactly like any other: a changed key is refused."""
    known = project.root / "known_hosts"
    lines = known.read_text().splitlines()
    lines[0] = lines[0].split()[0] + " " + " ".join(lines[1].split()[1:])  # host 0 shows host 1's key
    known.write_text("\n".join(lines) + "\n")
    result = project.invoke("deploy", "--stage=test")
    assert result.returncode == 4, result.stderr
    assert "host key CHANGED" in result.stderr and "Traceback" not in result.stderr
    assert [project.release_dirs(i) for i in range(3)] == [[], [], []]


def test_a_dialled_socket_carries_the_whole_session(project):
    """The socket dialled ahead is the one the session runs on: its key exchange hashed the
    version line deployer.dial sent, and commands run on it."""
    config = load(project.root, "test")
    dial.dial(config)
    session = connect(config, config.hosts[0])
    try:
        assert isinstance(session.transport.sock, dial.Greeted)  # the socket dialled ahead
        assert session.transport.local_version == dial.VERSION
        assert session.transport.local_cipher == "aes128-gcm@openssh.com"  # preferred, and sshd has it
        assert session.run("echo on-it").stdout == "on-it\n"
    finally:
        session.close()
        dial.discard()
