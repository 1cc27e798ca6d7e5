#!/usr/bin/env bash
# Build the web-host test image (sshd + nginx + Debian's gunicorn) from a debootstrapped
# Debian rootfs, once per machine, like tests/sshd/build-image.sh (which stays the plain,
# small image for every other test). The tag carries a hash of this recipe and of the
# entry scripts, so an unchanged recipe is reused. No registry is involved.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
sshd="$here/../sshd"
recipe_hash=$(cat "$here/build-image.sh" "$here/start-web" "$sshd/start-sshd" | sha256sum | cut -c1-12)
image="deployer-web:$recipe_hash"
if docker image inspect "$image" >/dev/null 2>&1; then
  echo "$image"
  exit 0
fi
mirror=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
mirror=${mirror:-http://deb.debian.org/debian}
work=$(mktemp -d /var/tmp/deployer-web-rootfs.XXXXXX)
trap 'rm -rf "$work"' EXIT
rootfs="$work/rootfs"
echo "building $image from $mirror (about a minute)" >&2
# debootstrap replaces start-stop-daemon with a no-op while it installs, so nginx's
# postinst does not start an nginx on this machine.
debootstrap --variant=minbase \
  --include=openssh-server,python3,curl,procps,sudo,ca-certificates,nginx,gunicorn \
  bookworm "$rootfs" "$mirror" >"$work/debootstrap.log" 2>&1 \
  || { tail -20 "$work/debootstrap.log" >&2; exit 1; }
rm -f "$rootfs"/etc/ssh/ssh_host_*
chroot "$rootfs" useradd --create-home --shell /bin/bash deploy
chroot "$rootfs" passwd -d deploy >/dev/null
echo 'deploy ALL=(ALL) NOPASSWD:ALL' >"$rootfs/etc/sudoers.d/deploy"
chmod 0440 "$rootfs/etc/sudoers.d/deploy"
# No site until a test installs a recipe's server block.
rm -f "$rootfs"/etc/nginx/sites-enabled/default
install -m 0755 "$sshd/start-sshd" "$rootfs/usr/local/bin/start-sshd"
install -m 0755 "$here/start-web" "$rootfs/usr/local/bin/start-web"
rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
tar -C "$rootfs" -c . | docker import \
  --change 'CMD ["/usr/local/bin/start-web"]' \
  --change 'EXPOSE 22' --change 'EXPOSE 80' - "$image" >/dev/null
echo "$image"
