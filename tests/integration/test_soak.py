"""The short soak (bench/soak.py): mixed, partly hostile traffic from 8 clients; every
answer as expected, and nothing left behind (fds, threads, processes, zombies, cgroups,
mounts; RSS within its documented bound). The long run is `bench/soak.py` (50 000)."""

import os
import subprocess
import sys

import pytest

from .conftest import BINARY

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.mark.needs_process("bench/soak.py starts the server it watches")
def test_short_soak():
    proc = subprocess.run([sys.executable, os.path.join(REPO, "bench", "soak.py"),
                           "--requests", os.environ.get("PYEXECD_SOAK_REQUESTS", "1000"),
                           "--clients", "8",
                           # ASan keeps freed memory in quarantine: RSS means nothing there.
                           *(["--no-rss"] if os.environ.get("PYEXECD_SANITIZED") else [])],
                          env=dict(os.environ, PYEXECD_BIN=BINARY), capture_output=True,
                          text=True, timeout=1800)
    print(proc.stdout)
    assert proc.returncode == 0, proc.stdout + proc.stderr
