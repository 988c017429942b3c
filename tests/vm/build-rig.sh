#!/bin/bash
# SPDX-License-Identifier: MIT
#
# Build the VM test rig into a cache directory (tests/vm/README.md):
#
#   build-rig.sh [--update] [CACHE_DIR]
#
# CACHE_DIR defaults to ${LIBDEXT_VM_CACHE:-/var/cache/libdext-vm}.  It gets
#   chroot/           Debian trixie with QEMU from trixie-backports
#   vmlinuz, modules/ Debian 12's kernel and the vfio modules it needs
#   busybox           busybox-static, for the guest and for packing cpio
#   base.cpio.gz      the base initramfs: busybox, /init, the modules
#   rig.env           what run-guest.sh needs to know (sourced by it)
# Each part has a stamp naming the versions it was built from and is
# built again only when they change, so a second run takes seconds.
# --update refreshes the package lists first (the host's and the chroot's).
#
# Exit status: 0 built (or up to date), 77 the rig cannot be built here
# (not root, archive unreachable), anything else a real failure.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
update=0
if [ "${1:-}" = "--update" ]; then
    update=1
    shift
fi
cache=${1:-${LIBDEXT_VM_CACHE:-/var/cache/libdext-vm}}

say() { echo "build-rig: $*" >&2; }
cannot() { say "cannot build the VM rig: $*"; exit 77; }

# Everything run-guest.sh reads, kept apart from the build's own state.
rig_complete() {
    [ -f "$cache/rig.env" ] && [ -f "$cache/vmlinuz" ] &&
        [ -f "$cache/base.cpio.gz" ] && [ -x "$cache/busybox" ]
}

if [ "$(id -u)" -ne 0 ]; then
    # Building needs root (debootstrap, chroot); using a built rig does not.
    if rig_complete; then
        say "not root: using the rig in $cache as it is"
        exit 0
    fi
    cannot "not root (debootstrap and chroot need root), and no rig in $cache"
fi
command -v apt-get >/dev/null || cannot "no apt-get: not a Debian host"

mkdir -p "$cache"
cache=$(cd "$cache" && pwd)
# One builder at a time per cache; tests racing here wait.
exec 9>"$cache/.lock"
flock 9

# The Debian mirror this machine uses for its own release (not security):
# from one-line sources.list entries or deb822 .sources paragraphs.
host_codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
find_mirror() {
    local f
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
        [ -f "$f" ] || continue
        awk -v c="$host_codename" '
            $1 == "deb" {
                i = 2
                if ($i ~ /^\[/) { while ($i !~ /\]$/) i++; i++ }
                if ($(i + 1) == c) { print $i; exit }
            }' "$f"
    done
    for f in /etc/apt/sources.list.d/*.sources; do
        [ -f "$f" ] || continue
        awk -v c="$host_codename" '
            function flush() {
                if (uri != "" && (" " suites " ") ~ (" " c " ")) print uri
                uri = ""; suites = ""
            }
            /^[ \t]*$/ { flush(); next }
            /^URIs:/ { uri = $2 }
            /^Suites:/ { $1 = ""; suites = $0 }
            END { flush() }' "$f"
    done
}
mirror=$(find_mirror | head -n 1)
[ -n "$mirror" ] || cannot "no Debian mirror for '$host_codename' in /etc/apt"

# Versions that key the parts.  The host's lists give the kernel and
# busybox; they are fetched once if this machine never did.
if [ "$update" = 1 ] || ! apt-cache show linux-image-amd64 >/dev/null 2>&1; then
    apt-get update -qq || cannot "apt-get update failed: archive unreachable?"
fi
candidate() {
    apt-cache policy "$1" | sed -n 's/^ *Candidate: *//p'
}
kpkg=$(apt-cache depends linux-image-amd64 |
       sed -n 's/^ *Depends: *\(linux-image-[0-9].*\)$/\1/p' | head -n 1)
