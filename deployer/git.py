"""What the project's git repository says: the revision deployed, a clean export of a
ref (the working tree is never touched), and the commits a stage has not seen yet."""

from __future__ import annotations

import heapq
import subprocess
import tempfile
from collections.abc import Iterable
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


Graph = dict[str, tuple[float, tuple[str, ...]]]  # commit -> (committer time, parents)


def commit_graph(root: Path, revisions: Iterable[str]) -> tuple[dict[str, str], Graph]:
    """The commits this repository knows among ``revisions`` (each mapped to its full sha)
    and every ancestor of them, read in two git processes whatever their number. The
    revisions come from a host's log: each is passed on stdin, never as an argument."""
    wanted = sorted({r for r in revisions if r and not r.startswith("-")})
    if not wanted or not is_repository(root):
        return {}, {}
    check = subprocess.run(
        ["git", "cat-file", "--batch-check=%(objectname) %(objecttype)"],
        cwd=root, input="".join(f"{r}^{{commit}}\n" for r in wanted), capture_output=True, text=True,
    )  # fmt: skip
    known = {}
    for rev, line in zip(wanted, check.stdout.splitlines(), strict=False):
        parts = line.split()
        if len(parts) == 2 and parts[1] == "commit":
            known[rev] = parts[0]
    if not known:
        return {}, {}
    tips = "".join(f"{sha}\n" for sha in sorted(set(known.values())))
    log = subprocess.run(
        ["git", "log", "--format=%H %ct %P", "--stdin"], cwd=root, input=tips, capture_output=True, text=True
    )
    graph: Graph = {}
    for line in log.stdout.splitlines():
        sha, when, *parents = line.split()
        graph[sha] = (float(when), tuple(parents))
    return known, graph


def range_times(graph: Graph, old: str | None, new: str) -> list[float]:
    """Commit times of ``old..new`` (what ``new`` has and ``old`` has not; ``new`` alone
    when ``old`` is None), walking newest first as git does and stopping once only
    commits reachable from ``old`` are left to look at."""
    if old is None:
        return [graph[new][0]] if new in graph else []
    NEW, OLD = 1, 2
    flags: dict[str, int] = {new: NEW}
    flags[old] = flags.get(old, 0) | OLD
    queue = [(-graph[c][0], c) for c in {new, old} if c in graph]
    heapq.heapify(queue)
    found, done = [], set()
    while queue and any(flags[c] == NEW for _, c in queue):
        _, sha = heapq.heappop(queue)
        if sha in done:
            continue
        done.add(sha)
        mark = flags[sha]
        if mark == NEW:
            found.append(graph[sha][0])
        for parent in graph[sha][1]:
            before = flags.get(parent, 0)
            if before | mark != before:
                flags[parent] = before | mark
                if parent in graph:
                    heapq.heappush(queue, (-graph[parent][0], parent))
    return found
