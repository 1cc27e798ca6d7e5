"""The configuration reference is generated from the schema; these tests keep it honest.

The first one is how CI fails on a stale docs/configuration.md: change the schema, and
it fails until the reference is regenerated.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from deployer import reference
from deployer.schema import SCHEMA, List, Map, Node

REPO = Path(__file__).resolve().parents[2]
COMMITTED = REPO / "docs" / "configuration.md"


def schema_paths(node: Node, path: str = "") -> list[str]:
    """Every key path in the schema, walked independently of the generator."""
    found = []
    if isinstance(node, List) and isinstance(node.item, Map):
        return schema_paths(node.item, path + "[]")
    if isinstance(node, Map):
        for key, child in node.fields.items():
            child_path = f"{path}.{key}" if path else key
            found.append(child_path)
            found += schema_paths(child, child_path)
    return found


def test_committed_reference_matches_the_schema():
    assert COMMITTED.read_text(encoding="utf-8") == reference.render(), (
        "docs/configuration.md is stale; regenerate it with: "
        "python3 -m deployer.reference > docs/configuration.md"
    )


def test_every_schema_key_appears_in_the_reference():
    text = reference.render()
    missing = []
    for path in schema_paths(SCHEMA):
        # Lists sharing one item schema (hook phases) document it once as `hooks.*[].key`.
        starred = re.sub(r"\.\w+\[\]", ".*[]", path)
        if f"`{path}`" not in text and f"`{starred}`" not in text:
            missing.append(path)
    assert not missing
    assert len(schema_paths(SCHEMA)) > 30  # the walk above really walked


def test_one_section_per_top_level_key():
    headings = re.findall(r"^## (\S+)$", reference.render(), flags=re.M)
    assert headings == list(SCHEMA.fields)


def test_check_exits_1_with_one_line_when_stale(tmp_path, capsys):
    stale = tmp_path / "configuration.md"
    stale.write_text(reference.render().replace("SSH port.", "SSH port (old)."))
    assert reference.main(["--check", str(stale)]) == 1
    message = capsys.readouterr().err
    assert message.count("\n") == 1 and "is stale" in message and "python3 -m deployer.reference >" in message
    stale.write_text(reference.render())
    assert reference.main(["--check", str(stale)]) == 0
    assert reference.main(["--check", str(tmp_path / "missing.md")]) == 1


def test_generating_imports_nothing_heavy():
    probe = "import sys, deployer.reference; print(sorted({'fabric', 'paramiko', 'jinja2', 'yaml', 'invoke'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=REPO, check=True)
    assert out.stdout.strip() == "[]"
