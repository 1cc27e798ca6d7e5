"""`sternway init` scaffolds a working project, says what its artifact ships, and never
overwrites; the scaffolded project deploys with the program alone (no tasks.py), and with
`invoke` when asked for a tasks.py. Deploys land in a folder inside the project
(transport: local), so a release nesting the earlier ones would show."""

from __future__ import annotations

import os
import subprocess
import sys

import yaml

GIT = {
    "GIT_AUTHOR_NAME": "t",
    "GIT_AUTHOR_EMAIL": "t@e",
    "GIT_COMMITTER_NAME": "t",
    "GIT_COMMITTER_EMAIL": "t@e",
}


def run(cwd, *args, module="deployer.program"):
    """The program as its console script runs it (`sternway ...` is `deployer.program:main`)."""
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env={**os.environ, **GIT},
    )


def git(cwd, *args):
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, env={**os.environ, **GIT})


def local_staging(root, deploy_to=".deploy/staging"):
    (root / "config" / "staging.yml").write_text(
        yaml.safe_dump({"transport": "local", "deploy_to": deploy_to})
    )


def test_init_in_a_git_repository_ships_what_git_tracks_and_releases_never_nest(tmp_path):
    git(tmp_path, "init", "-q")
    (tmp_path / "index.html").write_text("hi\n")
    (tmp_path / "lib").mkdir()
    (tmp_path / "lib" / "app.py").write_text("print('app')\n")
    (tmp_path / ".venv").mkdir()
    (tmp_path / ".venv" / "big").write_text("not for servers\n")
    (tmp_path / ".gitignore").write_text(".venv/\n.deploy/\n")
    git(tmp_path, "add", "-A")
    result = run(tmp_path, "init")
    assert result.returncode == 0, result.stderr
    assert not (tmp_path / "tasks.py").exists()  # the program needs none
    lines = result.stdout.splitlines()
    assert lines[:5] == [
        "created config/deploy.yml",
        "created config/staging.yml",
        "created config/production.yml",
        "created config/deployer.schema.json",
        "created templates/app.env.j2",
    ]
    assert lines[5] == (
        "artifact: . ships the files git tracks here, less artifact.exclude: 3 files, 32 B: "
        ".gitignore, index.html, lib/app.py"
    )
    assert "sternway check --stage=staging" in lines[6]
    local_staging(tmp_path)
    git(tmp_path, "add", "-A")
    git(tmp_path, "commit", "-qm", "deploy config")
    dry = run(tmp_path, "deploy", "--dry-run")
    assert dry.returncode == 0, dry.stdout + dry.stderr
    assert (
        "  artifact: 3 files, 32 B (the files git tracks, less 5 excluded by artifact.exclude)" in dry.stdout
    )
    for _ in range(3):
        deployed = run(tmp_path, "deploy")
        assert deployed.returncode == 0, deployed.stdout + deployed.stderr
    release = tmp_path / ".deploy" / "staging" / "releases" / "3"
    shipped = sorted(str(p.relative_to(release)) for p in release.rglob("*"))
    assert shipped == [
        ".deployer-manifest.gz", ".deployer-release.json", ".env", ".gitignore", "index.html", "lib",
        "lib/app.py", "log",
    ]  # fmt: skip
    assert "GREETING=Hello" in (tmp_path / ".deploy" / "staging" / "current" / ".env").read_text()


def test_every_file_mode_outside_git_never_ships_deploy_to_either(tmp_path):
    assert run(tmp_path, "init").returncode == 0
    (tmp_path / "index.html").write_text("hi\n")
    local_staging(tmp_path, "releases-here")
    for _ in range(2):
        deployed = run(tmp_path, "deploy", "--stage=staging")
        assert deployed.returncode == 0, deployed.stdout + deployed.stderr
    release = tmp_path / "releases-here" / "releases" / "2"
    assert sorted(p.name for p in release.iterdir()) == [
        ".deployer-manifest.gz", ".deployer-release.json", ".env", "index.html", "log",
    ]  # fmt: skip


def test_init_with_tasks_py_keeps_the_invoke_form_working(tmp_path):
    result = run(tmp_path, "init", "--tasks-py", module="deployer")
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "tasks.py").is_file()
    listing = run(tmp_path, "--list", module="invoke")
    assert "deploy" in listing.stdout and "rollback" in listing.stdout
    local_staging(tmp_path, "../deployed")
    (tmp_path / "index.html").write_text("hi\n")
    deployed = run(tmp_path, "deploy", module="invoke")
    assert deployed.returncode == 0, deployed.stdout + deployed.stderr
    assert "GREETING=Hello" in (tmp_path.parent / "deployed" / "current" / ".env").read_text()


def test_init_refuses_to_overwrite_anything(tmp_path):
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "deploy.yml").write_text("mine\n")
    for module in ("deployer", "deployer.program"):
        result = run(tmp_path, "init", module=module)
        assert result.returncode == 2
        assert (
            result.stderr.strip()
            == "error: init: refusing to overwrite config/deploy.yml (nothing was written)"
        )
    assert not (tmp_path / "config" / "staging.yml").exists()
    assert (tmp_path / "config" / "deploy.yml").read_text() == "mine\n"
