"""`python -m build` makes an sdist and a wheel holding every module and deployer/data/*;
the wheel, installed (not editable) into a fresh venv, runs the README's first command."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest
from packaged import REPO, build, path_with, venv

import deployer

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def dist(tmp_path_factory) -> tuple[Path, Path]:
    return build(tmp_path_factory.mktemp("build"))


def package_files() -> set[str]:
    found = {str(p.relative_to(REPO)) for p in (REPO / "deployer").rglob("*.py")}
    return found | {str(p.relative_to(REPO)) for p in (REPO / "deployer" / "data").iterdir()}


def test_sdist_and_wheel_hold_every_module_and_the_data_files(dist):
    sdist, wheel = dist
    version = deployer.__version__
    assert sdist.name == f"sternway-{version}.tar.gz" and wheel.name == f"sternway-{version}-py3-none-any.whl"
    with tarfile.open(sdist) as tar:
        in_sdist = {n.split("/", 1)[1] for n in tar.getnames() if "/" in n}
    assert package_files() <= in_sdist and {"README.md", "pyproject.toml"} <= in_sdist
    with zipfile.ZipFile(wheel) as whl:
        in_wheel = set(whl.namelist())
        metadata = whl.read(f"sternway-{version}.dist-info/METADATA").decode()
        entry_points = whl.read(f"sternway-{version}.dist-info/entry_points.txt").decode()
    assert package_files() <= in_wheel
    assert {n for n in in_wheel if n.startswith("deployer/data/")} == {
        f"deployer/data/{p.name}" for p in (REPO / "deployer" / "data").iterdir()
    }
    assert "Name: sternway\n" in metadata and f"Version: {version}\n" in metadata
    assert "sternway = deployer.program:main" in entry_points


def readme_first_command() -> str:
    block = re.search(r"```sh\n(.*?)```", (REPO / "README.md").read_text(), re.S).group(1)
    return next(line for line in block.splitlines() if line and not line.startswith("#"))


def test_the_installed_wheel_runs_the_readmes_first_command(dist, tmp_path):
    install, _, command = readme_first_command().partition(" && ")
    assert install.startswith("pip install") and command == "sternway deploy --stage=local"
    bin_dir = venv(tmp_path / "venv", dist[1])  # the wheel stands in for the checkout's install
    env = {**os.environ, "PATH": path_with(bin_dir), "CI": "true"}
    env.pop("PYTHONPATH", None)
    where = subprocess.run(
        [str(bin_dir / "python"), "-c", "import deployer; print(deployer.__file__)"],
        capture_output=True, text=True, env=env, cwd=tmp_path,
    ).stdout  # fmt: skip
    assert where.startswith(str(tmp_path / "venv")), where  # the wheel's copy, not this checkout
    project = tmp_path / "checkout"  # what the example needs of a checkout; no tasks.py
    for name in ("config", "templates", "examples"):
        shutil.copytree(REPO / name, project / name)
    result = subprocess.run(
        ["bash", "-c", command],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    current = project / ".deploy" / "local" / "current"
    assert os.readlink(current) == "releases/1"
    assert (current / "public" / "index.html").is_file() and "GREETING=" in (current / ".env").read_text()
    version = subprocess.run(["sternway", "--version"], env=env, capture_output=True, text=True).stdout
    assert version == f"sternway {deployer.__version__}\n"
    assert sys.executable not in version
