"""PID namespace, process and thread limits: seeing, signalling and tracing
other processes, outliving the request, and exhausting the process table."""

import os

import pytest

from .conftest import (assert_still_serving, exec_script, host_pids_matching, kill_pids,
                       result_of, run_concurrently, script, skip_in_url_mode)

# -- pid namespace: what the script sees -------------------------------------------------

PROC_LIST = script('''
    def main():
        return {"pid": os.getpid(),
                "procs": sorted(int(p) for p in os.listdir("/proc") if p.isdigit())}
''')


def test_pidns_script_is_pid_1_and_alone(server):
    assert result_of(server.execute(PROC_LIST)) == {"pid": 1, "procs": [1]}


def test_pidns_host_processes_visible_without_layer():
    got = result_of(exec_script(PROC_LIST, disable="pidns"))
    assert got["pid"] != 1
    assert os.getpid() in got["procs"]  # this test runner, among many others


def signal_script(pid):
    return script(f'''
        def main():
            return outcome(os.kill, {pid}, 0)
    ''')


@pytest.mark.needs_process("signals the server's pid")
def test_pidns_service_process_cannot_be_signalled(server):
    """The server's pid does not exist in the sandbox (ESRCH)..."""
    assert result_of(server.execute(signal_script(server.pid))) == "ESRCH"
    assert_still_serving(server)


def test_pidns_host_process_exists_without_layer():
    """...while without the layer it exists and only the uid protects it (EPERM)."""
    assert result_of(exec_script(signal_script(os.getpid()), disable="pidns")) == "EPERM"


def test_pidns_kill_minus_one_only_hits_the_sandbox(server):
    """kill(-1, SIGKILL) kills the script's own children, but neither a
    concurrent request nor the service."""
    killer = script('''
        import subprocess, time

        def main():
            child = subprocess.Popen(["sleep", "60"])
            time.sleep(1)
            at = time.monotonic()
            os.kill(-1, 9)
            return {"killed_at": at, "child": child.wait()}
    ''')
    victim = script('''
        import time

        def main():
            start = time.monotonic()
            time.sleep(3)
            return {"from": start, "until": time.monotonic()}
    ''')
    victim_body, killer_body = run_concurrently(server, victim, killer, head_start=0.3)
    killed = result_of(killer_body)
    survived = result_of(victim_body)
    assert killed["child"] == -9
    assert survived["from"] <= killed["killed_at"] <= survived["until"], (killed, survived)
    assert_still_serving(server)


# -- background processes die with the request --------------------------------------------


def background_script(tag):
    return script(f'''
        import subprocess

        def main():
            quiet = dict(stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            subprocess.Popen(["sleep", "3001.{tag}"], **quiet)
            # A daemon: double fork, new session, re-parented away from main(),
            # holding none of the request's descriptors.
            if os.fork() == 0:
                os.setsid()
                if os.fork() == 0:
                    null = os.open("/dev/null", os.O_RDWR)
                    for fd in (0, 1, 2):
                        os.dup2(null, fd)
                    os.closerange(3, 1024)
                    os.execvp("sleep", ["sleep", "3002.{tag}"])
                os._exit(0)
            os.wait()
            return "started"
    ''')


def test_pidns_background_processes_die_with_the_request(server):
    tag = str(int.from_bytes(os.urandom(4), "big"))
    assert result_of(server.execute(background_script(tag))) == "started"
    assert_still_serving(server)
    skip_in_url_mode("looks for the leftovers in this host's /proc")
    left = host_pids_matching(f".{tag}")
    kill_pids(left)
    assert left == [], "background processes outlived their request"


def test_pidns_background_processes_survive_without_layer():
    # The control. On cgroup v2 the job's cgroup.kill ends them too (a second layer), so
    # that layer is off here as well: only the pid namespace is left out of the picture.
    tag = str(int.from_bytes(os.urandom(4), "big"))
    try:
        assert result_of(exec_script(background_script(tag),
                                     disable="pidns,cgroups")) == "started"
        left = host_pids_matching(f".{tag}")
    finally:
        kill_pids(host_pids_matching(f".{tag}"))
    assert len(left) == 2, left


