#!/bin/sh
# Installs what the test suite needs on a bare machine: npm packages (from the lock file) and the
# Debian packages of the real servers the end-to-end tests start (etcd, dnsmasq, Prometheus,
# podman for the container test). Idempotent and quiet when everything is already there.
set -eu
cd "$(dirname "$0")/.."

if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "==> npm ci"
  npm ci --no-audit --no-fund --loglevel=error
fi

APT_PACKAGES="etcd-server etcd-client dnsmasq-base prometheus podman buildah runc uidmap debootstrap"
missing=""
for p in $APT_PACKAGES; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    echo "==> apt-get install$missing"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null
    apt-get install -y -qq --no-install-recommends $missing >/dev/null
  else
    echo "warning: missing Debian packages:$missing (tests that need them will fail); run as root or install them" >&2
  fi
fi
