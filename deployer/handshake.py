"""Opening one verified SSH connection: to a host, or to a bastion on the way to one.

Host keys come from the configured known_hosts file only, with the stage's
``host_key_policy``, on every hop alike; a changed key is always refused. Every way a
handshake can fail becomes one :class:`HostUnreachable` line naming who was being reached.
Fabric's own gateways (built from a ``ProxyJump`` line, with an AutoAddPolicy client that
trusts any key) are never used: :mod:`deployer.ssh` opens the hops itself, through here.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import dial
from .config import Config
from .errors import HostUnreachable

PREFERRED_CIPHERS = ("aes128-gcm@openssh.com", "aes256-gcm@openssh.com")


@dataclass(frozen=True)
class Endpoint:
    """Something to log in to. ``who`` is how errors name it (``host web1``, ``bastion
    deploy@127.0.0.1:2201``); ``sock`` is the channel to reach it through, if any."""

    who: str
    host: str
    port: int | None
    user: str | None
    sock: Any = None


def unreachable(who: str, problem: str) -> HostUnreachable:
    """``<who>: <problem>``, with the problem kept apart so a bastion's can be told per host."""
    error = HostUnreachable(f"{who}: {problem}")
    error.problem = problem
    return error


def known_hosts_name(host: str, port: int) -> str:
    """How OpenSSH names a host in known_hosts."""
    return host if port == 22 else f"[{host}]:{port}"


_KNOWN_HOSTS_LOCK = threading.Lock()


def known_hosts_source(opts) -> str:
    """Where host keys come from, as messages name it: the file, or the variable."""
    if opts.known_hosts_env:
        return f"${opts.known_hosts_env} (ssh.known_hosts_env)"
    return str(Path(os.path.expanduser(opts.known_hosts)))


def _host_key_policy(known_hosts: Path, policy: str, who: str, source: str):
    import paramiko

    class Policy(paramiko.MissingHostKeyPolicy):
        """strict refuses unknown keys; accept-new records them. A changed key never gets
        here: paramiko raises BadHostKeyException before asking any policy."""

        def missing_host_key(self, client, hostname, key):
            if policy != "accept-new":
                raise unreachable(
                    who,
                    f"unknown host key {key.get_name()} {key.fingerprint} "
                    f"(not in {source}, ssh.host_key_policy is strict); "
                    f"verify it and add it to {source}",
                )
            with _KNOWN_HOSTS_LOCK:
                known_hosts.parent.mkdir(parents=True, exist_ok=True)
                with known_hosts.open("a", encoding="ascii") as fh:
                    fh.write(f"{hostname} {key.get_name()} {key.get_base64()}\n")
                os.chmod(known_hosts, 0o600)

    return Policy()


def connection(config: Config, end: Endpoint):
    """A Fabric connection, not yet open, whose host keys come from the configured
    known_hosts file only (read-only; Fabric's AutoAddPolicy is replaced). ``~/.ssh/config``
    still supplies HostName, Port, User and IdentityFile."""
    import paramiko
    from fabric import Connection

    opts = config.ssh
    known_hosts = Path(os.path.expanduser(opts.known_hosts))
    connect_kwargs: dict = {
        "banner_timeout": opts.connect_timeout,
        "auth_timeout": opts.connect_timeout,
        "channel_timeout": opts.connect_timeout,
    }
    if opts.identity_env:  # the key from the variable, and no other (none is looked for on disk)
        from .envkeys import identity

        connect_kwargs.update(pkey=identity(opts), look_for_keys=False, allow_agent=False)
    elif opts.identity_file:
        connect_kwargs["key_filename"] = [os.path.expanduser(opts.identity_file)]
    conn = Connection(
        end.host,
        user=end.user,
        port=end.port,
        connect_timeout=max(1, int(opts.connect_timeout)),
        connect_kwargs=connect_kwargs,
    )
    client = conn.client
    client._system_host_keys = paramiko.HostKeys()
    if opts.known_hosts_env:
        from .envkeys import host_keys

        client._system_host_keys = host_keys(opts)
    elif known_hosts.is_file():
        try:
            client.load_system_host_keys(str(known_hosts))
        except (OSError, paramiko.SSHException) as exc:
            raise HostUnreachable(f"ssh.known_hosts: cannot read {known_hosts}: {exc}") from None
    client.set_missing_host_key_policy(
        _host_key_policy(known_hosts, opts.host_key_policy, end.who, known_hosts_source(opts))
    )
    return conn


