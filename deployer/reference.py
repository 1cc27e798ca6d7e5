"""The configuration reference, generated from :data:`deployer.schema.SCHEMA`.

The schema is the one source of truth for keys, types, defaults and descriptions, so the
reference is rendered from it rather than written by hand: a hand-written table drifts the
first time someone adds a key. ``tests/unit/test_reference.py`` fails when the committed
``docs/configuration.md`` differs from :func:`render`, which is how CI catches a stale one.

    python3 -m deployer.reference > docs/configuration.md          # regenerate
    python3 -m deployer.reference --check docs/configuration.md    # exit 1 if stale

Only the schema is imported: the docs build must not need Fabric, Paramiko or Jinja2.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from .schema import SCHEMA, List, Map, Node

REGENERATE = "python3 -m deployer.reference > docs/configuration.md"

INTRO = f"""\
# Configuration reference

<!-- Generated from deployer/schema.py: do not edit by hand. Regenerate with:
     {REGENERATE} -->

This file is generated from the schema the tool validates against (`deployer/schema.py`),
so it lists exactly the keys the tool accepts. Regenerate it after changing the schema:

```sh
{REGENERATE}
```

The unit tests fail while it is stale (`python3 -m deployer.reference --check docs/configuration.md`
tells you the same without running them).

{{root_doc}} Unknown keys are errors, so a typo never passes silently.
In key paths, `[]` stands for every item of a list (`hosts[].port` is the `port` of each host),
and `*` for any of the lists just above it (`hooks.*[].command` is the `command` of a hook in
any phase).
*Required* means required within its mapping: `artifact.path` must be set whenever there is an
`artifact`, and `hosts[].host` in every host. Required keys are checked on the merged
configuration, so they may come from either file. A default of `-` means the key is simply
absent unless you set it.
"""


def _bare(type_name: str) -> str:
    """``an integer`` -> ``integer``: table cells read better without the article that
    error messages ("expected an integer") need."""
    for article in ("a ", "an "):
        if type_name.startswith(article):
            return type_name[len(article) :]
    return type_name


def type_label(node: Node) -> str:
    """The type column. Lists name their items; a node without a type name says so
    instead of breaking the whole reference."""
    if isinstance(node, List):
        return "list of " + type_label(node.item)
    try:
        return _bare(node.type_name())
    except NotImplementedError:
        return "see description"


def default_label(node: Node) -> str:
    """The default in YAML spelling (``true``, ``[]``, ``ssh``), or ``-`` for none."""
    value: Any = node.default
    if value is None:
        return "-"
    if isinstance(value, str):
        return f"`{value}`"
    return f"`{json.dumps(value)}`"


def rows(node: Node, path: str, required: bool) -> Iterator[tuple[str, Node, bool]]:
    """``(key path, node, required)`` for ``node`` and everything below it, depth first."""
    yield path, node, required
    if isinstance(node, List) and isinstance(node.item, Map):
        yield from _children(node.item, path + "[]")
    elif isinstance(node, Map):
        yield from _children(node, path)


def _children(node: Map, path: str) -> Iterator[tuple[str, Node, bool]]:
    """The rows below a mapping. Lists that share one item schema (the hook phases) have
    that item documented once, as ``hooks.*[].command``, instead of once per list."""
    items = [c.item for c in node.fields.values() if isinstance(c, List) and isinstance(c.item, Map)]
    shared: list[Map] = []
    for item in items:
        if sum(other is item for other in items) > 1 and not any(item is s for s in shared):
            shared.append(item)
    for key, child in node.fields.items():
        if isinstance(child, List) and any(child.item is s for s in shared):
            yield f"{path}.{key}", child, key in node.required
        else:
            yield from rows(child, f"{path}.{key}", key in node.required)
    for item in shared:
        yield f"{path}.*[]", item, False
        yield from _children(item, f"{path}.*[]")


def _cell(text: str) -> str:
    """Keep a description inside its table cell."""
    return " ".join(text.split()).replace("|", "\\|")


def section(key: str, node: Node, required: bool) -> str:
    """One top-level key: a table of it and every key beneath it."""
    lines = [f"## {key}", "", "| key | type | default | required | description |", "|---|---|---|---|---|"]
    for path, child, needed in rows(node, key, required):
        lines.append(
            f"| `{path}` | {_cell(type_label(child))} | {default_label(child)} | "
            f"{'yes' if needed else 'no'} | {_cell(child.doc)} |"
        )
    return "\n".join(lines) + "\n"


def render(schema: Map = SCHEMA) -> str:
    """The whole reference as Markdown: an intro, then one section per top-level key."""
    parts = [INTRO.format(root_doc=schema.doc)]
    parts += [section(key, node, key in schema.required) for key, node in schema.fields.items()]
    return "\n".join(parts)


def main(argv: Sequence[str] | None = None) -> int:
    """Print the reference, or with ``--check FILE`` exit 1 if FILE is not what it should be."""
    parser = argparse.ArgumentParser(
        prog="python3 -m deployer.reference", description=__doc__.splitlines()[0]
    )
    parser.add_argument(
        "--check", metavar="FILE", help="compare FILE with the generated reference instead of printing it"
    )
    args = parser.parse_args(argv)
    text = render()
    if args.check is None:
        sys.stdout.write(text)
        return 0
    fix = f"python3 -m deployer.reference > {args.check}"
    try:
        committed = Path(args.check).read_text(encoding="utf-8")
    except OSError as exc:
        print(f"{args.check}: cannot read ({exc.strerror}); create it with: {fix}", file=sys.stderr)
        return 1
    if committed != text:
        print(
            f"{args.check} is stale (it does not match deployer/schema.py); regenerate it with: {fix}",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
