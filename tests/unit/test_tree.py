"""What a directory artifact ships (deployer.tree): the files git tracks by default, minus
artifact.exclude, never .git nor deploy_to; git's names are untrusted input."""

from __future__ import annotations

import io
import os
import subprocess
import tarfile
from pathlib import Path

import pytest

from deployer import tree
from deployer.artifact import inspect, pack_directory
from deployer.errors import ArtifactError


def git(root: Path, *args: str) -> str:
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@e", "GIT_COMMITTER_NAME": "t"}
    env["GIT_COMMITTER_EMAIL"] = "t@e"
    return subprocess.run(
        ["git", "-C", str(root), *args], check=True, capture_output=True, env=env
    ).stdout.decode()


def repo(tmp_path: Path, files: dict[str, str]) -> Path:
    root = tmp_path / "repo"
    root.mkdir()
    git(root, "init", "-q")
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    git(root, "add", "-A")
    git(root, "commit", "-qm", "init")
    return root


def names_in_tar(directory: Path, selection: tree.Selection) -> list[str]:
    buffer = io.BytesIO()
    pack_directory(directory, buffer, selection)
    buffer.seek(0)
    with tarfile.open(fileobj=buffer) as tar:
        return tar.getnames()


def test_git_mode_ships_tracked_files_only(tmp_path):
    root = repo(tmp_path, {"app.py": "x", "lib/util.py": "y", "docs/a.md": "z", ".gitignore": ".venv/\n"})
    (root / ".venv").mkdir()
    (root / ".venv" / "junk").write_text("no")
    (root / "untracked.txt").write_text("no")
    chosen = tree.select(root, "auto", ("docs/",))
    assert chosen.source == "the files git tracks" and chosen.excluded == 1
    assert names_in_tar(root, chosen) == ["lib", ".gitignore", "app.py", "lib/util.py"]  # os.walk order


def test_a_directory_git_ignores_ships_every_file(tmp_path):
    root = repo(tmp_path, {".gitignore": "dist/\n", "src.py": "x"})
    (root / "dist" / "sub").mkdir(parents=True)
    (root / "dist" / "sub" / "a.js").write_text("a")
    chosen = tree.select(root / "dist", "auto", ())
    assert chosen.source == "every file" and chosen.names == ("sub", "sub/a.js")


def test_untracked_directory_in_a_repository_says_how_to_fix_it(tmp_path):
    root = repo(tmp_path, {"src.py": "x"})
    (root / "new").mkdir()
    (root / "new" / "a").write_text("a")
    with pytest.raises(ArtifactError, match="git tracks no file under it yet .*artifact.files: all"):
        tree.select(root / "new", "auto", ())
    assert tree.select(root / "new", "all", ()).names == ("a",)


def test_git_mode_outside_a_repository_is_an_error(tmp_path):
    (tmp_path / "a").write_text("a")
    with pytest.raises(ArtifactError, match="artifact.files is git, but git ls-files failed"):
        tree.select(tmp_path, "git", ())


def test_never_git_nor_deploy_to_in_every_mode(tmp_path):
    root = repo(tmp_path, {"index.html": "x"})
    deploy_to = root / ".deploy" / "local"
    (deploy_to / "releases" / "1").mkdir(parents=True)
    (deploy_to / "releases" / "1" / "index.html").write_text("old")
    (root / "sub").mkdir()
    (root / "sub" / ".git").write_text("gitdir: elsewhere\n")  # a submodule's link file
    for mode in ("all", "auto"):
        names = tree.select(root, mode, (), never=(deploy_to,)).names
        assert not any(n == ".git" or n.startswith((".git/", ".deploy/local")) or "/.git" in n for n in names)
    # Even a deploy_to that git tracks (committed by mistake) is left out.
    git(root, "add", "-f", ".deploy")
    assert ".deploy/local/releases/1/index.html" not in tree.select(root, "git", (), never=(deploy_to,)).names


def test_hostile_names_from_git_are_refused_by_name(tmp_path):
    root = repo(tmp_path, {"ok": "x"})
    (root / "evil\nname").write_text("x")
    git(root, "add", "-A")
    with pytest.raises(ArtifactError, match=r"refused: git tracks 'evil\\nname': control character"):
        tree.select(root, "auto", ())


