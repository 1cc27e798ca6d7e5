"""A fleet that only a bastion can reach: targets on an internal Docker network, no port
published, and a bastion on that network and the default one, published on 127.0.0.1.

The one address the tests and the deployer connect to is 127.0.0.1 (the bastion's
published port). The bastion reaches the targets on the ``--internal`` network this
helper creates, by their network aliases (Docker's embedded DNS); nothing else is contacted.
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


def docker_cli(*args: str) -> str:
    """Run the docker CLI; a failure raises with its message."""
    proc = subprocess.run(["docker", *args], capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"docker {' '.join(args)}: {proc.stderr.strip()}")
    return proc.stdout.strip()


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
        docker_cli("network", "connect", network.name, bastion.container_id)
        yield HiddenFleet(network, bastion, hidden[: len(aliases)], hidden[len(aliases) :])
    finally:
        with contextlib.suppress(Exception):
            ids = docker_cli("ps", "-aq", "--filter", f"name={fleet_id}-").split()
            if ids:
                docker_cli("rm", "-f", *ids)
        with contextlib.suppress(Exception):
            docker_cli("network", "rm", network.name)
