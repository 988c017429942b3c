#!/bin/sh
# Install what libdext needs, if it is missing.
#
#   scripts/deps.sh [build]  building: the compiler, meson, ninja, and the
#                            libraries of the optional parts (libpci for
#                            dextctl's names, libsystemd for dextd's
#                            readiness and socket activation, json-c for
#                            dext-vfio-user)
#   scripts/deps.sh test     that and what the tests use: g++ (headers
#                            from C++), lspci (lspci-compare), valgrind
#                            (make valgrind), clang and libFuzzer's runtime
#                            (make tsa, make fuzz), systemd's tools
#                            (systemd-analyze, systemd-socket-activate)
#
# Debian/Ubuntu only; prints the command instead when not root.
set -e
what=${1:-build}
BUILD_PKGS="meson ninja-build gcc make pkg-config libpci-dev libsystemd-dev libjson-c-dev"
TEST_PKGS="g++ pciutils valgrind clang libclang-rt-14-dev systemd"
missing=""
need_tools() {
    for tool in "$@"; do
        command -v "$tool" >/dev/null 2>&1 || missing="$missing $tool"
    done
}
case $what in
build)
    PKGS=$BUILD_PKGS
    ;;
test)
    PKGS="$BUILD_PKGS $TEST_PKGS"
    need_tools c++ lspci valgrind clang systemd-analyze \
        systemd-socket-activate
    # libFuzzer's runtime ("make fuzz").
    ls /usr/lib/llvm-*/lib/clang/*/lib/linux/libclang_rt.fuzzer-*.a \
        >/dev/null 2>&1 || missing="$missing libclang-rt-14-dev"
    ;;
*)
    echo "usage: scripts/deps.sh [build|test]" >&2
    exit 2
    ;;
esac
need_tools meson ninja cc make pkg-config
# Debian puts pci.h under the multiarch include directory: ask pkg-config.
pkg-config --exists libpci 2>/dev/null || [ -f /usr/include/pci/pci.h ] ||
    missing="$missing libpci-dev"
pkg-config --exists libsystemd 2>/dev/null || missing="$missing libsystemd-dev"
pkg-config --exists json-c 2>/dev/null || missing="$missing libjson-c-dev"
[ -z "$missing" ] && exit 0
echo "deps: missing:$missing"
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "deps: please install: $PKGS" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq $PKGS >/dev/null
