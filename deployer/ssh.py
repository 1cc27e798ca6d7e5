"""SSH sessions: one verified connection per host for a whole task.

Every step is a new channel on it (a few milliseconds with ``TCP_NODELAY``), and an
upload is one stream into ``tar`` on a single channel, never one SFTP call per file.
Host keys come from the configured known_hosts file only; a changed key is refused.
"""

from __future__ import annotations

import logging
import os
import select
import socket
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from .config import Config, Host
from .errors import CommandTimeout, DeployFailed, HostUnreachable, Interrupted
from .shell import argv
from .transport import Progress, Result, describe, no_trace

if TYPE_CHECKING:  # paramiko and fabric are imported only when a host is contacted
    import paramiko

# Paramiko logs connection errors itself; without a handler Python would print them with a
# traceback. The one-line error we raise says everything.
logging.getLogger("paramiko").addHandler(logging.NullHandler())
logging.getLogger("paramiko").propagate = False

CHUNK = 256 * 1024
POLL = 0.5  # seconds between checks for Ctrl-C while a remote command runs
MAX_OUTPUT = 64 * 2**20  # bytes of output kept from one command (a fetch streams to a file instead)


class SshSession:
    """One SSH connection to a host, reused for every step of a task."""

    def __init__(self, host: Host, connection, timeout: float) -> None:
        self.host = host
        self.connection = connection
        self.timeout = timeout
        self.cancel = threading.Event()
        self.trace = no_trace

    @property
    def transport(self) -> paramiko.Transport:
        return self.connection.transport

    def _lost(self, during: str) -> HostUnreachable:
        return HostUnreachable(f"host {self.host.name}: connection lost {during}")

    def _open(self, script: str):
        self.trace(script)
        try:
            channel = self.transport.open_session(timeout=self.timeout)
            channel.settimeout(self.timeout)
            channel.exec_command(argv("sh", "-c", script))
            channel.script = script
        except Exception as exc:  # paramiko raises several kinds here; all mean the same
            raise HostUnreachable(
                f"host {self.host.name}: connection lost ({exc or type(exc).__name__})"
            ) from None
        return channel

    def _collect(self, channel, sink: BinaryIO | None = None) -> Result:
        """Drain stdout and stderr together (so neither can fill its window and stall the
        other) until the command exits; silence longer than the timeout abandons it.
        With a ``sink``, stdout is written there as it arrives instead of kept."""
        out, err = bytearray(), bytearray()
        quiet_since = time.monotonic()
        while True:
            while channel.recv_ready():
                data = channel.recv(CHUNK)
                if sink is not None:
                    sink.write(data)
                else:
                    out += data
            while channel.recv_stderr_ready():
                err += channel.recv_stderr(CHUNK)
            if len(out) + len(err) > MAX_OUTPUT:
                channel.close()
                raise self._too_much(channel)
            finished = channel.exit_status_ready() and (channel.eof_received or channel.closed)
            if finished and not channel.recv_ready() and not channel.recv_stderr_ready():
                break  # the exit status can arrive before the last output: wait for EOF too
            if not self.transport.is_active() or (channel.closed and not channel.exit_status_ready()):
                raise self._lost("while a command ran")
            if channel.eof_received:
                # All output is in; only the exit status is missing. (After EOF the channel
                # always looks readable, so select would spin.)
                channel.status_event.wait(POLL)
                readable = [channel] if channel.exit_status_ready() else []
            else:
                readable, _, _ = select.select([channel], [], [], POLL)
            if readable:
                quiet_since = time.monotonic()
            elif self.cancel.is_set():
                channel.close()
                raise Interrupted("interrupted")
            elif time.monotonic() - quiet_since > self.timeout:
                channel.close()
                raise self._timed_out(channel)
        code = channel.recv_exit_status()
        channel.close()
        if code == -1 and not self.transport.is_active():
            raise self._lost("while a command ran")
        return Result(code, out.decode(errors="replace"), err.decode(errors="replace"))

    def _too_much(self, channel) -> DeployFailed:
        """A command that prints without end (a hostile or broken host) is stopped: its
        output is kept in memory, and no step of ours prints anywhere near this much."""
        what = describe(getattr(channel, "script", ""))
        limit = MAX_OUTPUT // 2**20
        return DeployFailed(f"host {self.host.name}: {what} printed more than {limit} MB; stopped")

    def _timed_out(self, channel) -> Exception:
        """A silent command: a slow command on a live host (CommandTimeout, the deploy fails
        and is undone), or a host that stopped answering (HostUnreachable: not asked again)."""
        what = describe(getattr(channel, "script", ""))
        if self.alive():
            return CommandTimeout(
                f"host {self.host.name}: {what} gave no output for {self.timeout:g}s (ssh.command_timeout)"
            )
        return HostUnreachable(
            f"host {self.host.name}: stopped answering "
            f"({what} silent for {self.timeout:g}s, ssh.command_timeout)"
        )

    def alive(self, timeout: float = 5.0) -> bool:
        """Does the host still run a trivial command within ``timeout`` seconds?"""
        try:
            channel = self.transport.open_session(timeout=timeout)
            channel.exec_command("true")
            done = channel.status_event.wait(timeout)
            channel.close()
            return done
        except Exception:  # any failure to open or run means: not answering
            return False

    def run(self, script: str, stdin: bytes | None = None, read_only: bool = False) -> Result:
        return self.stream(script, [stdin] if stdin else [])

    def stream(self, script: str, chunks: Iterable[bytes], progress: Progress | None = None) -> Result:
        channel = self._open(script)
        try:
            for chunk in chunks:
                if self.cancel.is_set():
                    channel.close()
                    raise Interrupted("interrupted during upload")
                channel.sendall(chunk)
                if progress:
                    progress(len(chunk))
            channel.shutdown_write()
        except TimeoutError:
            channel.close()
            raise self._timed_out(channel) from None
        except (OSError, EOFError):
            if not self.transport.is_active():
                raise self._lost("during upload") from None
            # The remote command stopped reading; its exit code and stderr tell why.
        return self._collect(channel)

    def fetch(self, script: str, sink: BinaryIO) -> Result:
        """Run a read-only script whose (binary) stdout is streamed into ``sink``."""
        channel = self._open(script)
        channel.shutdown_write()
        return self._collect(channel, sink)

    def close(self) -> None:
        self.connection.close()


