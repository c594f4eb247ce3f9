"""The .debs, built once per test session: `deb_amd64` and `deb_arm64` are their paths, and
`deb_build` tells where and how they were built (see debs.py).

This directory has no __init__.py on purpose: as a package, tests/packaging would be imported
as `packaging` and stand in for the PyPI library of that name. Its modules are imported by
their own names (debs, test_deb), which must stay unique among the tests.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest
from debs import Build, build, need, snapshot, source_date_epoch


@pytest.fixture(scope="session")
def deb_build(tmp_path_factory: pytest.TempPathFactory) -> Build:
    if sys.platform != "linux" or not shutil.which("dpkg-deb"):
        pytest.fail("the .deb build needs Debian (dpkg-deb)", pytrace=False)
    need("python3-venv")
    base = tmp_path_factory.mktemp("deb")
    return build(snapshot(base / "source"), base, source_date_epoch())


@pytest.fixture(scope="session")
def deb_amd64(deb_build: Build) -> Path:
    return deb_build.debs["amd64"]


@pytest.fixture(scope="session")
def deb_arm64(deb_build: Build) -> Path:
    return deb_build.debs["arm64"]
