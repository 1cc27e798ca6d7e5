"""`python -m deployer init [DIR]`: start using sternway in a repository;
`python -m deployer schema`: the JSON Schema of its config files, for editors.
The same as `sternway init` and `sternway schema`, for when only the module is at hand."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from . import NAME, __version__
from .errors import DeployerError
from .scaffold import init, what_ships


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m deployer", description=f"Start using {NAME} in a repository."
    )
    parser.add_argument("--version", action="version", version=f"{NAME} {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    start = sub.add_parser("init", help="write config/ and a sample template (never overwrites)")
    start.add_argument("path", nargs="?", default=".", help="the repository (default: here)")
    start.add_argument("--tasks-py", action="store_true", help="also write tasks.py, for `invoke`")
    sub.add_parser("schema", help="print the JSON Schema of config/*.yml (for editors)")
    args = parser.parse_args(argv)
    if args.command == "schema":
        from .jsonschema import render

        sys.stdout.write(render())
        return 0
    return run_init(Path(args.path), with_tasks=args.tasks_py)


def run_init(root: Path, with_tasks: bool = False, program: str = NAME) -> int:
    """Scaffold, then say what was written, what the artifact ships, and what to run next."""
    try:
        written = init(root, with_tasks)
    except DeployerError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return exc.exit_code
    for path in written:
        print(f"created {path.relative_to(root)}")
    print(what_ships(root))
    print(
        f"next: edit config/staging.yml, then `{program} check --stage=staging` "
        f"and `{program} deploy --stage=staging --dry-run`"
        + (" (or the same with `invoke`)" if with_tasks else "")
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
