"""docs/recipes.md quotes the example projects verbatim, and the stack tests deploy those
projects: so what the page shows is what is tested. A quoted block is marked with
``<!-- file: examples/... -->`` on the line before it."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
QUOTE = re.compile(r"<!-- file: (?P<path>\S+) -->\n```[a-z]*\n(?P<body>.*?)```\n", re.S)


def test_every_quoted_file_is_the_file_itself():
    page = (REPO / "docs" / "recipes.md").read_text()
    quotes = list(QUOTE.finditer(page))
    assert len(quotes) >= 8
    for quote in quotes:
        assert (REPO / quote["path"]).read_text() == quote["body"], (
            f"docs/recipes.md shows a stale {quote['path']}"
        )


def test_the_recipes_config_and_hooks_are_quoted_and_the_tests_exist():
    page = (REPO / "docs" / "recipes.md").read_text()
    quoted = {q["path"] for q in QUOTE.finditer(page)}
    for name in ("gunicorn", "static"):
        for path in (REPO / "examples" / name).rglob("*"):
            if (
                path.is_file()
                and path.parent.name in ("config", "nginx", "bin", "templates")
                and path.name != "migrate"
            ):
                assert str(path.relative_to(REPO)) in quoted, path
    for test in re.findall(r"`(tests/stack/test_\w+\.py)`", page):
        assert (REPO / test).is_file(), test
