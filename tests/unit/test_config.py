"""Config validation: every broken config gives one line naming file and key."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from deployer.config import deep_merge, load
from deployer.errors import ConfigError

GOOD = {
    "application": "app",
    "deploy_to": "/srv/app",
    "artifact": {"path": "dist"},
    "hosts": [{"host": "h1", "port": 2222, "user": "deploy", "roles": ["web", "db"]}],
}


def write(root: Path, stage: dict | str, defaults: dict | str | None = None) -> Path:
    (root / "config").mkdir(exist_ok=True)
    (root / "templates").mkdir(exist_ok=True)
    (root / "templates" / "t.j2").write_text("x")
    for name, data in (("prod.yml", stage), ("deploy.yml", defaults)):
        if data is not None:
            (root / "config" / name).write_text(data if isinstance(data, str) else yaml.safe_dump(data))
    return root


def test_good_config_loads_with_defaults(tmp_path):
    config = load(write(tmp_path, GOOD), "prod")
    assert config.keep_releases == 5 and config.ssh.host_key_policy == "strict"
    assert config.hosts[0].name == "h1:2222" and config.hosts[0].roles == ("web", "db")
    assert config.parallel == 10 and config.transport == "ssh"


def test_stage_file_wins_over_defaults_deeply(tmp_path):
    defaults = {"application": "app", "vars": {"a": 1, "b": 2}, "ssh": {"connect_timeout": 3}}
    stage = deep_merge(GOOD, {"vars": {"b": 3}})
    config = load(write(tmp_path, stage, defaults), "prod")
    assert config.vars == {"a": 1, "b": 3} and config.ssh.connect_timeout == 3


BROKEN = [
    (
        "keep_releases: -1",
        {"keep_releases": -1},
        "config/prod.yml: keep_releases: expected an integer of at least 1",
    ),
    ("keep_releases zero", {"keep_releases": 0}, "keep_releases: expected an integer of at least 1"),
    ("keep_releases string", {"keep_releases": "5"}, "keep_releases: expected an integer"),
    ("unknown key", {"colour": 1}, "config/prod.yml: colour: unknown key (known keys: "),
    ("unknown nested", {"ssh": {"timeout": 1}}, "config/prod.yml: ssh.timeout: unknown key"),
    (
        "bad port",
        {"hosts": [{"host": "a", "port": 0}]},
        "hosts[0].port: expected an integer from 1 to 65535, got 0",
    ),
    (
        "port text",
        {"hosts": [{"host": "a", "port": "22"}]},
        "hosts[0].port: expected an integer from 1 to 65535",
    ),
    ("host missing", {"hosts": [{"port": 22}]}, "config/prod.yml: hosts[0].host: required key is missing"),
    ("empty hosts", {"hosts": []}, "hosts: a stage with transport ssh needs at least one host"),
    ("hosts not list", {"hosts": "a"}, "hosts: expected a list"),
    ("duplicate host", {"hosts": [{"host": "a"}, {"host": "a"}]}, "hosts[1]: a is listed twice"),
    ("roles not list", {"hosts": [{"host": "a", "roles": "web"}]}, "hosts[0].roles: expected a list"),
    ("transport", {"transport": "ftp"}, "transport: expected one of ssh, local, got 'ftp'"),
    ("relative deploy_to", {"deploy_to": "srv/app"}, "deploy_to: must be an absolute path on the hosts"),
    ("root deploy_to", {"deploy_to": "/"}, "deploy_to: must not be the root directory"),
    ("empty deploy_to", {"deploy_to": ""}, "deploy_to: must not be empty"),
    ("deploy_to number", {"deploy_to": 5}, "deploy_to: expected a string, got 5"),
    ("artifact path missing", {"artifact": {"build": "make"}}, "artifact.path: required key is missing"),
    (
        "shared escape",
        {"shared": {"dirs": ["../x"]}},
        "shared.dirs[0]: must be a relative path inside shared/",
    ),
    (
        "shared absolute",
        {"shared": {"files": ["/etc/passwd"]}},
        "shared.files[0]: must be a relative path inside shared/",
    ),
    (
        "template outside",
        {"templates": [{"src": "../x", "dest": "a"}]},
        "templates[0].src: must be a path inside templates/",
    ),
    (
        "template missing",
        {"templates": [{"src": "nope.j2", "dest": "a"}]},
        "templates[0].src: templates/nope.j2 does not exist",
    ),
    (
        "template dest escape",
        {"templates": [{"src": "t.j2", "dest": "../a"}]},
        "templates[0].dest: must be a relative path inside the release",
    ),
    (
        "template mode int",
        {"templates": [{"src": "t.j2", "dest": "a", "mode": 384}]},
        "templates[0].mode: expected a string",
    ),
    (
        "template mode bad",
        {"templates": [{"src": "t.j2", "dest": "a", "mode": "0999"}]},
        'templates[0].mode: expected an octal mode such as "0600"',
    ),
    (
        "hook without command",
        {"hooks": {"before_switch": [{"once": True}]}},
        "hooks.before_switch[0].command: required key is missing",
    ),
    ("hook phase", {"hooks": {"before_lunch": []}}, "hooks.before_lunch: unknown key"),
    (
        "hook once type",
        {"hooks": {"after_switch": [{"command": "x", "once": "yes"}]}},
        "hooks.after_switch[0].once: expected true or false",
    ),
    (
        "policy",
        {"ssh": {"host_key_policy": "yolo"}},
        "ssh.host_key_policy: expected one of strict, accept-new",
    ),
    ("timeout", {"ssh": {"connect_timeout": 0}}, "ssh.connect_timeout: expected a number above 0"),
    ("vars list", {"vars": [1]}, "vars: expected a mapping"),
    ("parallel", {"parallel": 0}, "parallel: expected an integer of at least 1"),
    # issue 10: values that would start a new line in a unit file, crontab or log
    (
        "application newline",
        {"application": "app\nExecStart=/bin/evil"},
        "application: must not contain newlines",
    ),
    ("application escape", {"application": "app\x1b[2J"}, "application: must not contain newlines or other"),
    ("cron fields", {"schedule": {"cron": "* * * *"}}, "schedule.cron: expected five cron fields"),
    ("cron newline", {"schedule": {"cron": "17 3 * * *\n* * * * * evil"}}, "schedule.cron: must not contain"),
    ("cron junk", {"schedule": {"cron": "17 3 * * * $(id)"}}, "schedule.cron: expected five cron fields"),
    ("calendar", {"schedule": {"calendar": "daily;id"}}, "schedule.calendar: expected an OnCalendar"),
    ("webhook no scheme", {"notify": [{"url": "hooks.slack.com/x"}]}, "notify[0].url: must be an http://"),
    ("webhook space", {"notify": [{"url": "https://a b/secret"}]}, "notify[0].url: must be an http://"),
    (
        "artifact url",
        {"artifact": {"path": "dist", "url": "ftp://x/{sha256}"}},
        "artifact.url: must be an http",
    ),
    (
        "watch both",
        {"rollout": {"watch": {"command": "x", "url": "http://a/"}}},
        "rollout.watch: set exactly one",
    ),
    ("watch neither", {"rollout": {"watch": {"duration": 5}}}, "rollout.watch: set exactly one"),
    (
        "watch interval",
        {"rollout": {"watch": {"command": "x", "interval": 0}}},
        "rollout.watch.interval: expected",
    ),
    (
        "instance outside deploy_to",
        {"deploy_to": "/srv/review", "vars": {"h": "pr-{instance}"}},
        "deploy_to: a template stage (one using {instance}) needs {instance} inside deploy_to",
    ),
]

BROKEN += [
    (
        "shared dir under a shared dir",
        {"shared": {"dirs": ["config", "config/uploads"]}},
        "config/prod.yml: shared.dirs[1]: config/uploads is inside shared path config; list only config",
    ),
    (
        "shared file under a shared dir",
        {"shared": {"dirs": ["config"], "files": ["config/secrets.yml"]}},
        "config/prod.yml: shared.files[0]: config/secrets.yml is inside shared path config",
    ),
]

# Special bits and world-write in a template's mode: the file is unpacked with exactly that mode.
BROKEN += [
    (
        f"template mode {mode}",
        {"templates": [{"src": "t.j2", "dest": "a", "mode": mode}]},
        f"config/prod.yml: templates[0].mode: '{mode}' is refused: no setuid, setgid or sticky bit, "
        "nor write for others",
    )
    for mode in ("4755", "2755", "6777", "1644", "0666", "777")
]


@pytest.mark.parametrize("label, change, message", BROKEN, ids=[b[0] for b in BROKEN])
def test_broken_configs_name_file_and_key(tmp_path, label, change, message):
    stage = {**GOOD, **change}
    if "artifact" in change:
        stage["artifact"] = change["artifact"]
    with pytest.raises(ConfigError) as info:
        load(write(tmp_path, stage), "prod")
    assert message in str(info.value)
    assert "\n" not in str(info.value)
    assert "a b/secret" not in str(info.value)  # a webhook's URL is never shown


def test_multiline_commands_are_still_allowed(tmp_path):
    stage = {**GOOD, "hooks": {"after_switch": [{"command": "set -e\necho one\necho two"}]}}
    assert load(write(tmp_path, stage), "prod").hooks["after_switch"][0].command.count("\n") == 2


def test_cron_and_calendar_accept_what_users_write(tmp_path):
    for cron, calendar in (
        ("17 3 * * *", "daily"),
        ("@weekly", "Mon *-*-* 03:00:00"),
        ("*/5 1-4 * * mon", "hourly"),
    ):
        config = load(write(tmp_path, {**GOOD, "schedule": {"cron": cron, "calendar": calendar}}), "prod")
        assert config.schedule.cron == cron


def test_required_key_missing_says_where_to_set_it(tmp_path):
    stage = {k: v for k, v in GOOD.items() if k != "application"}
    with pytest.raises(
        ConfigError,
        match=r"config/prod.yml: application: required key is missing \(set it in config/deploy.yml or config/prod.yml\)",
    ):
        load(write(tmp_path, stage), "prod")


def test_bad_yaml_names_line(tmp_path):
    with pytest.raises(ConfigError, match=r"config/prod.yml: line 2: bad YAML"):
        load(write(tmp_path, "application: a\nhosts: a: b\n"), "prod")


def test_bad_yaml_in_defaults_names_defaults(tmp_path):
    with pytest.raises(ConfigError, match=r"config/deploy.yml: expected a mapping"):
        load(write(tmp_path, GOOD, "- a\n- b\n"), "prod")


def test_missing_stage_lists_stages(tmp_path):
    write(tmp_path, GOOD)
    with pytest.raises(ConfigError, match=r"config/staging.yml: no such stage file \(stages: prod\)"):
        load(tmp_path, "staging")


@pytest.mark.parametrize("stage", ["../etc/passwd", "a b", "", "-x"])
def test_stage_names_cannot_escape_config(tmp_path, stage):
    write(tmp_path, GOOD)
    with pytest.raises(ConfigError, match="is not a valid stage name"):
        load(tmp_path, stage)


def test_watch_takes_its_defaults_from_the_schema(tmp_path):
    config = load(write(tmp_path, {**GOOD, "rollout": {"watch": {"command": "./bin/ok"}}}), "prod")
    watch = config.rollout.watch
    assert (watch.command, watch.url, watch.duration, watch.interval, watch.timeout) == (
        "./bin/ok",
        None,
        300,
        15,
        10,
    )
    assert load(write(tmp_path, GOOD), "prod").rollout.watch is None