# -- ptrace ---------------------------------------------------------------------------

PTRACE_SIBLING = script('''
    import subprocess
    PTRACE_ATTACH = 16

    def main():
        sibling = subprocess.Popen(["sleep", "60"])
        pid = os.fork()
        if pid == 0:  # the tracer: a sibling of `sleep`
            r = syscall(101, PTRACE_ATTACH, sibling.pid, 0, 0)
            os._exit(0 if r == "ok" else getattr(errno, r, 255))
        status = os.waitpid(pid, 0)[1]
        sibling.kill()
        sibling.wait()
        code = os.waitstatus_to_exitcode(status)
        return "ok" if code == 0 else errname(code)
''')


def test_seccomp_ptrace_of_a_sibling_is_refused(server):
    """ENOSYS: ptrace is not in the allow-list (docs/SECCOMP.md)."""
    assert result_of(server.execute(PTRACE_SIBLING)) == "ENOSYS"
    assert_still_serving(server)


def test_seccomp_ptrace_of_a_sibling_allowed_without_layer():
    """Same uid, no Yama: only the filter refuses it."""
    assert result_of(exec_script(PTRACE_SIBLING, disable="seccomp")) == "ok"


# -- fork and thread bombs ---------------------------------------------------------------

FORK_BOMB = script('''
    import time

    def main():
        children = 0
        try:
            while children < CAP:
                if os.fork() == 0:
                    time.sleep(60)
                    os._exit(0)
                children += 1
        except OSError as e:
            return [errname(e.errno), children]
        return ["no error", children]
''')

THREAD_BOMB = script('''
    import threading

    def main():
        stop = threading.Event()
        threads = 0
        try:
            while threads < CAP:
                threading.Thread(target=stop.wait, daemon=True).start()
                threads += 1
        except RuntimeError as e:
            stop.set()
            return [str(e), threads]
        stop.set()
        return ["no error", threads]
''')


def bomb(template, cap):
    return template.replace("CAP", str(cap))


def test_fork_bomb_is_eagain(server):
    result, children = result_of(server.execute(bomb(FORK_BOMB, 100000)))
    assert result == "EAGAIN"
    assert children < 128  # --pids-max default
    assert_still_serving(server)


def test_thread_bomb_cannot_start_new_thread(server):
    result, threads = result_of(server.execute(bomb(THREAD_BOMB, 100000)))
    assert result == "can't start new thread"
    assert threads < 128
    assert_still_serving(server)


PIDS = ("--pids-max", "16")
BOMB_CAP = 64  # well above --pids-max 16


@pytest.mark.parametrize("template", [FORK_BOMB, THREAD_BOMB], ids=["fork", "thread"])
@pytest.mark.parametrize("disable,stopped", [
    (None, True),
    ("rlimits", True),          # the cgroup's pids.max alone stops it
    ("cgroups", True),          # RLIMIT_NPROC alone stops it
    ("rlimits,cgroups", False),  # nothing else does
])
def test_cgroups_rlimits_process_bombs_fail_without_layers(template, disable, stopped):
    result, count = result_of(exec_script(bomb(template, BOMB_CAP), *PIDS, disable=disable))
    if stopped:
        assert result in ("EAGAIN", "can't start new thread"), (result, count)
        assert count < 16
    else:
        assert (result, count) == ("no error", BOMB_CAP)


def test_crash_of_a_child_does_not_crash_the_request(server):
    body = script('''
        import signal

        def main():
            pid = os.fork()
            if pid == 0:
                os.kill(os.getpid(), signal.SIGSEGV)
            return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
    ''')
    assert result_of(server.execute(body)) == -11
    assert_still_serving(server)