[ -n "$kpkg" ] || cannot "no linux-image-amd64 in the host's package lists"
kver=${kpkg#linux-image-}
kpkg_version=$(candidate "$kpkg")

# Reach the archive only when something must be downloaded.
probe_archive() {
    python3 -c '
import sys, urllib.request
urllib.request.urlopen(urllib.request.Request(sys.argv[1], method="HEAD"),
                       timeout=20)' "$mirror/dists/trixie/InRelease" 2>/dev/null ||
        cannot "the Debian archive $mirror is not reachable"
}

stamp_ok() { [ -f "$cache/$1.stamp" ] && [ "$(cat "$cache/$1.stamp")" = "$2" ]; }

# --- host tools -----------------------------------------------------------
need_host=""
command -v debootstrap >/dev/null || need_host="$need_host debootstrap"
[ -x /bin/busybox ] && dpkg-query -W busybox-static >/dev/null 2>&1 ||
    need_host="$need_host busybox-static"
if [ -n "$need_host" ]; then
    say "installing on the host:$need_host"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
        --no-install-recommends $need_host >/dev/null ||
        cannot "apt-get install$need_host failed"
fi
bb_version=$(dpkg-query -W -f '${Version}' busybox-static)

# --- the chroot with QEMU -------------------------------------------------
chroot_dir=$cache/chroot
qemu_version=""
if [ -d "$chroot_dir/var/lib/dpkg" ]; then
    # The chroot's lists change only here: without --update, what is
    # installed is what the lists offer.
    if [ "$update" = 1 ]; then
        chroot "$chroot_dir" apt-get update -qq ||
            cannot "apt-get update in the chroot failed"
        qemu_version=$(chroot "$chroot_dir" apt-cache policy qemu-system-x86 |
                       sed -n 's/^ *Candidate: *//p')
    else
        qemu_version=$(dpkg-query --admindir="$chroot_dir/var/lib/dpkg" \
                       -W -f '${Version}' qemu-system-x86 2>/dev/null || true)
    fi
fi
if [ -z "$qemu_version" ] || ! stamp_ok chroot "qemu-system-x86 $qemu_version $mirror"; then
    probe_archive
    say "debootstrap trixie from $mirror (about a minute)"
    rm -rf "$chroot_dir" "$cache/chroot.new" "$cache/chroot.stamp"
    new=$cache/chroot.new
    debootstrap --variant=minbase trixie "$new" "$mirror" \
        >"$cache/debootstrap.log" 2>&1 || {
        tail -n 20 "$cache/debootstrap.log" >&2
        say "debootstrap failed (log: $cache/debootstrap.log)"
        exit 1
    }
    echo "deb $mirror trixie-backports main" \
        >"$new/etc/apt/sources.list.d/backports.list"
    chroot "$new" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive chroot "$new" apt-get install -y -qq \
        --no-install-recommends -t trixie-backports qemu-system-x86 \
        >"$cache/qemu-install.log" 2>&1 || {
        tail -n 20 "$cache/qemu-install.log" >&2
        say "installing QEMU failed (log: $cache/qemu-install.log)"
        exit 1
    }
    chroot "$new" apt-get clean
    qemu_version=$(chroot "$new" dpkg-query -W -f '${Version}' qemu-system-x86)
    mv "$new" "$chroot_dir"
    echo "qemu-system-x86 $qemu_version $mirror" >"$cache/chroot.stamp"
fi

# --- kernel and modules ---------------------------------------------------
# Only vmlinuz and the vfio stack leave the .deb; the load order is the
# dependency order (README.md).
modules="virt/lib/irqbypass.ko drivers/vfio/vfio.ko
drivers/vfio/vfio_iommu_type1.ko drivers/vfio/vfio_virqfd.ko
drivers/vfio/pci/vfio-pci-core.ko drivers/vfio/pci/vfio-pci.ko"
if ! stamp_ok kernel "$kpkg $kpkg_version" || [ ! -f "$cache/vmlinuz" ]; then
    probe_archive
    say "fetching $kpkg $kpkg_version"
    tmp=$(mktemp -d "$cache/kernel.XXXXXX")
    (cd "$tmp" && apt-get download -qq "$kpkg=$kpkg_version" 2>/dev/null) ||
        cannot "apt-get download $kpkg failed"
    members="./boot/vmlinuz-$kver"
    for m in $modules; do
        members="$members ./lib/modules/$kver/kernel/$m"
    done
    dpkg-deb --fsys-tarfile "$tmp"/*.deb | tar -x -C "$tmp" $members
    rm -rf "$cache/modules"
    mkdir -p "$cache/modules"
    for m in $modules; do
        cp "$tmp/lib/modules/$kver/kernel/$m" "$cache/modules/"
    done
    cp "$tmp/boot/vmlinuz-$kver" "$cache/vmlinuz"
    rm -rf "$tmp"
    echo "$kpkg $kpkg_version" >"$cache/kernel.stamp"
fi

# --- base initramfs -------------------------------------------------------
init_sum=$(sha256sum "$here/guest-init.sh" | cut -d' ' -f1)
initrd_key="busybox-static $bb_version; $kpkg $kpkg_version; init $init_sum"
if ! stamp_ok initrd "$initrd_key" || [ ! -f "$cache/base.cpio.gz" ]; then
    cp /bin/busybox "$cache/busybox"
    tmp=$(mktemp -d "$cache/initrd.XXXXXX")
    mkdir -p "$tmp/bin" "$tmp/sbin" "$tmp/dev" "$tmp/proc" "$tmp/sys" \
        "$tmp/tmp" "$tmp/etc" "$tmp/lib/modules/vfio" "$tmp/opt/libdext/bin"
    cp /bin/busybox "$tmp/bin/busybox"
    ln -s busybox "$tmp/bin/sh"
    cp "$here/guest-init.sh" "$tmp/init"
    chmod 755 "$tmp/init"
    # The kernel opens the console before /init can mount devtmpfs.
    mknod "$tmp/dev/console" c 5 1
    i=0
    for m in $modules; do
        i=$((i + 1))
        cp "$cache/modules/$(basename "$m")" \
            "$tmp/lib/modules/vfio/$i-$(basename "$m")"
    done
    (cd "$tmp" && find . | "$cache/busybox" cpio -o -H newc 2>/dev/null) |
        gzip -6 >"$cache/base.cpio.gz.new"
    mv "$cache/base.cpio.gz.new" "$cache/base.cpio.gz"
    rm -rf "$tmp"
    echo "$initrd_key" >"$cache/initrd.stamp"
fi

# --- what run-guest.sh sources ----------------------------------------------
loader=$chroot_dir/usr/lib64/ld-linux-x86-64.so.2
[ -e "$loader" ] || loader=$chroot_dir/lib64/ld-linux-x86-64.so.2
[ -e "$loader" ] || { say "no dynamic loader in $chroot_dir"; exit 1; }
qemu_banner=$("$loader" --library-path "$chroot_dir/usr/lib/x86_64-linux-gnu" \
    "$chroot_dir/usr/bin/qemu-system-x86_64" --version | head -n 1)
{
    echo "# written by build-rig.sh; sourced by run-guest.sh"
    echo "RIG_CHROOT='$chroot_dir'"
    echo "RIG_LOADER='$loader'"
    echo "RIG_QEMU_VERSION='$qemu_version'"
    echo "RIG_QEMU_BANNER='$qemu_banner'"
    echo "RIG_KERNEL='$kpkg $kpkg_version'"
    echo "RIG_BUSYBOX='$bb_version'"
} >"$cache/rig.env.new"
mv "$cache/rig.env.new" "$cache/rig.env"
say "rig ready in $cache: $qemu_banner; $kpkg $kpkg_version; busybox $bb_version"
