"""A fleet that only a bastion can reach: targets on an internal Docker network, no port
published, and a bastion on that network and the default one, published on 127.0.0.1.

The one address the tests and the deployer connect to is 127.0.0.1 (the bastion's
published port). The bastion reaches the targets on the ``--internal`` network this
helper creates, by their names, which its /etc/hosts maps to their addresses on that
network; its resolver points at 127.0.0.1, where nothing answers, so no name it is asked
for can ever become a DNS query leaving the machine (Docker's embedded DNS would forward
unknown names to the host's upstream servers). Nothing else is contacted.
Everything started here is removed on the way out, failure or not.
"""

from __future__ import annotations

import contextlib
import subprocess
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from .hosts import SshHost


@dataclass(frozen=True)
class InternalNetwork:
    """What testcontainers' ``with_network`` reads: the network's name."""

    name: str


@dataclass
class HiddenHost(SshHost):
    """A target with no published port, known by its alias on the internal network."""

    alias: str = ""

    @property
    def name(self) -> str:
        return self.alias

    def host_key_line(self) -> str:
        key = self.sh("cat /etc/ssh/ssh_host_ed25519_key.pub").split()
        return f"{self.alias} {key[0]} {key[1]}"


@dataclass
class HiddenFleet:
    network: InternalNetwork
    bastion: SshHost
    targets: list[HiddenHost]
    inner: list[SshHost] = field(default_factory=list)  # bastions reachable only from the network

    def jump(self) -> str:
        return f"deploy@127.0.0.1:{self.bastion.port}"

    def attach(self, bastion: SshHost) -> None:
        """Put another bastion on the internal network, resolving the names the way the
        fleet's own does (see :func:`seal_resolver`)."""
        docker_cli("network", "connect", self.network.name, bastion.container_id)
        seal_resolver(bastion.container_id, self.addresses())

    def addresses(self) -> dict[str, str]:
        return {h.alias: address_on(h.container_id, self.network.name) for h in [*self.targets, *self.inner]}


def docker_cli(*args: str) -> str:
    """Run the docker CLI; a failure raises with its message."""
    proc = subprocess.run(["docker", *args], capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"docker {' '.join(args)}: {proc.stderr.strip()}")
    return proc.stdout.strip()


def address_on(container_id: str, network: str) -> str:
    """A container's IPv4 address on ``network``."""
    return docker_cli(
        "inspect", "-f", f'{{{{(index .NetworkSettings.Networks "{network}").IPAddress}}}}', container_id
    )


def seal_resolver(container_id: str, names: dict[str, str]) -> None:
    """Names resolve from /etc/hosts only: ``names`` (name -> address) are added there and
    the resolver is pointed at 127.0.0.1 inside the container, where no DNS server runs, so
    a lookup of any other name fails at once instead of leaving the machine. Run after the
    last ``docker network connect``, which rewrites /etc/hosts."""
    lines = "".join(f"{address} {name}\n" for name, address in names.items())
    script = f"echo 'nameserver 127.0.0.1' > /etc/resolv.conf && printf '%s' '{lines}' >> /etc/hosts"
    docker_cli("exec", "-u", "root", container_id, "sh", "-c", script)


def _start(fleet_id: str, image: str, public_key: str, alias: str, network: InternalNetwork | None):
    """One sshd container named after the fleet (so cleanup finds it even if its start
    failed half-way): on ``network`` under ``alias``, else on the default network with
    port 22 published on 127.0.0.1."""
    from testcontainers.core.container import DockerContainer
    from testcontainers.core.wait_strategies import LogMessageWaitStrategy

    container = (
        DockerContainer(image)
        .with_env("AUTHORIZED_KEY", public_key)
        .with_name(f"{fleet_id}-{alias}")
        .waiting_for(LogMessageWaitStrategy("Server listening").with_startup_timeout(60))
    )
    if network is None:
        container.with_exposed_ports(22).start()
        return SshHost(container, int(container.get_exposed_port(22)))
    container.with_network(network).with_network_aliases(alias).start()
    return HiddenHost(container, 22, alias)


@contextlib.contextmanager
def hidden_fleet(
    image: str, public_key: str, aliases: list[str], inner: tuple[str, ...] = ()
) -> Iterator[HiddenFleet]:
    """An internal network, targets named ``aliases`` on it, a published bastion attached
    to it, and optionally ``inner`` bastions on it alone (for chained hops)."""
    fleet_id = f"deployer-test-hidden-{uuid.uuid4().hex[:10]}"
    network = InternalNetwork(fleet_id)
    docker_cli("network", "create", "--internal", network.name)
    try:
        names = [*aliases, *inner]
        with ThreadPoolExecutor(max_workers=len(names) + 1) as pool:
            bastion = pool.submit(_start, fleet_id, image, public_key, "bastion", None)
            hidden = list(pool.map(lambda a: _start(fleet_id, image, public_key, a, network), names))
            bastion = bastion.result()
        fleet = HiddenFleet(network, bastion, hidden[: len(aliases)], hidden[len(aliases) :])
        fleet.attach(bastion)
        for inner_bastion in fleet.inner:
            seal_resolver(inner_bastion.container_id, fleet.addresses())
        yield fleet
    finally:
        with contextlib.suppress(Exception):
            ids = docker_cli("ps", "-aq", "--filter", f"name={fleet_id}-").split()
            if ids:
                docker_cli("rm", "-f", *ids)
        with contextlib.suppress(Exception):
            docker_cli("network", "rm", network.name)
