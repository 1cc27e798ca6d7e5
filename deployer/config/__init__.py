"""Load a stage's configuration: read and merge the files, then build one typed section
at a time, each checked for meaning.

Shape errors name the file they are in; meaning errors (a relative ``deploy_to``, a
template outside ``templates/``) name the file and the key. Nothing here touches a host:
bad config is rejected before the first SSH byte. Defaults come from the schema only.
"""

from __future__ import annotations

import os
import re
from pathlib import Path, PurePosixPath

from .. import jumps
from ..schema import HOOK_PHASES, default_of, values_of
from .files import (
    STAGE_NAME,
    Layers,
    deep_merge,
    default_stage,
    inside_relative,
    list_stages,
    load_layers,
    with_instance,
)
from .model import (
    Config,
    Healthcheck,
    Hook,
    Host,
    Migrations,
    Rollout,
    Schedule,
    SshOptions,
    Template,
    Watch,
    Webhook,
)

__all__ = [
    "STAGE_NAME",
    "Config",
    "Healthcheck",
    "Hook",
    "Host",
    "Migrations",
    "Rollout",
    "Schedule",
    "SshOptions",
    "Template",
    "Watch",
    "Webhook",
    "deep_merge",
    "default_stage",
    "inside_relative",
    "list_stages",
    "load",
]

URL_PLACEHOLDERS = ("sha256", "application", "stage")


def load(root: Path, stage: str, instance: str | None = None) -> Config:
    """Load and fully validate one stage. Raises :class:`ConfigError` naming file and key.

    A template stage (one mentioning ``{instance}``) needs ``instance``, which fills in
    every ``{instance}``: each instance is an isolated copy (its own deploy_to, lock, log)."""
    root = root.resolve()
    layers = load_layers(root, stage)
    raw = with_instance(layers, instance)
    transport = raw.get("transport", default_of("transport"))
    artifact = values_of("artifact", raw["artifact"])
    shared = values_of("shared", raw.get("shared"))
    return Config(
        root=root,
        stage=stage,
        application=raw["application"],
        deploy_to=_deploy_to(layers, raw["deploy_to"], transport, root),
        keep_releases=raw.get("keep_releases", default_of("keep_releases")),
        transport=transport,
        parallel=raw.get("parallel", default_of("parallel")),
        artifact_path=root / artifact["path"],
        artifact_build=artifact["build"],
        max_unpacked_size=artifact["max_unpacked_size"],
        delta=artifact["delta"],
        compression=artifact["compression"],
        artifact_files=artifact["files"],
        artifact_exclude=tuple(artifact["exclude"]),
        artifact_url=_artifact_url(layers, artifact["url"]),
        shared_dirs=_shared(layers, "dirs", shared["dirs"]),
        shared_files=_unnested(layers, shared["dirs"], _shared(layers, "files", shared["files"])),
        templates=_templates(layers, raw.get("templates") or [], root / "templates"),
        hooks=_hooks(layers, raw.get("hooks") or {}),
        hosts=_hosts(layers, raw.get("hosts") or [], transport),
        ssh=_ssh(layers, raw.get("ssh"), transport),
        vars=dict(raw.get("vars") or {}),
        healthcheck=_healthcheck(layers, raw.get("healthcheck")),
        rollout=_rollout(layers, raw.get("rollout")),
        instance=instance,
        schedule=Schedule(**values_of("schedule", raw.get("schedule"))),
        notify=_notify(layers, raw.get("notify") or []),
        migrations=_migrations(layers, raw.get("migrations")),
    )


def _deploy_to(layers: Layers, deploy_to: str, transport: str, root: Path) -> str:
    """Absolute on the hosts; a local transport's is relative to the project."""
    if transport == "ssh":
        if not deploy_to.startswith("/"):
            raise layers.error("deploy_to", f"must be an absolute path on the hosts, got {deploy_to!r}")
    else:
        deploy_to = str((root / deploy_to).resolve())
    deploy_to = deploy_to.rstrip("/") or "/"
    if any(ord(c) < 32 for c in deploy_to):
        raise layers.error("deploy_to", "must not contain control characters such as newlines")
    if deploy_to == "/":
        raise layers.error("deploy_to", "must not be the root directory")
    return deploy_to


