"""The two deployers under test, each as a small project folder and the commands a user types.

Both get the same hosts (through the same latency relays), the same known_hosts file and
key, the same artifact (the workload's .tar.gz), ``keep_releases: 5`` and no hooks. Ours and
the stock Capistrano setup have one linked/shared dir (``log``); the lean Capistrano
variants (stock deploy plus the tarball plugin and nothing else, as a new user writes it)
have none, one checking host keys against the same known_hosts file and one not.
Each run gets a fresh ``deploy_to``; only the config files are rewritten between commands.
"""

from __future__ import annotations

import compileall
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import yaml
from servers import REPO, Bastion, BenchHost

HERE = Path(__file__).resolve().parent
KEEP_RELEASES = 5


@dataclass(frozen=True)
class Access:
    """How both tools reach the hosts: the same key and the same known_hosts file."""

    key: Path
    known_hosts: Path


class Tool(Protocol):
    """A deployer as the benchmark drives it."""

    name: str
    slug: str
    project: Path
    metadata_files: tuple[str, ...]  # the tool's own files in a release, left out of the content check

    def configure(self, hosts: Sequence[BenchHost], deploy_to: str, artifact: Path) -> None: ...

    def command(self, action: str) -> list[str]: ...

    def env(self) -> dict[str, str] | None: ...

    def settle(self) -> None: ...

    def finished(self) -> None: ...


@dataclass
class Ours:
    """deployer, run exactly as its README says: ``sternway <task> --stage=bench`` (the
    console script is ``deployer.program:main``; run as ``python3 -m deployer.program`` so
    that this checkout's code is the one measured)."""

    project: Path
    access: Access
    name: str = "ours"
    slug: str = "ours"
    metadata_files: tuple[str, ...] = ("./.deployer*",)
    code: str | None = None  # a deployer/ to run instead of this checkout's (an A/B baseline)
    parallel: int | None = None  # ``parallel`` of the stage; default: the host count

    def __post_init__(self) -> None:
        (self.project / "config").mkdir(parents=True, exist_ok=True)
        (self.project / "templates").mkdir(exist_ok=True)
        shutil.copy(REPO / "tasks.py", self.project / "tasks.py")
        # Byte-compiled as `pip install` leaves a package: with PYTHONDONTWRITEBYTECODE set
        # (as on this machine) every changed module would otherwise be compiled from source
        # on every run, about 45 ms that no installed copy ever pays.
        compileall.compile_dir(Path(self.code or REPO) / "deployer", quiet=1)

    def configure(self, hosts: Sequence[BenchHost], deploy_to: str, artifact: Path) -> None:
        """``parallel`` is the host count (Capistrano also works on every host at once), unless
        ``--parallel`` says otherwise."""
        defaults = {
            "application": "bench",
            "default_stage": "bench",
            "keep_releases": KEEP_RELEASES,
            "artifact": {"path": str(artifact)},
            "shared": {"dirs": ["log"]},
        }
        stage = {
            "transport": "ssh",
            "deploy_to": deploy_to,
            "parallel": self.parallel or len(hosts),
            "hosts": [self.host_entry(h) for h in hosts],
            "ssh": {
                "identity_file": str(self.access.key),
                "known_hosts": str(self.access.known_hosts),
                "host_key_policy": "strict",
                "connect_timeout": 10,
                "command_timeout": 600,
                **self.ssh_extra(),
            },
        }
        (self.project / "config" / "deploy.yml").write_text(yaml.safe_dump(defaults, sort_keys=False))
        (self.project / "config" / "bench.yml").write_text(yaml.safe_dump(stage, sort_keys=False))

    def host_entry(self, host: BenchHost) -> dict:
        return {"host": "127.0.0.1", "port": host.client_port, "user": "deploy", "roles": ["web"]}

    def ssh_extra(self) -> dict:
        return {}

    def command(self, action: str) -> list[str]:
        if action == "handshake":
            return [sys.executable, str(HERE / "probes" / "handshake_ours.py")]
        return [sys.executable, "-m", "deployer.program", action, "--stage=bench"]

    def env(self) -> dict[str, str] | None:
        """This checkout's deployer, whatever an editable install elsewhere points at (or,
        for an A/B comparison, the copy named by ``BENCH_DEPLOYER``)."""
        return {**os.environ, "PYTHONPATH": self.code or os.environ.get("BENCH_DEPLOYER", str(REPO))}

    def settle(self) -> None:
        pass

    def finished(self) -> None:
        pass


@dataclass
class OursViaBastion(Ours):
    """The same, with every host reached through one bastion (``ssh.proxy_jump``), by its
    name on the bastion's internal network."""

    bastion: Bastion | None = None
    slug: str = "ours-bastion"

    def host_entry(self, host: BenchHost) -> dict:
        assert self.bastion is not None
        return {"host": self.bastion.aliases[host.port], "user": "deploy", "roles": ["web"]}

    def ssh_extra(self) -> dict:
        assert self.bastion is not None
        return {"proxy_jump": self.bastion.jump}


