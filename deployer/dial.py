"""Dialling the hosts while the rest of start-up runs.

Loading Paramiko and Fabric takes about 0.1 s of a command's start-up. At a distance the
first SSH round trips (the TCP handshake, then the client's version line and the
server's reply with its key-exchange offer) can happen meanwhile: as soon as the stage's
config is read, each host is dialled in a background thread (waiting on the network
only) and sent our version line. By the time Paramiko starts its key exchange, the
server's version and offer are already waiting on the socket: a round trip or two less
per host, for the same bytes.

Only what is certain is dialled, never a guess: a host reached directly (no
``proxy_jump``), by the name and port the stage gives, and only when no OpenSSH config
file could send it elsewhere (``HostName``, ``Port``, ``ProxyJump``, ``ProxyCommand`` or
``Match`` in ``~/.ssh/config`` or ``/etc/ssh/ssh_config``). A dialled socket is used only
for the very address Fabric resolves, within :data:`FRESH` seconds; anything else is
closed unused, and the connection is made as it would have been.
"""

from __future__ import annotations

import re
import socket
import threading
import time
from pathlib import Path

from . import __version__
from .config import Config

# Our SSH version line (RFC 4253 4.2): sent here, and given to Paramiko's transport so
# the key exchange hashes the line that was really sent.
VERSION = f"SSH-2.0-sternway_{__version__}"
FRESH = 10.0  # seconds a dialled socket waits to be used (sshd's LoginGraceTime is 120 s)
SSH_CONFIGS = ("~/.ssh/config", "/etc/ssh/ssh_config")
REDIRECTING = re.compile(r"^\s*(hostname|port|proxyjump|proxycommand|match)\b", re.IGNORECASE | re.MULTILINE)

_dialled: dict[tuple[str, int], _Dial] = {}
_lock = threading.Lock()


def dial(config: Config) -> None:
    """Start dialling every host of ``config`` that is certainly reached directly."""
    if config.transport != "ssh" or config.ssh.proxy_jump is not None or _redirected():
        return
    for host in config.hosts:
        address = (host.host, int(host.port or 22))
        with _lock:
            if host.proxy_jump is None and address not in _dialled:
                _dialled[address] = _Dial(address, config.ssh.connect_timeout)


def take(host: str, port: int) -> Greeted | OSError | None:
    """The socket dialled to ``host:port`` if it is ready and fresh; the error if dialling
    failed (the same address, the same timeout: trying again would only wait twice as
    long for a host that does not answer); None if it was not dialled or is stale."""
    with _lock:
        found = _dialled.pop((host, port), None)
    return None if found is None else found.result()


def discard() -> None:
    """Close every dialled socket nobody took (the task is over)."""
    with _lock:
        left = list(_dialled.values())
        _dialled.clear()
    for found in left:
        found.close()


def _redirected() -> bool:
    """Could an OpenSSH config file send a host elsewhere than its name and port say?"""
    for name in SSH_CONFIGS:
        try:
            text = Path(name).expanduser().read_text(errors="replace")
        except OSError:
            continue
        if REDIRECTING.search(text):
            return True
    return False


class Greeted:
    """A connected TCP socket to which our version line was already sent.

    Paramiko writes its own version line first thing; that one write is dropped here
    (it is the line already sent), everything else goes to the real socket."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self._sent = (VERSION + "\r\n").encode()

    def send(self, data) -> int:
        if self._sent is not None:
            sent, self._sent = self._sent, None
            if bytes(data) == sent:
                return len(data)
            raise OSError("the SSH version line was already sent; the client sent another")
        return self.sock.send(data)

    def __getattr__(self, name: str):
        return getattr(self.sock, name)


class _Dial:
    """One host being dialled in the background."""

    def __init__(self, address: tuple[str, int], timeout: float) -> None:
        self.address = address
        self.timeout = timeout
        self.started = time.monotonic()
        self.sock: socket.socket | None = None
        self.error: OSError | None = None
        self.closed = False
        self.done = threading.Event()
        self.lock = threading.Lock()
        threading.Thread(target=self._run, name="deployer-dial", daemon=True).start()

    def _run(self) -> None:
        sock = None
        try:
            sock = socket.create_connection(self.address, timeout=self.timeout)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sock.sendall((VERSION + "\r\n").encode())
        except OSError as exc:
            if sock is not None:
                sock.close()
            sock, self.error = None, exc  # reported as a failed connection would be
        with self.lock:
            self.sock = sock
            if self.closed and sock is not None:
                sock.close()  # discarded while it was dialling
        self.done.set()

    def result(self) -> Greeted | OSError | None:
        if not self.done.wait(self.timeout + 1):
            self.close()
            return TimeoutError("timed out")
        if self.error is not None:
            return self.error
        if self.sock is None or time.monotonic() - self.started > FRESH:
            self.close()
            return None
        return Greeted(self.sock)

    def close(self) -> None:
        with self.lock:
            self.closed = True
            if self.sock is not None:
                self.sock.close()
