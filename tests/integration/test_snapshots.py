"""Non-terminal output, snapshot-tested: what a CI log shows for each command.

Volatile parts (durations, sizes, checksums, dates, the temporary path, the user) are
normalised. Set UPDATE_SNAPSHOTS=1 to rewrite the files after an intended change.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

SNAPSHOTS = Path(__file__).resolve().parents[1] / "snapshots"


def normalise(text: str, root: Path) -> str:
    text = text.replace(str(root), "<project>")
    text = re.sub(r"\d+\.\d+s\b", "<t>s", text)
    text = re.sub(r"\d+(\.\d+)? (B|KB|MB|GB)\b", "<size>", text)
    text = re.sub(r"\b[0-9a-f]{12}\b", "<sha>", text)
    text = re.sub(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", "<date>", text)
    text = re.sub(r"\S+@\S+", "<user>", text)
    text = re.sub(r"-+", lambda m: "-" if len(m.group()) > 1 else "-", text)
    return re.sub(r" +", " ", text)


def check(name: str, text: str) -> None:
    path = SNAPSHOTS / f"{name}.txt"
    if os.environ.get("UPDATE_SNAPSHOTS") or not path.exists():
        path.write_text(text)
    assert text == path.read_text(), f"output of {name} changed; UPDATE_SNAPSHOTS=1 to accept"


@pytest.fixture
def p(local_project):
    local_project.set(hooks={"before_switch": [{"command": "true", "once": True}]})
    return local_project


def test_snapshots_of_ci_output(p):
    env = {"DEPLOYER_USER": "ci@runner"}
    outputs = {}
    for name, args in [
        ("deploy-first", ("deploy", "--stage=test")),
        ("deploy-identical", ("deploy", "--stage=test")),
        ("rollback", ("rollback", "--stage=test")),
        ("releases", ("releases", "--stage=test")),
        ("cleanup", ("cleanup", "--stage=test")),
    ]:
        result = p.invoke(*args, env=env)
        assert result.returncode == 0, result.stderr
        outputs[name] = normalise(result.stdout, p.root)
    p.set(hooks={"before_switch": [{"command": "echo boom >&2; exit 7"}]})
    failed = p.invoke("deploy", "--stage=test", env=env)
    assert failed.returncode == 1
    outputs["deploy-failed"] = normalise(failed.stdout + "--- stderr ---\n" + failed.stderr, p.root)
    for name, text in outputs.items():
        check(name, text)
