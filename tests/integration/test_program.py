"""The `sternway` program (deployer.program:main, the console script): its version, its
shell completion, the project found from any subdirectory with only config/, plain lines
in CI, and the GitHub job summary."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import deployer
from deployer import stepsummary
from deployer.recipes.summary import HostReport, Summary

REPO = Path(__file__).resolve().parents[2]


def sternway(cwd: Path, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "deployer.program", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        env={**os.environ, **(env or {})},
        timeout=120,
    )


def config_only(tmp_path: Path) -> Path:
    """A copy of this repository's example: config/, templates/ and the app; no tasks.py."""
    root = tmp_path / "proj"
    for name in ("config", "templates", "examples"):
        shutil.copytree(REPO / name, root / name)
    return root


def test_version_is_written_once_and_printed():
    pyproject = (REPO / "pyproject.toml").read_text()
    assert not re.search(r"^version\s*=\s*\"", pyproject, re.M) and 'dynamic = ["version"]' in pyproject
    out = sternway(REPO, "--version")
    assert out.returncode == 0 and out.stdout == f"sternway {deployer.__version__}\n"
    assert (
        subprocess.run([sys.executable, "-m", "deployer", "--version"], capture_output=True, text=True).stdout
        == f"sternway {deployer.__version__}\n"
    )


def test_completion_scripts_for_bash_and_zsh_call_the_program(tmp_path):
    bash = sternway(tmp_path, "--print-completion-script", "bash")
    assert bash.returncode == 0
    assert "complete -F _complete_sternway -o default sternway" in bash.stdout
    assert "candidates=`sternway --complete -- ${COMP_WORDS[*]}`" in bash.stdout
    zsh = sternway(tmp_path, "--print-completion-script", "zsh")
    assert "compctl -K _complete_sternway + -f sternway" in zsh.stdout
    # What the scripts ask the program: it answers with its tasks, and a task's flags.
    tasks = sternway(config_only(tmp_path), "--complete", "--", "sternway").stdout.split()
    assert {"deploy", "rollback", "promote", "init", "schema"} <= set(tasks)
    flags = sternway(tmp_path / "proj", "--complete", "--", "sternway", "deploy", "-").stdout.split()
    assert {"--stage", "--dry-run", "--hosts"} <= set(flags)


def test_a_repository_with_only_config_deploys_from_any_subdirectory(tmp_path):
    root = config_only(tmp_path)
    deep = root / "examples" / "hello" / "public"
    out = sternway(deep, "deploy", "--stage=local", env={"CI": "true"})
    assert out.returncode == 0, out.stdout + out.stderr
    assert os.readlink(root / ".deploy" / "local" / "current") == "releases/1"
    assert (root / ".deploy" / "local" / "current" / "public" / "index.html").is_file()
    # CI, no terminal: plain lines only, no progress bar, no colour, no carriage return.
    assert "\x1b" not in out.stdout and "\r" not in out.stdout
    lines = out.stdout.splitlines()
    assert re.fullmatch(
        r"deploy hello to local: release 1 on 1 host\(s\), artifact [\d.]+ KB sha256 \w{12}", lines[0]
    )
    assert lines[-1].startswith("deploy of release 1 to local: done in ")
    assert all(line == line.rstrip() and line.isprintable() for line in lines)


def test_invokes_flags_for_shell_commands_are_refused_not_ignored(tmp_path):
    root = config_only(tmp_path)
    for flag in ("--dry", "-R", "--echo", "--warn-only", "--pty"):
        out = sternway(root, flag, "deploy", "--stage=local")
        assert out.returncode == 1 and f"No idea what '{flag}' is!" in out.stderr
    assert not (root / ".deploy").exists()  # `--dry` did not deploy for real
    helped = sternway(root, "--help").stdout
    assert "--dry" not in helped and "--print-completion-script" in helped and "deploy" in helped


def test_a_folder_without_config_names_the_missing_file(tmp_path):
    for args in (["deploy", "--stage=production"], ["releases"]):
        out = sternway(tmp_path, *args)
        assert out.returncode == 2
        assert out.stderr == f"error: no config/ folder in {tmp_path}: `sternway init` writes one\n"


def test_the_job_summary_is_appended_when_github_asks_for_it(tmp_path):
    root = config_only(tmp_path)
    summary = tmp_path / "summary.md"
    summary.write_text("earlier step\n")
    env = {"CI": "true", "GITHUB_STEP_SUMMARY": str(summary)}
    assert sternway(root, "deploy", "--stage=local", env=env).returncode == 0
    failed = sternway(root, "rollback", "--stage=local", "--to=7", "--reason=test", env=env)
    assert failed.returncode == 1
    text = summary.read_text()
    assert text.startswith("earlier step\n### sternway: `deploy of release 1 to local` done in ")
    assert "| `localhost` | `1` | - | `active` |" in text
    assert "### sternway: `rollback to local` failed (exit 1) after " in text
    assert "`error: rollback: release 7 is not on host(s) localhost; nothing was changed`" not in text
    assert "`rollback: release 7 is not on host(s) localhost; nothing was changed`" in text
    assert "http" not in text and "](" not in text


def test_summary_markdown_is_plain_text_whatever_the_names():
    row = HostReport("evil|[x](https://e.example)`<img src=x>`", 3, None, "active\nok", 0.5)
    text = stepsummary.markdown(Summary("deploy", "prod", 3, [row], 1.25, revision="abc`def"))
    assert "| `evil\\|[x](https://e.example)'<img src=x>'` | `3` | - | `active ok` | 0.50s |" in text
    assert "Revision `abc'def`." in text
    # Every untrusted text sits in a code span: GitHub renders no link, image or tag from it.
    for line in text.splitlines():
        if line.startswith("| `"):
            cells = re.split(r"(?<!\\)\|", line)[1:-1]
            assert all(re.fullmatch(r" (`[^`]*`|-|\d+\.\d\ds) ", c) for c in cells), line
