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

    @property
    def name(self) -> str:
        return self.host if self.port in (None, 22) else f"{self.host}:{self.port}"


@dataclass(frozen=True)
class Hook:
    command: str
    once: bool = default_of("hooks.before_deploy[].once")
    roles: tuple[str, ...] = ()
    local: bool = default_of("hooks.before_deploy[].local")
    sudo: bool = default_of("hooks.before_deploy[].sudo")
    sudo_user: str | None = None


@dataclass(frozen=True)
class Healthcheck:
    """How a host proves the new release works: a command, or a URL curl'ed on the host."""

    command: str | None = None
    url: str | None = None
    retries: int = default_of("healthcheck.retries")
    interval: float = default_of("healthcheck.interval")
    timeout: float = default_of("healthcheck.timeout")


@dataclass(frozen=True)
class Webhook:
    url: str
    format: str = default_of("notify[].format")
    events: tuple[str, ...] = default_of("notify[].events")


@dataclass(frozen=True)
class Rollout:
    canary: int = default_of("rollout.canary")
    batch_size: int | str = default_of("rollout.batch_size")
    wait: float = default_of("rollout.wait")


@dataclass(frozen=True)
class Schedule:
    """How ``cleanup --schedule`` runs on the hosts."""

    via: str = default_of("schedule.via")
    calendar: str = default_of("schedule.calendar")
    cron: str = default_of("schedule.cron")


@dataclass(frozen=True)
class Template:
    src: str
    dest: str
    mode: int | None = None


@dataclass(frozen=True)
class SshOptions:
    identity_file: str | None = None
    known_hosts: str = default_of("ssh.known_hosts")
    host_key_policy: str = default_of("ssh.host_key_policy")
    connect_timeout: float = default_of("ssh.connect_timeout")
    command_timeout: float = default_of("ssh.command_timeout")


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
    instance: str | None = None
    notify: tuple[Webhook, ...] = ()
    schedule: Schedule = field(default_factory=Schedule)

    @property
    def templates_dir(self) -> Path:
        return self.root / "templates"
