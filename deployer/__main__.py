"""`python -m deployer init [DIR]`: start using deployer in a repository;
`python -m deployer schema`: the JSON Schema of its config files, for editors."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .errors import DeployerError
from .scaffold import init


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m deployer", description="Start using deployer in a repository."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    start = sub.add_parser("init", help="write tasks.py, config/ and a sample template (never overwrites)")
    start.add_argument("path", nargs="?", default=".", help="the repository (default: here)")
    sub.add_parser("schema", help="print the JSON Schema of config/*.yml (for editors)")
    args = parser.parse_args(argv)
    if args.command == "schema":
        from .jsonschema import render

        sys.stdout.write(render())
        return 0
    return _init(Path(args.path))


def _init(root: Path) -> int:
    try:
        written = init(root)
    except DeployerError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return exc.exit_code
    for path in written:
        print(f"created {path.relative_to(root)}")
    print(
        "next: edit config/staging.yml, then `invoke check --stage=staging` "
        "and `invoke deploy --stage=staging`"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
