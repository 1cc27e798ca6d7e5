"""Real SSH servers for tests: containers from the locally built test image.

Every address used is 127.0.0.1 (published ports); nothing else is contacted.
"""

from __future__ import annotations

import os
import subprocess
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

os.environ.setdefault("TESTCONTAINERS_RYUK_DISABLED", "true")
os.environ.setdefault("TESTCONTAINERS_CONNECTION_MODE", "docker_host")
os.environ.setdefault("TC_HOST", "127.0.0.1")

HERE = Path(__file__).parent


def build_image() -> str:
    """Build (or reuse) the SSH test image; returns its tag."""
    if os.environ.get("DEPLOYER_TEST_IMAGE"):
        return os.environ["DEPLOYER_TEST_IMAGE"]
    proc = subprocess.run(["bash", str(HERE / "build-image.sh")], capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"building the SSH test image failed:\n{proc.stderr[-2000:]}")
    return proc.stdout.strip().splitlines()[-1]


def make_keypair(folder: Path) -> Path:
    """An ed25519 key pair in OpenSSH format; returns the private key path."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    key = Ed25519PrivateKey.generate()
    private = folder / "id_ed25519"
    private.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, serialization.NoEncryption()
        )
    )
    private.chmod(0o600)
    public = key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    (folder / "id_ed25519.pub").write_bytes(public + b" deployer-tests\n")
    return private


@dataclass
class SshHost:
    """One running sshd container, reachable on 127.0.0.1:port as user ``deploy``."""

    container: object
    port: int

    @property
    def name(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def container_id(self) -> str:
        return self.container.get_wrapped_container().id

    def sh(self, script: str, user: str = "deploy", check: bool = True) -> str:
        """Run a shell script inside the container (via docker exec, not SSH): to inspect state."""
        proc = subprocess.run(
            ["docker", "exec", "-u", user, self.container_id, "sh", "-c", script],
            capture_output=True,
            text=True,
        )
        if check and proc.returncode != 0:
            raise AssertionError(f"in {self.name}: {script!r} exited {proc.returncode}: {proc.stderr}")
        return proc.stdout

    def host_key_line(self) -> str:
        key = self.sh("cat /etc/ssh/ssh_host_ed25519_key.pub").split()
        return f"[127.0.0.1]:{self.port} {key[0]} {key[1]}"

    def logins(self) -> int:
        """How many SSH logins sshd has accepted so far, over every boot of the container.

        Read from sshd's own log file (``sshd -E``, see start-sshd), which sshd writes with
        write(2) before the session starts; ``docker logs`` is copied asynchronously and can
        lag behind, which would let "no new login" pass falsely."""
        out = self.sh("cat /var/log/sshd.log.1 /var/log/sshd.log", user="root")
        return out.count("Accepted publickey")

    def login(self, key: Path):
        """A plain Paramiko connection as ``deploy``, outside the tool: one login for the
        tests that check the login counter itself (the host key is this test host's own)."""
        import paramiko

        client = paramiko.SSHClient()
        client.set_missing_host_key_policy(paramiko.AutoAddPolicy())
        client.connect(
            "127.0.0.1", self.port, "deploy", key_filename=str(key), look_for_keys=False, allow_agent=False,
            timeout=30,
        )  # fmt: skip
        return client

    def stop(self) -> None:
        self.container.stop()


def start_hosts(image: str, public_key: str, count: int, **run_kwargs) -> list[SshHost]:
    """Start ``count`` sshd containers in parallel and wait for sshd to listen in each."""
    from testcontainers.core.container import DockerContainer
    from testcontainers.core.wait_strategies import LogMessageWaitStrategy

    def start(_: int) -> SshHost:
        container = (
            DockerContainer(image)
            .with_env("AUTHORIZED_KEY", public_key)
            .with_exposed_ports(22)
            .with_name(f"deployer-test-{uuid.uuid4().hex[:10]}")
            .waiting_for(LogMessageWaitStrategy("Server listening").with_startup_timeout(60))
        )
        extra = dict(run_kwargs)
        for path, options in (extra.pop("tmpfs", None) or {}).items():
            container.tmpfs[path] = options  # docker's own option string, e.g. "size=8m,mode=1777"
        if extra:
            container = container.with_kwargs(**extra)
        container.start()
        return SshHost(container, int(container.get_exposed_port(22)))

    with ThreadPoolExecutor(max_workers=count) as pool:
        return list(pool.map(start, range(count)))
