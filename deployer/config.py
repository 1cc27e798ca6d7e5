"""Load ``config/deploy.yml`` and ``config/<stage>.yml``, deep-merge, validate, and type.

Shape errors name the file they are in; meaning errors (a relative ``deploy_to``, a
template outside ``templates/``) name the stage file and the key. Nothing here touches
a host: bad config is rejected before the first SSH byte.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import yaml

from .errors import ConfigError
from .schema import HOOK_PHASES, SCHEMA, Map, ShapeError

STAGE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
DEFAULTS_FILE = "deploy.yml"


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
    once: bool = False
    roles: tuple[str, ...] = ()
    local: bool = False
    sudo: bool = False
    sudo_user: str | None = None


@dataclass(frozen=True)
class Healthcheck:
    """How a host proves the new release works: a command, or a URL curl'ed on the host."""

    command: str | None = None
    url: str | None = None
    retries: int = 5
    interval: float = 2.0
    timeout: float = 5.0


@dataclass(frozen=True)
class Webhook:
    url: str
    format: str = "generic"
    events: tuple[str, ...] = ("start", "success", "failure", "rollback", "promote")


@dataclass(frozen=True)
class Rollout:
    canary: int = 0
    batch_size: int | str = "100%"
    wait: float = 0.0


@dataclass(frozen=True)
class Template:
    src: str
    dest: str
    mode: int | None = None


@dataclass(frozen=True)
class SshOptions:
    identity_file: str | None = None
    known_hosts: str = "~/.ssh/known_hosts"
    host_key_policy: str = "strict"
    connect_timeout: float = 10.0
    command_timeout: float = 300.0


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
    all_hosts: tuple[Host, ...] = ()  # set when --hosts/--roles narrowed ``hosts``
    instance: str | None = None
    notify: tuple[Webhook, ...] = ()
    schedule: dict = field(default_factory=dict)

    @property
    def templates_dir(self) -> Path:
        return self.root / "templates"


def config_dir(root: Path) -> Path:
    return root / "config"


def list_stages(root: Path) -> list[str]:
    """Stage names: every ``config/*.yml`` except the shared defaults file."""
    folder = config_dir(root)
    if not folder.is_dir():
        return []
    return sorted(p.stem for p in folder.glob("*.yml") if p.name != DEFAULTS_FILE)


def _rel(path: Path, root: Path) -> str:
    try:
        return str(path.relative_to(root))
    except ValueError:
        return str(path)


