"""PYEXECD_URL mode, shared by tests/integration and tests/security (each conftest imports
it; pytest puts tests/ on sys.path for both packages): the suites run against a pyexecd
already serving at that URL, and tests that need a server process of their own (its pid,
children, logs, environment or host) are skipped and counted."""

import os
import urllib.parse
from pathlib import Path

import pytest

SERVER_URL = os.environ.get("PYEXECD_URL", "")
NEEDS_PROCESS = "needs a server process of its own (PYEXECD_URL mode)"


def url_mode_reason(detail=None):
    return f"{NEEDS_PROCESS}: {detail}" if detail else NEEDS_PROCESS


def skip_in_url_mode(detail=None):
    """In PYEXECD_URL mode, skips the test from here on: what follows needs a server
    process of its own. A skip even with PYEXECD_MUST_WORK=1, which is about what the host
    can do, not about which server is tested."""
    if SERVER_URL:
        pytest.skip(url_mode_reason(detail))


def parse_server_url(url):
    """(host, port) of an http:// URL without a path; UsageError otherwise."""
    parts = urllib.parse.urlsplit(url)
    try:
        port = parts.port or 80
    except ValueError:  # a port that is not a number
        port = None
    if (parts.scheme != "http" or not parts.hostname or port is None
            or parts.path not in ("", "/") or parts.query or parts.fragment):
        raise pytest.UsageError(f"PYEXECD_URL={url!r}: expected http://HOST[:PORT]")
    return parts.hostname, port


def hooks(suite: Path, repo: Path, what: str):
    """The suite's pytest_configure, pytest_collection_modifyitems and
    pytest_terminal_summary: the needs_process marker (`what` says what of the process a
    test may need), its skips, and their count. Each acts on SUITE's own tests only, as
    both conftests are loaded when both suites run at once."""

    def in_this_suite(config, nodeid):
        return (config.rootpath / nodeid.split("::", 1)[0]).resolve().is_relative_to(suite)

    def pytest_configure(config):
        config.addinivalue_line(
            "markers", "needs_process(detail=None): the test needs a server process of its "
            f"own ({what}); skipped in PYEXECD_URL mode")
        if SERVER_URL:
            parse_server_url(SERVER_URL)

    def pytest_collection_modifyitems(config, items):
        if not SERVER_URL:
            return
        for item in items:
            mark = item.get_closest_marker("needs_process")
            if mark is not None and in_this_suite(config, item.nodeid):
                item.add_marker(pytest.mark.skip(reason=url_mode_reason(*mark.args)))

    def pytest_terminal_summary(terminalreporter, config):
        """The count of the URL-mode skips, apart from -rs's list of every reason."""
        if not SERVER_URL:
            return
        skipped = [r for r in terminalreporter.stats.get("skipped", [])
                   if NEEDS_PROCESS in str(r.longrepr) and in_this_suite(config, r.nodeid)]
        terminalreporter.write_line(
            f"PYEXECD_URL mode: {len(skipped)} tests of {suite.relative_to(repo)} need a "
            "server process of their own and were skipped")

    return pytest_configure, pytest_collection_modifyitems, pytest_terminal_summary
