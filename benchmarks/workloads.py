"""Deterministic workloads: the same seed always gives the same trees and the same tarballs.

Both tools deploy the very same ``.tar.gz`` file, so any difference in what arrives on a
host comes from the tool, not from the artifact. Trees are built once and cached under
``benchmarks/.cache`` (gitignored); a recipe change gets a new cache folder.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import random
import shutil
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

RECIPE = "v1"  # bump when anything below changes, so stale caches are not reused
SEED = 20240611
MIB = 1024 * 1024
FIXED_MTIME = 1_700_000_000  # every member gets it: tar bytes must not depend on build time

APP_FILES = 2000
APP_BYTES = 20 * MIB
CHANGED_FRACTION = 0.01
TEXT_SHARE = 0.6  # of the app's files; the rest are random (incompressible) binaries
BIG_FILES = (  # (path, MiB, text?) about 1 GiB in a few files, mostly incompressible
    ("data/model.bin", 384, False),
    ("data/assets.pak", 256, False),
    ("data/corpus.txt", 256, True),
    ("data/index.json", 128, True),
)
TEXT_EXTS = ("js", "css", "html", "py", "json", "txt", "svg")
BINARY_EXTS = ("png", "jpg", "woff2", "so", "bin", "gz")
COMPONENTS = ("assets", "lib", "vendor", "static", "templates", "locale", "src", "public")


@dataclass(frozen=True)
class FileSpec:
    """One file of a workload: where it goes, how big, what kind, and its content seed."""

    path: str
    size: int
    text: bool
    seed: int


@dataclass(frozen=True)
class Workload:
    """A built workload: the tree, its tarball, and facts the report needs."""

    name: str
    directory: Path
    tarball: Path
    files: int
    unpacked_bytes: int
    tarball_bytes: int
    tree_digest: str  # see tree_digest(); compared with what lands on the hosts
    changed_files: int = 0
    changed_bytes: int = 0


# -- content ------------------------------------------------------------------------


def text_corpus(seed: int, size: int = MIB) -> bytes:
    """A block of code-like text with a fixed vocabulary: compresses about 3:1, like source."""
    rng = random.Random(seed)
    letters = "abcdefghijklmnopqrstuvwxyz"
    words = ["".join(rng.choices(letters, k=rng.randint(2, 10))) for _ in range(800)]
    weights = [1 / (rank + 1) for rank in range(len(words))]  # Zipf-like, as identifiers are
    punct = ("(", ")", " = ", ", ", ".", ";", " {", "}", ": ", " + ", "[", "]", '"')
    lines: list[str] = []
    total = 0
    while total < size:
        indent = "    " * rng.randint(0, 3)
        chosen = rng.choices(words, weights, k=rng.randint(3, 12))
        parts = [w + rng.choice(punct) if rng.random() < 0.4 else w + " " for w in chosen]
        line = indent + "".join(parts).rstrip() + "\n"
        lines.append(line)
        total += len(line)
    return "".join(lines).encode()[:size]


def content_chunks(spec: FileSpec, corpus: bytes, chunk: int = 8 * MIB) -> Iterator[bytes]:
    """A file's bytes in chunks: random bytes for binaries, corpus slices for text.

    Text is stitched from corpus slices at random offsets, so two text files differ
    although they share a vocabulary (as real source files do)."""
    rng = random.Random(spec.seed)
    left = spec.size
    while left > 0:
        n = min(chunk, left)
        if not spec.text:
            yield rng.randbytes(n)
        else:
            pieces, got = [], 0
            while got < n:
                start = rng.randrange(0, len(corpus) - 4096)
                piece = corpus[start : start + min(rng.randint(200, 4000), n - got)]
                pieces.append(piece)
                got += len(piece)
            yield b"".join(pieces)
        left -= n


# -- plans ------------------------------------------------------------------------------


def app_plan(seed: int = SEED) -> list[FileSpec]:
    """About 2,000 files and 20 MiB: log-normal sizes (many small files, a few large)."""
    rng = random.Random(seed)
    raw = [rng.lognormvariate(8.5, 1.6) for _ in range(APP_FILES)]
    scale = APP_BYTES / sum(raw)
    sizes = [min(max(64, int(r * scale)), 3 * MIB // 2) for r in raw]
    specs = []
    for index, size in enumerate(sizes):
        text = rng.random() < TEXT_SHARE
        ext = rng.choice(TEXT_EXTS if text else BINARY_EXTS)
        folder = f"{rng.choice(COMPONENTS)}/{rng.randrange(13):02d}"
        specs.append(FileSpec(f"{folder}/f{index:04d}.{ext}", size, text, seed * 1000 + index))
    return specs


def changed_plan(
    base: list[FileSpec], fraction: float = CHANGED_FRACTION, seed: int = SEED
) -> tuple[list[FileSpec], list[str]]:
    """The same tree with ``fraction`` of its files rewritten (same size, new content)."""
    rng = random.Random(seed + 1)
    count = max(1, round(len(base) * fraction))
    chosen = set(rng.sample(range(len(base)), count))
    specs = [
        FileSpec(s.path, s.size, s.text, s.seed + 7_777_777) if i in chosen else s for i, s in enumerate(base)
    ]
    return specs, sorted(base[i].path for i in chosen)


def big_plan(seed: int = SEED) -> list[FileSpec]:
    """About 1 GiB in four files, the way a model or media bundle looks."""
    return [FileSpec(path, mib * MIB, text, seed + 100 + i) for i, (path, mib, text) in enumerate(BIG_FILES)]


# -- building -------------------------------------------------------------------------


def write_tree(directory: Path, specs: list[FileSpec], corpus: bytes) -> None:
    """Write every file with fixed modes and mtimes (tar bytes must be reproducible)."""
    for spec in specs:
        target = directory / spec.path
        target.parent.mkdir(parents=True, exist_ok=True)
        with target.open("wb") as fh:
            for chunk in content_chunks(spec, corpus):
                fh.write(chunk)
        os.chmod(target, 0o644)
        os.utime(target, (FIXED_MTIME, FIXED_MTIME))


def write_tarball(directory: Path, tarball: Path) -> None:
    """A reproducible .tar.gz of ``directory``: sorted names, owner 0, fixed mtimes, gzip
    header without name or time. Level 6, the default of gzip and of most build tools."""

    def normalise(info: tarfile.TarInfo) -> tarfile.TarInfo:
        info.uid = info.gid = 0
        info.uname = info.gname = ""
        info.mtime = FIXED_MTIME
        info.mode = 0o755 if info.isdir() else 0o644
        return info

    partial = tarball.with_suffix(".partial")
    with (
        partial.open("wb") as raw,
        gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=6, mtime=0, filename="") as gz,
        tarfile.open(fileobj=gz, mode="w|", format=tarfile.PAX_FORMAT) as tar,
    ):
        for rel in sorted_members(directory):
            tar.add(directory / rel, arcname=rel, recursive=False, filter=normalise)
    partial.rename(tarball)


def sorted_members(directory: Path) -> list[str]:
    """Every directory and file below ``directory``, parents before children, sorted."""
    found = []
    for folder, dirs, files in os.walk(directory):
        dirs.sort()
        rel = os.path.relpath(folder, directory)
        for name in sorted(dirs) + sorted(files):
            found.append(name if rel == "." else f"{rel}/{name}")
    return found


def tree_digest(directory: Path) -> str:
    """sha256 over ``<sha256>  ./<path>`` lines of every regular file, sorted by path.

    The same text that ``find . -type f | sort | xargs sha256sum`` prints on a host,
    so the deployed tree can be compared with the source without copying it back."""
    lines = []
    for rel in sorted(f"./{m}" for m in sorted_members(directory) if (directory / m).is_file()):
        digest = hashlib.sha256()
        with (directory / rel).open("rb") as fh:
            while chunk := fh.read(MIB):
                digest.update(chunk)
        lines.append(f"{digest.hexdigest()}  {rel}\n")
    return hashlib.sha256("".join(lines).encode()).hexdigest()


def build(
    name: str,
    specs: list[FileSpec],
    cache: Path,
    corpus: bytes,
    changed: list[str] | None = None,
    base: list[FileSpec] | None = None,
) -> Workload:
    """Build (or load from the cache) one workload: its tree, tarball and facts."""
    folder = cache / name
    facts_file = folder / "facts.json"
    if not facts_file.is_file():
        shutil.rmtree(folder, ignore_errors=True)
        (folder / "tree").mkdir(parents=True)
        write_tree(folder / "tree", specs, corpus)
        write_tarball(folder / "tree", folder / f"{name}.tar.gz")
        sizes = {s.path: s.size for s in specs}
        facts = {
            "files": len(specs),
            "unpacked_bytes": sum(sizes.values()),
            "tarball_bytes": (folder / f"{name}.tar.gz").stat().st_size,
            "tree_digest": tree_digest(folder / "tree"),
            "changed_files": len(changed or []),
            "changed_bytes": sum(sizes[p] for p in changed or []),
        }
        facts_file.write_text(json.dumps(facts, indent=1))  # written last: marks a complete build
    facts = json.loads(facts_file.read_text())
    return Workload(name, folder / "tree", folder / f"{name}.tar.gz", **facts)


def cache_folder(root: Path) -> Path:
    """One folder per recipe and seed, so a changed recipe never reuses old trees."""
    return root / f"workloads-{RECIPE}-{SEED}"


def build_all(root: Path, with_big: bool) -> dict[str, Workload]:
    """``app``, ``app-1pct`` and (optionally) ``big``, each as a tree and a .tar.gz."""
    cache = cache_folder(root)
    cache.mkdir(parents=True, exist_ok=True)
    corpus = text_corpus(SEED)
    app = app_plan()
    changed_specs, changed_paths = changed_plan(app)
    built = {
        "app": build("app", app, cache, corpus),
        "app-1pct": build("app-1pct", changed_specs, cache, corpus, changed_paths),
    }
    if with_big:
        built["big"] = build("big", big_plan(), cache, corpus)
    return built


def describe(workload: Workload) -> str:
    """One line for the report: files, sizes, and what changed."""
    text = (
        f"{workload.files} files, {human(workload.unpacked_bytes)} unpacked, "
        f"{human(workload.tarball_bytes)} as .tar.gz"
    )
    if workload.changed_files:
        text += f"; {workload.changed_files} files ({human(workload.changed_bytes)}) differ from `app`"
    return text


def human(count: float) -> str:
    """Bytes in binary units, three significant digits."""
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(count) < 1024 or unit == "GiB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.3g} {unit}"
        count /= 1024
    return f"{count:.3g} GiB"


if __name__ == "__main__":  # build the cache ahead of a run: python3 benchmarks/workloads.py
    for w in build_all(Path(__file__).parent / ".cache", with_big=True).values():
        print(f"{w.name}: {describe(w)} -> {w.tarball}")