def read_yaml(path: Path, root: Path) -> dict:
    """Read one YAML mapping; an empty file is an empty mapping."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{_rel(path, root)}: cannot read ({exc.strerror})") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{_rel(path, root)}: not UTF-8 text (byte {exc.start})") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or "invalid YAML"
        raise ConfigError(f"{_rel(path, root)}:{where}: bad YAML: {problem}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{_rel(path, root)}: expected a mapping of keys at the top level")
    return data


def deep_merge(base: dict, over: dict) -> dict:
    """Merge ``over`` into ``base``: mappings merge key by key, everything else is replaced."""
    merged = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _stage_file(root: Path, stage: str) -> Path:
    if not STAGE_NAME.match(stage or ""):
        raise ConfigError(f"--stage: {stage!r} is not a valid stage name (letters, digits, '-', '_', '.')")
    path = config_dir(root) / f"{stage}.yml"
    if not path.is_file():
        stages = ", ".join(list_stages(root)) or "none"
        raise ConfigError(f"{_rel(path, root)}: no such stage file (stages: {stages})")
    return path


def load_raw(root: Path, stage: str) -> dict:
    """The merged, shape-checked mapping of a stage (before meaning checks)."""
    return _load_layers(root, stage)[0]


def _load_layers(root: Path, stage: str) -> tuple[dict, dict[str, set[str]]]:
    """The merged mapping, and the top-level keys each file set (to name where a key is)."""
    stage_path = _stage_file(root, stage)
    defaults_path = config_dir(root) / DEFAULTS_FILE
    layers = []
    if defaults_path.is_file():
        layers.append(defaults_path)
    layers.append(stage_path)
    merged: dict = {}
    keys: dict[str, set[str]] = {}
    for path in layers:
        data = read_yaml(path, root)
        keys[path.name] = set(data)
        try:
            SCHEMA.check(data, "")
        except ShapeError as exc:
            hint = (
                ' (quote it: mode: "0600"; unquoted, YAML reads 0600 as a number)'
                if exc.path.endswith(".mode")
                else ""
            )
            raise ConfigError(f"{_rel(path, root)}: {exc}{hint}") from None
        merged = deep_merge(merged, data)
    try:
        SCHEMA.check_required(merged)
    except ShapeError as exc:
        raise ConfigError(
            f"{_rel(stage_path, root)}: {exc.path}: required key is missing "
            f"(set it in config/{DEFAULTS_FILE} or config/{stage}.yml)"
        ) from None
    return merged, keys


def default_stage(root: Path) -> str | None:
    """``default_stage`` from config/deploy.yml, if set."""
    path = config_dir(root) / DEFAULTS_FILE
    if not path.is_file():
        return None
    value = read_yaml(path, root).get("default_stage")
    return value if isinstance(value, str) else None


def _default(node_path: list[str]) -> Any:
    node: Any = SCHEMA
    for key in node_path:
        node = node.fields[key]
    return node.default


def _get(raw: dict, *keys: str) -> Any:
    value: Any = raw
    for key in keys:
        if not isinstance(value, dict) or key not in value:
            return _default(list(keys))
        value = value[key]
    return value


def inside_relative(path: str) -> bool:
    """True for a relative path that stays inside its base (no absolute path, no ``..``)."""
    pure = PurePosixPath(path)
    return not pure.is_absolute() and ".." not in pure.parts and str(pure) not in ("", ".")


INSTANCE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")


def _mentions_instance(value: Any) -> bool:
    if isinstance(value, str):
        return "{instance}" in value
    if isinstance(value, dict):
        return any(_mentions_instance(v) for v in value.values())
    if isinstance(value, list):
        return any(_mentions_instance(v) for v in value)
    return False


def _fill_instance(value: Any, instance: str) -> Any:
    if isinstance(value, str):
        return value.replace("{instance}", instance)
    if isinstance(value, dict):
        return {k: _fill_instance(v, instance) for k, v in value.items()}
    if isinstance(value, list):
        return [_fill_instance(v, instance) for v in value]
    return value


def is_template_stage(root: Path, stage: str) -> bool:
    """A stage whose config mentions ``{instance}`` is a template for review apps."""
    return _mentions_instance(load_raw(root.resolve(), stage))


def load(root: Path, stage: str, instance: str | None = None) -> Config:
    """Load and fully validate one stage. Raises :class:`ConfigError` naming file and key.

    A template stage (one mentioning ``{instance}``) needs ``instance``, which fills in
    every ``{instance}``: each instance is an isolated copy (its own deploy_to, lock, log)."""
    root = root.resolve()
    raw, keys = _load_layers(root, stage)
    stage_keys, default_keys = keys.get(f"{stage}.yml", set()), keys.get(DEFAULTS_FILE, set())

    def where_of(key: str) -> str:
        """The file a (top-level) key comes from: the stage file wins, then the defaults;
        a key set nowhere belongs in the stage file."""
        top = key.split(".")[0].split("[")[0]
        if top not in stage_keys and top in default_keys:
            return f"config/{DEFAULTS_FILE}"
        return f"config/{stage}.yml"

    where = f"config/{stage}.yml"
    if _mentions_instance(raw):
        if not instance:
            raise ConfigError(
                f"--instance: stage {stage} is a template (it uses {{instance}}); give --instance=NAME"
            )
        if not INSTANCE_NAME.match(instance):
            raise ConfigError(
                f"--instance: {instance!r} is not a valid instance name (letters, digits, '-', '_', '.'; at most 63)"
            )
        raw = _fill_instance(raw, instance)
    elif instance:
        raise ConfigError(f"--instance: stage {stage} is not a template stage (no {{instance}} in {where})")

    def fail(key: str, problem: str) -> ConfigError:
        return ConfigError(f"{where_of(key)}: {key}: {problem}")

    transport = _get(raw, "transport")
    deploy_to = raw["deploy_to"]
    if transport == "ssh":
        if not deploy_to.startswith("/"):
            raise fail("deploy_to", f"must be an absolute path on the hosts, got {deploy_to!r}")
    else:
        deploy_to = str((root / deploy_to).resolve())
    deploy_to = deploy_to.rstrip("/") or "/"
    if any(ord(c) < 32 for c in deploy_to):
        raise fail("deploy_to", "must not contain control characters such as newlines")
    if deploy_to == "/":
        raise fail("deploy_to", "must not be the root directory")

    for key in ("dirs", "files"):
        for index, item in enumerate(_get(raw, "shared", key)):
            if not inside_relative(item):
                raise fail(f"shared.{key}[{index}]", f"must be a relative path inside shared/, got {item!r}")

    templates = []
    templates_dir = root / "templates"
    for index, item in enumerate(_get(raw, "templates")):
        src = (templates_dir / item["src"]).resolve()
        if not inside_relative(item["src"]) or templates_dir.resolve() not in src.parents:
            raise fail(f"templates[{index}].src", f"must be a path inside templates/, got {item['src']!r}")
        if not src.is_file():
            raise fail(f"templates[{index}].src", f"templates/{item['src']} does not exist")
        if not inside_relative(item["dest"]):
            raise fail(
                f"templates[{index}].dest",
                f"must be a relative path inside the release, got {item['dest']!r}",
            )
        mode = item.get("mode")
        if mode is not None:
            if not re.fullmatch(r"0?[0-7]{3,4}", mode):
                raise fail(f"templates[{index}].mode", f'expected an octal mode such as "0600", got {mode!r}')
            mode = int(mode, 8)
        templates.append(Template(item["src"], item["dest"], mode))

    url = raw["artifact"].get("url")
    if url is not None:
        if not re.match(r"^https?://[^\s]+$", url):
            raise fail("artifact.url", f"must be an http:// or https:// URL, got {url!r}")
        unknown = set(re.findall(r"{([^}]*)}", url)) - {"sha256", "application", "stage"}
        if unknown:
            raise fail(
                "artifact.url",
                f"unknown placeholder {{{sorted(unknown)[0]}}} (known: {{sha256}}, {{application}}, {{stage}})",
            )

    hosts = tuple(
        Host(h["host"], h.get("port"), h.get("user"), tuple(h.get("roles", ()))) for h in _get(raw, "hosts")
    )
    if transport == "local":
        hosts = hosts[:1] or (Host("localhost"),)
    elif not hosts:
        raise fail("hosts", "a stage with transport ssh needs at least one host")
    names = [h.name for h in hosts]
    for index, name in enumerate(names):
        if names.index(name) != index:
            raise fail(f"hosts[{index}]", f"{name} is listed twice")

    hooks_raw = _get(raw, "hooks") or {}
    hooks = {
        phase: tuple(
            Hook(
                h["command"],
                h.get("once", False),
                tuple(h.get("roles", ())),
                h.get("local", False),
                h.get("sudo", False),
                h.get("sudo_user"),
            )
            for h in hooks_raw.get(phase, [])
        )
        for phase in HOOK_PHASES
    }

    ssh_raw = _get(raw, "ssh") or {}
    identity = ssh_raw.get("identity_file")
    if transport == "ssh" and identity and not Path(os.path.expanduser(identity)).is_file():
        raise fail("ssh.identity_file", f"{identity} does not exist")
    ssh = SshOptions(
        identity_file=ssh_raw.get("identity_file"),
        known_hosts=ssh_raw.get("known_hosts", _default(["ssh", "known_hosts"])),
        host_key_policy=ssh_raw.get("host_key_policy", _default(["ssh", "host_key_policy"])),
        connect_timeout=float(ssh_raw.get("connect_timeout", _default(["ssh", "connect_timeout"]))),
        command_timeout=float(ssh_raw.get("command_timeout", _default(["ssh", "command_timeout"]))),
    )

    for phase, hooks_of_phase in hooks.items():
        for index, hook in enumerate(hooks_of_phase):
            if hook.local and (hook.once or hook.roles or hook.sudo):
                raise fail(
                    f"hooks.{phase}[{index}]",
                    "a local hook runs once on this machine: once, roles and sudo do not apply",
                )
            if hook.sudo_user and not hook.sudo:
                raise fail(f"hooks.{phase}[{index}].sudo_user", "needs sudo: true")

    healthcheck = None
    if "healthcheck" in raw:
        hc = raw["healthcheck"]
        if ("command" in hc) == ("url" in hc):
            raise fail("healthcheck", "set exactly one of command or url")
        healthcheck = Healthcheck(
            hc.get("command"),
            hc.get("url"),
            hc.get("retries", 5),
            float(hc.get("interval", 2)),
            float(hc.get("timeout", 5)),
        )
    ro = raw.get("rollout") or {}
    rollout = Rollout(ro.get("canary", 0), ro.get("batch_size", "100%"), float(ro.get("wait", 0)))

    artifact = raw["artifact"]
    return Config(
        root=root,
        stage=stage,
        application=raw["application"],
        deploy_to=deploy_to,
        keep_releases=_get(raw, "keep_releases"),
        transport=transport,
        parallel=_get(raw, "parallel"),
        artifact_path=(root / artifact["path"]),
        artifact_build=artifact.get("build"),
        max_unpacked_size=artifact.get("max_unpacked_size", _default(["artifact", "max_unpacked_size"])),
        delta=artifact.get("delta", _default(["artifact", "delta"])),
        artifact_url=artifact.get("url"),
        shared_dirs=tuple(_get(raw, "shared", "dirs")),
        shared_files=tuple(_get(raw, "shared", "files")),
        templates=tuple(templates),
        hooks=hooks,
        hosts=hosts,
        ssh=ssh,
        vars=dict(_get(raw, "vars") or {}),
        healthcheck=healthcheck,
        rollout=rollout,
        instance=instance,
        schedule=dict(raw.get("schedule") or {}),
        notify=tuple(
            Webhook(n["url"], n.get("format", "generic"), tuple(n.get("events", Webhook.events)))
            for n in _get(raw, "notify") or []
        ),
    )


__all__ = ["Config", "Hook", "Host", "Map", "SshOptions", "Template", "deep_merge", "list_stages", "load"]
