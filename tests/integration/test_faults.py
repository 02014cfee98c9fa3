"""Fault injection: what the service does when its own parts fail under it."""

import errno
import glob
import os
import signal
import threading
import time

from .conftest import assert_ok, children_of, wait_until_running

BODY = {"script": "def main():\n    return 1\n"}
SLOW = {"script": "import time\ndef main():\n    time.sleep(30)\n    return 1\n"}


# Names its own process once main() runs, so that the test kills it then and not during
# its set-up (which, on a loaded machine, can take long enough to be hit: that is an
# INTERNAL set-up failure, another test's case).
RUNNING = "pyexecd-main"
SLOW_NAMED = {"script": "import ctypes, time\ndef main():\n"
                        f"    ctypes.CDLL(None).prctl(15, b'{RUNNING}')  # PR_SET_NAME\n"
                        "    time.sleep(30)\n    return 1\n"}


def comm(pid):
    try:
        with open(f"/proc/{pid}/comm") as f:
            return f.read().strip()
    except OSError:
        return None


def test_sandbox_killed_from_outside(start_server):
    srv = start_server("--pool-size", "0", "--concurrency", "1", shared_ok=False)
    out = {}
    t = threading.Thread(target=lambda: out.setdefault("r", srv.post(SLOW_NAMED)))
    t.start()
    wait_until_running(srv)
    zygote = children_of(srv.proc.pid)[0]
    deadline = time.monotonic() + 30
    running = []
    while not running:
        assert time.monotonic() < deadline, "the script never ran"
        time.sleep(0.05)
        running = [pid for pid in children_of(zygote) if comm(pid) == RUNNING]
    os.kill(running[0], signal.SIGKILL)
    t.join(timeout=60)
    resp = out["r"]
    assert resp.status == 422 and resp.json["code"] == "CRASHED", resp
    assert resp.json["signal"] == "SIGKILL"
    assert_ok(srv.post(BODY))
    srv.stop()


def test_sandbox_setup_failure_is_a_500_and_nothing_runs(start_server):
    # The slot's cgroups disappear under the service: joining them fails, and the script
    # must not run without them (fail closed).
    srv = start_server("--pool-size", "0", "--concurrency", "1", shared_ok=False)
    slots = glob.glob(f"/sys/fs/cgroup/**/pyexecd-{srv.proc.pid}/slot-0", recursive=True)
    assert slots, "no slot cgroup found"
    deadline = time.monotonic() + 30
    for d in slots:
        while True:  # the start-up self-check's sandbox may still be exiting
            try:
                os.rmdir(d)
                break
            except OSError as e:
                if e.errno != errno.EBUSY or time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
    resp = srv.post({"script": "def main():\n    print('ran')\n    return 1\n"})
    assert resp.status == 500 and resp.json["code"] == "INTERNAL", resp
    assert "set-up failed" in resp.json["error"] and "cgroups" in resp.json["error"]
    assert "stdout" not in resp.json and "result" not in resp.json
    assert srv.get("/health").status == 200  # the process itself is fine
    srv.stop()


def test_sigterm_under_load_answers_everything_and_exits_zero(start_server):
    srv = start_server("--pool-size", "1", "--concurrency", "2", shared_ok=False)
    answers = []
    lock = threading.Lock()
    script = {"script": "import time\ndef main():\n    time.sleep(0.5)\n    return 1\n"}

    def client():
        try:
            r = srv.post(script)
            status = r.status
        except OSError:
            status = "refused"  # connected after the listening socket closed
        with lock:
            answers.append(status)

    threads = [threading.Thread(target=client) for _ in range(8)]
    for t in threads:
        t.start()
    wait_until_running(srv)
    os.kill(srv.proc.pid, signal.SIGTERM)
    for t in threads:
        t.join(timeout=60)
    assert len(answers) == 8
    assert set(answers) <= {200, 503, "refused"}, answers
    assert 200 in answers
    assert srv.proc.wait(timeout=30) == 0


def test_client_that_goes_away_stops_its_sandbox(start_server):
    import json
    import socket
    srv = start_server("--pool-size", "0", "--concurrency", "1", shared_ok=False)
    body = json.dumps(SLOW).encode()
    s = socket.create_connection(("127.0.0.1", srv.port), timeout=30)
    s.sendall(b"POST /execute HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
              b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
    wait_until_running(srv)
    zygote = children_of(srv.proc.pid)[0]
    deadline = time.monotonic() + 30
    while len(children_of(zygote)) != 1:  # only our sandbox (see above)
        assert time.monotonic() < deadline
        time.sleep(0.05)
    s.close()  # the client gives up long before the script's 30 s
    deadline = time.monotonic() + 10
    while children_of(zygote) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not children_of(zygote), "the sandbox outlived its client"
    assert srv.wait_for_log("client went away")
    assert_ok(srv.post(BODY))  # the slot is free again
    srv.stop()
