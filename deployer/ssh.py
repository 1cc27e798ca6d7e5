"""SSH sessions: one verified connection per host for a whole task.

Every step is a new channel on it (a few milliseconds with ``TCP_NODELAY``), and an
upload is one stream into ``tar`` on a single channel, never one SFTP call per file.
Host keys come from the configured known_hosts file only; a changed key is refused. A host
behind bastions (``proxy_jump``) is reached over a ``direct-tcpip`` channel of one shared,
equally verified connection per bastion (:mod:`deployer.bastion`).
"""

from __future__ import annotations

import logging
import select
import threading
import time
from collections.abc import Iterable
from dataclasses import replace
from typing import TYPE_CHECKING, BinaryIO

from . import jumps
from .bastion import POOL, HopFailed, Lease
from .channels import Spares, exec_without_waiting, refused
from .config import Config, Host
from .errors import CommandTimeout, ConfigError, DeployFailed, HostUnreachable, Interrupted
from .handshake import Endpoint, connection, open_verified, unreachable
from .jumps import Hop
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

    def __init__(
        self,
        host: Host,
        connection,
        timeout: float,
        route: tuple[Hop, ...] = (),
        lease: Lease | None = None,
        deadline: float = float("inf"),
    ) -> None:
        self.host = host
        self.connection = connection
        self.timeout = timeout
        self.route = route  # the bastions it is reached through, outermost first
        self.lease = lease
        self.deadline = deadline  # ssh.command_deadline
        self.cancel = threading.Event()
        self.trace = no_trace
        self.spares = Spares(connection.transport, timeout)

    @property
    def transport(self) -> paramiko.Transport:
        return self.connection.transport

    @property
    def where(self) -> str:
        """How a lost connection names the host: with the bastions it went through, since
        the link to any of them may be what dropped."""
        return f"host {self.host.name}" + (f" (through {jumps.describe(self.route)})" if self.route else "")

    def _lost(self, during: str) -> HostUnreachable:
        return HostUnreachable(f"{self.where}: connection lost {during}")

    def _open(self, script: str):
        self.trace(script)
        try:
            channel = self.spares.take()
            channel.settimeout(self.timeout)
            exec_without_waiting(channel, argv("sh", "-c", script))
            channel.script = script
        except Exception as exc:  # paramiko raises several kinds here; all mean the same
            raise HostUnreachable(f"{self.where}: connection lost ({exc or type(exc).__name__})") from None
        return channel

    def _collect(self, channel, sink: BinaryIO | None = None) -> Result:
        """Drain stdout and stderr together (so neither can fill its window and stall the
        other) until the command exits; silence longer than the timeout abandons it.
        With a ``sink``, stdout is written there as it arrives instead of kept."""
        out, err = bytearray(), bytearray()
        quiet_since = started = time.monotonic()
        while True:
            while channel.recv_ready() and len(out) + len(err) <= MAX_OUTPUT:
                data = channel.recv(CHUNK)
                if sink is not None:
                    sink.write(data)
                else:
                    out += data
            while channel.recv_stderr_ready() and len(out) + len(err) <= MAX_OUTPUT:
                err += channel.recv_stderr(CHUNK)
            if len(out) + len(err) > MAX_OUTPUT:
                channel.close()
                raise self._too_much(channel)
            finished = channel.exit_status_ready() and (channel.eof_received or channel.closed)
            if finished and not channel.recv_ready() and not channel.recv_stderr_ready():
                break  # the exit status can arrive before the last output: wait for EOF too
            if refused(channel):
                raise HostUnreachable(f"{self.where}: refused to run {describe(channel.script)}")
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
            if time.monotonic() - started > self.deadline:
                channel.close()
                what = describe(getattr(channel, "script", ""))
                raise CommandTimeout(
                    f"{self.where}: {what} still running after {self.deadline:g}s "
                    "(ssh.command_deadline); stopped"
                )
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
            f"{self.where}: stopped answering ({what} silent for {self.timeout:g}s, ssh.command_timeout)"
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
        self.spares.close()
        self.connection.close()
        if self.lease is not None:
            lease, self.lease = self.lease, None
            lease.release()


