"""Fixtures of the migrations tests: a PostgreSQL host (tests/db/build-image.sh: sshd plus
Debian's PostgreSQL 15, started inside the container) shared by the session, a database of
its own per test, and a project deploying the example app (examples/hello, with its real
SQL migrations and runner) to the database host and a plain web host."""

from __future__ import annotations

import shutil
import subprocess
import uuid
from pathlib import Path

import pytest
from project import REPO, Project
from sshd.hosts import SshHost, start_hosts

HERE = Path(__file__).parent
EXAMPLE = REPO / "examples" / "hello"


@pytest.fixture(scope="session")
def db_image() -> str:
    proc = subprocess.run(["bash", str(HERE / "build-image.sh")], capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"building the database test image failed:\n{proc.stderr[-2000:]}")
    return proc.stdout.strip().splitlines()[-1]


@pytest.fixture(scope="session")
def db_host(db_image, ssh_key):
    (host,) = start_hosts(db_image, (ssh_key.parent / "id_ed25519.pub").read_text().strip(), 1)
    yield host
    host.stop()


class Database:
    """One PostgreSQL database on the database host, read with psql as the deploy user."""

    def __init__(self, host: SshHost, name: str) -> None:
        self.host = host
        self.name = name

    def query(self, sql: str) -> list[str]:
        out = self.host.sh(f'psql -X -At -v ON_ERROR_STOP=1 -d {self.name} -c "{sql}"')
        return out.splitlines()

    def version(self) -> str:
        """The schema version as the example's runner defines it (the highest applied)."""
        return self.query("SELECT coalesce(max(version), 0) FROM schema_migrations")[0]

    def tables(self) -> list[str]:
        return self.query("SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1")


class AppProject(Project):
    """The example app at version 1 (migration 001) or 2 (001 and 002), deployed with the
    README's PostgreSQL `migrations:` config to [db host, web host]."""

    def use_version(self, version: int, extra_sql: dict[str, str] | None = None) -> None:
        app = self.root / "app"
        shutil.rmtree(app)
        shutil.copytree(EXAMPLE, app)
        for path in (app / "migrations").iterdir():
            if int(path.name[:3]) > version:
                path.unlink()
        for name, sql in (extra_sql or {}).items():
            (app / "migrations" / name).write_text(sql)


def migrations_config(db: str) -> dict:
    """The README's PostgreSQL example, for database ``db``."""
    return {
        "command": "./bin/migrate",
        "version": "./bin/migrate --version",
        "snapshot": f'pg_dump -Fc -f "$DEPLOYER_SNAPSHOT" {db}',
        "restore": (
            'pg_restore -f "$DEPLOYER_SNAPSHOT.sql" "$DEPLOYER_SNAPSHOT" && '
            """{ echo 'DROP SCHEMA public CASCADE; CREATE SCHEMA public;'; cat "$DEPLOYER_SNAPSHOT.sql"; } | """
            f'psql -X -q -1 -v ON_ERROR_STOP=1 -o /dev/null {db}; s=$?; rm -f "$DEPLOYER_SNAPSHOT.sql"; exit $s'
        ),
        "down": './bin/migrate --to "$DEPLOYER_TARGET_SCHEMA"',
    }


@pytest.fixture
def database(db_host) -> Database:
    name = f"t_{uuid.uuid4().hex[:10]}"
    db_host.sh(f"createdb {name}")
    yield Database(db_host, name)
    db_host.sh(f"dropdb --if-exists {name}", check=False)


@pytest.fixture
def app(tmp_path, db_host, ssh_hosts, ssh_key, database) -> AppProject:
    """Deploys to the database host (roles web, db: migrations run there) and a plain web
    host that has no PostgreSQL at all (a migration that ran there would fail)."""
    base = Project.create(tmp_path, [db_host, ssh_hosts[0]], ssh_key)
    project = AppProject(base.root, base.hosts, base.key, base.deploy_to)
    (project.root / "templates" / "db.env.j2").write_text("DATABASE_URL=postgresql:///{{ vars.db }}\n")
    project.set(
        templates=[{"src": "db.env.j2", "dest": ".env"}],
        vars={"db": database.name},
        migrations=migrations_config(database.name),
    )
    project.use_version(1)
    return project
