#!/usr/bin/env bash
# The plain SSH-server test image (sshd, python3, curl, cron, zstd): small and fast, used by
# every test that needs no web server or database. Cached by recipe hash.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
exec bash "$here/rootfs-image.sh" sshd cron,zstd "$here/start-sshd"
