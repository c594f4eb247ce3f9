"""Fixtures that start the real daemon and hand the CLI a clean environment."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Generator, Iterator
from pathlib import Path

import pytest

from .harness import Daemon, DaemonFactory

_REPORTS = pytest.StashKey[dict[str, pytest.TestReport]]()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Keep each phase's report on the item, so teardown knows whether the test failed."""
    report = yield
    item.stash.setdefault(_REPORTS, {})[report.when] = report
    return report


def _failed(request: pytest.FixtureRequest) -> bool:
    reports = request.node.stash.get(_REPORTS, {})
    return any(report.failed for report in reports.values())


@pytest.fixture
def daemon_factory(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[DaemonFactory]:
    """Make `Daemon`s, each on its own data directory; `.start()` runs `pushgod serve`.

    Teardown terminates what still runs (then kills it after a timeout, which fails the
    test) and prints every run's stdout and stderr when the test failed.
    """
    daemons: list[Daemon] = []
    # NOTIFY_SOCKET paths are limited to 107 bytes; tmp_path can be longer than that.
    with tempfile.TemporaryDirectory(prefix="pushgod-") as sockets:

        def make() -> Daemon:
            number = len(daemons) + 1
            daemon = Daemon(tmp_path / f"daemon-{number}", Path(sockets) / f"notify-{number}")
            daemons.append(daemon)
            return daemon

        yield make
        problems = [problem for daemon in daemons if (problem := daemon.close())]
    if problems or _failed(request):
        for daemon in daemons:
            print(daemon.output())
    if problems:
        pytest.fail("; ".join(problems))


@pytest.fixture
def daemon(daemon_factory: DaemonFactory) -> Daemon:
    """A running daemon on a fresh data directory."""
    started = daemon_factory()
    started.start()
    return started


@pytest.fixture
def host_environ_cleared(monkeypatch: pytest.MonkeyPatch) -> None:
    """No PUSHGOD_* or PUSHGO_* name of the host reaches an in-process `main()`."""
    for name in list(os.environ):
        if name.startswith(("PUSHGOD_", "PUSHGO_")):
            monkeypatch.delenv(name)
