#!/usr/bin/env bash
# Install the Docker engine and debootstrap from Debian, start dockerd if none answers,
# and build the test images: the plain SSH server, and the web host (nginx + gunicorn) of
# tests/stack/. Idempotent: a second run only checks (each image is cached by recipe hash).
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
need=()
command -v dockerd >/dev/null || need+=(docker.io)
command -v debootstrap >/dev/null || need+=(debootstrap)
if [ ${#need[@]} -gt 0 ]; then
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
if ! docker info >/dev/null 2>&1; then
  # Published ports bind to loopback only: tests never reach any other address.
  # Inherited descriptors are closed: a caller's flock on fd 3+ would otherwise be held by dockerd forever.
  nohup dockerd --ip 127.0.0.1 >/var/log/dockerd.log 2>&1 </dev/null 3>&- 4>&- 5>&- 6>&- 7>&- 8>&- 9>&- &
  for _ in $(seq 1 60); do docker info >/dev/null 2>&1 && break; sleep 0.5; done
  docker info >/dev/null 2>&1 || { tail -30 /var/log/dockerd.log >&2; exit 1; }
fi
bash "$(dirname "$0")/../tests/sshd/build-image.sh"
bash "$(dirname "$0")/../tests/stack/build-image.sh"
bash "$(dirname "$0")/../tests/db/build-image.sh"
