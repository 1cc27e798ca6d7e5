"""The SSH servers both tools deploy to, and the counters read from them.

The containers come from the project's own test image and helpers (tests/sshd/hosts.py).
Two things are added for measuring, both from outside SSH so they cost the tools nothing:

* ``/srv`` is a tmpfs (deploy_to lives there), so server-side disk speed does not add noise;
* sshd logs at ``LogLevel VERBOSE`` (a drop-in plus SIGHUP), so every TCP connection
  ("Connection from"), login ("Accepted publickey") and remote command ("Starting
  session") is a line in sshd's own /var/log/sshd.log (counted) and, copied, in
  ``docker logs`` (timestamped by Docker: the time of the first connection).

Counters are read with the Docker API (``exec``, logs), never over SSH, and every
address involved is 127.0.0.1.
"""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TypeVar

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))

from sshd.bastion import address_on, docker_cli, seal_resolver  # noqa: E402  (needs the path above)
from sshd.hosts import SshHost, build_image, make_keypair, start_hosts  # noqa: E402

T = TypeVar("T")
TMPFS_BYTES = 3 * 1024**3
VERBOSE_DROP_IN = "/etc/ssh/sshd_config.d/zz-benchmark.conf"
LISTENING = "Server listening on 0.0.0.0"


@dataclass(frozen=True)
class Counters:
    """What one host has seen so far; two snapshots give what one command did."""

    logins: int
    connections: int
    sessions: int
    rx_bytes: int
    connection_times: tuple[float, ...]  # epoch seconds of each "Connection from" line

    def minus(self, before: Counters) -> Counters:
        return Counters(
            self.logins - before.logins,
            self.connections - before.connections,
            self.sessions - before.sessions,
            self.rx_bytes - before.rx_bytes,
            self.connection_times[len(before.connection_times) :],
        )


@dataclass
class BenchHost:
    """One sshd container: its published port and the Docker handle the counters use."""

    ssh: SshHost
    docker_container: object  # docker.models.containers.Container
    relay_port: int | None = None  # where the tools connect instead, through the latency relay

    @property
    def port(self) -> int:
        return self.ssh.port

    @property
    def client_port(self) -> int:
        """The port the tools are given: the relay's, once one is in front of the container."""
        return self.relay_port or self.ssh.port

    def exec(self, script: str, user: str = "deploy") -> str:
        """Run a script in the container via Docker (not SSH: it must not count)."""
        code, output = self.docker_container.exec_run(["sh", "-c", script], user=user, demux=False)
        text = (output or b"").decode(errors="replace")
        if code != 0:
            raise RuntimeError(
                f"in container {self.ssh.name}: {script!r} exited {code}: {text.strip()[-500:]}"
            )
        return text

    def counters(self, timeout: float = 10) -> Counters:
        """Count sshd's own log lines and read eth0's received bytes (includes SSH framing).

        The counts come from /var/log/sshd.log (and .1, earlier boots), which sshd writes
        itself before a session starts, as ``SshHost.logins`` reads it: ``docker logs`` is
        copied asynchronously and can lag. Only the connection times are taken from
        ``docker logs`` (the file has no timestamps), once it has caught up with the file."""
        text = self.exec(
            "cat /var/log/sshd.log.1 /var/log/sshd.log; echo; cat /sys/class/net/eth0/statistics/rx_bytes",
            user="root",
        )
        *lines, rx = text.rstrip("\n").split("\n")
        connections = sum(" Connection from " in f" {line}" for line in lines)
        return Counters(
            logins=sum("Accepted publickey" in line for line in lines),
            connections=connections,
            sessions=sum("Starting session:" in line for line in lines),
            rx_bytes=int(rx.strip()),
            connection_times=self._connection_times(connections, timeout),
        )

    def _connection_times(self, count: int, timeout: float) -> tuple[float, ...]:
        """Docker's timestamps of the "Connection from" lines, waiting (bounded) until the
        copy in ``docker logs`` holds as many as sshd's own file."""
        deadline = time.monotonic() + timeout
        while True:
            log = self.docker_container.logs(stdout=True, stderr=True, timestamps=True)
            lines = log.decode(errors="replace").splitlines()
            times = tuple(_stamp(line) for line in lines if " Connection from " in line)
            if len(times) >= count or time.monotonic() > deadline:
                return times
            time.sleep(0.05)

    def host_key_line(self) -> str:
        return self.ssh.host_key_line()

    def known_hosts_lines(self) -> str:
        """The host key under its own port and, if there is one, under its relay's port."""
        line = self.ssh.host_key_line()
        text = line + "\n"
        if self.relay_port:
            text += line.replace(f"[127.0.0.1]:{self.port} ", f"[127.0.0.1]:{self.relay_port} ", 1) + "\n"
        return text


def _stamp(line: str) -> float:
    """Docker's RFC 3339 timestamp (nanoseconds, UTC) at the start of a log line, as epoch seconds."""
    stamp = line.split(" ", 1)[0]
    whole, _, fraction = stamp.rstrip("Z").partition(".")
    return datetime.fromisoformat(whole + "+00:00").timestamp() + float("0." + (fraction or "0"))


def parallel(items: Sequence[T], action: Callable[[T], object]) -> list:
    """Apply ``action`` to every item at once: 16 Docker calls in a row would take seconds."""
    with ThreadPoolExecutor(max_workers=max(1, len(items))) as pool:
        return list(pool.map(action, items))


