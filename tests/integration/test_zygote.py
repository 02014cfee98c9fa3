"""The zygote is replaced every --zygote-max-spawns sandboxes (a fresh address-space layout)
without dropping a request, and a zygote that dies is restarted."""

import os
import re
import signal
import time

from .conftest import run_ok

def zygote_pids_ready(srv):
    return {int(m.group(1)) for line in srv.log_lines
            for m in [re.search(r"zygote (\d+) ready", line)] if m}


def test_zygote_is_replaced_without_dropping_requests(start_server):
    srv = start_server("--zygote-max-spawns", "3", "--pool-size", "1")
    for _ in range(40):
        run_ok(srv, "def main():\n    return 1\n")
        if len(zygote_pids_ready(srv)) >= 2 and srv.wait_for_log("retired", timeout=0):
            break
        time.sleep(0.05)  # let the successor finish importing pandas
    # The successor imports pandas before it takes over (slow in a sanitizer build).
    deadline = time.monotonic() + 120
    while len(zygote_pids_ready(srv)) < 2 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert len(zygote_pids_ready(srv)) >= 2, srv.stderr_text()
    assert srv.wait_for_log("retired", timeout=60), srv.stderr_text()
    run_ok(srv, "def main():\n    return 1\n")


def test_killed_zygote_is_restarted(start_server):
    srv = start_server("--pool-size", "1", shared_ok=False)
    before = zygote_pids_ready(srv)
    assert len(before) == 1
    os.kill(before.pop(), signal.SIGKILL)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and len(zygote_pids_ready(srv)) < 2:
        time.sleep(0.1)
    assert len(zygote_pids_ready(srv)) == 2, srv.stderr_text()
    while time.monotonic() < deadline and srv.get("/ready").status != 200:
        time.sleep(0.1)
    run_ok(srv, "def main():\n    return 1\n")
    srv.stop()
