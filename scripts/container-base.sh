#!/bin/sh
# Makes the local base image localhost/meshlet-base:node20 that the container test builds the real
# Dockerfile on: no container registry is reachable on our machines, so instead of pulling
# node:20-bookworm-slim we debootstrap a minimal bookworm and copy this machine's Node (and npm) in.
# Cached: does nothing when the image exists. Also writes /etc/containers/containers.conf (host
# network, runc, cgroupfs) when absent, which rootful podman needs here. First run: ~2-3 min.
set -eu
cd "$(dirname "$0")/.."

IMAGE="${MESHLET_BASE_IMAGE:-localhost/meshlet-base:node20}"

if [ ! -f /etc/containers/containers.conf ]; then
  mkdir -p /etc/containers
  nofile="$(ulimit -Hn)"
  [ "$nofile" = "unlimited" ] && nofile=1048576
  cat > /etc/containers/containers.conf <<EOF
[containers]
default_ulimits = ["nofile=${nofile}:${nofile}", "nproc=32768:32768"]
netns = "host"
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
EOF
  echo "==> wrote /etc/containers/containers.conf"
fi

if podman image exists "$IMAGE"; then
  echo "==> $IMAGE already exists"
  exit 0
fi

# The Debian mirror apt already uses (deb822 .sources first, then the one-line format).
mirror="$(sed -n 's/^URIs: *\([^ ]*\).*/\1/p' /etc/apt/sources.list.d/*.sources 2>/dev/null | grep -v security | head -n1 || true)"
[ -n "$mirror" ] || mirror="$(sed -n 's/^deb \(\[[^]]*\] \)\{0,1\}\([^ ]*\) .*/\2/p' /etc/apt/sources.list 2>/dev/null | grep -v security | head -n1 || true)"
[ -n "$mirror" ] || mirror="http://deb.debian.org/debian"

work="$(mktemp -d "${TMPDIR:-/tmp}/meshlet-base.XXXXXX")"
trap 'rm -rf "$work"' EXIT INT TERM
rootfs="$work/rootfs"

echo "==> debootstrap minbase bookworm from $mirror"
debootstrap --variant=minbase bookworm "$rootfs" "$mirror" > "$work/debootstrap.log" 2>&1 || {
  tail -n 30 "$work/debootstrap.log" >&2
  exit 1
}

node_bin="$(readlink -f "$(command -v node)")"
npm_cli="$(readlink -f "$(command -v npm)")"
npm_dir="$(dirname "$(dirname "$npm_cli")")" # …/node_modules/npm
echo "==> copying Node $(node --version) ($node_bin) and npm ($npm_dir) in"
mkdir -p "$rootfs/usr/local/bin" "$rootfs/usr/local/lib/node_modules"
cp "$node_bin" "$rootfs/usr/local/bin/node"
cp -a "$npm_dir" "$rootfs/usr/local/lib/node_modules/npm"
ln -sf ../lib/node_modules/npm/bin/npm-cli.js "$rootfs/usr/local/bin/npm"
ln -sf ../lib/node_modules/npm/bin/npx-cli.js "$rootfs/usr/local/bin/npx"

# Trust what this machine trusts: where outbound TLS goes through a local CA, `npm ci` inside the
# build needs it. Node's own bundled roots still apply (NODE_EXTRA_CA_CERTS adds, never replaces).
ca_env=""
if [ -f /etc/ssl/certs/ca-certificates.crt ]; then
  mkdir -p "$rootfs/etc/ssl/certs"
  cp /etc/ssl/certs/ca-certificates.crt "$rootfs/etc/ssl/certs/ca-certificates.crt"
  ca_env="NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt"
fi

# What the official slim image also leaves out.
rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*.bin "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/*

echo "==> podman import $IMAGE"
tar -C "$rootfs" -c . | podman import \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'ENV NODE_VERSION='"$(node --version | tr -d v)" \
  ${ca_env:+--change "ENV $ca_env"} \
  --change 'CMD ["node"]' \
  - "$IMAGE" > /dev/null
podman image ls "$IMAGE"
