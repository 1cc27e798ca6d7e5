#!/usr/bin/env bash
# The web-host test image: the plain image's sshd plus nginx and Debian's gunicorn
# (tests/stack/). Cached by recipe hash, like every test image.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
exec bash "$here/../sshd/rootfs-image.sh" web nginx,gunicorn "$here/start-web" "$here/setup-web"
