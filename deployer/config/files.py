"""The configuration files of a project: which stages exist, reading and merging them.

``config/deploy.yml`` holds defaults, ``config/<stage>.yml`` one stage, deep-merged over
them. Each file is shape-checked on its own so an error names the file it is in; required
keys are checked on the merged mapping, where both files have had their say.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import yaml

from ..errors import ConfigError
from ..schema import SCHEMA, ShapeError

STAGE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
INSTANCE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")
DEFAULTS_FILE = "deploy.yml"


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


@dataclass(frozen=True)
class Layers:
    """A stage's merged, shape-checked mapping, and which top-level keys each file set."""

    stage: str
    raw: dict
    stage_keys: frozenset[str]
    default_keys: frozenset[str]

    def file_of(self, key: str) -> str:
        """The file a key comes from: the stage file wins, then the defaults; a key set
        nowhere belongs in the stage file."""
        top = key.split(".")[0].split("[")[0]
        if top not in self.stage_keys and top in self.default_keys:
            return f"config/{DEFAULTS_FILE}"
        return f"config/{self.stage}.yml"

    def error(self, key: str, problem: str) -> ConfigError:
        return ConfigError(f"{self.file_of(key)}: {key}: {problem}")


def load_layers(root: Path, stage: str) -> Layers:
    """Read, shape-check and merge the defaults file (if any) and the stage file."""
    stage_path = _stage_file(root, stage)
    defaults_path = config_dir(root) / DEFAULTS_FILE
    layers = []
    if defaults_path.is_file():
        layers.append(defaults_path)
    layers.append(stage_path)
    merged: dict = {}
    keys: dict[str, frozenset[str]] = {}
    for path in layers:
        data = read_yaml(path, root)
        keys[path.name] = frozenset(data)
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
    empty: frozenset[str] = frozenset()
    return Layers(stage, merged, keys.get(stage_path.name, empty), keys.get(DEFAULTS_FILE, empty))


def default_stage(root: Path) -> str | None:
    """``default_stage`` from config/deploy.yml, if set."""
    path = config_dir(root) / DEFAULTS_FILE
    if not path.is_file():
        return None
    value = read_yaml(path, root).get("default_stage")
    return value if isinstance(value, str) else None


def inside_relative(path: str) -> bool:
    """True for a relative path that stays inside its base (no absolute path, no ``..``)."""
    pure = PurePosixPath(path)
    return not pure.is_absolute() and ".." not in pure.parts and str(pure) not in ("", ".")


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


def with_instance(layers: Layers, instance: str | None) -> dict:
    """The raw mapping with every ``{instance}`` filled in. A stage that mentions
    ``{instance}`` is a template (review apps): each instance is an isolated copy with its
    own deploy_to, lock and log, so it needs ``--instance``; any other stage refuses one."""
    stage = layers.stage
    if not _mentions_instance(layers.raw):
        if instance:
            raise ConfigError(
                f"--instance: stage {stage} is not a template stage (no {{instance}} in config/{stage}.yml)"
            )
        return layers.raw
    deploy_to = layers.raw.get("deploy_to")
    if not (isinstance(deploy_to, str) and "{instance}" in deploy_to):
        # Else every instance would share one deploy_to, and destroying one removes all.
        raise layers.error(
            "deploy_to", "a template stage (one using {instance}) needs {instance} inside deploy_to"
        )
    if not instance:
        raise ConfigError(
            f"--instance: stage {stage} is a template (it uses {{instance}}); give --instance=NAME"
        )
    if not INSTANCE_NAME.match(instance):
        raise ConfigError(
            f"--instance: {instance!r} is not a valid instance name "
            "(letters, digits, '-', '_', '.'; at most 63)"
        )
    return _fill_instance(layers.raw, instance)
