"""Building pushgod's .debs for the tests, with packaging/build.sh as `make deb` does.

The build runs from a snapshot of the checkout taken at the start, so that a change made to
the checkout while the tests run (or a commit, which moves SOURCE_DATE_EPOCH) cannot make the
rebuild of the reproducibility test differ. It needs PyPI (or pip's cache) and Debian's
python3 3.11.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
ARCHES = ("amd64", "arm64")
# What build.sh reads from the checkout.
SOURCES = ("pyproject.toml", "README.md", "LICENSE", "pushgod", "packaging", "systemd")
# The build's own tools venv, kept between sessions like .venv (build/ is ignored by git).
TOOLS = REPO / "build" / "deb-tools"


def need(*packages: str) -> None:
    """Install missing Debian packages (as root), or fail saying what to install."""
    result = subprocess.run(
        [str(REPO / ".ci" / "system-deps"), *packages], capture_output=True, text=True
    )
    if result.returncode != 0:
        pytest.fail(f"missing system packages:\n{result.stdout}{result.stderr}", pytrace=False)


def source_date_epoch() -> str:
    """The last commit's time, as build.sh takes it; a fixed one outside git."""
    result = subprocess.run(
        ["git", "-C", str(REPO), "log", "-1", "--format=%ct"], capture_output=True, text=True
    )
    return result.stdout.strip() if result.returncode == 0 else "1767225600"


def snapshot(destination: Path) -> Path:
    destination.mkdir(parents=True)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for name in SOURCES:
        path = REPO / name
        if path.is_dir():
            shutil.copytree(path, destination / name, ignore=ignore, symlinks=True)
        else:
            shutil.copy2(path, destination / name)
    return destination


@dataclass(frozen=True)
class Build:
    source: Path  # the snapshot it was built from
    work: Path  # build.sh's staging directory
    out: Path
    epoch: str
    debs: dict[str, Path]

    def paths(self) -> list[Path]:
        """The directories the build ran in: none may be named inside a package."""
        return [self.source, self.work, self.out, TOOLS, REPO]


def build(source: Path, base: Path, epoch: str) -> Build:
    """Both architectures side by side (two cores; most of the time is xz)."""
    work, out = base / "work", base / "dist"
    env = dict(os.environ, OUT=str(out), WORK=str(work), TOOLS=str(TOOLS), SOURCE_DATE_EPOCH=epoch)
    script = str(source / "packaging" / "build.sh")
    # The tools venv first, so that the two builds do not both make it.
    tools = subprocess.run([script, "tools"], env=env, capture_output=True, text=True)
    if tools.returncode != 0:
        pytest.fail(f"build.sh tools failed:\n{tools.stdout}{tools.stderr}", pytrace=False)
    runs = {
        arch: subprocess.Popen(
            [script, "deb", arch],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for arch in ARCHES
    }
    debs = {}
    for arch, run in runs.items():
        output, _ = run.communicate()
        if run.returncode != 0:
            pytest.fail(f"build.sh deb {arch} failed:\n{output}", pytrace=False)
        debs[arch] = Path(output.strip().splitlines()[-1])
    return Build(source, work, out, epoch, debs)
