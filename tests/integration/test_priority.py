"""The warm pool is background work (executor.c, "Priorities"): warm sandboxes do their
set-up and wait at nice +10, the zygote idles there, and a request's script runs at the
service's own priority. Needs CAP_SYS_NICE: without it (last test) nothing is lowered,
since adopting a sandbox could not raise it again."""

import os
import time

import pytest

from .conftest import Server, children_of, find_zygotes, metric, run_ok

BACKGROUND = 10  # SANDBOX_BACKGROUND_NICE in src/zygote/proto.h
POOL = 2


def nice_of(pid):
    with open(f"/proc/{pid}/stat") as f:
        return int(f.read().rsplit(")", 1)[1].split()[16])


def wait_pool_full(srv, n=POOL, timeout=60):
    deadline = time.monotonic() + timeout
    while metric(srv, "pyexecd_sandboxes_warm") < n:
        assert time.monotonic() < deadline, "the warm pool did not fill"
        time.sleep(0.05)


def nices_settle(srv, expected, n=POOL, timeout=60):
    """Waits (bounded) until the zygote's children are the n warm sandboxes, all at the
    `expected` nice value, and returns what it last saw: an answered sandbox (nice 19,
    exiting) or the start-up self-check's may be among them for a moment."""
    wait_pool_full(srv, n, timeout)
    zygote = find_zygotes(srv.pid)[0]
    deadline = time.monotonic() + timeout
    while True:
        seen = []
        for pid in children_of(zygote):
            try:
                seen.append(nice_of(pid))
            except FileNotFoundError:  # reaped meanwhile
                pass
        if seen == [expected] * n or time.monotonic() > deadline:
            return zygote, seen
        time.sleep(0.05)


@pytest.fixture(scope="module")
def pooled(start_server):
    if os.geteuid() != 0:
        pytest.skip("priorities need root (CAP_SYS_NICE)")
    return start_server("--pool-size", str(POOL), "--zygotes", "1")


def test_warm_sandboxes_and_idle_zygote_wait_in_the_background(pooled):
    base = nice_of(pooled.pid)
    run_ok(pooled, "def main():\n    return 1\n")
    expected = min(base + BACKGROUND, 19)
    zygote, seen = nices_settle(pooled, expected)
    assert seen == [expected] * POOL
    # The loop lowers the zygote once no request waits for a cold sandbox.
    deadline = time.monotonic() + 10
    while nice_of(zygote) != expected and time.monotonic() < deadline:
        time.sleep(0.05)
    assert nice_of(zygote) == expected


def test_a_script_runs_at_the_service_priority(pooled):
    base = nice_of(pooled.pid)
    wait_pool_full(pooled)  # so the request adopts a warm (background) sandbox
    script = "import os\ndef main():\n    return os.getpriority(os.PRIO_PROCESS, 0)\n"
    assert run_ok(pooled, script)["result"] == base


def test_cold_sandboxes_run_at_the_service_priority(start_server):
    srv = start_server("--pool-size", "0", "--zygotes", "1")
    base = nice_of(srv.pid)
    script = "import os\ndef main():\n    return os.getpriority(os.PRIO_PROCESS, 0)\n"
    for _ in range(3):
        assert run_ok(srv, script)["result"] == base


def test_without_cap_sys_nice_nothing_is_lowered():
    if os.geteuid() != 0:
        pytest.skip("needs root")
    srv = Server(("--pool-size", str(POOL), "--zygotes", "1"))
    srv.args = ["setpriv", "--bounding-set=-sys_nice", "--"] + srv.args
    srv.start()
    try:
        base = nice_of(srv.pid)
        assert srv.wait_for_log("no CAP_SYS_NICE", timeout=10), srv.stderr_text()
        _, seen = nices_settle(srv, base)
        assert seen == [base] * POOL
        script = "import os\ndef main():\n    return os.getpriority(os.PRIO_PROCESS, 0)\n"
        assert run_ok(srv, script)["result"] == base
    finally:
        srv.stop()
