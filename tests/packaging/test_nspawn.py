"""The amd64 .deb under a real systemd (issue 7): a minimal Debian bookworm root booted by
systemd-nspawn, the package installed with apt while systemd runs, then probed and purged.

One boot serves the whole module (about a minute with a cached root; the first run also makes
the root, see nspawn.py). The probe (packaging/test/probe.py) does the work inside the
container; each test here asserts a group of its checks and, when one fails, prints the
details, `systemctl status` and `journalctl -u pushgod`.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from nspawn import (
    Results,
    SetupError,
    boot_and_probe,
    cached_root,
    install_host_tools,
    require_root,
)


@pytest.fixture(scope="module")
def probed(request: pytest.FixtureRequest) -> Results:
    try:
        require_root()  # before anything is built: say what is wrong first
        install_host_tools()
        deb: Path = request.getfixturevalue("deb_amd64")  # conftest.py: built once per session
        started = time.monotonic()
        tarball = cached_root("amd64")
        root_s = time.monotonic() - started
        results = boot_and_probe(deb, tarball)
    except SetupError as error:
        pytest.fail(str(error), pytrace=False)
    timings = ", ".join(f"{name} {seconds:.1f} s" for name, seconds in results.timings.items())
    print(f"nspawn test: cached root {root_s:.1f} s, {timings}")
    return results


def assert_passed(results: Results, *names: str) -> None:
    passed = all(name in results.checks and results.checks[name].ok for name in names)
    assert passed, results.report(names)


def test_apt_installs_the_deb_under_systemd(probed: Results) -> None:
    assert_passed(probed, "install")


def test_service_becomes_active_through_ready(probed: Results) -> None:
    """Type=notify: `active (running)` means the daemon sent READY=1; STATUS= says where."""
    assert_passed(probed, "notify_type", "active_via_ready", "status_text")


def test_readme_first_message(probed: Results) -> None:
    """/healthz, `sudo pushgod channel create home --json`, POST /message, the read API."""
    assert_passed(probed, "healthz", "channel_create", "send", "read_back")


def test_cli_as_root_leaves_the_data_to_the_service(probed: Results) -> None:
    assert_passed(probed, "data_owned_by_pushgod")


def test_generated_secrets_are_private_and_never_shown(probed: Results) -> None:
    """postinst's MQTT password: root:pushgod 0640, not in apt's output nor the journal."""
    assert_passed(probed, "secrets_kept")


def test_journal_gets_structured_error_code(probed: Results) -> None:
    """A send with a wrong password is logged with the ERROR_CODE field (python3-systemd)."""
    assert_passed(probed, "wrong_password_refused", "journal_error_code")


def test_unit_verifies_cleanly_and_is_hardened(probed: Results) -> None:
    """`systemd-analyze verify` prints nothing; `security` exposure is at most 2.0."""
    assert_passed(probed, "analyze_verify", "analyze_security")


def test_watchdog_restarts_a_frozen_daemon(probed: Results) -> None:
    """SIGSTOP: no more WATCHDOG=1, so systemd aborts the process and starts a new one,
    which serves the same data (WatchdogSec=3s from the test's drop-in)."""
    assert_passed(
        probed,
        "watchdog_restart",
        "watchdog_in_journal",
        "healthz_after_restart",
        "data_kept_after_restart",
    )


def test_remove_keeps_data_and_purge_leaves_nothing(probed: Results) -> None:
    assert_passed(
        probed, "remove_keeps_data", "remove_stops_service", "purge", "purge_leaves_nothing"
    )
