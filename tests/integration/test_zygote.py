"""The zygote is replaced every --zygote-max-spawns sandboxes (a fresh address-space layout)
without dropping a request, and a zygote that dies is restarted. With --zygotes 2 both
clone sandboxes, and one that dies leaves the other serving."""

import os
import re
import signal
import time
from concurrent.futures import ThreadPoolExecutor

from pyexecd_testing import wait_for

from .conftest import children_of, find_zygotes, metric, run_ok, wait_until_running

def zygote_pids_ready(srv):
    return {int(m.group(1)) for line in srv.log_lines
            for m in [re.search(r"zygote (\d+) ready", line)] if m}


def test_zygote_is_replaced_without_dropping_requests(start_server):
    srv = start_server("--zygote-max-spawns", "3", "--pool-size", "1", "--zygotes", "1")
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
    srv = start_server("--pool-size", "1", "--zygotes", "1", shared_ok=False)
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


def test_two_zygotes_share_the_work_and_survive_one_loss(start_server):
    srv = start_server("--zygotes", "2", "--pool-size", "0", "--concurrency", "2",
                       shared_ok=False)
    # The second zygote starts after the first is up (it imports pandas too).
    wait_for(lambda: metric(srv, "pyexecd_zygotes_up") == 2, 120)
    zygotes = find_zygotes(srv.pid)
    assert len(zygotes) == 2, zygotes
    # Two requests at once, each in a sandbox of its own: one from each zygote (the one
    # with the shorter backlog, equal ones in turn).
    sleeper = "import time\ndef main():\n    time.sleep(5)\n    return 1\n"
    with ThreadPoolExecutor(2) as pool:
        runs = [pool.submit(run_ok, srv, sleeper) for _ in range(2)]
        wait_until_running(srv, 2)
        # Counted running from the SPAWN on; the clones follow (slowly in a sanitizer build).
        held = [children_of(z) for z in zygotes]
        while not all(held) and not all(r.done() for r in runs):
            time.sleep(0.05)
            held = [children_of(z) for z in zygotes]
        for r in runs:
            r.result()
    assert all(held), held

    os.kill(zygotes[1], signal.SIGKILL)
    wait_for(lambda: metric(srv, "pyexecd_zygotes_up") == 1, 30)
    # Its replacement imports pandas for seconds: meanwhile the other zygote serves.
    for _ in range(5):
        run_ok(srv, "def main():\n    return 2\n")
    assert srv.get("/ready").status == 200
    wait_for(lambda: metric(srv, "pyexecd_zygotes_up") == 2, 120)
    assert metric(srv, "pyexecd_zygote_restarts_total") == 1
    assert len(find_zygotes(srv.pid)) == 2
    run_ok(srv, "def main():\n    return 3\n")
    srv.stop()