def start(count: int, folder: Path) -> tuple[list[BenchHost], Path, Path]:
    """Start ``count`` servers; returns them, the private key and a known_hosts file."""
    import docker
    from docker.types import Mount

    key = make_keypair(folder)
    public = key.with_suffix(".pub").read_text().strip()
    tmpfs = Mount(target="/srv", source="", type="tmpfs", tmpfs_size=TMPFS_BYTES)
    started = start_hosts(build_image(), public, count, mounts=[tmpfs])
    client = docker.DockerClient.from_env(max_pool_size=max(10, 2 * count))
    hosts = [BenchHost(h, client.containers.get(h.container_id)) for h in started]
    try:
        parallel(hosts, prepare)
    except BaseException:
        stop(hosts)
        raise
    known_hosts = folder / "known_hosts"
    write_known_hosts(hosts, known_hosts)
    return hosts, key, known_hosts


def write_known_hosts(hosts: Sequence[BenchHost], path: Path) -> None:
    """Every host's key under its own port and its relay's (a bastion appends its own later)."""
    path.write_text("".join(h.known_hosts_lines() for h in hosts))


def prepare(host: BenchHost, timeout: float = 30) -> None:
    """Open /srv to ``deploy`` and switch sshd to VERBOSE logging, then wait until it listens again."""
    host.exec(f"chmod 1777 /srv && echo 'LogLevel VERBOSE' > {VERBOSE_DROP_IN} && kill -HUP 1", user="root")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:  # sshd re-executes itself and logs "Server listening" again
        if host.docker_container.logs().decode(errors="replace").count(LISTENING) >= 2:
            return
        time.sleep(0.1)
    raise RuntimeError(f"{host.ssh.name}: sshd did not come back after SIGHUP within {timeout:g}s")


def snapshot(hosts: Sequence[BenchHost]) -> list[Counters]:
    """Counters of every host, read in parallel."""
    return parallel(hosts, BenchHost.counters)


def tree_digest(host: BenchHost, path: str, excluded: Sequence[str]) -> str:
    """The digest of workloads.tree_digest(), computed in the container over ``path``.

    ``excluded`` are the tools' own top-level files (release metadata), e.g. ``./REVISION``."""
    skip = " ".join(f"! -path '{pattern}'" for pattern in excluded)
    script = (
        f"cd {path} && find . -type f {skip} -print0 | LC_ALL=C sort -z "
        f"| xargs -0 -r sha256sum | sha256sum | cut -d' ' -f1"
    )
    return host.exec(script).strip()


def remove(hosts: Sequence[BenchHost], path: str) -> None:
    """Delete a deploy_to on every host (frees the tmpfs between runs)."""
    parallel(hosts, lambda h: h.exec(f"rm -rf -- {path}", user="root"))


def stop(hosts: Sequence[BenchHost]) -> None:
    """Remove the containers this run started (and only those)."""
    parallel(hosts, lambda h: h.ssh.stop())


@dataclass
class Bastion:
    """A bastion in front of the bench hosts: its port is published on 127.0.0.1, and it
    reaches the hosts on an ``--internal`` Docker network this run creates, by names that
    its /etc/hosts maps to their addresses there (its resolver answers nothing else, so no
    DNS query leaves the machine: see ``sshd.bastion.seal_resolver``)."""

    host: BenchHost
    network: str
    aliases: dict[int, str]  # a bench host's published port -> its name on the network

    @property
    def jump(self) -> str:
        return f"deploy@127.0.0.1:{self.host.port}"


def start_bastion(hosts: Sequence[BenchHost], key: Path, known_hosts: Path) -> Bastion:
    """Put ``hosts`` on a new internal network (as ``bench1``...), start a bastion on it and
    on the default network, and add the bastion's and the aliases' keys to known_hosts."""
    import docker

    network = f"deployer-bench-internal-{uuid.uuid4().hex[:10]}"
    docker_cli("network", "create", "--internal", network)
    started: list[BenchHost] = []
    try:
        aliases = {h.port: f"bench{i}" for i, h in enumerate(hosts, 1)}
        parallel(
            hosts,
            lambda h: docker_cli(
                "network", "connect", "--alias", aliases[h.port], network, h.ssh.container_id
            ),
        )
        ssh = start_hosts(build_image(), key.with_suffix(".pub").read_text().strip(), 1)[0]
        started.append(BenchHost(ssh, docker.from_env().containers.get(ssh.container_id)))
        prepare(started[0])
        docker_cli("network", "connect", network, ssh.container_id)
        seal_resolver(
            ssh.container_id, {aliases[h.port]: address_on(h.ssh.container_id, network) for h in hosts}
        )
    except BaseException:
        stop_bastion(Bastion(started[0], network, {}) if started else None, network)
        raise
    with known_hosts.open("a") as fh:
        fh.write(started[0].host_key_line() + "\n")
        for host in hosts:
            key_type, key_text = host.exec("cat /etc/ssh/ssh_host_ed25519_key.pub").split()[:2]
            fh.write(f"{aliases[host.port]} {key_type} {key_text}\n")
    return Bastion(started[0], network, aliases)


def stop_bastion(bastion: Bastion | None, network: str) -> None:
    """Remove the bastion this run started and its network (the hosts leave it first)."""
    if bastion is not None:
        bastion.host.ssh.stop()
    proc = subprocess.run(["docker", "network", "inspect", "-f", "{{range .Containers}}{{.Name}} {{end}}", network],
                          capture_output=True, text=True)  # fmt: skip
    for name in proc.stdout.split():
        subprocess.run(["docker", "network", "disconnect", "-f", network, name], capture_output=True)
    subprocess.run(["docker", "network", "rm", network], capture_output=True)
