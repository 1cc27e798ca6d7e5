"""`sternway init` (or `python -m deployer init`): scaffold config/ and a sample template
into a repository, and `tasks.py` too with ``--tasks-py`` (for running the same tasks with
``invoke``). Then say what the artifact will ship, so the first deploy holds no surprise.

Nothing is ever overwritten: if any of the files exists, nothing is written at all.
"""

from __future__ import annotations

from pathlib import Path

from .errors import ConfigError

TASKS = '''"""Deploy tasks for `invoke --list` (the same as `sternway --list`). The tasks live in
the deployer package of sternway; config/ and templates/ next to this file are what they read."""

from pathlib import Path

from deployer.cli import make_collection

ns = make_collection(Path(__file__).parent)
'''

DEPLOY = """{modeline}
# Defaults for every stage; config/<stage>.yml is deep-merged over this file (the stage wins).
# The full reference: docs/configuration.md of sternway (`sternway --help deploy` for the flags).
application: {name}
default_stage: staging          # used when a task is run without --stage
keep_releases: 5                # releases kept on each host for instant rollback
artifact:
  # build: "make dist"          # optional: run here, from the project root, before any host is touched
  path: .                       # a directory, or a .tar / .tar.gz / .tgz file
  files: auto                   # in a git repository the files git tracks, else every file (never .git)
  exclude:                      # not shipped: the deploy's own files (patterns: docs/configuration.md)
    - config/deploy.yml
    - config/staging.yml
    - config/production.yml
    - config/deployer.schema.json
    - templates/
    - tasks.py
    - .github/
    - .gitlab-ci.yml
shared:
  dirs: [log]                   # outlive releases; linked into each one
  files: []                     # e.g. [config/secrets.yml]: must exist in <deploy_to>/shared/ on each host
templates:
  - src: app.env.j2             # rendered per host with Jinja2 into the release
    dest: .env
    mode: "0600"
# migrations:                   # once per deploy before the switch; rollbacks then know the schema
#   command: ./bin/migrate
#   version: ./bin/migrate --version   # prints the schema version
hooks:
  before_switch: []             # e.g. - {{command: ./bin/warm-cache, once: true}}
  after_switch: []              # e.g. - {{command: "sudo systemctl restart {name}"}}
ssh:
  known_hosts: ~/.ssh/known_hosts
  host_key_policy: strict       # an unknown or changed host key is refused
  # proxy_jump: deploy@bastion.example.com:22   # hosts only a bastion reaches (verified the same way)
vars:
  greeting: Hello
"""

STAGE = """{modeline}
# The {stage} stage: `sternway deploy --stage={stage}`.
# Check it first: `sternway check --stage={stage}`.
deploy_to: /srv/{name}
hosts:
  - host: {stage}.example.com   # a name from ~/.ssh/config works too
    user: deploy
    roles: [web, db]            # `once: true` hooks run on the first db host
vars:
  greeting: Hello from {stage}
"""

TEMPLATE = """# Rendered by sternway for {{{{ host.name }}}} ({{{{ stage }}}}), release {{{{ release }}}}
APP_NAME={{{{ application }}}}
GREETING={{{{ vars.greeting }}}}
"""


def files_for(root: Path, with_tasks: bool = False) -> dict[Path, str]:
    """Every file ``init`` writes. Each config file starts with a modeline pointing YAML
    editors at ``config/deployer.schema.json``, so keys complete and typos show at once."""
    from .jsonschema import MODELINE, render

    name = root.resolve().name or "app"
    return {
        **({root / "tasks.py": TASKS} if with_tasks else {}),
        root / "config" / "deploy.yml": DEPLOY.format(name=name, modeline=MODELINE),
        root / "config" / "staging.yml": STAGE.format(stage="staging", name=name, modeline=MODELINE),
        root / "config" / "production.yml": STAGE.format(stage="production", name=name, modeline=MODELINE),
        root / "config" / "deployer.schema.json": render(),
        root / "templates" / "app.env.j2": TEMPLATE.format(),
    }


def init(root: Path, with_tasks: bool = False) -> list[Path]:
    """Write the scaffold; refuses (writing nothing) if any of its files exists."""
    files = files_for(root, with_tasks)
    existing = [p for p in files if p.exists()]
    if existing:
        names = ", ".join(str(p.relative_to(root)) for p in existing)
        raise ConfigError(f"init: refusing to overwrite {names} (nothing was written)")
    for path, text in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return list(files)


def what_ships(root: Path) -> str:
    """One line on what the scaffolded artifact (``path: .``) will ship from ``root``."""
    import yaml

    from . import tree
    from .errors import DeployerError
    from .output import counted, human_bytes

    written = yaml.safe_load((root / "config" / "deploy.yml").read_text())
    exclude = tuple((written.get("artifact") or {}).get("exclude") or ())
    try:
        chosen = tree.select(root, "auto", exclude, label="artifact .")
    except DeployerError as exc:
        return exc.message
    files = [n for n in chosen.names if n not in chosen.dirs]
    size = sum((root / n).lstat().st_size for n in files)
    shown = ", ".join(files[:5]) + (", ..." if len(files) > 5 else "")
    where = "" if chosen.source == "the files git tracks" else " (this is not a git repository)"
    return (
        f"artifact: . ships {chosen.source} here{where}, less artifact.exclude: "
        f"{counted(len(files), 'file')}, {human_bytes(size)}" + (f": {shown}" if files else "")
    )
