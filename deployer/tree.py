"""What a directory artifact ships, decided before anything is packed.

Inside a git work tree the default is the files git tracks under the directory (as
Capistrano's git strategy ships the repository, not the working folder): no ``.venv``, no
build leftovers, no untracked secrets. Outside one, or for a directory git ignores (a
build's ``dist/``), every file. Either way ``artifact.exclude`` patterns are taken away,
and ``.git`` and ``deploy_to`` itself (``transport: local`` inside the project) are never
shipped, so releases cannot nest inside each other.

git's output is untrusted input: a repository (or its index) may name paths with
newlines, ``..``, absolute paths, or paths through a symlink. Names are read NUL-separated
(``ls-files -z``), each is checked here, and the packer only ever reads files under the
directory without following a symlink on the way.
"""

from __future__ import annotations

import os
import re
import stat
import subprocess
from dataclasses import dataclass
from fnmatch import fnmatchcase
from pathlib import Path

from .errors import ArtifactError

MODES = ("auto", "git", "all")
CONTROL = re.compile(r"[\x00-\x1f\x7f]")


@dataclass(frozen=True)
class Selection:
    """The paths to pack, relative to the directory, in the order a top-down walk lists
    them (see :func:`walk_order`); ``dirs`` are the directories among them. ``source``
    says how they were chosen."""

    names: tuple[str, ...]
    dirs: frozenset[str]
    source: str
    excluded: int = 0

    @property
    def files(self) -> int:
        return len(self.names) - len(self.dirs)


# -- pure decisions --------------------------------------------------------------------


def parse_ls_files(data: bytes) -> list[str]:
    """``git ls-files -z`` output as names (undecodable bytes kept, as the OS keeps them)."""
    return [os.fsdecode(raw) for raw in data.split(b"\0") if raw]


def name_problem(name: str) -> str | None:
    """Why a path git named cannot be shipped as it stands, or None."""
    parts = name.split("/")
    if name.startswith("/"):
        return "absolute path"
    if CONTROL.search(name):
        return "control character (such as a newline) in the path"
    if ".." in parts or "." in parts or "" in parts:
        return "'..', '.' or an empty part in the path"
    if ".git" in parts:
        return "inside .git"
    return None


def excluded(name: str, patterns: tuple[str, ...], is_dir: bool = False) -> bool:
    """Does an ``artifact.exclude`` pattern take ``name`` away? ``*.log`` (no slash) matches a
    file or directory of that name at any depth; ``docs/*.md`` or ``config/deploy.yml`` (a
    slash) match from the artifact's root; a trailing slash (``tests/``) matches directories
    only. A directory taken away takes everything under it. ``*`` never crosses a slash."""
    parts = name.split("/")
    for pattern in patterns:
        dir_only = pattern.endswith("/")
        bits = pattern.strip("/").split("/")
        # Which components may match: every directory above the name, and the name itself
        # unless the pattern is for directories and the name is a file.
        last = len(parts) if (is_dir or not dir_only) else len(parts) - 1
        if len(bits) == 1 and "/" not in pattern.rstrip("/"):
            if any(fnmatchcase(part, bits[0]) for part in parts[:last]):
                return True
        elif len(bits) <= last and all(fnmatchcase(p, b) for p, b in zip(parts, bits, strict=False)):
            return True
    return False


def parents(files: list[str]) -> frozenset[str]:
    """Every directory above the files."""
    return frozenset("/".join(f.split("/")[:i]) for f in files for i in range(1, f.count("/") + 1))


def walk_order(names: set[str], dirlike: set[str]) -> tuple[str, ...]:
    """``names`` in the order ``os.walk`` with sorted lists gives them: each folder's own
    entries (those ``os.walk`` lists as directories first, then the rest, each sorted), then
    each subfolder in turn. The order decides the tar's bytes, so the same tree packs to
    the same sha256 whichever way its files were chosen, and as earlier versions packed it."""
    children: dict[str, tuple[list[str], list[str]]] = {}
    for name in names:
        parent, _, _ = name.rpartition("/")
        children.setdefault(parent, ([], []))[0 if name in dirlike else 1].append(name)
    ordered: list[str] = []
    stack = [""]
    while stack:
        folder = stack.pop()
        subdirs, files = (sorted(group) for group in children.get(folder, ([], [])))
        ordered += subdirs + files
        stack += reversed([d for d in subdirs if d in children])
    return tuple(ordered)


# -- reading the directory and git -----------------------------------------------------


