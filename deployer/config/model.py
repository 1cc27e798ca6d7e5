"""A stage's configuration as typed values. Every default comes from the schema."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..schema import default_of


@dataclass(frozen=True)
class Host:
    """One server of a stage. ``name`` is how output and errors refer to it."""

    host: str
    port: int | None = None  # None: from ~/.ssh/config, else 22
    user: str | None = None
    roles: tuple[str, ...] = ()
    proxy_jump: str | None = None  # None: the stage's ssh.proxy_jump; "none": direct

    @property
    def name(self) -> str:
        return self.host if self.port in (None, 22) else f"{self.host}:{self.port}"


def section(path: str, required: tuple[str, ...] = ()):
    """A frozen dataclass for the schema mapping at ``path``: each annotated field not
    given a value here takes the schema's default for that key (``None`` if it has none),
    so no default is ever written twice."""

    def make(cls):
        for name in cls.__annotations__:
            if name not in cls.__dict__ and name not in required:
                setattr(cls, name, default_of(f"{path}.{name}"))
        return dataclass(frozen=True)(cls)

    return make


@section("hooks.before_deploy[]", required=("command",))
class Hook:
    command: str
    once: bool
    roles: tuple[str, ...] = ()
    local: bool
    sudo: bool
    sudo_user: str | None


@section("healthcheck")
class Healthcheck:
    """How a host proves the new release works: a command, or a URL curl'ed on the host."""

    command: str | None
    url: str | None
    retries: int
    interval: float
    timeout: float


@section("notify[]", required=("url",))
class Webhook:
    url: str
    format: str
    events: tuple[str, ...]


@section("rollout.watch")
class Watch:
    """The watch window after the switch: a command or a URL checked on every host."""

    command: str | None
    url: str | None
    duration: float
    interval: float
    timeout: float


@section("rollout")
class Rollout:
    """Which hosts switch together: the canary first, then batches, with a wait between;
    then, if set, the watch window."""

    canary: int
    batch_size: int | str
    wait: float
    watch: Watch | None = None


@section("migrations", required=("command", "version"))
class Migrations:
    """The schema migration step and what rollback may do about the data (deployer.schema)."""

    command: str
    version: str
    snapshot: str | None
    restore: str | None
    down: str | None
    rollback: str


@section("schedule")
class Schedule:
    """How ``cleanup --schedule`` runs on the hosts."""

    via: str
    calendar: str
    cron: str


@dataclass(frozen=True)
class Template:
    src: str
    dest: str
    mode: int | None = None


@section("ssh")
class SshOptions:
    """How hosts are reached and how long they may take."""

    identity_file: str | None
    identity_env: str | None  # the key itself, from this variable (deployer.envkeys)
    identity_passphrase_env: str | None
    known_hosts: str
    known_hosts_env: str | None  # host keys from this variable instead of the file
    host_key_policy: str
    connect_timeout: float
    command_timeout: float
    command_deadline: float
    proxy_jump: str | None  # bastions (deployer.jumps); None: ProxyJump from ~/.ssh/config


@dataclass(frozen=True)
class Config:
    """A stage's validated configuration, with paths resolved against the project root."""

    root: Path
    stage: str
    application: str
    deploy_to: str
    keep_releases: int
    transport: str
    parallel: int
    artifact_path: Path
    artifact_build: str | None
    max_unpacked_size: int
    delta: bool
    artifact_url: str | None
    shared_dirs: tuple[str, ...]
    shared_files: tuple[str, ...]
    templates: tuple[Template, ...]
    hooks: dict[str, tuple[Hook, ...]]
    hosts: tuple[Host, ...]
    ssh: SshOptions
    vars: dict[str, Any] = field(default_factory=dict)
    healthcheck: Healthcheck | None = None
    rollout: Rollout = field(default_factory=Rollout)
    subset: bool = False  # --hosts/--roles narrowed ``hosts`` (the release log says so)
    all_hosts: tuple[Host, ...] = ()  # every host of the stage, when ``hosts`` is a subset
    instance: str | None = None
    notify: tuple[Webhook, ...] = ()
    schedule: Schedule = field(default_factory=Schedule)
    migrations: Migrations | None = None
    artifact_files: str = default_of("artifact.files")  # auto, git or all (deployer.tree)
    artifact_exclude: tuple[str, ...] = default_of("artifact.exclude")
    compression: str = default_of("artifact.compression")  # auto, gzip or zstd (deployer.transcode)

    @property
    def templates_dir(self) -> Path:
        return self.root / "templates"