def open_verified(conn, config: Config, end: Endpoint) -> None:
    """Open the connection (through ``end.sock`` if given); every way it can fail becomes
    one HostUnreachable line naming ``end.who``."""
    import paramiko

    timeout = config.ssh.connect_timeout
    if end.sock is not None:
        conn.connect_kwargs["sock"] = end.sock
    dialled = dial.take(conn.host, int(conn.port or 22)) if end.sock is None and not conn.gateway else None
    if isinstance(dialled, dial.Greeted):
        conn.connect_kwargs["sock"] = dialled
    conn.connect_kwargs["transport_factory"] = _transport
    started = time.monotonic()
    try:
        if isinstance(dialled, OSError):
            raise dialled  # dialling it during start-up failed: the answer a connect would get
        _open(conn, end)
    except HostUnreachable:
        raise
    except paramiko.BadHostKeyException as exc:
        raise unreachable(
            end.who,
            f"host key CHANGED: expected {exc.expected_key.fingerprint}, offered "
            f"{exc.key.fingerprint} (per {known_hosts_source(config.ssh)}); refusing, this may be a "
            f"man-in-the-middle. If the change is legitimate: {_forget(config, conn)}",
        ) from None
    except paramiko.AuthenticationException as exc:
        raise unreachable(end.who, f"authentication failed for user {conn.user!r} ({exc})") from None
    except TimeoutError:
        raise unreachable(end.who, f"no answer within {timeout:g}s (ssh.connect_timeout)") from None
    except (OSError, paramiko.SSHException, EOFError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
        silent = time.monotonic() - started >= timeout * 0.9
        if silent or "No existing session" in reason or "banner" in reason:
            raise unreachable(end.who, f"no SSH answer within {timeout:g}s (ssh.connect_timeout)") from None
        raise unreachable(end.who, f"cannot connect ({reason})") from None
    tune(conn)


def _transport(sock, **kwargs):
    """A Paramiko transport that prefers AES-GCM and names itself with our version line,
    on every connection alike: on a dialled socket that line was already sent by
    :mod:`deployer.dial` (Paramiko's write of it is dropped unsent), and the key exchange
    must hash the line really sent.

    AES-GCM authenticates as it encrypts, so no separate HMAC runs over every packet:
    streaming 48 MiB took 0.10-0.12 s of client CPU against 0.15-0.20 s for Paramiko's
    first choice (aes128-ctr with hmac-sha2-256), on this machine. It is a preference
    only: a server without it agrees on the next cipher both sides allow."""
    import paramiko

    transport = paramiko.Transport(sock, **kwargs)
    options = transport.get_security_options()
    preferred = tuple(c for c in PREFERRED_CIPHERS if c in options.ciphers)
    options.ciphers = preferred + tuple(c for c in options.ciphers if c not in preferred)
    transport.local_version = dial.VERSION  # on a dialled socket: the line already sent
    return transport


def _forget(config: Config, conn) -> str:
    """How to drop a host's old key: from the file, or from the variable's value."""
    name = known_hosts_name(conn.host, int(conn.port or 22))
    if config.ssh.known_hosts_env:
        return f"replace the line for {name} in {config.ssh.known_hosts_env} with the new, verified key"
    known_hosts = Path(os.path.expanduser(config.ssh.known_hosts))
    return f"ssh-keygen -R '{name}' -f {known_hosts}"


def _open(conn, end: Endpoint) -> None:
    """Open; on any failure close what was started (the transport's thread, the channel
    through a bastion, which would otherwise stay open on the bastion's connection)."""
    try:
        conn.open()
    except BaseException:
        conn.client.close()
        if end.sock is not None:
            end.sock.close()
        raise


def tune(conn) -> None:
    """``TCP_NODELAY`` on a real socket (without it each small command waits on Nagle plus
    delayed ACK, about 40 ms; a channel through a bastion rides on the bastion's socket),
    and keepalives so a dead link is noticed."""
    sock = conn.transport.sock
    if isinstance(sock, socket.socket):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    conn.transport.set_keepalive(15)