def _shared(layers: Layers, kind: str, paths: tuple[str, ...] | list[str]) -> tuple[str, ...]:
    for index, item in enumerate(paths):
        if not inside_relative(item):
            raise layers.error(
                f"shared.{kind}[{index}]", f"must be a relative path inside shared/, got {item!r}"
            )
    return tuple(paths)


def _unnested(layers: Layers, dirs: tuple[str, ...], files: tuple[str, ...]) -> tuple[str, ...]:
    """No shared path under another: once ``config`` is a link into shared/, replacing
    ``config/uploads`` in the release would remove it inside shared/config instead."""
    paths = [(f"shared.dirs[{i}]", p) for i, p in enumerate(dirs)]
    paths += [(f"shared.files[{i}]", p) for i, p in enumerate(files)]
    for key, path in paths:
        for _, other in paths:
            if PurePosixPath(other) in PurePosixPath(path).parents:
                raise layers.error(key, f"{path} is inside shared path {other}; list only {other}")
    return files


def _templates(layers: Layers, items: list[dict], templates_dir: Path) -> tuple[Template, ...]:
    """Sources inside templates/ that exist, destinations inside the release, octal modes."""
    found = []
    for index, item in enumerate(items):
        key = f"templates[{index}]"
        src = (templates_dir / item["src"]).resolve()
        if not inside_relative(item["src"]) or templates_dir.resolve() not in src.parents:
            raise layers.error(f"{key}.src", f"must be a path inside templates/, got {item['src']!r}")
        if not src.is_file():
            raise layers.error(f"{key}.src", f"templates/{item['src']} does not exist")
        if not inside_relative(item["dest"]):
            raise layers.error(
                f"{key}.dest", f"must be a relative path inside the release, got {item['dest']!r}"
            )
        mode = item.get("mode")
        if mode is not None:
            if not re.fullmatch(r"0?[0-7]{3,4}", mode):
                raise layers.error(f"{key}.mode", f'expected an octal mode such as "0600", got {mode!r}')
            mode = int(mode, 8)
            if mode & 0o7000 or mode & 0o002:  # the file is unpacked with exactly this mode
                raise layers.error(
                    f"{key}.mode",
                    f"{item['mode']!r} is refused: no setuid, setgid or sticky bit, nor write for others",
                )
        found.append(Template(item["src"], item["dest"], mode))
    return tuple(found)


def _artifact_url(layers: Layers, url: str | None) -> str | None:
    if url is None:
        return None
    if not WEB_URL.match(url):  # the URL itself is not shown: a signed link is a secret
        raise layers.error("artifact.url", "must be an http:// or https:// URL with a host and no spaces")
    unknown = set(re.findall(r"{([^}]*)}", url)) - set(URL_PLACEHOLDERS)
    if unknown:
        known = ", ".join("{" + p + "}" for p in URL_PLACEHOLDERS)
        raise layers.error("artifact.url", f"unknown placeholder {{{sorted(unknown)[0]}}} (known: {known})")
    return url


WEB_URL = re.compile(r"^https?://[^\s/?#@]*@?[A-Za-z0-9.\-\[\]:]+(?:[/?#][^\s\x00-\x1f\x7f]*)?$")


def _notify(layers: Layers, items: list[dict]) -> tuple[Webhook, ...]:
    """Webhooks, each URL checked now: a bad one must fail here, not in the middle of a
    deploy (and the message never shows the URL, whose path is usually the secret)."""
    hooks = []
    for index, item in enumerate(items):
        hook = Webhook(**values_of("notify[]", item))
        if not WEB_URL.match(hook.url):
            raise layers.error(
                f"notify[{index}].url", "must be an http:// or https:// URL with a host and no spaces"
            )
        hooks.append(hook)
    return tuple(hooks)


