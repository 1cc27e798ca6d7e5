#!/usr/bin/env bash
# Build one test image from a debootstrapped Debian rootfs, once per machine:
#   rootfs-image.sh NAME EXTRA_PACKAGES ENTRY [SETUP]
# Every image has sshd and the `deploy` user (passwordless sudo); EXTRA_PACKAGES (comma-
# separated, may be empty) are added, ENTRY becomes /usr/local/bin/ENTRY-NAME and the CMD,
# and SETUP (a script run with the rootfs path as $1) adjusts the tree. The tag carries a
# hash of this recipe and every script it installs, so an unchanged recipe is reused. No
# registry is involved: the rootfs comes from the apt mirror the system already uses.
set -euo pipefail
name=$1 packages=$2 entry=$3 setup=${4:-}
here=$(cd "$(dirname "$0")" && pwd)
recipe_hash=$(
  { cat "$here/rootfs-image.sh" "$here/start-sshd" "$entry"; [ -z "$setup" ] || cat "$setup"; echo "$packages"; } \
    | sha256sum | cut -c1-12
)
image="deployer-$name:$recipe_hash"
if docker image inspect "$image" >/dev/null 2>&1; then
  echo "$image"
  exit 0
fi
mirror=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
mirror=${mirror:-http://deb.debian.org/debian}
work=$(mktemp -d "/var/tmp/deployer-$name-rootfs.XXXXXX")
trap 'rm -rf "$work"' EXIT
rootfs="$work/rootfs"
echo "building $image from $mirror (about a minute)" >&2
# debootstrap replaces start-stop-daemon with a no-op while it installs, so no service
# (nginx, PostgreSQL) starts on this machine.
debootstrap --variant=minbase \
  --include="openssh-server,python3,curl,procps,sudo,ca-certificates${packages:+,$packages}" \
  bookworm "$rootfs" "$mirror" >"$work/debootstrap.log" 2>&1 \
  || { tail -20 "$work/debootstrap.log" >&2; exit 1; }
# Every container must get its own host key: drop the ones baked in by the package.
rm -f "$rootfs"/etc/ssh/ssh_host_*
chroot "$rootfs" useradd --create-home --shell /bin/bash deploy
chroot "$rootfs" passwd -d deploy >/dev/null
echo 'deploy ALL=(ALL) NOPASSWD:ALL' >"$rootfs/etc/sudoers.d/deploy"
chmod 0440 "$rootfs/etc/sudoers.d/deploy"
install -m 0755 "$here/start-sshd" "$rootfs/usr/local/bin/start-sshd"
install -m 0755 "$entry" "$rootfs/usr/local/bin/$(basename "$entry")"
[ -z "$setup" ] || bash "$setup" "$rootfs"
rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
tar -C "$rootfs" -c . | docker import \
  --change "CMD [\"/usr/local/bin/$(basename "$entry")\"]" \
  --change 'EXPOSE 22' --change 'EXPOSE 80' --change 'EXPOSE 5432' - "$image" >/dev/null
echo "$image"