def select(
    directory: Path, mode: str, exclude: tuple[str, ...], never: tuple[Path, ...] = (), label: str = ""
) -> Selection:
    """The selection for ``artifact.files`` = ``mode``; ``never`` holds folders never to ship
    (``deploy_to``). Raises ArtifactError naming the directory (as ``label``) and the reason."""
    label = label or f"artifact {directory}"
    tracked = None if mode == "all" else _tracked(directory, label, required=mode == "git")
    if tracked is None:
        return _walk(directory, exclude, never)
    if not tracked and _ignored(directory):
        return _walk(directory, exclude, never)  # a build's output folder, ignored by git
    if not tracked:
        raise ArtifactError(
            f"{label}: git tracks no file under it yet (git add and commit the app, or set "
            "artifact.files: all to ship every file)"
        )
    kept, links, dropped = [], set(), 0
    real_dirs: set[str] = set()  # checked once each: real directories, not links
    skip = _relative(directory, never)
    for name in tracked:
        if excluded(name, exclude):
            dropped += 1
            continue
        problem = name_problem(name)
        if problem:
            raise ArtifactError(f"{label}: refused: git tracks {name!r}: {problem}")
        kind = _kind(directory, name, label, real_dirs)
        if kind is None or any(not s or name == s or name.startswith(f"{s}/") for s in skip):
            continue  # deleted in the work tree, a submodule not checked out, or deploy_to
        kept.append(name)
        if kind == "l" and os.path.isdir(directory / name):
            links.add(name)  # os.walk lists a link to a folder with the folders
    dirs = parents(kept)
    return Selection(walk_order(dirs | set(kept), dirs | links), dirs, "the files git tracks", dropped)


def _git(directory: Path, *args: str) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(
            ["git", "-c", "core.fsmonitor=false", "-C", str(directory), *args],
            capture_output=True,
            stdin=subprocess.DEVNULL,
        )
    except FileNotFoundError:
        return subprocess.CompletedProcess(args, 127, b"", b"git: not found")


def _tracked(directory: Path, label: str, required: bool) -> list[str] | None:
    """The names git tracks under ``directory``, relative to it; None outside a work tree."""
    proc = _git(directory, "ls-files", "-z", "--cached", "--recurse-submodules")
    if proc.returncode == 0:
        return parse_ls_files(proc.stdout)
    if required:
        reason = proc.stderr.decode(errors="replace").strip().splitlines()[-1:] or ["no output"]
        raise ArtifactError(f"{label}: artifact.files is git, but git ls-files failed: {reason[0]}")
    return None


def _ignored(directory: Path) -> bool:
    return _git(directory, "check-ignore", "-q", ".").returncode == 0


def _kind(directory: Path, name: str, label: str, real_dirs: set[str]) -> str | None:
    """'f' (file) or 'l' (symlink) for a name to ship, None to skip it. Every directory on
    the way must be a real directory: a path through a symlink would read outside."""
    parts = name.split("/")
    for depth in range(1, len(parts)):
        folder = "/".join(parts[:depth])
        if folder in real_dirs:
            continue
        try:
            mode = os.lstat(os.path.join(directory, folder)).st_mode
        except FileNotFoundError:
            return None  # deleted in the work tree
        if stat.S_ISLNK(mode):
            raise ArtifactError(f"{label}: refused: git tracks {name!r}, which passes through a symlink")
        if not stat.S_ISDIR(mode):
            return None  # the folder became a file: deleted in the work tree, as git sees it
        real_dirs.add(folder)
    try:
        mode = os.lstat(os.path.join(directory, name)).st_mode
    except FileNotFoundError:
        return None
    if stat.S_ISREG(mode):
        return "f"
    if stat.S_ISLNK(mode):
        return "l"
    if stat.S_ISDIR(mode):
        return None  # a submodule that is not checked out
    raise ArtifactError(f"{label}: refused: {name!r} is not a regular file, directory or symlink")


def _relative(directory: Path, never: tuple[Path, ...]) -> list[str]:
    """The folders of ``never`` that lie under ``directory``, relative to it ('' for itself)."""
    base = os.path.abspath(directory)
    found = [os.path.relpath(os.path.abspath(n), base) for n in never]
    return ["" if r == "." else r for r in found if r != ".." and not r.startswith("../")]


def _under(path: Path, never: tuple[Path, ...]) -> bool:
    absolute = Path(os.path.abspath(path))
    return any(absolute == n or n in absolute.parents for n in never)


def _walk(directory: Path, exclude: tuple[str, ...], never: tuple[Path, ...]) -> Selection:
    """Every file and directory, without ``.git`` (a folder, or a submodule's file) and
    without the folders in ``never``. An empty folder ships; one that only excluded paths
    filled does not."""
    names: list[str] = []
    dirs: set[str] = set()
    links: set[str] = set()  # links to folders: os.walk lists them with the folders, never enters
    empty: set[str] = set()
    dropped = 0
    for folder, subdirs, files in os.walk(directory):
        rel = os.path.relpath(folder, directory)
        prefix = "" if rel == "." else f"{rel}/"
        if not subdirs and not files:
            empty.add(rel)
        keep = []
        for name in sorted(subdirs):
            if name == ".git" or _under(Path(folder, name), never):
                continue
            if excluded(prefix + name, exclude, is_dir=True):
                dropped += 1
            elif os.path.islink(os.path.join(folder, name)):
                links.add(prefix + name)  # shipped as the link it is, never followed
            else:
                keep.append(name)
                dirs.add(prefix + name)
        subdirs[:] = keep
        for name in sorted(files):
            if name == ".git":
                continue
            if excluded(prefix + name, exclude):
                dropped += 1
                continue
            names.append(prefix + name)
    filled = parents([*names, *links, *empty]) | (empty & dirs)
    every = set(names) | filled | links
    return Selection(walk_order(every, filled | links), frozenset(filled), "every file", dropped)
