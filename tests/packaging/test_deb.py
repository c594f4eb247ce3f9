"""Static checks of the .debs and the systemd unit: what lintian, dpkg-deb and systemd-analyze
say, what is inside, and that a rebuild gives the same bytes. Installing and running the
package under a real systemd is the nspawn test's part."""

from __future__ import annotations

import hashlib
import re
import shutil
import struct
import subprocess
import tomllib
from pathlib import Path

import pytest
from debs import ARCHES, REPO, Build, build, need
from packaging.requirements import Requirement

from pushgod.cli.main import build_parser
from pushgod.config import load_settings

PACKAGING = REPO / "packaging"
UNIT = REPO / "systemd" / "pushgod.service"
SITE_PACKAGES = Path("opt/pushgod/lib/python3.11/site-packages")
EXEC_START = "/opt/pushgod/bin/python3 -P -m pushgod --config /etc/pushgod/pushgod.toml serve"
# ELF e_machine of each Debian architecture.
MACHINES = {"amd64": 62, "arm64": 183}


def run(*command: str | Path, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([str(part) for part in command], capture_output=True, text=True)
    if check and result.returncode != 0:
        pytest.fail(
            f"{' '.join(map(str, command))} exited {result.returncode}:\n"
            f"{result.stdout}{result.stderr}",
            pytrace=False,
        )
    return result


@pytest.fixture(scope="module")
def trees(deb_build: Build, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Each .deb unpacked, control area included (in DEBIAN/)."""
    base = tmp_path_factory.mktemp("unpacked")
    for arch, deb in deb_build.debs.items():
        run("dpkg-deb", "-R", deb, base / arch)
    return {arch: base / arch for arch in deb_build.debs}


def control(deb: Path) -> dict[str, str]:
    text = run("dpkg-deb", "-f", deb).stdout
    fields: dict[str, str] = {}
    name = ""
    for line in text.splitlines():
        if line.startswith(" "):
            fields[name] += "\n" + line
        else:
            name, _, value = line.partition(": ")
            fields[name] = value
    return fields


def pyproject() -> dict[str, object]:
    with (REPO / "pyproject.toml").open("rb") as handle:
        project: dict[str, object] = tomllib.load(handle)["project"]
    return project


# lintian


def test_lintian_is_clean_on_both_packages(deb_build: Build) -> None:
    need("lintian")
    # -I shows the informational tags too, where an override that no longer matches shows up.
    lintian = ("lintian", "--allow-root", "--fail-on", "error,warning", "-I")
    result = run(*lintian, *deb_build.debs.values(), check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    stale = [line for line in result.stdout.splitlines() if "-override" in line]
    assert not stale, "\n".join(stale)


def test_every_lintian_override_says_why() -> None:
    """Overrides come in blocks that start with the comment giving their reason."""
    lines = (PACKAGING / "debian" / "lintian-overrides").read_text().splitlines()
    overrides = 0
    reason = False
    for line in lines:
        if line.startswith("#"):
            reason = True
        elif line.strip():
            overrides += 1
            assert reason, f"no reason for: {line}"
        else:
            reason = False
    assert overrides


# control area


@pytest.mark.parametrize("arch", ARCHES)
def test_control_fields(deb_build: Build, arch: str) -> None:
    fields = control(deb_build.debs[arch])
    assert fields["Package"] == "pushgod"
    assert fields["Version"] == f"{pyproject()['version']}-1"
    assert fields["Architecture"] == arch
    assert fields["Section"] == "net"
    depends = [item.strip() for item in fields["Depends"].split(",")]
    for needed in ("python3 (>= 3.11)", "python3 (<< 3.12)", "python3-systemd", "adduser"):
        assert needed in depends
    assert any(item.startswith("libc6") for item in depends)
    assert fields["Recommends"] == "mosquitto"
    assert len(fields["Description"].splitlines()) > 3
    assert deb_build.debs[arch].name == f"pushgod_{fields['Version']}_{arch}.deb"


@pytest.mark.parametrize("arch", ARCHES)
def test_the_config_file_is_the_only_conffile(trees: dict[str, Path], arch: str) -> None:
    assert (trees[arch] / "DEBIAN" / "conffiles").read_text() == "/etc/pushgod/pushgod.toml\n"


@pytest.mark.parametrize("arch", ARCHES)
def test_maintainer_scripts(trees: dict[str, Path], arch: str) -> None:
    for name in ("postinst", "prerm", "postrm"):
        script = trees[arch] / "DEBIAN" / name
        assert script.stat().st_mode & 0o777 == 0o755
        assert script.read_bytes() == (PACKAGING / "debian" / name).read_bytes()
        run("sh", "-n", script)


# contents


@pytest.mark.parametrize("arch", ARCHES)
def test_contents(deb_build: Build, trees: dict[str, Path], arch: str) -> None:
    listing = run("dpkg-deb", "-c", deb_build.debs[arch]).stdout.splitlines()
    entries = {line.split()[5]: line for line in listing}
    for path in (
        "./lib/systemd/system/pushgod.service",
        "./etc/pushgod/pushgod.toml",
        "./opt/pushgod/pyvenv.cfg",
        "./usr/share/doc/pushgod/copyright",
        "./usr/share/doc/pushgod/changelog.Debian.gz",
        "./usr/share/doc/pushgod/examples/pushgod.socket",
    ):
        assert entries[path].startswith("-rw-r--r-- root/root"), path
    assert entries["./usr/bin/pushgod"].startswith("-rwxr-xr-x root/root")
    links = {line.split()[5]: line.split()[-1] for line in listing if line.startswith("l")}
    assert links["./opt/pushgod/bin/python3"] == "/usr/bin/python3"
    assert links[f"./{SITE_PACKAGES}/systemd"] == "/usr/lib/python3/dist-packages/systemd"
    # Not in the package: console scripts (the build host's shebang), the wheel's build path,
    # any other unit (pushgod.socket is an example under /usr/share/doc).
    assert f"./{SITE_PACKAGES}/bin/" not in entries
    assert not [path for path in entries if path.endswith("direct_url.json")]
    units = [path for path in entries if path.startswith("./lib/systemd/system/")]
    assert units == ["./lib/systemd/system/", "./lib/systemd/system/pushgod.service"]

    tree = trees[arch]
    assert (tree / "lib/systemd/system/pushgod.service").read_bytes() == UNIT.read_bytes()
    assert (tree / "etc/pushgod/pushgod.toml").read_bytes() == (
        PACKAGING / "pushgod.toml"
    ).read_bytes()
    wrapper = (tree / "usr/bin/pushgod").read_text()
    assert wrapper.startswith("#!/bin/sh\n")
    assert 'exec /opt/pushgod/bin/python3 -P -m pushgod "$@"\n' in wrapper
    assert (REPO / "pushgod" / "__main__.py").is_file()
    assert (tree / "opt/pushgod/pyvenv.cfg").read_text() == (
        "home = /usr/bin\ninclude-system-site-packages = false\nversion = 3.11\n"
    )


@pytest.mark.parametrize("arch", ARCHES)
def test_every_module_is_byte_compiled(trees: dict[str, Path], arch: str) -> None:
    site = trees[arch] / SITE_PACKAGES
    modules = [path for path in site.rglob("*.py") if not path.is_symlink()]
    assert len(modules) > 1000
    missing = [
        str(path.relative_to(site))
        for path in modules
        if not (path.parent / "__pycache__" / f"{path.stem}.cpython-311.pyc").is_file()
    ]
    assert not missing
    pyc = (site / "pushgod" / "__pycache__" / "config.cpython-311.pyc").read_bytes()
    # PEP 552 flags: hash-based, not checked against the source (no mtime in it).
    assert struct.unpack("<I", pyc[4:8])[0] == 0b01
    assert b"/opt/pushgod/lib/python3.11/site-packages/pushgod/config.py" in pyc


@pytest.mark.parametrize("arch", ARCHES)
def test_every_shared_object_is_built_for_the_package_architecture(
    trees: dict[str, Path], arch: str
) -> None:
    objects = [
        path
        for path in trees[arch].rglob("*.so*")
        if re.search(r"\.so(\.\d+)*$", path.name) and not path.is_symlink()
    ]
    assert len(objects) >= 10  # cryptography, nacl, pydantic-core, aiohttp, yarl, ...
    wrong = []
    for path in objects:
        header = path.read_bytes()[:20]
        # ELF magic, 64-bit, little-endian; e_machine at offset 18.
        assert header[:6] == b"\x7fELF\x02\x01", path
        (machine,) = struct.unpack("<H", header[18:20])
        if machine != MACHINES[arch]:
            wrong.append(f"{path.relative_to(trees[arch])}: e_machine {machine}")
    assert not wrong


@pytest.mark.parametrize("arch", ARCHES)
def test_no_file_names_the_build_directories(
    deb_build: Build, trees: dict[str, Path], arch: str
) -> None:
    needles = [str(path).encode() for path in deb_build.paths()]
    found = []
    for path in trees[arch].rglob("*"):
        data = (
            str(path.readlink()).encode()
            if path.is_symlink()
            else path.read_bytes()
            if path.is_file()
            else b""
        )
        found += [f"{path}: {needle.decode()}" for needle in needles if needle in data]
    assert not found


def test_a_rebuild_elsewhere_gives_the_same_bytes(
    deb_build: Build, tmp_path_factory: pytest.TempPathFactory
) -> None:
    base = tmp_path_factory.mktemp("rebuild")
    # A copy of the same snapshot, at another path: the build directory must not matter.
    source = shutil.copytree(deb_build.source, base / "elsewhere", symlinks=True)
    again = build(source, base, deb_build.epoch)
    for arch in ARCHES:
        first, second = deb_build.debs[arch], again.debs[arch]
        assert first != second
        assert sha256(first) == sha256(second), arch


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# the packaged program


def test_the_packaged_venv_runs_on_this_machine(trees: dict[str, Path], tmp_path: Path) -> None:
    """The amd64 tree, unpacked anywhere, finds its own site-packages (pyvenv.cfg sits beside
    bin/) and Debian's python3-systemd through the symlink."""
    if MACHINES["amd64"] != elf_machine(Path("/usr/bin/python3")):
        pytest.fail("this check runs the amd64 package: it needs an amd64 machine")
    need("python3-systemd")
    venv = trees["amd64"] / "opt" / "pushgod"
    probe = (
        "import sys, nacl.bindings, cryptography.hazmat.bindings._rust, pydantic_core, "
        "systemd.journal, pushgod.daemon; print(sys.prefix); print(pushgod.daemon.__file__)"
    )
    python = venv / "bin" / "python3"
    prefix, daemon = run(python, "-P", "-c", probe).stdout.split()
    assert Path(prefix) == venv
    assert Path(daemon).is_relative_to(venv)
    config = trees["amd64"] / "etc" / "pushgod" / "pushgod.toml"
    result = run(python, "-P", "-m", "pushgod", "--config", config, "config", "check")
    assert result.returncode == 0


def elf_machine(path: Path) -> int:
    with path.open("rb") as handle:
        machine: int = struct.unpack("<H", handle.read(20)[18:20])[0]
    return machine


def test_the_config_file_serves_the_lan_and_reads_the_secrets(tmp_path: Path) -> None:
    config = tmp_path / "pushgod.toml"
    shutil.copy(PACKAGING / "pushgod.toml", config)
    settings = load_settings(str(config), environ={})
    assert (settings.server.host, settings.server.port) == ("0.0.0.0", 8750)  # noqa: S104 (on purpose)
    assert settings.storage.data_dir == "/var/lib/pushgod"
    assert settings.mqtt.password == ""
    # What postinst writes at the first install.
    postinst = (PACKAGING / "debian" / "postinst").read_text()
    assert "/etc/pushgod/conf.d/secrets.toml" in postinst
    assert 'printf \'password = "%s"\\n\' "$password"' in postinst
    (tmp_path / "conf.d").mkdir()
    (tmp_path / "conf.d" / "secrets.toml").write_text('[mqtt]\npassword = "x" \n')
    assert load_settings(str(config), environ={}).mqtt.password == "x"


def test_the_lock_pins_every_runtime_dependency() -> None:
    """requirements.lock is made from pyproject.toml (make lock): it must still satisfy it."""
    pins = dict(
        re.findall(
            r"^([a-z0-9._-]+)==([^ \\]+)", (PACKAGING / "requirements.lock").read_text(), re.M
        )
    )
    dependencies = pyproject()["dependencies"]
    assert isinstance(dependencies, list)
    for line in dependencies:
        requirement = Requirement(line)
        name = re.sub(r"[-_.]+", "-", requirement.name).lower()
        assert name in pins, f"{name} is not in packaging/requirements.lock: run make lock"
        assert requirement.specifier.contains(pins[name]), f"{line}: locked {pins[name]}"


# the systemd unit


def test_the_unit_starts_the_daemon_with_the_packaged_config() -> None:
    lines = UNIT.read_text().splitlines()
    assert f"ExecStart={EXEC_START}" in lines
    argv = EXEC_START.split()
    # -P: the working directory is never searched for a module named pushgod.
    assert argv[:4] == ["/opt/pushgod/bin/python3", "-P", "-m", "pushgod"]
    args = build_parser().parse_args(argv[4:])
    assert (args.command, args.config) == ("serve", "/etc/pushgod/pushgod.toml")
    for setting in (
        "Type=notify",
        "NotifyAccess=main",
        "WatchdogSec=30",
        "Restart=on-failure",
        "User=pushgod",
        "Group=pushgod",
        "StateDirectory=pushgod",
        "LimitNOFILE=65536",
        "TimeoutStartSec=90",
        "ProtectSystem=strict",
        "MemoryDenyWriteExecute=yes",
        "PrivateUsers=yes",
    ):
        assert setting in lines


def test_the_unit_exposure_is_at_most_2() -> None:
    need("systemd")
    result = run(
        "systemd-analyze", "security", "--offline=true", "--threshold=20", UNIT, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    match = re.search(r"Overall exposure level for pushgod\.service: (\d+\.\d+)", result.stdout)
    assert match, result.stdout
    assert float(match[1]) <= 2.0


def test_systemd_analyze_verify_says_nothing(trees: dict[str, Path], tmp_path: Path) -> None:
    """verify checks that ExecStart exists, so here it points into the unpacked amd64 package;
    everything else is the unit as shipped. The nspawn test verifies it installed."""
    need("systemd")
    packaged = trees["amd64"] / "lib" / "systemd" / "system" / "pushgod.service"
    venv = trees["amd64"] / "opt" / "pushgod"
    unit = tmp_path / "pushgod.service"
    unit.write_text(packaged.read_text().replace("/opt/pushgod/", f"{venv}/"))
    shutil.copy(REPO / "systemd" / "pushgod.socket", tmp_path / "pushgod.socket")
    result = run("systemd-analyze", "verify", unit, tmp_path / "pushgod.socket", check=False)
    assert (result.returncode, result.stdout + result.stderr) == (0, "")
