"""The config schema as data: the one home of every key, its type, default and documentation.

Validation walks it (:mod:`deployer.shapes`), :mod:`deployer.config` takes every default
from it, and both the reference docs (``docs/configuration.md``) and the JSON Schema that
editors use are generated from it, so none of them can drift from what the tool accepts.
"""

from __future__ import annotations

from typing import Any

from .shapes import AnyMap, Bool, CountOrShare, Enum, Int, List, Map, Node, Number, ShapeError, Str

__all__ = [
    "HOOK_PHASES",
    "SCHEMA",
    "AnyMap",
    "List",
    "Map",
    "Node",
    "ShapeError",
    "default_of",
    "node_at",
    "values_of",
]


def env_name(doc: str) -> Str:
    """The name of an environment variable (its value is read when the stage is loaded)."""
    return Str(doc=doc, pattern=r"[A-Za-z_][A-Za-z0-9_]*", pattern_doc="an environment variable name")


HOOK = Map(
    doc="A command run at one point of a deploy, rollback or promote.",
    fields={
        "command": Str(
            doc="Shell command, run by /bin/sh "
            "(in the release directory on hosts, the project root locally).",
            multiline=True,
        ),
        "once": Bool(
            doc="Run on one host only: the first with role `db` (among `roles`, if set), "
            "else the first host.",
            default=False,
        ),
        "roles": List(item=Str(), doc="Run only on hosts with one of these roles (default: all)."),
        "local": Bool(doc="Run once on the deploying machine instead of on the hosts.", default=False),
        "sudo": Bool(doc="Run through `sudo -n` on the hosts (needs passwordless sudo).", default=False),
        "sudo_user": Str(doc="With sudo: run as this user instead of root."),
    },
    required=("command",),
)

HOOK_PHASES = (
    "before_deploy",
    "after_upload",
    "before_switch",
    "after_switch",
    "after_healthcheck",
    "after_rollback",
    "on_failure",
)
HOOK_DOCS = {
    "before_deploy": "After the lock, before any upload (in deploy_to); a failure stops the deploy.",
    "after_upload": "Every host has the new release; nothing is switched yet. A failure stops the deploy.",
    "before_switch": "Migrations: a failure switches nothing anywhere and removes the new release.",
    "after_switch": "After each batch switched (restart services); a failure switches every host back.",
    "after_healthcheck": (
        "After each batch passed its health check (or right after after_switch without one): move "
        "traffic to a new app server that was checked before any user reached it. A failure switches "
        "every host back."
    ),
    "after_rollback": (
        "After a rollback, or after a failed deploy was switched back, in the release now current."
    ),
    "on_failure": "Always after a failed deploy (in deploy_to); its own failure is only a warning.",
}

MIGRATIONS = Map(
    doc="Schema migrations as a first-class step: run once per deploy, before the switch, on the "
    "migration host (the first host with role `db`, else the first host), with the schema version read "
    "before and after, an optional snapshot before, and a rollback that knows when it crosses them. "
    "Each command runs by /bin/sh with the hooks' `DEPLOYER_*` environment.",
    fields={
        "command": Str(
            doc="Applies the migrations (in the new release); a failure switches nothing.", multiline=True
        ),
        "version": Str(
            doc="Prints one line, the schema version the database is at now (in the release the "
            "command serves); read before and after `command`, and by rollback.",
            multiline=True,
        ),
        "snapshot": Str(
            doc="Dumps the database into `$DEPLOYER_SNAPSHOT` (a 0600 file under "
            "`<deploy_to>/.deployer/snapshots/`) before `command`; kept only if the version changed.",
            multiline=True,
        ),
        "restore": Str(
            doc="Loads `$DEPLOYER_SNAPSHOT` back, replacing the data (for `rollback --with-data`; run in "
            "the release rolled back from).",
            multiline=True,
        ),
        "down": Str(
            doc="Migrates down to `$DEPLOYER_TARGET_SCHEMA` (for `rollback --migrate-down`; run in the "
            "release rolled back from, whose code knows its own down migrations).",
            multiline=True,
        ),
        "rollback": Enum(
            choices=("refuse", "migrate-down", "code-only"),
            doc="What a rollback that crosses migrations does when no --migrate-down, --with-data or "
            "--code-only is given and nobody is at a terminal to ask.",
            default="refuse",
        ),
    },
    required=("command", "version"),
)

