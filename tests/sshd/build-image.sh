#!/usr/bin/env bash
# Build the SSH-server test image from a debootstrapped Debian rootfs, once per machine.
# The image tag carries a hash of this recipe, so a changed recipe rebuilds and an
# unchanged one is reused. No registry is involved: the rootfs comes from the apt mirror
# the system already uses.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
recipe_hash=$(cat "$here/build-image.sh" "$here/start-sshd" | sha256sum | cut -c1-12)
image="deployer-sshd:$recipe_hash"
if docker image inspect "$image" >/dev/null 2>&1; then
  echo "$image"
  exit 0
fi
mirror=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
mirror=${mirror:-http://deb.debian.org/debian}
work=$(mktemp -d /var/tmp/deployer-rootfs.XXXXXX)
trap 'rm -rf "$work"' EXIT
rootfs="$work/rootfs"
echo "building $image from $mirror (about a minute)" >&2
debootstrap --variant=minbase \
  --include=openssh-server,python3,curl,procps,sudo,ca-certificates,cron \
  bookworm "$rootfs" "$mirror" >"$work/debootstrap.log" 2>&1 \
  || { tail -20 "$work/debootstrap.log" >&2; exit 1; }
# Every container must get its own host key: drop the ones baked in by the package.
rm -f "$rootfs"/etc/ssh/ssh_host_*
chroot "$rootfs" useradd --create-home --shell /bin/bash deploy
chroot "$rootfs" passwd -d deploy >/dev/null
echo 'deploy ALL=(ALL) NOPASSWD:ALL' >"$rootfs/etc/sudoers.d/deploy"
chmod 0440 "$rootfs/etc/sudoers.d/deploy"
install -m 0755 "$here/start-sshd" "$rootfs/usr/local/bin/start-sshd"
rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
tar -C "$rootfs" -c . | docker import \
  --change 'CMD ["/usr/local/bin/start-sshd"]' \
  --change 'EXPOSE 22' - "$image" >/dev/null
echo "$image"