CAPFILE = """\
require "capistrano/setup"
require "capistrano/deploy"
require_relative "lib/capistrano/upload_tarball"
install_plugin Capistrano::UploadTarball
"""


@dataclass
class Capistrano:
    """Capistrano 3 with stock settings plus the upload_tarball plugin (see capistrano/).

    ``linked_dirs`` adds the shared ``log`` dir (as ours has); ``verify`` checks host keys
    against the shared known_hosts file (``verify_host_key: :always``), else net-ssh's
    default applies (``:accept_new_or_local_tunnel``, which checks nothing for 127.0.0.1 on
    a port other than 22). ``HOME`` is the project folder, so no variant reads or writes
    this machine's own ~/.ssh.

    Release names are timestamps with one-second resolution, so two deploys to the same
    deploy_to within one second would collide; ``settle`` waits for the clock to tick
    past the previous command (outside the measured time)."""

    project: Path
    access: Access
    name: str = "Capistrano"
    slug: str = "cap"
    linked_dirs: bool = True
    verify: bool = True
    metadata_files: tuple[str, ...] = ("./REVISION", "./REVISION_TIME")
    last_finished: float = field(default=0.0)

    def __post_init__(self) -> None:
        (self.project / "config" / "deploy").mkdir(parents=True, exist_ok=True)
        (self.project / "lib" / "capistrano").mkdir(parents=True, exist_ok=True)
        shutil.copy(
            HERE / "capistrano" / "upload_tarball.rb",
            self.project / "lib" / "capistrano" / "upload_tarball.rb",
        )
        (self.project / "Capfile").write_text(CAPFILE)

    def configure(self, hosts: Sequence[BenchHost], deploy_to: str, artifact: Path) -> None:
        """Host keys are checked against the same known_hosts (``verify_host_key: :always``)."""
        linked = 'set :linked_dirs, ["log"]\n' if self.linked_dirs else ""
        checks = (
            f"  user_known_hosts_file: {ruby(str(self.access.known_hosts))},\n"
            '  global_known_hosts_file: "/dev/null",\n'
            "  verify_host_key: :always,\n"
            if self.verify
            else ""
        )
        deploy_rb = f"""\
lock "~> 3.17"
set :application, "bench"
set :deploy_to, {ruby(deploy_to)}
set :tarball, {ruby(str(artifact))}
{linked}set :keep_releases, {KEEP_RELEASES}
set :ssh_options, {{
  keys: [{ruby(str(self.access.key))}],
  keys_only: true,
  auth_methods: ["publickey"],
{checks}  non_interactive: true,
  timeout: 10,
}}
"""
        servers = "".join(
            f'server "127.0.0.1", port: {h.client_port}, user: "deploy", roles: %w[web app]\n' for h in hosts
        )
        (self.project / "config" / "deploy.rb").write_text(deploy_rb)
        (self.project / "config" / "deploy" / "bench.rb").write_text(servers)

    def command(self, action: str) -> list[str]:
        if action == "handshake":
            return ["ruby", str(HERE / "probes" / "handshake_cap.rb")]
        task = {"deploy": "deploy", "rollback": "deploy:rollback"}[action]
        return ["cap", "bench", task]

    def env(self) -> dict[str, str] | None:
        return {**os.environ, "HOME": str(self.project)}

    def settle(self) -> None:
        while int(time.time()) <= int(self.last_finished):
            time.sleep(0.05)

    def finished(self) -> None:
        self.last_finished = time.time()


def capistranos(folder: Path, access: Access) -> list[Capistrano]:
    """The stock setup of earlier runs (linked_dirs, host keys checked) and the two lean ones."""
    return [
        Capistrano(folder / "cap", access),
        Capistrano(folder / "cap-lean", access, name="Capistrano lean", slug="cap-lean", linked_dirs=False),
        Capistrano(
            folder / "cap-lean-nocheck",
            access,
            name="Capistrano lean, no host-key check",
            slug="cap-lean-nocheck",
            linked_dirs=False,
            verify=False,
        ),
    ]


def ruby(text: str) -> str:
    """A Ruby string literal (double-quoted, escaped)."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("#", "\\#") + '"'


def versions() -> dict[str, str]:
    """Versions worth printing next to the figures."""

    def out(*cmd: str) -> str:
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
        except (OSError, subprocess.SubprocessError):
            return "unavailable"
        return (
            (proc.stdout.strip() or proc.stderr.strip()).splitlines()[0]
            if proc.returncode == 0
            else "unavailable"
        )

    import paramiko

    return {
        "deployer": out("git", "-C", str(REPO), "describe", "--always", "--dirty", "--abbrev=12"),
        "python": sys.version.split()[0],
        "paramiko": paramiko.__version__,
        "capistrano": out("cap", "--version"),
        "ruby": out("ruby", "-v"),
        "net-ssh": out("ruby", "-rnet/ssh", "-e", "puts Net::SSH::Version::STRING"),
    }