def _hosts(layers: Layers, items: list[dict], transport: str) -> tuple[Host, ...]:
    """A local transport has one host (this machine); ssh needs at least one, none twice."""
    for index, item in enumerate(items):
        _jump(layers, f"hosts[{index}].proxy_jump", item.get("proxy_jump"))
    hosts = tuple(
        Host(h["host"], h.get("port"), h.get("user"), tuple(h.get("roles", ())), h.get("proxy_jump"))
        for h in items
    )
    if transport == "local":
        return hosts[:1] or (Host("localhost"),)
    if not hosts:
        raise layers.error("hosts", "a stage with transport ssh needs at least one host")
    names = [h.name for h in hosts]
    for index, name in enumerate(names):
        if names.index(name) != index:
            raise layers.error(f"hosts[{index}]", f"{name} is listed twice")
    return hosts


def _hooks(layers: Layers, phases: dict) -> dict[str, tuple[Hook, ...]]:
    hooks = {}
    for phase in HOOK_PHASES:
        found = []
        for index, item in enumerate(phases.get(phase) or []):
            values = values_of(f"hooks.{phase}[]", item)
            hook = Hook(**{**values, "roles": tuple(values["roles"] or ())})
            key = f"hooks.{phase}[{index}]"
            if hook.local and (hook.once or hook.roles or hook.sudo):
                raise layers.error(
                    key, "a local hook runs once on this machine: once, roles and sudo do not apply"
                )
            if hook.sudo_user and not hook.sudo:
                raise layers.error(f"{key}.sudo_user", "needs sudo: true")
            found.append(hook)
        hooks[phase] = tuple(found)
    return hooks


def _ssh(layers: Layers, given: dict | None, transport: str) -> SshOptions:
    values = values_of("ssh", given)
    identity = values["identity_file"]
    on_disk = transport == "ssh" and identity and not values["identity_env"]
    if on_disk and not Path(os.path.expanduser(identity)).is_file():
        raise layers.error("ssh.identity_file", f"{identity} does not exist")
    for key in ("connect_timeout", "command_timeout", "command_deadline"):
        values[key] = float(values[key])
    _jump(layers, "ssh.proxy_jump", values["proxy_jump"])
    options = SshOptions(**values)
    if transport == "ssh":
        from .. import envkeys  # keys from environment variables: read and parsed now, not mid-deploy

        envkeys.check(options, layers.error)
    return options


def _jump(layers: Layers, key: str, spec: str | None) -> None:
    """A ``proxy_jump`` must parse (``user@host:port``, chained with commas, or ``none``)."""
    if spec is not None:
        try:
            jumps.parse(spec)
        except ValueError as exc:
            raise layers.error(key, str(exc)) from None


def _healthcheck(layers: Layers, given: dict | None) -> Healthcheck | None:
    if given is None:
        return None
    if ("command" in given) == ("url" in given):
        raise layers.error("healthcheck", "set exactly one of command or url")
    values = values_of("healthcheck", given)
    return Healthcheck(
        **{**values, "interval": float(values["interval"]), "timeout": float(values["timeout"])}
    )


def _migrations(layers: Layers, given: dict | None) -> Migrations | None:
    if given is None:
        return None
    values = values_of("migrations", given)
    if values["rollback"] == "migrate-down" and not values["down"]:
        raise layers.error("migrations.rollback", "migrate-down needs migrations.down")
    return Migrations(**values)


def _rollout(layers: Layers, given: dict | None) -> Rollout:
    values = values_of("rollout", given)
    return Rollout(**{**values, "wait": float(values["wait"]), "watch": _watch(layers, values["watch"])})


def _watch(layers: Layers, given: dict | None) -> Watch | None:
    if given is None:
        return None
    if ("command" in given) == ("url" in given):
        raise layers.error("rollout.watch", "set exactly one of command or url")
    values = values_of("rollout.watch", given)
    return Watch(**{**values, **{k: float(values[k]) for k in ("duration", "interval", "timeout")}})