def known_hosts_name(host: str, port: int) -> str:
    """How OpenSSH names a host in known_hosts."""
    return host if port == 22 else f"[{host}]:{port}"


_KNOWN_HOSTS_LOCK = threading.Lock()


def _host_key_policy(known_hosts: Path, policy: str, name: str):
    import paramiko

    class Policy(paramiko.MissingHostKeyPolicy):
        """strict refuses unknown keys; accept-new records them. A changed key never gets
        here: paramiko raises BadHostKeyException before asking any policy."""

        def missing_host_key(self, client, hostname, key):
            if policy != "accept-new":
                raise HostUnreachable(
                    f"host {name}: unknown host key {key.get_name()} {key.fingerprint} "
                    f"(not in {known_hosts}, ssh.host_key_policy is strict); "
                    f"verify it and add it to {known_hosts}"
                )
            with _KNOWN_HOSTS_LOCK:
                known_hosts.parent.mkdir(parents=True, exist_ok=True)
                with known_hosts.open("a", encoding="ascii") as fh:
                    fh.write(f"{hostname} {key.get_name()} {key.get_base64()}\n")
                os.chmod(known_hosts, 0o600)

    return Policy()


def connect(config: Config, host: Host) -> SshSession:
    """Open one verified SSH connection to ``host``. Raises HostUnreachable naming it."""
    conn = _connection(config, host)
    _open_verified(conn, config, host)
    sock = conn.transport.sock
    if isinstance(sock, socket.socket):
        # Without this each small command waits on Nagle + delayed ACK (~40 ms).
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    conn.transport.set_keepalive(15)
    return SshSession(host, conn, config.ssh.command_timeout)


def _connection(config: Config, host: Host):
    """A Fabric connection, not yet open, whose host keys come from the configured
    known_hosts file only (read-only; Fabric's AutoAddPolicy is replaced)."""
    import paramiko
    from fabric import Connection

    opts = config.ssh
    known_hosts = Path(os.path.expanduser(opts.known_hosts))
    connect_kwargs: dict = {
        "banner_timeout": opts.connect_timeout,
        "auth_timeout": opts.connect_timeout,
        "channel_timeout": opts.connect_timeout,
    }
    if opts.identity_file:
        connect_kwargs["key_filename"] = [os.path.expanduser(opts.identity_file)]
    conn = Connection(
        host.host,
        user=host.user,
        port=host.port,
        connect_timeout=max(1, int(opts.connect_timeout)),
        connect_kwargs=connect_kwargs,
    )
    client = conn.client
    client._system_host_keys = paramiko.HostKeys()
    if known_hosts.is_file():
        try:
            client.load_system_host_keys(str(known_hosts))
        except (OSError, paramiko.SSHException) as exc:
            raise HostUnreachable(f"ssh.known_hosts: cannot read {known_hosts}: {exc}") from None
    client.set_missing_host_key_policy(_host_key_policy(known_hosts, opts.host_key_policy, host.name))
    return conn


def _open_verified(conn, config: Config, host: Host) -> None:
    """Open the connection; every way it can fail becomes one HostUnreachable line."""
    import paramiko

    name, timeout = host.name, config.ssh.connect_timeout
    known_hosts = Path(os.path.expanduser(config.ssh.known_hosts))
    started = time.monotonic()
    try:
        conn.open()
    except HostUnreachable:
        raise
    except paramiko.BadHostKeyException as exc:
        raise HostUnreachable(
            f"host {name}: host key CHANGED: expected {exc.expected_key.fingerprint}, offered "
            f"{exc.key.fingerprint} (per {known_hosts}); refusing, this may be a man-in-the-middle. "
            "If the change is legitimate: "
            f"ssh-keygen -R '{known_hosts_name(host.host, host.port or 22)}' -f {known_hosts}"
        ) from None
    except paramiko.AuthenticationException as exc:
        raise HostUnreachable(f"host {name}: authentication failed for user {conn.user!r} ({exc})") from None
    except TimeoutError:
        raise HostUnreachable(f"host {name}: no answer within {timeout:g}s (ssh.connect_timeout)") from None
    except (OSError, paramiko.SSHException, EOFError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
        silent = time.monotonic() - started >= timeout * 0.9
        if silent or "No existing session" in reason or "banner" in reason:
            raise HostUnreachable(
                f"host {name}: no SSH answer within {timeout:g}s (ssh.connect_timeout)"
            ) from None
        raise HostUnreachable(f"host {name}: cannot connect ({reason})") from None