def test_a_tracked_path_through_a_symlink_is_never_read(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret").write_text("s3cret")
    root = repo(tmp_path, {"d/secret": "fine"})
    (root / "d" / "secret").unlink()
    (root / "d").rmdir()
    (root / "d").symlink_to(outside)  # the index still says d/secret
    with pytest.raises(ArtifactError, match=r"git tracks 'd/secret', which passes through a symlink"):
        tree.select(root, "auto", ())


def test_a_tracked_symlink_pointing_outside_is_refused_when_checked(tmp_path):
    root = repo(tmp_path, {"a": "x"})
    (root / "passwd").symlink_to("/etc/passwd")
    git(root, "add", "-A")
    buffer = tmp_path / "a.tar"
    with buffer.open("wb") as fh:
        pack_directory(root, fh, tree.select(root, "auto", ()))
    with pytest.raises(ArtifactError, match="symlink to absolute path /etc/passwd"):
        inspect(buffer, 10**9, "artifact .")


@pytest.mark.parametrize(
    "name, problem",
    [("/etc/passwd", "absolute"), ("a/../../x", "'..'"), ("a/./b", "'.'"), ("a//b", "empty"),
     (".git/config", ".git"), ("x/.git/hooks/post", ".git"), ("tab\tname", "control"), ("fine/name.txt", None)],
)  # fmt: skip
def test_name_problem(name, problem):
    found = tree.name_problem(name)
    assert (found is None) if problem is None else (problem in found)


@pytest.mark.parametrize(
    "name, is_dir, patterns, expected",
    [
        ("a/b/x.log", False, ("*.log",), True),
        ("x.log.txt", False, ("*.log",), False),
        ("node_modules/a/b.js", False, ("node_modules",), True),
        ("docs/a.md", False, ("docs/*.md",), True),
        ("docs/sub/a.md", False, ("docs/*.md",), False),  # * never crosses a slash
        ("sub/docs/a.md", False, ("docs/*.md",), False),  # a slash anchors at the root
        ("tests/unit/t.py", False, ("tests/",), True),
        ("tests", False, ("tests/",), False),  # a file named tests is no directory
        ("tests", True, ("tests/",), True),
        ("config/deploy.yml", False, ("config/deploy.yml",), True),
        ("config/app.yml", False, ("config/deploy.yml",), False),
    ],
)
def test_exclude_patterns(name, is_dir, patterns, expected):
    assert tree.excluded(name, patterns, is_dir) is expected


def test_walk_order_is_os_walks_so_the_same_tree_packs_to_the_same_bytes(tmp_path):
    root = repo(tmp_path, {"b": "1", "a/z": "2", "a/b/c": "3", "a-b": "4", "c/d": "5", "a/y": "6"})
    (root / "link").symlink_to("a")
    git(root, "add", "-A")
    walked = tree.select(root, "all", ())
    tracked = tree.select(root, "git", ())
    assert walked.names == tracked.names
    expected = []
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d != ".git")
        rel = os.path.relpath(folder, root)
        expected += [n if rel == "." else f"{rel}/{n}" for n in dirs + sorted(files)]
    assert list(walked.names) == expected


def test_parse_ls_files_keeps_every_byte():
    assert tree.parse_ls_files(b"a\0b c\0new\nline\0\xff\0") == [
        "a",
        "b c",
        "new\nline",
        os.fsdecode(b"\xff"),
    ]


def test_an_excluded_path_is_never_judged_and_a_folder_turned_file_is_skipped(tmp_path):
    root = repo(tmp_path, {"keep": "x", "gone/a": "y"})
    (root / "logs").mkdir()
    (root / "logs" / "bad\nname").write_text("x")
    git(root, "add", "-A")
    (root / "gone" / "a").unlink()
    (root / "gone").rmdir()
    (root / "gone").write_text("a file now")  # untracked; the index still says gone/a
    chosen = tree.select(root, "auto", ("logs/",))
    assert chosen.names == ("keep",) and chosen.excluded == 1
