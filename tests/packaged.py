"""The package as users get it: an sdist and a wheel built from this repository's tracked
files, and fresh virtual environments to install the wheel into (never editable).

Offline on purpose: the build uses the running Python's setuptools (``--no-isolation``),
and a venv sees the running Python's packages (``--system-site-packages``), so the wheel
installs with ``--no-deps --no-index`` and its dependencies are the ones the tests use.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def build(out: Path) -> tuple[Path, Path]:
    """``python -m build`` of a copy of the tracked files; returns (sdist, wheel)."""
    try:
        import build  # noqa: F401  (a test dependency: pip install -e '.[test]')
    except ImportError:
        pytest.fail("the `build` package is missing: pip install -e '.[test]' installs it")
    source = out / "source"
    tracked = subprocess.run(["git", "-C", str(REPO), "ls-files", "-z"], capture_output=True, check=True)
    for name in tracked.stdout.decode().split("\0"):
        if name and (REPO / name).is_file():
            (source / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, source / name)
    dist = out / "dist"
    proc = subprocess.run(
        [sys.executable, "-m", "build", "--no-isolation", "--outdir", str(dist), str(source)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    (sdist,) = dist.glob("*.tar.gz")
    (wheel,) = dist.glob("*.whl")
    return sdist, wheel


def venv(folder: Path, wheel: Path | None = None) -> Path:
    """A fresh venv (with the wheel installed, if given); returns its bin folder."""
    subprocess.run(
        [sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", str(folder)], check=True
    )
    bin_dir = folder / "bin"
    if wheel is not None:
        proc = subprocess.run(
            [str(bin_dir / "python"), "-m", "pip", "install", "-q", "--no-deps", "--no-index", str(wheel)],
            capture_output=True,
            text=True,
        )
        assert proc.returncode == 0, proc.stderr
    return bin_dir


def path_with(bin_dir: Path) -> str:
    return f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"
