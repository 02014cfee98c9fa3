"""The seccomp filter: each system call the allow-list leaves out (the kernel surface
the deny-list used to name), tried with harmless arguments, is refused with ENOSYS;
the argument filters kept from the deny-list (clone with a namespace flag, personality
other than the query, sockets of a family other than AF_UNIX) answer EPERM. Without the
filter the same calls give the kernel's own answer (EFAULT, EBADF, EINVAL, success...),
which is how "filtered" is told from "allowed" (bubblewrap's try-syscall).

The layer-off run also switches the credentials layer off, so the script is
root in its (still private) namespaces: then no EPERM can come from a missing
privilege, and a run with only the credentials off (filter on) still getting
the filter's answer shows that the filter alone refuses them, even to root.

test_seccomp_allowlist.py checks the allow-list itself (what it allows is used, what
it leaves out is refused); test_side_channels.py the cross-request channels it closes.
"""

import pytest

from .conftest import (SERVER_URL, assert_error, assert_still_serving, exec_script, require,
                       result_of, script)

CLONE_THREAD = 0x10000  # without CLONE_SIGHAND: EINVAL from the kernel, after the filter
NS = {"CLONE_NEWNS": 0x20000, "CLONE_NEWUTS": 0x04000000, "CLONE_NEWIPC": 0x08000000,
      "CLONE_NEWUSER": 0x10000000, "CLONE_NEWPID": 0x20000000, "CLONE_NEWNET": 0x40000000,
      "CLONE_NEWCGROUP": 0x02000000}

# name -> (syscall number, harmless arguments). Without the filter (as root in
# the sandbox's namespaces) each of these gets an answer other than EPERM on a
# current kernel.
PROVABLE = {
    "mount": (165, 0, 0, 0, 0, 0),
    "umount2": (166, 0, 0),
    "pivot_root": (155, 0, 0),
    "chroot": (161, 0),
    "open_tree": (428, -1, 0, 0),
    "move_mount": (429, -1, 0, -1, 0, 0),
    "fsopen": (430, 0, 0),
    "fsconfig": (431, -1, 0, 0, 0, 0),
    "fsmount": (432, -1, 0, 0),
    "fspick": (433, -1, 0, 0),
    "mount_setattr": (442, -1, 0, 0, 0, 0),
    "unshare(CLONE_NEWUSER)": (272, NS["CLONE_NEWUSER"]),
    "unshare(CLONE_NEWNS)": (272, NS["CLONE_NEWNS"]),
    "setns": (308, -1, 0),
    **{f"clone({flag})": (56, bit | CLONE_THREAD, 0, 0, 0, 0) for flag, bit in NS.items()},
    "ptrace": (101, 0x4206, 999999, 0, 0),  # PTRACE_SEIZE of no one
    "process_vm_readv": (310, 0, 0, 0, 0, 0, 0),
    "process_vm_writev": (311, 0, 0, 0, 0, 0, 0),
    "process_madvise": (440, -1, 0, 0, 0, 0),
    "pidfd_getfd": (438, -1, 0, 0),
    "kcmp": (312, 0, 0, 0, 0, 0),
    "bpf": (321, 0, 0, 0),
    "perf_event_open": (298, 0, 0, -1, -1, 0),
    "io_uring_setup": (425, 0, 0),
    "io_uring_enter": (426, -1, 0, 0, 0, 0, 0),
    "io_uring_register": (427, -1, 0, 0, 0),
    "keyctl": (250, 0, 0, 0),
    "add_key": (248, 0, 0, 0, 0, 0),
    "request_key": (249, 0, 0, 0, 0),
    "name_to_handle_at": (303, -1, 0, 0, 0, 0),
    "open_by_handle_at": (304, -1, 0, 0),
    "modify_ldt": (154, 0, 0, 0),
    "clock_settime": (227, 0, 0),
    "clock_adjtime": (305, 0, 0),
    "adjtimex": (159, 0),
    "personality(PER_LINUX)": (135, 0),
    "socket(AF_INET)": (41, 2, 1, 0),
    "socket(AF_INET6)": (41, 10, 1, 0),
    "socket(AF_NETLINK)": (41, 16, 3, 0),
    "socketpair(AF_INET)": (53, 2, 1, 0, 0),
}

# Denied too, but tried only with the filter on (as the unprivileged uid): without
# it these are machine-wide operations, or the kernel refuses them to a container
# anyway, so no "allowed" answer can be shown safely everywhere.
FILTERED_ONLY = {
    "userfaultfd": (323, 0),
    "fanotify_init": (300, 0, 0),
    "iopl": (172, 0),
    "ioperm": (173, 0, 0, 0),
    "init_module": (175, 0, 0, 0),
    "finit_module": (313, -1, 0, 0),
    "delete_module": (176, 0, 0),
    "kexec_load": (246, 0, 0, 0, 0),
    "kexec_file_load": (320, -1, -1, 0, 0, 0),
    "reboot": (169, 0, 0, 0, 0),
    "swapon": (167, 0, 0),
    "swapoff": (168, 0),
    "acct": (163, 0),
    "quotactl": (179, 0, 0, 0, 0),
    "quotactl_fd": (443, -1, 0, 0, 0),
    "settimeofday": (164, 0, 0),
    "sethostname": (170, 0, 0),
    "setdomainname": (171, 0, 0),
    "syslog": (103, 0, 0, 0),
    "vhangup": (153,),
    "uselib": (134, 0),
    "socket(AF_PACKET)": (41, 17, 3, 0),
    "socket(AF_VSOCK)": (41, 40, 1, 0),
}

