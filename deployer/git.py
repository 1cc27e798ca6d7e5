"""What the project's git repository says: the revision deployed, a clean export of a
ref (the working tree is never touched), and the commits a stage has not seen yet."""

from __future__ import annotations

import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from .errors import ArtifactError


@dataclass(frozen=True)
class Revision:
    """A commit, as recorded with each release."""

    sha: str
    author: str = ""
    subject: str = ""
    dirty: bool = False

    @property
    def label(self) -> str:
        return self.sha + ("-dirty" if self.dirty else "")


def _git(root: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True)
    if check and proc.returncode != 0:
        last_line = proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else "failed"
        raise ArtifactError(f"git {' '.join(args[:2])}: {last_line}")
    return proc


def is_repository(root: Path) -> bool:
    try:
        return _git(root, "rev-parse", "--git-dir", check=False).returncode == 0
    except OSError:
        return False


def resolve(root: Path, ref: str) -> str:
    """The full commit sha of ``ref``; a clear error for an unknown one. A ref that starts
    with ``-`` would be read by git as an option (``--output=FILE``): it is refused."""
    if not is_repository(root):
        raise ArtifactError(f"--ref: {root} is not a git repository")
    if ref.startswith("-") or not ref.strip():
        raise ArtifactError(f"--ref: {ref!r} is not a revision (a branch, tag or commit of this repository)")
    proc = _git(
        root, "rev-parse", "--verify", "--quiet", "--end-of-options", f"{ref}^{{commit}}", check=False
    )
    if proc.returncode != 0:
        raise ArtifactError(f"--ref: unknown revision {ref!r} (a branch, tag or commit of this repository)")
    return proc.stdout.strip()


def describe(root: Path, ref: str | None = None) -> Revision | None:
    """The commit at ``ref`` (default HEAD, with the working tree's dirtiness)."""
    if not is_repository(root):
        return None
    target = ref or "HEAD"
    proc = _git(root, "log", "-1", "--format=%H%n%an%n%s", "--end-of-options", target, check=False)
    if proc.returncode != 0:
        return None
    sha, author, subject = [*proc.stdout.split("\n"), "", ""][:3]
    dirty = False
    if ref is None:
        dirty = bool(_git(root, "status", "--porcelain", "--untracked-files=no", check=False).stdout.strip())
    return Revision(sha, author, subject, dirty)


def export(root: Path, sha: str) -> Path:
    """A fresh directory holding the tree of ``sha`` (git archive), for building from a ref."""
    folder = Path(tempfile.mkdtemp(prefix="deployer-ref-"))
    archive = subprocess.Popen(["git", "archive", "--format=tar", sha], cwd=root, stdout=subprocess.PIPE)
    unpack = subprocess.run(["tar", "-xf", "-", "-C", str(folder)], stdin=archive.stdout, capture_output=True)
    archive.stdout.close()
    if archive.wait() != 0 or unpack.returncode != 0:
        raise ArtifactError(
            f"--ref: git archive of {sha[:12]} failed: {unpack.stderr.decode(errors='replace').strip()}"
        )
    return folder


def commits_between(root: Path, old: str, new: str) -> list[Revision]:
    """Commits reachable from ``new`` but not from ``old`` (newest first). Both may come
    from a host's log, so they never reach git as options."""
    if old.startswith("-") or new.startswith("-"):
        raise ArtifactError(f"git log: {old}..{new} is not a range of commits")
    proc = _git(root, "log", "--format=%H%x1f%an%x1f%s", "--end-of-options", f"{old}..{new}")
    rows = [line.split("\x1f") for line in proc.stdout.splitlines() if line]
    return [Revision(sha, author, subject) for sha, author, subject in rows]


def commit_times(root: Path, old: str | None, new: str) -> list[float] | None:
    """Commit times (epoch seconds) of what ``new`` brought after ``old`` (or of ``new``
    alone when ``old`` is None or unknown here); None when this repository lacks ``new``.
    Both come from a host's log: a value that could be read as an option is refused."""
    if not is_repository(root) or any(r and r.startswith("-") for r in (old, new)):
        return None
    if _git(root, "cat-file", "-e", "--end-of-options", f"{new}^{{commit}}", check=False).returncode != 0:
        return None
    known_old = (
        old is not None
        and _git(root, "cat-file", "-e", "--end-of-options", f"{old}^{{commit}}", check=False).returncode == 0
    )
    limit, span = ([], f"{old}..{new}") if known_old else (["-1"], new)
    proc = _git(root, "log", "--format=%ct", *limit, "--end-of-options", span, check=False)
    if proc.returncode != 0:
        return None
    return [float(line) for line in proc.stdout.split() if line.isdigit()]
