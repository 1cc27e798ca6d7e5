"""The bundled example's migrations on SQLite (the README's first command's stage, transport
local): what a failed migration prints is a restore command that really works."""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
import sys

from project import REPO


def test_the_restore_command_a_failed_migration_prints_brings_the_data_back(tmp_path):
    for item in ("tasks.py", "config", "templates", "examples"):
        src = REPO / item
        (shutil.copytree if src.is_dir() else shutil.copy)(src, tmp_path / item)

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "invoke", *args], cwd=tmp_path, capture_output=True, text=True
        )

    assert run("deploy", "--stage=local").returncode == 0
    database = tmp_path / ".deploy/local/shared/hello.sqlite3"
    with sqlite3.connect(database) as db:
        db.execute("INSERT INTO authors VALUES (1, 'ann')")
        db.execute("INSERT INTO notes VALUES (1, 'kept', 1)")
    (tmp_path / "examples/hello/migrations/003_bad.up.sql").write_text("SELECT no_such_function();\n")
    failed = run("deploy", "--stage=local")
    assert failed.returncode == 1
    line = failed.stderr.strip().splitlines()[-1]
    assert "the schema is still at 2" in line and "no_such_function" in line
    hint = line.split("to restore it run there: ", 1)[1].rsplit(" (release 2 removed", 1)[0]
    with sqlite3.connect(database) as db:
        db.execute("DELETE FROM notes")  # a mistake after the failed deploy
    restored = subprocess.run(["sh", "-c", hint], capture_output=True, text=True)
    assert restored.returncode == 0, restored.stderr
    with sqlite3.connect(database) as db:
        assert db.execute("SELECT id, body, author_id FROM notes").fetchall() == [(1, "kept", 1)]
    assert (tmp_path / ".deploy/local/releases/2").exists() is False
