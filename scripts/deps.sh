#!/bin/sh
# Install what libdext needs to build and test, if it is missing.
# Debian/Ubuntu only; prints the command instead when not root.
set -e
PKGS="meson ninja-build gcc g++ make pkg-config libpci-dev libsystemd-dev pciutils valgrind clang libclang-rt-14-dev"
missing=""
for tool in meson ninja cc c++ make pkg-config lspci valgrind clang; do
    command -v "$tool" >/dev/null 2>&1 || missing="$missing $tool"
done
# Debian puts pci.h under the multiarch include directory: ask pkg-config.
pkg-config --exists libpci 2>/dev/null || [ -f /usr/include/pci/pci.h ] ||
    missing="$missing libpci-dev"
pkg-config --exists libsystemd 2>/dev/null || missing="$missing libsystemd-dev"
# libFuzzer's runtime ("make fuzz").
ls /usr/lib/llvm-*/lib/clang/*/lib/linux/libclang_rt.fuzzer-*.a \
    >/dev/null 2>&1 || missing="$missing libclang-rt-14-dev"
[ -z "$missing" ] && exit 0
echo "deps: missing:$missing"
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "deps: please install: $PKGS" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq $PKGS >/dev/null
