#!/bin/bash
# pushgod's .deb build, without debhelper (see README.md beside this file).
#
#   packaging/build.sh deb amd64|arm64   dist/pushgod_<version>-1_<arch>.deb, cross-built on any arch
#   packaging/build.sh lock              rewrite requirements.lock and tools.lock from PyPI
#   packaging/build.sh tools             only make the venv of build tools (before parallel builds)
#
# Environment: OUT (default dist), WORK (staging, default build/deb), TOOLS (the tools venv,
# default build/deb-tools), SOURCE_DATE_EPOCH (default: the last commit's time).
set -euo pipefail

SRC=$(cd "$(dirname "$0")/.." && pwd)
PKG=$SRC/packaging
INDEX=https://pypi.org/simple
TOOLS=${TOOLS:-$SRC/build/deb-tools}

# The machine's own pip/uv configuration (extra indexes, find-links) must not leak into what we
# ship: only PyPI, and only what the lock files name.
export PIP_CONFIG_FILE=/dev/null UV_PYTHON_DOWNLOADS=never
pip_() { "$TOOLS/bin/pip" --isolated --disable-pip-version-check "$@" --index-url "$INDEX"; }
uv_() { "$TOOLS/bin/uv" "$@" --no-config --index-url "$INDEX"; }

# The packaged venv runs Debian's python3 3.11: compile for it, with it.
PY=/usr/bin/python3
if ! "$PY" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' 2>/dev/null; then
    echo "build.sh: needs Debian's python3 3.11 at $PY (bookworm)" >&2
    exit 1
fi

# A venv of pinned build tools, remade when tools.lock changes.
tools() {
    local stamp=$TOOLS/.tools.lock
    cmp -s "$PKG/tools.lock" "$stamp" 2>/dev/null && return
    rm -rf "$TOOLS"
    "$PY" -m venv "$TOOLS" || { echo "build.sh: apt-get install python3-venv" >&2; exit 1; }
    pip_ install --quiet --require-hashes -r "$PKG/tools.lock"
    cp "$PKG/tools.lock" "$stamp"
}

lock() {
    tools
    cd "$SRC"
    local common=(--python-version 3.11 --python-platform linux --generate-hashes --quiet)
    # The runtime dependencies straight from pyproject.toml: one list to keep, not two.
    uv_ pip compile "${common[@]}" pyproject.toml -o packaging/requirements.lock
    uv_ pip compile "${common[@]}" packaging/tools.in -o packaging/tools.lock
}

