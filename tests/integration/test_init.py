"""`python -m deployer init` scaffolds a working project and never overwrites."""

from __future__ import annotations

import subprocess
import sys

import yaml


def run(cwd, *args):
    return subprocess.run([sys.executable, *args], cwd=cwd, capture_output=True, text=True)


def test_init_scaffolds_a_project_that_loads_and_deploys_locally(tmp_path):
    result = run(tmp_path, "-m", "deployer", "init")
    assert result.returncode == 0, result.stderr
    for name in (
        "tasks.py",
        "config/deploy.yml",
        "config/staging.yml",
        "config/production.yml",
        "templates/app.env.j2",
    ):
        assert (tmp_path / name).is_file(), name
    listing = run(tmp_path, "-m", "invoke", "--list")
    assert "deploy" in listing.stdout and "rollback" in listing.stdout
    # Turn staging into a local stage and deploy the scaffolded project itself.
    (tmp_path / "config" / "staging.yml").write_text(
        yaml.safe_dump({"transport": "local", "deploy_to": "../deployed"})
    )
    (tmp_path / "index.html").write_text("hi\n")
    deployed = run(tmp_path, "-m", "invoke", "deploy")
    assert deployed.returncode == 0, deployed.stdout + deployed.stderr
    assert "GREETING=Hello" in (tmp_path.parent / "deployed" / "current" / ".env").read_text()


def test_init_refuses_to_overwrite_anything(tmp_path):
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "deploy.yml").write_text("mine\n")
    result = run(tmp_path, "-m", "deployer", "init")
    assert result.returncode == 2
    assert (
        result.stderr.strip() == "error: init: refusing to overwrite config/deploy.yml (nothing was written)"
    )
    assert not (tmp_path / "tasks.py").exists()
    assert (tmp_path / "config" / "deploy.yml").read_text() == "mine\n"