def filtered_answer(name):
    """ENOSYS for a call the allow-list leaves out; EPERM where an argument filter refuses
    a call it allows otherwise."""
    if name.startswith(("clone(", "personality(", "socket(", "socketpair(")):
        return "EPERM"
    return "ENOSYS"



X32_GETPID = 0x40000000 | 39


def probe_script(table):
    """One script that tries every call of TABLE in turn. Those that change the caller
    (an unshare that succeeds, as root without the filter) come last: after
    unshare(CLONE_NEWUSER) the process holds no capability in the initial user namespace,
    and on Linux 6.1 bpf and open_by_handle_at, which check there, then answer EPERM
    (measured in the v2-native guest of tests/vm)."""
    order = sorted(table, key=lambda name: name.startswith("unshare"))
    return script(f'''
        TABLE = {table!r}
        ORDER = {order!r}

        def main():
            return {{name: syscall(*TABLE[name]) for name in ORDER}}
    ''')


@pytest.fixture(scope="module")
def filtered(server):
    table = {**PROVABLE, **FILTERED_ONLY, "clone3": (435, 0, 0)}
    return result_of(server.execute(probe_script(table)))


@pytest.fixture(scope="module")
def filtered_as_root():
    table = {**PROVABLE, "clone3": (435, 0, 0)}
    return result_of(exec_script(probe_script(table), disable="credentials"))


@pytest.fixture(scope="module")
def unfiltered_as_root():
    table = {**PROVABLE, "clone3": (435, 0, 0)}
    return result_of(exec_script(probe_script(table), disable="seccomp,credentials"))


ALL = [*PROVABLE, *FILTERED_ONLY, "clone3"]


@pytest.mark.parametrize("name", ALL)
def test_seccomp_syscall_is_filtered(server, filtered, name):
    assert filtered[name] == filtered_answer(name)
    assert_still_serving(server)


def test_seccomp_non_native_abi_is_enosys(server):
    """x32 system-call numbers are refused as a whole (the bad-arch action). Against a
    remote server (PYEXECD_URL) a filter outside pyexecd may come first: a container
    engine's profile, whose bad-arch action kills the process (Docker's does), which
    refuses the call too."""
    body = server.execute(probe_script({"x32 getpid": (X32_GETPID,)}))
    if SERVER_URL and body.get("code") == "CRASHED":
        assert_error(body, "CRASHED")
        assert "SIGSYS" in body["error"], body
    else:
        assert result_of(body) == {"x32 getpid": "ENOSYS"}
    assert_still_serving(server)


@pytest.mark.parametrize("name", [*PROVABLE, "clone3"])
def test_seccomp_syscall_filtered_even_for_root(filtered_as_root, name):
    assert filtered_as_root[name] == filtered_answer(name)


@pytest.mark.parametrize("name", [*PROVABLE, "clone3"])
def test_seccomp_syscall_allowed_fails_without_layer(unfiltered_as_root, name):
    if name.startswith("io_uring"):
        try:
            with open("/proc/sys/kernel/io_uring_disabled") as f:
                disabled = f.read().strip()
        except OSError:
            disabled = "0"
        require(disabled != "2", "io_uring is disabled on this host (io_uring_disabled=2)")
    answer = unfiltered_as_root[name]
    assert answer != filtered_answer(name), (name, answer)


def test_seccomp_status_reports_a_filter(server):
    body = script('''
        def main():
            return [line.split()[1] for line in open("/proc/self/status")
                    if line.startswith("Seccomp:")]
    ''')
    assert result_of(server.execute(body)) == ["2"]


def test_seccomp_status_no_filter_without_layer():
    body = script('''
        def main():
            return [line.split()[1] for line in open("/proc/self/status")
                    if line.startswith("Seccomp:")]
    ''')
    assert result_of(exec_script(body, disable="seccomp")) == ["0"]


def test_seccomp_ordinary_process_work_still_allowed(server):
    """The deny-list must not break what the product promises: fork, subprocess,
    threads, unix sockets, personality query."""
    body = script('''
        import subprocess, threading, socket

        def main():
            out = {"subprocess": subprocess.run(["echo", "hi"], capture_output=True,
                                                text=True).stdout}
            t = threading.Thread(target=lambda: None)
            t.start()
            t.join()
            a, b = socket.socketpair()
            a.sendall(b"x")
            out["socketpair"] = b.recv(1).decode()
            out["personality query"] = syscall(135, 0xffffffff)
            pid = os.fork()
            if pid == 0:
                os._exit(7)
            out["fork"] = os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
            return out
    ''')
    assert result_of(server.execute(body)) == {"subprocess": "hi\n", "socketpair": "x",
                                              "personality query": "ok", "fork": 7}