deb() {
    local arch=${1:?usage: build.sh deb amd64|arm64} platform
    case $arch in
        amd64) platform=manylinux_2_17_x86_64 ;;
        arm64) platform=manylinux_2_17_aarch64 ;;
        *) echo "build.sh: unsupported architecture $arch (amd64, arm64; armhf has no wheels)" >&2; exit 2 ;;
    esac
    tools
    local version out work root venv sp wheel
    version=$("$PY" -c 'import sys, tomllib; print(tomllib.load(open(sys.argv[1], "rb"))["project"]["version"])' "$SRC/pyproject.toml")-1
    if [ -z "${SOURCE_DATE_EPOCH:-}" ]; then
        SOURCE_DATE_EPOCH=$(git -C "$SRC" log -1 --format=%ct 2>/dev/null || echo 1767225600)
    fi
    export SOURCE_DATE_EPOCH PYTHONHASHSEED=0 TZ=UTC LC_ALL=C.UTF-8
    umask 022
    out=${OUT:-$SRC/dist}
    work=${WORK:-$SRC/build/deb}/$arch
    root=$work/root
    venv=$root/opt/pushgod
    sp=$venv/lib/python3.11/site-packages
    rm -rf "$work"
    mkdir -p "$out" "$venv/bin" "$sp" "$work/src" "$work/wheel"

    # 1. pushgod's own wheel, built from a copy so the checkout gets no build/ or egg-info.
    cp -r "$SRC/pyproject.toml" "$SRC/README.md" "$SRC/LICENSE" "$SRC/pushgod" "$work/src/"
    find "$work/src" -name __pycache__ -prune -exec rm -rf {} +
    pip_ wheel --quiet --no-deps --no-build-isolation --wheel-dir "$work/wheel" "$work/src"
    wheel=$(echo "$work"/wheel/pushgod-*.whl)
    printf '%s --hash=sha256:%s\n' "$wheel" "$(sha256sum "$wheel" | cut -d' ' -f1)" > "$work/app.txt"

    # 2. A venv written by hand: `python -m venv` would name the staging dir in pyvenv.cfg and
    #    the activate scripts. Nothing here depends on the architecture.
    ln -s /usr/bin/python3 "$venv/bin/python3"
    ln -s python3 "$venv/bin/python"
    printf 'home = /usr/bin\ninclude-system-site-packages = false\nversion = 3.11\n' > "$venv/pyvenv.cfg"

    # 3. Binary wheels for the target platform, each checked against the lock's hashes.
    pip_ install --quiet --require-hashes --no-deps --only-binary=:all: --no-compile \
        --platform "$platform" --python-version 3.11 --implementation cp --abi cp311 \
        --target "$sp" -r "$PKG/requirements.lock" -r "$work/app.txt"
    rm -rf "$sp/bin"  # console scripts, with the build host's python in their shebang
    find "$sp" -name direct_url.json -delete  # names the wheel's build path
    sed -i '/\/direct_url\.json,/d' "$sp"/pushgod-*.dist-info/RECORD

    # 4. Byte-compile: Python cannot write __pycache__ under ProtectSystem=strict. Hash-based pycs
    #    hold no mtime, and -s/-p give tracebacks the installed paths.
    "$PY" -m compileall -q -j0 --invalidation-mode unchecked-hash -s "$root" -p / "$sp" >/dev/null

    # 5. Debian's python3-systemd (no wheels on PyPI) for journald logging: that one package only,
    #    not all of dist-packages. After compileall, which must not follow it into the host.
    ln -s /usr/lib/python3/dist-packages/systemd "$sp/systemd"

    # 6. The rest of the file system.
    local doc=$root/usr/share/doc/pushgod
    install -D -m 0755 "$PKG/pushgod.sh" "$root/usr/bin/pushgod"
    install -D -m 0644 "$PKG/pushgod.toml" "$root/etc/pushgod/pushgod.toml"
    install -D -m 0644 "$SRC/systemd/pushgod.service" "$root/lib/systemd/system/pushgod.service"
    install -D -m 0644 "$SRC/systemd/pushgod.socket" "$doc/examples/pushgod.socket"
    install -D -m 0644 "$PKG/debian/copyright" "$doc/copyright"
    install -D -m 0644 "$PKG/debian/lintian-overrides" "$root/usr/share/lintian/overrides/pushgod"
    printf 'pushgod (%s) unstable; urgency=medium\n\n  * Package pushgod %s.\n\n -- %s  %s\n' \
        "$version" "${version%-*}" "$(maintainer)" "$(date -u -R -d "@$SOURCE_DATE_EPOCH")" |
        gzip -9n > "$doc/changelog.Debian.gz"

    # 7. The control area.
    mkdir -p "$root/DEBIAN"
    install -m 0755 "$PKG/debian/postinst" "$PKG/debian/prerm" "$PKG/debian/postrm" "$root/DEBIAN/"
    echo /etc/pushgod/pushgod.toml > "$root/DEBIAN/conffiles"
    sed -e "s/@VERSION@/$version/" -e "s/@ARCH@/$arch/" -e "s/@MAINTAINER@/$(maintainer)/" \
        -e "s/@SIZE@/$(installed_size "$root")/" "$PKG/debian/control" > "$root/DEBIAN/control"

    # 8. A reproducible archive: fixed mtimes, root:root, and dpkg-deb sorts the entries.
    find "$root" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +
    dpkg-deb --root-owner-group -Zxz --build "$root" "$out/pushgod_${version}_${arch}.deb" >/dev/null
    echo "$out/pushgod_${version}_${arch}.deb"
}

maintainer() { echo 'pushgod maintainers <pushgod@example.org>'; }

# As dpkg-gencontrol counts it (KiB per file, rounded up; 1 per directory or link), so the
# number does not depend on the file system the staging dir is on.
installed_size() {
    find "$1" -path "$1/DEBIAN" -prune -o -mindepth 1 \( -type f -printf '%s\n' -o -printf '1024\n' \) |
        awk '{ kib += int(($1 + 1023) / 1024) } END { print kib }'
}

case ${1:-} in
    deb) deb "${2:-}" ;;
    lock) lock ;;
    tools) tools ;;
    *) echo "usage: $0 deb amd64|arm64 | lock | tools" >&2; exit 2 ;;
esac
