"""Web hosts for the stack tests: containers of the web image (sshd + nginx + Debian's
gunicorn), each with its SSH and HTTP ports published on 127.0.0.1 only, and a recipe
project (one of examples/) that deploys to them with exactly the recipe's config."""

from __future__ import annotations

import http.client
import shutil
import subprocess
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from project import Project
from sshd.hosts import SshHost

HERE = Path(__file__).parent
EXAMPLES = HERE.parent.parent / "examples"


def build_web_image() -> str:
    """Build (or reuse, by recipe hash) the web-host image; returns its tag."""
    proc = subprocess.run(["bash", str(HERE / "build-image.sh")], capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"building the web test image failed:\n{proc.stderr[-2000:]}")
    return proc.stdout.strip().splitlines()[-1]


@dataclass
class WebHost(SshHost):
    """An SSH host that also runs nginx, published on 127.0.0.1:http_port."""

    http_port: int = 0

    def put(self, path: str, content: str) -> None:
        """Write a file inside the container as root (not over SSH: this is the admin's part)."""
        subprocess.run(
            ["docker", "exec", "-i", self.container_id, "sh", "-c", f"cat > '{path}'"],
            input=content.encode(), check=True, capture_output=True,
        )  # fmt: skip

    def get(self, path: str, timeout: float = 10) -> tuple[int, str]:
        """One GET through nginx, as a user would make it."""
        conn = http.client.HTTPConnection("127.0.0.1", self.http_port, timeout=timeout)
        try:
            conn.request("GET", path, headers={"Connection": "close"})
            response = conn.getresponse()
            return response.status, response.read().decode("utf-8", "replace")
        finally:
            conn.close()

    def answers(self, path: str) -> int | None:
        try:
            return self.get(path)[0]
        except OSError:
            return None


def start_web_hosts(image: str, public_key: str, count: int) -> list[WebHost]:
    from testcontainers.core.container import DockerContainer
    from testcontainers.core.wait_strategies import LogMessageWaitStrategy

    def start(_: int) -> WebHost:
        container = (
            DockerContainer(image)
            .with_env("AUTHORIZED_KEY", public_key)
            .with_exposed_ports(22, 80)
            .with_name(f"deployer-web-{uuid.uuid4().hex[:10]}")
            .waiting_for(LogMessageWaitStrategy("Server listening").with_startup_timeout(60))
        )
        container.start()
        return WebHost(container, int(container.get_exposed_port(22)), int(container.get_exposed_port(80)))

    with ThreadPoolExecutor(max_workers=count) as pool:
        return list(pool.map(start, range(count)))


def install_site(host: WebHost, conf: Path, deploy_to: str) -> None:
    """What the recipe's "once per server" does: the server block, deploy_to owned by
    deploy, nginx reloaded; then wait (generous deadline) until the new server answers."""
    host.put(f"/etc/nginx/sites-enabled/{conf.stem}", conf.read_text())
    host.sh(
        f"mkdir -p {deploy_to} && chown deploy: {deploy_to} && nginx -t -q && nginx -s reload", user="root"
    )
    Project.wait_until(lambda: host.answers("/") is not None, f"nginx on {host.name} serving {conf.name}")


class RecipeProject(Project):
    """A copy of one of examples/ (its config/deploy.yml, hooks and app untouched); only the
    stage file names the test hosts, as config/production.yml names yours."""

    @classmethod
    def from_example(
        cls, name: str, root: Path, hosts: list[WebHost], key: Path, deploy_to: str
    ) -> RecipeProject:
        folder = root / name
        shutil.copytree(EXAMPLES / name, folder)
        (folder / "config" / "production.yml").unlink()  # placeholders; the test stage replaces it
        (folder / "known_hosts").write_text("".join(h.host_key_line() + "\n" for h in hosts))
        project = cls(folder, hosts, key, deploy_to)
        project.write_stage()
        return project

    def base_stage(self) -> dict[str, Any]:
        stage = super().base_stage()
        del stage["templates"], stage["vars"]  # the recipe's own (in deploy.yml) apply
        return stage
