"""Dialling hosts during start-up (deployer.dial): only where no OpenSSH config can send
a host elsewhere, only the address asked for, and Paramiko's own version line is the one
write that is dropped."""

from __future__ import annotations

import socket
import threading
import time
from types import SimpleNamespace

import pytest

from deployer import dial


@pytest.fixture
def ssh_configs(tmp_path, monkeypatch):
    user = tmp_path / "config"
    monkeypatch.setattr(dial, "SSH_CONFIGS", (str(user), str(tmp_path / "absent")))
    yield user
    dial.discard()


@pytest.fixture
def listener():
    """A TCP server on 127.0.0.1 that records the first bytes of each connection."""
    server = socket.create_server(("127.0.0.1", 0))
    seen: list[bytes] = []

    def serve() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            seen.append(conn.recv(100))
            conn.close()

    threading.Thread(target=serve, daemon=True).start()
    yield server.getsockname()[1], seen
    server.close()


def stage(port: int, proxy_jump: str | None = None) -> SimpleNamespace:
    """The parts of a Config that dialling reads."""
    host = SimpleNamespace(host="127.0.0.1", port=port, proxy_jump=None)
    ssh = SimpleNamespace(proxy_jump=proxy_jump, connect_timeout=5.0)
    return SimpleNamespace(transport="ssh", ssh=ssh, hosts=[host])


@pytest.mark.parametrize(
    "text",
    [
        "Host web\n  HostName 10.0.0.5\n",
        "host *\n\tport 2222\n",
        "ProxyJump b\n",
        "Match all\n",
        "PROXYCOMMAND x\n",
    ],
)
def test_an_ssh_config_that_can_redirect_means_no_dialling(ssh_configs, text):
    ssh_configs.write_text(text)
    assert dial._redirected()


def test_comments_and_harmless_options_do_not_stop_dialling(ssh_configs):
    ssh_configs.write_text("# HostName x\nHost *\n  SendEnv LANG\n  HashKnownHosts yes\n#   Port 22\n")
    assert not dial._redirected()


def test_a_dialled_host_hears_our_version_line_and_the_socket_is_handed_over(ssh_configs, listener):
    port, seen = listener
    dial.dial(stage(port))
    greeted = dial.take("127.0.0.1", port)
    assert greeted is not None
    assert dial.take("127.0.0.1", port) is None  # taken once
    assert greeted.send((dial.VERSION + "\r\n").encode()) == len(dial.VERSION) + 2  # dropped
    greeted.close()
    dial.discard()
    deadline = time.monotonic() + 5
    while not seen and time.monotonic() < deadline:  # the listener's thread records it
        time.sleep(0.01)
    assert seen[0].startswith(dial.VERSION.encode() + b"\r\n")


def test_another_first_line_is_refused_rather_than_sent_twice():
    left, right = socket.socketpair()
    with pytest.raises(OSError):
        dial.Greeted(left).send(b"SSH-2.0-other\r\n")
    left.close(), right.close()


def test_nothing_is_dialled_behind_a_bastion_or_for_another_address(ssh_configs, listener):
    port, _ = listener
    dial.dial(stage(port, proxy_jump="deploy@127.0.0.1:1"))
    assert dial.take("127.0.0.1", port) is None
    dial.dial(stage(port))
    assert dial.take("127.0.0.1", port + 1) is None  # not the address asked for


def test_a_stale_dial_is_closed_not_used(ssh_configs, listener, monkeypatch):
    port, _ = listener
    monkeypatch.setattr(dial, "FRESH", -1.0)
    dial.dial(stage(port))
    assert dial.take("127.0.0.1", port) is None


def test_a_failed_dial_is_the_answer_not_a_reason_to_wait_again(ssh_configs):
    """A host that refused (or did not answer) the dial gives that error back: connecting
    again to the same address would only double the wait for a host that is down."""
    probe = socket.create_server(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()  # nothing listens there now
    dial.dial(stage(port))
    assert isinstance(dial.take("127.0.0.1", port), ConnectionRefusedError)
