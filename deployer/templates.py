"""Render ``templates/`` per host with Jinja2 (StrictUndefined) into a small tar.

A missing variable or a syntax error is a ConfigError naming the template and line, raised
before any host is touched (templates are rendered once up front to check them). Values
read with ``env(NAME)`` are collected as secrets so output can mask them.
"""

from __future__ import annotations

import io
import os
import tarfile
import time
import traceback
from dataclasses import asdict
from pathlib import PurePosixPath
from typing import Any

from .config import Config, Host
from .errors import ConfigError
from .output import Secrets


def _environment(config: Config):
    import jinja2

    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(config.templates_dir)),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,
    )


def _line_of(exc: BaseException, src: str) -> str:
    lineno = getattr(exc, "lineno", None)
    if lineno is None:
        for frame in reversed(traceback.extract_tb(exc.__traceback__)):
            if frame.filename.endswith(src):
                lineno = frame.lineno
                break
    return f" line {lineno}" if lineno else ""


def host_context(host: Host) -> dict[str, Any]:
    data = asdict(host)
    data["roles"] = list(host.roles)
    data["name"] = host.name
    return data


def render_host(
    config: Config, host: Host, release: int, secrets: Secrets
) -> dict[str, tuple[bytes, int | None]]:
    """Every template rendered for one host: ``{dest: (content, mode)}``."""
    import jinja2

    if not config.templates:
        return {}
    env = _environment(config)

    def read_env(name: str, default: str | None = None) -> str:
        value = os.environ.get(name, default)
        if value is None:
            raise ConfigError(f"templates: env({name!r}) is not set in the local environment")
        secrets.values.add(value)
        return value

    context = {
        "vars": config.vars,
        "stage": config.stage,
        "host": host_context(host),
        "release": release,
        "application": config.application,
        "instance": config.instance,
        "deploy_to": config.deploy_to,
        "env": read_env,
    }
    rendered = {}
    for template in config.templates:
        where = f"templates/{template.src}"
        try:
            text = env.get_template(template.src).render(context)
        except jinja2.UndefinedError as exc:
            raise ConfigError(
                f"{where}:{_line_of(exc, template.src)}: {exc.message} (host {host.name})"
            ) from None
        except jinja2.TemplateSyntaxError as exc:
            raise ConfigError(f"{where}:{_line_of(exc, template.src)}: syntax error: {exc.message}") from None
        except ConfigError as exc:
            raise ConfigError(f"{where}: {exc.message.removeprefix('templates: ')}") from None
        except jinja2.TemplateNotFound as exc:
            raise ConfigError(f"{where}: not found (templates[].src; missing: {exc.name})") from None
        except Exception as exc:  # a filter or expression failing at render time
            problem = f"{type(exc).__name__}: {exc}"
            raise ConfigError(
                f"{where}:{_line_of(exc, template.src)}: {problem} (host {host.name})"
            ) from None
        rendered[template.dest] = (text.encode("utf-8"), template.mode)
    return rendered


def to_tar(files: dict[str, tuple[bytes, int | None]]) -> bytes:
    """Pack rendered files into an in-memory tar (they are small); default mode 0644.

    Parent folders get explicit 0755 entries: the tar is unpacked with ``-p`` under
    ``umask 077``, so every mode comes from here, never from the umask."""
    buffer = io.BytesIO()
    now = int(time.time())
    parents = sorted({str(p) for dest in files for p in PurePosixPath(dest).parents if str(p) != "."})
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for folder in parents:
            info = tarfile.TarInfo(folder)
            info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, now
            tar.addfile(info)
        for dest, (content, mode) in files.items():
            info = tarfile.TarInfo(dest)
            info.size = len(content)
            info.mode = 0o644 if mode is None else mode
            info.mtime = now
            tar.addfile(info, io.BytesIO(content))
    return buffer.getvalue()
