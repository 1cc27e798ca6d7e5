"""``sternway``: the tasks as a program of its own, built on ``invoke.Program`` the way
Fabric's ``fab`` is, so a repository needs only ``config/`` (no ``tasks.py``, no Invoke
in its own environment: ``pipx install sternway`` is enough).

The project is the nearest folder, from the current one up, that holds
``config/deploy.yml`` (as git finds ``.git``), so the program works from any
subdirectory. ``invoke`` with a ``tasks.py`` keeps working: both build the same
collection (:func:`deployer.cli.make_collection`); this one adds ``init`` and ``schema``.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import sys
from pathlib import Path
from typing import NoReturn

from invoke import Collection, Program, Task

from . import NAME, __version__
from .cli import make_collection

MARKER = Path("config", "deploy.yml")
# Invoke's core flags for its own run() (shell commands run by Invoke tasks): none of them
# applies to these tasks, and one misleads: `--dry` would not stop a deploy. Left out, each
# is refused as an unknown option instead of being silently ignored.
RUN_FLAGS = frozenset(
    {"warn-only", "pty", "hide", "echo", "dry", "command-timeout", "prompt-for-sudo-password"}
)


class Sternway(Program):
    """``invoke.Program`` with only the core flags that mean something here."""

    def core_args(self) -> list:
        return [arg for arg in super().core_args() if not RUN_FLAGS & set(arg.names)]

    def update_config(self, merge: bool = True) -> None:
        """Invoke's own, less the overrides from the flags left out: only ``-f`` and
        ``$INVOKE_RUNTIME_CONFIG`` remain."""
        self.config.load_overrides({}, merge=False)
        self.config.set_runtime_path(self.args.config.value or os.environ.get("INVOKE_RUNTIME_CONFIG"))
        self.config.load_runtime(merge=False)
        if merge:
            self.config.merge()


def project_root(start: Path) -> Path:
    """The nearest folder from ``start`` up that holds config/deploy.yml; ``start`` itself
    when none does (then every task says that config/deploy.yml is missing, and ``init``
    writes it there)."""
    start = start.resolve()
    return next((folder for folder in (start, *start.parents) if (folder / MARKER).is_file()), start)


def _init_task() -> Task:
    def init(c, path=".", tasks_py=False):
        """Scaffold config/ and a sample template here (never overwrites); say what ships.

        Writes config/deploy.yml, staging.yml, production.yml, the editors' schema and
        templates/app.env.j2, then says what the artifact (the repository) would ship."""
        from .__main__ import run_init

        code = run_init(Path(path), with_tasks=bool(tasks_py), program=NAME)
        if code:
            sys.exit(code)

    helps = {
        "path": "The repository (default: here).",
        "tasks-py": "Also write tasks.py, for running the same tasks with `invoke`.",
    }
    return Task(init, name="init", positional=["path"], help=helps)


def _schema_task() -> Task:
    def schema(c):
        """Print the JSON Schema of config/*.yml, for editors (> config/deployer.schema.json)."""
        from .jsonschema import render

        sys.stdout.write(render())

    return Task(schema, name="schema")


def namespace(root: Path) -> Collection:
    """Every task of ``deployer.cli.TASKS`` for the project in ``root``, plus ``init`` and
    ``schema``, which need no project."""
    tasks = make_collection(root)
    tasks.add_task(_init_task())
    tasks.add_task(_schema_task())
    return tasks


def program(root: Path | None = None) -> Program:
    return Sternway(
        name=NAME,
        binary=NAME,
        binary_names=[NAME],
        version=__version__,
        namespace=namespace(project_root(root or Path.cwd())),
    )


def main(argv: list[str] | None = None) -> NoReturn:
    """The console script ``sternway``."""
    from . import PROGRAM

    PROGRAM[0] = NAME
    try:
        program().run(argv)
        code: object = 0
    except SystemExit as exc:
        code = exc.code
    exit_now(code)


def exit_now(code: object) -> NoReturn:
    """Exit as ``sys.exit(code)`` would, without tearing the interpreter down.

    Once a task is over, freeing every module and object one by one (Paramiko,
    cryptography, Invoke, Jinja2) costs 60-80 ms here, a tenth of a rollback, for nothing:
    the process ends anyway. The exit handlers still run (temporary files, logging), the
    output is flushed, and the exit code is the same."""
    if code is None:
        code = 0
    elif not isinstance(code, int):
        print(code, file=sys.stderr)
        code = 1
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(BrokenPipeError, ValueError):  # the reader left (`| head`)
            stream.flush()
    os._exit(code)


if __name__ == "__main__":  # pragma: no cover
    main()