WATCH = Map(
    doc="After the last batch is healthy, keep the lock and check every host for a while; the "
    "first failure switches every host back, marks the release failed and exits 1.",
    fields={
        "command": Str(
            doc="A command run on each host, in the new release; exit 0 means good.", multiline=True
        ),
        "url": Str(doc="An HTTP URL fetched from each host itself with curl, like healthcheck.url."),
        "duration": Number(doc="Seconds to keep watching.", default=300),
        "interval": Number(doc="Seconds between two checks of every host.", default=15),
        "timeout": Number(doc="Seconds one check may take.", default=10),
    },
)

SCHEMA = Map(
    doc="config/deploy.yml, deep-merged with config/<stage>.yml (the stage file wins).",
    fields={
        "application": Str(doc="Application name, shown in logs and given to templates."),
        "deploy_to": Str(
            doc="Absolute directory on each host (relative to the project for `transport: local`)."
        ),
        "default_stage": Str(doc="Stage used when a task is run without --stage."),
        "keep_releases": Int(minimum=1, doc="How many releases to keep for rollback.", default=5),
        "transport": Enum(
            choices=("ssh", "local"),
            doc="`ssh`, or `local` to deploy into a folder on this machine.",
            default="ssh",
        ),
        "parallel": Int(minimum=1, doc="At most this many hosts are worked on at once.", default=10),
        "artifact": Map(
            doc="What is deployed.",
            fields={
                "build": Str(
                    doc="Run locally, from the project root, before any host is touched.", multiline=True
                ),
                "path": Str(
                    doc="A directory, or a .tar / .tar.gz / .tgz file, relative to the project. A "
                    "directory is packed without setuid, setgid or sticky bits and without world-write; "
                    "a tar file holding any of them is refused."
                ),
                "max_unpacked_size": Int(
                    minimum=1, doc="Refuse archives that expand past this many bytes.", default=4 * 1024**3
                ),
                "url": Str(
                    doc="Pull mode: each host downloads the artifact from this URL ({sha256}, "
                    "{application}, {stage} are filled in) and verifies its sha256."
                ),
                "files": Enum(
                    choices=("auto", "git", "all"),
                    doc="For a directory: `git` ships the files git tracks under it (as Capistrano's git "
                    "strategy does), `all` every file; `auto` is `git` inside a git work tree unless git "
                    "ignores the directory (a build's output), else `all`. `.git` and `deploy_to` are never "
                    "shipped.",
                    default="auto",
                ),
                "exclude": List(
                    item=Str(),
                    doc="Patterns of paths not to ship from a directory: `*.log` (no slash) matches a name "
                    "at any depth, `docs/*.md` or `config/deploy.yml` match from the directory's root, a "
                    "trailing slash (`tests/`) matches directories only; `*` never crosses a slash.",
                    default=[],
                ),
                "delta": Bool(
                    doc="Send only changed files; unchanged ones are hard-linked from the host's "
                    "previous release.",
                    default=True,
                ),
                "compression": Enum(
                    choices=("auto", "gzip", "zstd"),
                    doc="How a full upload travels to hosts that have `zstd` on their PATH, when this "
                    "machine has it too: `zstd` sends a zstd copy of the artifact (made once per artifact, "
                    "cached by its sha256; the hosts unpack it for about a quarter of gzip's CPU), "
                    "`gzip` always sends the artifact as it is, `auto` sends the zstd copy once it is "
                    "cached or when at least 4 hosts have zstd. Hosts without zstd always get the "
                    "artifact itself.",
                    default="auto",
                ),
            },
            required=("path",),
        ),
        "shared": Map(
            doc="Paths under shared/ linked into every release; they outlive releases.",
            fields={
                "dirs": List(item=Str(), doc="Directories, created if missing.", default=[]),
                "files": List(
                    item=Str(), doc="Files that must already exist in shared/; never overwritten.", default=[]
                ),
            },
        ),
        "templates": List(
            doc="Jinja2 templates rendered per host into the release.",
            item=Map(
                fields={
                    "src": Str(doc="Path under templates/."),
                    "dest": Str(doc="Path in the release."),
                    "mode": Str(
                        doc='File mode as an octal string, e.g. "0600" (no setuid, setgid or sticky '
                        "bit, not world-writable)."
                    ),
                },
                required=("src", "dest"),
            ),
            default=[],
        ),
        "hooks": Map(
            doc="Commands run at fixed points of a deploy or rollback.",
            fields={phase: List(item=HOOK, default=[], doc=HOOK_DOCS[phase]) for phase in HOOK_PHASES},
        ),
        "migrations": MIGRATIONS,
        "hosts": List(
            doc="The stage's servers.",
            item=Map(
                fields={
                    "host": Str(doc="Host name or address (an alias from ~/.ssh/config works)."),
                    "port": Int(minimum=1, maximum=65535, doc="SSH port.", default=22),
                    "user": Str(doc="SSH user."),
                    "roles": List(item=Str(), doc="Roles such as web, db.", default=[]),
                    "proxy_jump": Str(
                        doc="Bastions for this host, overriding `ssh.proxy_jump`; `none` connects directly."
                    ),
                },
                required=("host",),
            ),
            default=[],
        ),
        "ssh": Map(
            doc="How hosts are reached.",
            fields={
                "identity_file": Str(doc="Private key file."),
                "identity_env": env_name(
                    "An environment variable holding the private key itself (OpenSSH or PEM; ed25519, "
                    "ecdsa or rsa), as CI secrets are given: used for every hop, never written to disk, "
                    "masked in output. Overrides `identity_file`."
                ),
                "identity_passphrase_env": env_name(
                    "An environment variable holding the passphrase of the `identity_env` key, if it has one."
                ),
                "known_hosts": Str(
                    doc="Known-hosts file used to verify host keys.", default="~/.ssh/known_hosts"
                ),
                "known_hosts_env": env_name(
                    "An environment variable holding known_hosts lines (as `ssh-keyscan` prints them, after "
                    "checking): host keys come from it alone, for every hop, instead of `known_hosts`. "
                    "Needs `host_key_policy: strict`."
                ),
                "host_key_policy": Enum(
                    choices=("strict", "accept-new"),
                    doc="Unknown keys: refuse, or record. A changed key is always refused.",
                    default="strict",
                ),
                "connect_timeout": Number(doc="Seconds to wait for a host to answer.", default=10),
                "command_timeout": Number(
                    doc="Seconds a remote command may stay silent before it is abandoned.", default=300
                ),
                "command_deadline": Number(
                    doc="Seconds a remote command may run in all, even while it prints "
                    "(a host that never stops printing is stopped here).",
                    default=3600,
                ),
                "proxy_jump": Str(
                    doc="Reach the hosts through bastions: `user@bastion:port`, chained as `a,b`; "
                    "`none` ignores any `ProxyJump` in ~/.ssh/config. Every hop is verified like a host "
                    "and logged in to once per task, whatever the number of hosts behind it."
                ),
            },
        ),
        "healthcheck": Map(
            doc="Checked on each host after its switch (and after_switch hooks); "
            "a failure rolls every switched host back.",
            fields={
                "command": Str(
                    doc="A command run on the host, in the new release; exit 0 means healthy.", multiline=True
                ),
                "url": Str(
                    doc="An HTTP URL fetched from the host itself with curl (e.g. http://127.0.0.1:8000/up)."
                ),
                "retries": Int(minimum=1, doc="Attempts before the host is declared unhealthy.", default=5),
                "interval": Number(zero_ok=True, doc="Seconds between attempts.", default=2),
                "timeout": Number(doc="Seconds one attempt may take.", default=5),
            },
        ),
        "rollout": Map(
            doc="Switch hosts in batches, each health-checked before the next.",
            fields={
                "canary": Int(minimum=0, doc="Hosts switched (and checked) first, alone.", default=0),
                "batch_size": CountOrShare(
                    doc="Hosts per batch after the canary: a count or a share such as `25%`.", default="100%"
                ),
                "wait": Number(zero_ok=True, doc="Seconds to wait between batches.", default=0),
                "watch": WATCH,
            },
        ),
        "schedule": Map(
            doc="`sternway cleanup --schedule`: a server-side cleanup run by a systemd timer or cron.",
            fields={
                "via": Enum(
                    choices=("auto", "systemd", "cron"),
                    doc="auto: a systemd user timer where systemd runs, else cron.",
                    default="auto",
                ),
                "calendar": Str(
                    doc="systemd OnCalendar expression.",
                    default="daily",
                    pattern=r"[A-Za-z0-9*:/,.~ +-]+",
                    pattern_doc="an OnCalendar expression (letters, digits, spaces and * : / , . ~ + -)",
                ),
                "cron": Str(
                    doc="cron schedule (five fields).",
                    default="17 3 * * *",
                    pattern=r"@(hourly|daily|weekly|monthly|yearly|annually)"
                    r"|[0-9A-Za-z*/,-]+( [0-9A-Za-z*/,-]+){4}",
                    pattern_doc="five cron fields (e.g. '17 3 * * *') or @daily, @weekly...",
                ),
            },
        ),
        "notify": List(
            doc="Webhooks told about deploys; a failing webhook only warns.",
            item=Map(
                fields={
                    "url": Str(doc="Where to POST the JSON (Slack and Mattermost incoming webhooks work)."),
                    "format": Enum(
                        choices=("generic", "slack"),
                        doc="`slack` sends {text}; `generic` the full event.",
                        default="generic",
                    ),
                    "events": List(
                        item=Enum(choices=("start", "success", "failure", "rollback", "promote")),
                        doc="Which events to send (default: all).",
                        default=["start", "success", "failure", "rollback", "promote"],
                    ),
                },
                required=("url",),
            ),
            default=[],
        ),
        "vars": AnyMap(doc="Template variables; the stage file's win.", default={}),
    },
    required=("application", "deploy_to", "artifact"),
)


def node_at(path: str) -> Node:
    """The schema node of a key path: ``ssh.known_hosts``, ``hosts[].port``."""
    node: Node = SCHEMA
    for part in path.split("."):
        key, items = part.removesuffix("[]"), part.endswith("[]")
        if not isinstance(node, Map) or key not in node.fields:
            raise KeyError(path)
        node = node.fields[key]
        if items:
            if not isinstance(node, List):
                raise KeyError(path)
            node = node.item
    return node


def default_of(path: str) -> Any:
    """The default of a key: the one place defaults are written is the schema above."""
    value = node_at(path).default
    return tuple(value) if isinstance(value, list) else value


def values_of(path: str, given: dict | None) -> dict[str, Any]:
    """Every key of the mapping at ``path``: as given, else its schema default (lists as
    tuples, so the typed config stays immutable)."""
    node = node_at(path)
    assert isinstance(node, Map), path
    given = given or {}
    values = {key: given[key] if key in given else default_of(f"{path}.{key}") for key in node.fields}
    return {key: tuple(v) if isinstance(v, list) else v for key, v in values.items()}
