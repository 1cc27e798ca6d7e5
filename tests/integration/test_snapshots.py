"""Non-terminal output, snapshot-tested: what a CI log shows for each command.

Only what really varies between runs is normalised: durations (``0.08s``), dates in the
``releases`` table, and the temporary project path. Everything else is compared as printed:
sizes, checksums (the app's files get fixed mtimes, so the artifact's sha256 is the same on
every run), release numbers, the user (DEPLOYER_USER is fixed), column widths.

A missing snapshot fails. After an intended change of the output, rewrite the files with
``DEPLOYER_UPDATE_SNAPSHOTS=1 python3 -m pytest tests/integration/test_snapshots.py`` and
review the diff.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

SNAPSHOTS = Path(__file__).resolve().parents[1] / "snapshots"
UPDATE = os.environ.get("DEPLOYER_UPDATE_SNAPSHOTS") == "1"
FIXED_MTIME = 1_700_000_000


def normalise(text: str, root: Path) -> str:
    text = text.replace(str(root), "<project>")
    # A duration keeps its width (so do the table columns) below 10 s: "0.08s" -> "X.XXs".
    text = re.sub(r"\b\d\.\d\ds\b", "X.XXs", text)
    return re.sub(r"\b\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\b", "YYYY-MM-DD hh:mm:ss", text)


def check(name: str, text: str) -> None:
    path = SNAPSHOTS / f"{name}.txt"
    if UPDATE:
        path.write_text(text)
        return
    assert path.exists(), (
        f"no snapshot {path}: run with DEPLOYER_UPDATE_SNAPSHOTS=1 to write it, then review it"
    )
    assert text == path.read_text(), f"output of {name} changed; DEPLOYER_UPDATE_SNAPSHOTS=1 to accept"


@pytest.fixture
def p(local_project):
    local_project.set(hooks={"before_switch": [{"command": "true", "once": True}]})
    # Fixed modes and mtimes: the packed artifact (and its sha256) is the same on any machine.
    for path in [*sorted((local_project.root / "app").rglob("*"), reverse=True), local_project.root / "app"]:
        path.chmod(0o755 if path.is_dir() or path.name == "migrate" else 0o644)
        os.utime(path, (FIXED_MTIME, FIXED_MTIME))
    return local_project


def test_normalise_changes_only_durations_dates_and_the_project_path(tmp_path):
    raw = (
        f"x {tmp_path}/deployed 0.08s 12.5 KB sha256 1b1a46d49dd3 ci@runner 2026-01-02 03:04:05 release 12\n"
    )
    assert (
        normalise(raw, tmp_path)
        == "x <project>/deployed X.XXs 12.5 KB sha256 1b1a46d49dd3 ci@runner YYYY-MM-DD hh:mm:ss release 12\n"
    )


@pytest.mark.skipif(UPDATE, reason="DEPLOYER_UPDATE_SNAPSHOTS=1 writes snapshots instead of checking them")
def test_a_missing_snapshot_fails():
    with pytest.raises(AssertionError, match="no snapshot"):
        check("no-such-snapshot", "anything\n")
    assert not (SNAPSHOTS / "no-such-snapshot.txt").exists()


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
    failed = p.invoke("deploy", "--stage=test", "--force", env=env)  # the artifact was rolled back
    assert failed.returncode == 1
    outputs["deploy-failed"] = normalise(failed.stdout + "--- stderr ---\n" + failed.stderr, p.root)
    for name, text in outputs.items():
        check(name, text)
