#!/bin/sh
# Build a minimal Debian bookworm root (debootstrap --variant=minbase) for the package tests
# and pack it as a .tar.zst; the tests extract a fresh copy for every run.
#
#   make-root.sh amd64 OUT.tar.zst
#   QEMU=/path/qemu-aarch64-static make-root.sh arm64 OUT.tar.zst
#
# amd64 gets systemd and dbus (the nspawn test boots it); both get python3 and python3-systemd,
# pushgod's Depends, so that installing the .deb in a test downloads little. The arm64 root is
# made with --foreign and finished under qemu-user in a private binfmt_misc (userns_run.py);
# the host's binfmt_misc is never touched.
#
# The Debian mirror is the one the host's apt uses (`apt-get indextargets`); set
# PUSHGOD_TEST_MIRROR to override it. Needs root, debootstrap and zstd.
set -eu

arch=${1:?usage: make-root.sh amd64|arm64 OUT.tar.zst}
out=${2:?usage: make-root.sh amd64|arm64 OUT.tar.zst}
here=$(cd "$(dirname "$0")" && pwd)
suite=bookworm
common=python3,python3-systemd

# The site the host's apt fetches SUITE from, if it has one.
site() {
    # shellcheck disable=SC2016 # $(SITE) is apt's placeholder, not the shell's
    apt-get indextargets --no-release-info --format '$(SITE)' "Release: $1" 'Target-Of: deb' \
        2>/dev/null | head -n 1
}
mirror=${PUSHGOD_TEST_MIRROR:-$(site $suite)}
mirror=${mirror:-http://deb.debian.org/debian}

mkdir -p "$(dirname "$out")"
work=$(mktemp -d "$(dirname "$out")/.make-root-$arch.XXXXXX")  # same file system: mv is atomic
root=$work/root
cleanup() {
    # debootstrap mounts /proc, /sys, ... in the root; never let rm reach into them.
    findmnt -rn -o TARGET | grep -F "$root" | sort -r | while read -r target; do
        umount -l "$target" || true
    done
    rm -rf --one-file-system "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

echo "make-root: debootstrap $suite $arch from $mirror"
case $arch in
amd64)
    debootstrap --variant=minbase --include="$common,systemd,dbus" \
        $suite "$root" "$mirror" >"$work/debootstrap.log" 2>&1 \
        || { tail -n 30 "$work/debootstrap.log"; exit 1; }
    ;;
arm64)
    qemu=${QEMU:?QEMU must name a statically linked qemu-aarch64 for arm64}
    debootstrap --foreign --arch=arm64 --variant=minbase --include="$common" \
        $suite "$root" "$mirror" >"$work/debootstrap.log" 2>&1 \
        || { tail -n 30 "$work/debootstrap.log"; exit 1; }
    # container=lxc: skip the second stage's mknod check (mknod is refused in a user namespace).
    env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin container=lxc \
        /usr/bin/python3 "$here/userns_run.py" --qemu "$qemu" "$root" \
        /debootstrap/debootstrap --second-stage >"$work/second-stage.log" 2>&1 \
        || { tail -n 30 "$work/second-stage.log" "$root/debootstrap/debootstrap.log" || true; exit 1; }
    ;;
*)
    echo "make-root: unsupported architecture $arch" >&2
    exit 2
    ;;
esac

# The suites the tests install from: the release, its updates and its security fixes.
: >"$root/etc/apt/sources.list"
for each in $suite $suite-updates $suite-security; do
    url=$(site "$each")
    [ "$each" = $suite ] && url=$mirror
    if [ -n "$url" ]; then
        echo "deb $url $each main" >>"$root/etc/apt/sources.list"
    fi
done
echo 'Acquire::Languages "none";' >"$root/etc/apt/apt.conf.d/90pushgod-test"  # no Translation-*
rm -f "$root/etc/machine-id" "$root/var/lib/dbus/machine-id"
: >"$root/etc/machine-id"  # empty: systemd makes a fresh one at every boot
echo pushgod-test >"$root/etc/hostname"
rm -rf "$root/var/cache/apt/archives/"*.deb "$root/var/lib/apt/lists/"* "$root/debootstrap"

tar --zstd --numeric-owner --one-file-system -C "$root" -cf "$work/root.tar.zst" .
mv "$work/root.tar.zst" "$out"
echo "make-root: wrote $out ($(du -h "$out" | cut -f1))"
