#!/usr/bin/python3
"""Run a command chrooted into a foreign-architecture root, emulated by qemu-user, without
touching the host's binfmt_misc.

    userns_run.py --qemu /path/qemu-aarch64-static ROOT COMMAND [ARG...]

Since Linux 6.7 every user namespace has its own binfmt_misc. The child enters a new user
and mount namespace; the parent (real root) maps every id to itself, so files keep their
owners. The child binds /dev and /proc into ROOT, mounts that namespace's binfmt_misc on
ROOT/proc/sys/fs/binfmt_misc, registers qemu with the F flag (the interpreter is opened now,
so it need not exist inside ROOT) and chroots. Every mount dies with the namespace: there is
nothing to clean up, and a crash cannot leave a host mount behind.

Must run as root. Standard library only (python3 >= 3.9; `os.unshare` is 3.12+, so ctypes).
"""

from __future__ import annotations

import argparse
import ctypes
import os
import sys

CLONE_NEWNS = 0x00020000
CLONE_NEWUSER = 0x10000000
MS_BIND = 4096
MS_REC = 16384
MS_PRIVATE = 1 << 18
IDENTITY_MAP = "0 0 4294967295\n"

# The magic and mask of qemu-user-static's /usr/lib/binfmt.d/qemu-aarch64.conf (an ELF64
# little-endian aarch64 executable).
AARCH64_MAGIC = r"\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\xb7\x00"
AARCH64_MASK = r"\xff\xff\xff\xff\xff\xff\xff\x00\xff\xff\xff\xff\xff\xff\xff\xff\xfe\xff\xff\xff"

_libc = ctypes.CDLL(None, use_errno=True)


def _check(result: int, what: str) -> None:
    if result != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"{what}: {os.strerror(errno)}")


def _mount(source: str, target: str, fstype: str | None, flags: int) -> None:
    _check(
        _libc.mount(
            source.encode(), target.encode(), fstype.encode() if fstype else None, flags, None
        ),
        f"mount {source} on {target}",
    )


def _register(qemu: str, root: str) -> None:
    """Register qemu for aarch64 in this user namespace's own binfmt_misc.

    The registrations last as long as that binfmt_misc is mounted: it stays mounted where a
    Debian system has it, under ROOT's /proc (a directory the kernel keeps for it).
    """
    directory = os.path.join(root, "proc/sys/fs/binfmt_misc")
    _mount("binfmt_misc", directory, "binfmt_misc", 0)
    rule = f":qemu-aarch64:M::{AARCH64_MAGIC}:{AARCH64_MASK}:{qemu}:F"
    with open(os.path.join(directory, "register"), "w") as register:
        register.write(rule)


def _child(qemu: str, root: str, command: list[str], ready: int, go: int) -> int:
    _check(_libc.unshare(CLONE_NEWUSER | CLONE_NEWNS), "unshare")
    os.write(ready, b"u")  # the parent writes our uid_map and gid_map now
    if os.read(go, 1) != b"m":
        return 111
    _mount("none", "/", None, MS_REC | MS_PRIVATE)  # no mount below propagates to the host
    for name in ("dev", "proc"):
        target = os.path.join(root, name)
        if os.path.islink(target):  # debootstrap --foreign in a container links /proc
            os.unlink(target)
        os.makedirs(target, exist_ok=True)
        _mount(f"/{name}", target, None, MS_BIND | MS_REC)
    _register(qemu, root)
    os.chroot(root)
    os.chdir("/")
    os.execvp(command[0], command)  # noqa: S606 (runs the caller's command, as chroot(8) does)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--qemu", required=True, help="a statically linked qemu-aarch64")
    parser.add_argument("root")
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    if not args.command:
        parser.error("no command given")
    if os.geteuid() != 0:
        parser.error("must run as root (it writes an identity uid_map)")
    qemu, root = os.path.abspath(args.qemu), os.path.abspath(args.root)
    ready_r, ready_w = os.pipe()
    go_r, go_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(ready_r)
        os.close(go_w)
        try:
            status = _child(qemu, root, args.command, ready_w, go_r)
        except OSError as error:
            print(f"userns_run: {error}", file=sys.stderr)
            status = 111
        os._exit(status)
    os.close(ready_w)
    os.close(go_r)
    if os.read(ready_r, 1) == b"u":
        for name in ("uid_map", "gid_map"):
            with open(f"/proc/{pid}/{name}", "w") as mapping:
                mapping.write(IDENTITY_MAP)
        os.write(go_w, b"m")
    os.close(go_w)
    _, status = os.waitpid(pid, 0)
    code = os.waitstatus_to_exitcode(status)
    return 128 - code if code < 0 else code  # killed by a signal: the shell's convention


if __name__ == "__main__":
    sys.exit(main())
