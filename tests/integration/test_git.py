"""--ref builds from a commit (never the working tree); releases and pending show revisions."""

from __future__ import annotations

import json
import subprocess


def git(p, *args):
    return subprocess.run(
        ["git", *args], cwd=p.root, check=True, capture_output=True, text=True
    ).stdout.strip()


def make_repo(p):
    git(p, "init", "-q", "-b", "main")
    git(
        p,
        "-c",
        "user.name=Ada",
        "-c",
        "user.email=ada@example.com",
        "commit",
        "-q",
        "--allow-empty",
        "-m",
        "empty start",
    )
    git(p, "add", "-A")
    git(p, "-c", "user.name=Ada", "-c", "user.email=ada@example.com", "commit", "-q", "-m", "first version")
    git(p, "tag", "v1")
    (p.root / "app" / "index.html").write_text("v2\n")
    git(p, "-c", "user.name=Bob", "-c", "user.email=bob@example.com", "commit", "-q", "-am", "second version")
    (p.root / "app" / "index.html").write_text("uncommitted\n")


def test_deploy_from_a_ref_records_revision_and_pending_lists_the_rest(local_project):
    p = local_project
    make_repo(p)
    result = p.invoke("deploy", "--stage=test", "--ref=v1")
    assert result.returncode == 0, result.stderr
    assert (p.root / "deployed" / "current" / "index.html").read_text() == "hello\n"
    assert (p.root / "app" / "index.html").read_text() == "uncommitted\n"  # working tree untouched
    v1 = git(p, "rev-parse", "v1")
    releases = json.loads(p.invoke("releases", "--stage=test", "--json").stdout)
    row = releases["hosts"]["localhost"]["releases"][0]
    assert row["revision"] == v1 and row["subject"] == "first version"
    pending = json.loads(p.invoke("pending", "--stage=test", "--json").stdout)
    assert [c["subject"] for c in pending["commits"]] == ["second version"]
    assert pending["commits"][0]["author"] == "Bob" and pending["deployed_revision"] == v1
    text = p.invoke("pending", "--stage=test").stdout
    assert "1 commit(s) up to HEAD" in text and "second version" in text


def test_unknown_ref_is_a_one_line_error(local_project):
    p = local_project
    make_repo(p)
    result = p.invoke("deploy", "--stage=test", "--ref=nope")
    assert result.returncode == 2
    assert (
        result.stderr.strip()
        == "error: --ref: unknown revision 'nope' (a branch, tag or commit of this repository)"
    )
    assert not (p.root / "deployed").exists()


def test_a_ref_ships_the_commits_files_whatever_artifact_files_says(local_project):
    p = local_project
    p.root.joinpath("config", "deploy.yml").write_text(
        "application: demo\nartifact: {path: app, files: git, exclude: [bin/]}\n"
    )
    make_repo(p)
    (p.root / "app" / "untracked.txt").write_text("never shipped\n")
    assert p.invoke("deploy", "--stage=test", "--ref=v1").returncode == 0
    assert sorted(f.name for f in (p.root / "deployed" / "current").iterdir() if not f.name.startswith(".")) == [
        "app.env", "index.html",
    ]  # fmt: skip
    result = p.invoke("deploy", "--stage=test")  # the work tree: tracked files, as they are now
    assert result.returncode == 0, result.stderr
    assert (p.root / "deployed" / "current" / "index.html").read_text() == "uncommitted\n"
    assert not (p.root / "deployed" / "current" / "untracked.txt").exists()
