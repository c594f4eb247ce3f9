#!/bin/sh
# `make test-arm64`: install the arm64 .deb in an arm64 Debian bookworm root under qemu-user,
# start the daemon, send the README's first message, purge. Prints PASS or FAIL at the end.
#
#   packaging/test/arm64.sh [dist/pushgod_<version>_arm64.deb]
#
# No systemd boots here (qemu-user cannot run it usefully): probe.py's direct mode starts
# `pushgod serve` as user pushgod with the packaged config and waits for its READY=1. The
# emulation uses a private binfmt_misc in a user namespace (userns_run.py, Linux >= 6.7);
# qemu-user-static is only downloaded and unpacked, never installed or registered on the host.
# The root and qemu are cached in $PUSHGOD_TEST_CACHE (default /var/cache/pushgod-test).
# Needs root. Takes about 1.5 minutes with a cached root, 3-4 minutes without.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
cache=${PUSHGOD_TEST_CACHE:-/var/cache/pushgod-test}
started=$(date +%s)

fail() {
    echo "FAIL: test-arm64: $*" >&2
    exit 1
}

[ "$(id -u)" = 0 ] || fail "needs root (debootstrap, a user namespace with an identity map): sudo make test-arm64"
kernel=$(uname -r)
major=${kernel%%.*}
minor=${kernel#*.}
minor=${minor%%[!0-9]*}
if [ "$major" -lt 6 ] || { [ "$major" -eq 6 ] && [ "$minor" -lt 7 ]; }; then
    fail "Linux $kernel has no per-user-namespace binfmt_misc (needs 6.7 or later)"
fi

# By default the newest in dist/: the one `make test-arm64` has just built.
# shellcheck disable=SC2012 # the names are pushgod_<version>_arm64.deb
deb=${1:-$(ls -t "$repo"/dist/pushgod_*_arm64.deb 2>/dev/null | head -n 1)}
[ -f "$deb" ] || fail "no arm64 .deb (run make deb first, or pass its path)"
"$repo/.ci/system-deps" debootstrap zstd

mkdir -p "$cache"
exec 9>"$cache/.arm64.lock"
flock 9  # one arm64 run at a time: they share the cached root and qemu

# qemu-aarch64-static, unpacked from Debian's qemu-user-static (62 MB download, once).
qemu=$cache/qemu-aarch64-static
if [ ! -x "$qemu" ]; then
    unpack=$(mktemp -d "$cache/.qemu.XXXXXX")
    (cd "$unpack" && apt-get download -q qemu-user-static >/dev/null 2>&1) \
        || { rm -rf "$unpack"; fail "apt-get download qemu-user-static failed"; }
    dpkg-deb -x "$unpack"/qemu-user-static_*.deb "$unpack/x"
    mv "$unpack/x/usr/bin/qemu-aarch64-static" "$qemu"
    rm -rf "$unpack"
fi

# The arm64 root, remade when make-root.sh changes (its hash is in the name).
key=$(sha256sum "$here/make-root.sh" | cut -c1-12)
tarball=$cache/bookworm-arm64-$key.tar.zst
if [ ! -f "$tarball" ]; then
    echo "test-arm64: making the arm64 root (about 2 minutes, once)"
    QEMU=$qemu sh "$here/make-root.sh" arm64 "$tarball" || fail "make-root.sh arm64 failed"
    find "$cache" -maxdepth 1 -name 'bookworm-arm64-*.tar.zst' ! -name "${tarball##*/}" -delete
fi

work=$(mktemp -d "$cache/arm64.XXXXXX")
root=$work/root
# All mounts live in userns_run.py's namespace and die with it; --one-file-system anyway.
trap 'rm -rf --one-file-system "$work"' EXIT
trap 'exit 130' INT TERM
mkdir "$root"
tar --zstd -xpf "$tarball" -C "$root"
mkdir -p "$root/srv/probe"
cp "$deb" "$root/srv/probe/pushgod.deb"
cp "$here/probe.py" "$root/srv/probe/"
chmod 0755 "$root/srv/probe"
cp -L /etc/resolv.conf "$root/etc/resolv.conf"  # the host's network: apt fetches the Depends
echo "test-arm64: $(basename "$deb") in an arm64 root under qemu ($(($(date +%s) - started)) s so far)"

status=0
timeout --kill-after=10 900 env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin \
    /usr/bin/python3 "$here/userns_run.py" --qemu "$qemu" "$root" /bin/sh -c \
    'apt-get update -q >/dev/null && python3 /srv/probe/probe.py direct /srv/probe/pushgod.deb /srv/probe/results.json' \
    || status=$?

took=$(($(date +%s) - started))
if [ "$status" = 0 ]; then
    echo "PASS: test-arm64 ($(basename "$deb"), ${took} s)"
else
    [ "$status" = 124 ] && echo "test-arm64: timed out after 900 s" >&2
    fail "status $status after ${took} s; the probe's FAIL lines above say what"
fi