def connect(config: Config, host: Host) -> SshSession:
    """Open one verified SSH connection to ``host``, through its bastions if it has any
    (each verified the same way, one shared connection per bastion). Raises
    HostUnreachable naming the host and, if one failed, the bastion."""
    end = Endpoint(f"host {host.name}", host.host, host.port, host.user)
    conn = connection(config, end)
    route = _route(config, host, conn)
    if not route:
        open_verified(conn, config, end)
        return SshSession(host, conn, config.ssh.command_timeout, deadline=config.ssh.command_deadline)
    lease = _lease(config, host, route)
    try:
        sock = _channel(config, lease.conn, conn.host, int(conn.port or 22), f"host {host.name}", route)
        open_verified(conn, config, replace(end, sock=sock))
    except BaseException:
        lease.release()
        raise
    return SshSession(host, conn, config.ssh.command_timeout, route, lease, config.ssh.command_deadline)


def routes(config: Config) -> dict[str, tuple[Hop, ...]]:
    """Each host's bastions as :func:`connect` chooses them (reads ~/.ssh/config, opens nothing)."""
    found = {}
    for host in config.hosts:
        try:
            found[host.name] = _route(
                config, host, connection(config, Endpoint("", host.host, host.port, host.user))
            )
        except (ConfigError, HostUnreachable):
            found[host.name] = ()  # connect() reports it
    return found


def _route(config: Config, host: Host, conn) -> tuple[Hop, ...]:
    """The host's bastions: its own ``proxy_jump``, else the stage's, else ``ProxyJump``
    from ~/.ssh/config (Fabric has read it into ``conn.ssh_config``). Fabric's gateway for
    that line is dropped whatever we choose: it would trust any bastion key."""
    from_file = conn.ssh_config.get("proxyjump")
    if from_file is not None:
        conn.gateway = False  # Fabric's gateway for the line (ProxyJump wins over ProxyCommand, as in ssh)
    if from_file is not None and host.proxy_jump is None and config.ssh.proxy_jump is None:
        try:
            if any(hop.host == conn.host for hop in jumps.parse(from_file)):
                from_file = None  # a wildcard ProxyJump naming this host itself (Fabric and ssh skip it too)
        except ValueError as exc:
            raise ConfigError(f"~/.ssh/config: ProxyJump for {host.host}: {exc}") from None
    route = jumps.choose(host.proxy_jump, config.ssh.proxy_jump, from_file)
    if route:
        conn.gateway = False
    return route


def _lease(config: Config, host: Host, route: tuple[Hop, ...]) -> Lease:
    """The shared connection to the last bastion of ``route``, opened if need be."""

    def dial(prefix: tuple[Hop, ...], parent) -> object:
        hop = prefix[-1]
        end = Endpoint(f"bastion {hop}", hop.host, hop.port, hop.user)
        conn = connection(config, end)
        conn.gateway = False  # a bastion's own ProxyJump line is not followed: the route says it all
        if parent is not None:
            sock = _channel(config, parent, conn.host, int(conn.port or 22), end.who, prefix[:-1])
            end = replace(end, sock=sock)
        open_verified(conn, config, end)
        return conn

    try:
        return POOL.lease(config.ssh, route, dial)
    except HopFailed as failed:
        raise HostUnreachable(
            f"host {host.name} {jumps.reach(route[: failed.depth])}: {failed.problem}"
        ) from None


def _channel(config: Config, bastion, address: str, port: int, who: str, route: tuple[Hop, ...]):
    """A ``direct-tcpip`` channel from ``bastion`` (the last hop of ``route``) to
    ``address:port``: the bastion makes the TCP connection, within ``ssh.connect_timeout``."""
    import paramiko

    timeout = config.ssh.connect_timeout
    via = jumps.describe(route)
    try:
        return bastion.transport.open_channel(
            "direct-tcpip", dest_addr=(address, port), src_addr=("", 0), timeout=timeout
        )
    except paramiko.ChannelException as exc:
        raise unreachable(who, f"{via} cannot reach {address}:{port} ({exc.text})") from None
    except (paramiko.SSHException, OSError, EOFError) as exc:
        if "Timeout" in str(exc):
            raise unreachable(
                who, f"{via} opened no channel to {address}:{port} within {timeout:g}s (ssh.connect_timeout)"
            ) from None
        raise unreachable(who, f"connection to {via} lost ({exc or type(exc).__name__})") from None
