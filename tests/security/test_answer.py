"""A response is sent only when no process of its request can run again.

The result travels on a private channel, but the script runs in the same process as
the harness and can write a complete, well-formed result frame there itself, then go on
running. The service must kill every process of the request before it answers, whatever
the frame says, and the slot must be free again at once: otherwise one client sending
such requests one after another keeps every slot busy until the deadline.
"""

import os
import threading

from .conftest import (assert_still_serving, host_pids_matching, kill_pids, result_of, script,
                       skip_in_url_mode)

PF_EXITING = 0x4  # include/linux/sched.h: the task is in do_exit()
SIGKILL_BIT = 1 << (9 - 1)
# One slot, no spares: a slot still held by a request shows at once. --timeout is
# the longest a request may ask for.
ONE_SLOT = ("--concurrency", "1", "--pool-size", "0", "--timeout", "60")


def forge_then_run(tag, sleep_s=30, body=b'{"status":"ok"}\n"forged"', ballast_mb=0,
                   then_wait_s=0):
    """Starts a CPU-spinning child (findable on the host by `tag`), writes a valid
    [u64 length][frame] on every descriptor that may be the result channel, and sleeps.
    `ballast_mb` of memory written first make PID 1's own exit (and so the kill of the
    rest of its pid namespace) take longer; `then_wait_s` is a pause once the spinner
    runs, before the frame."""
    return script(f'''
        import struct, time

        def main():
            ballast = b"\\1" * ({ballast_mb} << 20)
            child = os.fork()
            if child == 0:
                os.execvp("python3", ["python3", "-c", "while True: pass", "{tag}"])
            while b"{tag}" not in open(f"/proc/{{child}}/cmdline", "rb").read():
                time.sleep(0.01)  # until the spinner runs
            time.sleep({then_wait_s})
            body = {body!r}
            frame = struct.pack("=Q", len(body)) + body
            for fd in range(3, 64):
                try:
                    os.write(fd, frame)
                except OSError:
                    pass
            time.sleep({sleep_s})
            return "slept"
    ''')


def still_running(pid):
    """True if `pid` exists and is neither a zombie, nor exiting, nor about to die of a
    SIGKILL already queued on it: a process that may run another user instruction."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
        with open(f"/proc/{pid}/status") as f:
            status = dict(line.split(":", 1) for line in f.read().splitlines() if ":" in line)
    except (FileNotFoundError, ProcessLookupError):
        return False
    fields = stat[stat.rindex(")") + 2:].split()
    state, flags = fields[0], int(fields[6])
    pending = int(status["SigPnd"], 16) | int(status["ShdPnd"], 16)
    return state not in "ZX" and not flags & PF_EXITING and not pending & SIGKILL_BIT


def test_no_process_of_a_request_runs_once_it_is_answered(start_server):
    """A script that writes its own frame and keeps running (and a spinning child):
    when the answer is in, each of its processes is gone or can never run again.

    PID 1 carries 512 MiB, so that its own exit takes tens of milliseconds before the
    kernel kills the rest of its pid namespace: an answer sent when PID 1 alone has its
    SIGKILL would find the spinner still running. The spinner's pid is found while the
    request runs, and looked at as soon as the answer is in."""
    skip_in_url_mode("looks at the request's processes in this host's /proc")
    srv = start_server(*ONE_SLOT, "--memory-mb", "1024")
    tag = f"pyexecd-forge-{os.urandom(6).hex()}"
    found, stop = [], threading.Event()

    def watch():
        while not found and not stop.is_set():
            found.extend(host_pids_matching(tag))

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        body = srv.execute(forge_then_run(tag, ballast_mb=512, then_wait_s=1), timeout=20)
        left = [pid for pid in found if still_running(pid)]
    finally:
        stop.set()
        watcher.join()
        kill_pids(host_pids_matching(tag))
    # The forged frame is a result the script could have returned itself.
    assert body.get("_status") == 200 and body.get("result") == "forged", body
    assert found, "the spinner was never seen running"
    assert left == [], "processes of the request still ran after its answer was sent"
    assert_still_serving(srv)


def test_serial_forged_frames_do_not_hold_the_slots(start_server):
    """One client, one request at a time: each forges its frame and sleeps. The next
    request still finds its slot free. Had the sleeping sandboxes kept their slots
    (one slot here, no spares), the honest request would wait for them and expire."""
    skip_in_url_mode("starts a server with a single slot")
    srv = start_server(*ONE_SLOT)
    tag = f"pyexecd-forge-{os.urandom(6).hex()}"
    try:
        for _ in range(3):
            body = srv.execute(forge_then_run(tag, sleep_s=60), timeout=60)
            assert body.get("result") == "forged", body
        honest = srv.execute("def main():\n    return 'served'\n", timeout=5)
    finally:
        kill_pids(host_pids_matching(tag))
    assert result_of(honest) == "served"


def test_the_harness_frame_is_answered_and_the_slot_reused(start_server):
    """The normal path through the same code: many short requests on one slot, each
    answered with its own result (no answer is lost or mixed up when the sandbox is
    killed right after its frame)."""
    skip_in_url_mode("starts a server with a single slot")
    srv = start_server(*ONE_SLOT)
    for i in range(20):
        body = srv.execute(f"def main():\n    print({i})\n    return {i}\n")
        assert result_of(body) == i and body["stdout"] == f"{i}\n", body


def test_a_corrupt_frame_is_blamed_on_the_channel_not_on_our_kill(start_server):
    """A complete frame that is not a valid one ends the request too; the SIGKILL the
    service sends then must not read as the script crashing (CRASHED, SIGKILL): the
    answer says what happened, a write to the private channel."""
    skip_in_url_mode("starts a server with a single slot")
    srv = start_server(*ONE_SLOT)
    tag = f"pyexecd-forge-{os.urandom(6).hex()}"
    try:
        body = srv.execute(forge_then_run(tag, body=b"not a frame"), timeout=20)
    finally:
        kill_pids(host_pids_matching(tag))
    assert body.get("code") == "RUNTIME_ERROR", body
    assert "private result channel" in body.get("error", ""), body
