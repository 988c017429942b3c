#!/bin/sh
# Install what libdext needs to build and test, if it is missing.
# Debian/Ubuntu only; prints the command instead when not root.
set -e
PKGS="meson ninja-build gcc g++ make pkg-config libpci-dev pciutils valgrind"
missing=""
for tool in meson ninja cc c++ make pkg-config lspci valgrind; do
    command -v "$tool" >/dev/null 2>&1 || missing="$missing $tool"
done
[ -f /usr/include/pci/pci.h ] || missing="$missing libpci-dev"
[ -z "$missing" ] && exit 0
echo "deps: missing:$missing"
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "deps: please install: $PKGS" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq $PKGS >/dev/null
