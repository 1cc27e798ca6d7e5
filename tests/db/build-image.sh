#!/usr/bin/env bash
# The database-host test image: the plain image's sshd plus Debian's PostgreSQL 15 and
# sqlite3 (tests/db/, the migrations tests). Cached by recipe hash, like every test image.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
exec bash "$here/../sshd/rootfs-image.sh" db postgresql,postgresql-client,sqlite3 "$here/start-db"
