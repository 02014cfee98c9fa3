"""UTS, IPC and cgroup namespaces: host name, SysV IPC between sandboxes, and
the cgroup paths a script sees."""

import ctypes
import socket

import pytest

from .conftest import (assert_overlap, assert_still_serving, exec_script, require,
                       result_of, run_concurrently, script)

# -- uts ------------------------------------------------------------------------------

HOSTNAME = script('''
    import socket

    def main():
        return [socket.gethostname(), os.uname().nodename]
''')


def test_utsns_hostname_is_sandbox(server):
    assert result_of(server.execute(HOSTNAME)) == ["sandbox", "sandbox"]


def test_utsns_host_name_visible_without_layer():
    host = socket.gethostname()
    require(host != "sandbox", "the host itself is named 'sandbox'")
    assert result_of(exec_script(HOSTNAME, disable="utsns")) == [host, host]


# -- ipc ------------------------------------------------------------------------------

SHM_KEY = 0x70796578  # "pyex"
IPC_CREAT, IPC_RMID = 0o1000, 0

SHM_HOLDER = script(f'''
    import time
    libc = ctypes.CDLL(None, use_errno=True)

    def main():
        shmid = libc.shmget({SHM_KEY}, 4096, {IPC_CREAT} | 0o666)
        if shmid < 0:
            return {{"error": errname(ctypes.get_errno())}}
        held_from = time.monotonic()
        time.sleep(HOLD)
        return {{"held_from": held_from, "held_until": time.monotonic()}}
''')

SHM_PROBER = script(f'''
    import time
    libc = ctypes.CDLL(None, use_errno=True)

    def main():
        deadline = time.monotonic() + 1.5
        while True:
            last_try = time.monotonic()
            ctypes.set_errno(0)
            shmid = libc.shmget({SHM_KEY}, 0, 0)
            result = "found" if shmid >= 0 else errname(ctypes.get_errno())
            if shmid >= 0 or time.monotonic() > deadline:
                if shmid >= 0 and REMOVE:
                    libc.shmctl(shmid, {IPC_RMID}, None)
                return {{"outcome": result, "last_try": last_try}}
            time.sleep(0.05)
''')


def host_remove_shm():
    """Removes the probe's segment from the host's IPC namespace, if a layer-off
    run left it there."""
    libc = ctypes.CDLL(None, use_errno=True)
    shmid = libc.shmget(SHM_KEY, 0, 0)
    if shmid >= 0:
        libc.shmctl(shmid, IPC_RMID, None)
    return shmid >= 0


@pytest.fixture
def no_host_shm():
    host_remove_shm()
    yield
    host_remove_shm()


def test_ipcns_sysv_ipc_refused_by_the_filter_first(server):
    """With every layer, the seccomp allow-list refuses SysV IPC outright (no workload
    uses it; docs/SECCOMP.md); the namespace is tested below with the filter off."""
    assert result_of(server.execute(SHM_HOLDER.replace("HOLD", "0"))) == {"error": "ENOSYS"}
    assert_still_serving(server)


def test_ipcns_sysv_shm_not_shared_between_sandboxes(layer_off_server, no_host_shm):
    srv = layer_off_server("seccomp")
    holder = SHM_HOLDER.replace("HOLD", "3")
    prober = SHM_PROBER.replace("REMOVE", "False")
    held, probed = run_concurrently(srv, holder, prober)
    held, probed = result_of(held), result_of(probed)
    assert probed["outcome"] == "ENOENT", probed
    assert_overlap(held, probed)
    assert not host_remove_shm(), "the segment was created in the host's IPC namespace"
    assert_still_serving(srv)


def test_ipcns_sysv_shm_shared_without_layer(no_host_shm):
    """Without the layer the segment is the host's: a later sandbox finds it
    (and removes it)."""
    holder = SHM_HOLDER.replace("HOLD", "0")
    prober = SHM_PROBER.replace("REMOVE", "True")
    assert "held_from" in result_of(exec_script(holder, disable="ipcns,seccomp"))
    assert result_of(exec_script(prober, disable="ipcns,seccomp"))["outcome"] == "found"


# -- cgroup ---------------------------------------------------------------------------

CGROUP = script('''
    def main():
        return [line.rstrip("\\n").split(":", 2) for line in open("/proc/self/cgroup")]
''')


def test_cgroupns_paths_are_root(server):
    lines = result_of(server.execute(CGROUP))
    assert lines
    assert all(path == "/" for _, _, path in lines), lines


def test_cgroupns_slot_path_visible_without_layer():
    lines = result_of(exec_script(CGROUP, disable="cgroupns"))
    assert any("/slot-" in path for _, _, path in lines), lines


def test_cgroupns_no_cgroup_file_system(server):
    body = script('''
        def main():
            return [outcome(os.stat, "/sys/fs/cgroup"), outcome(os.stat, "/sys")]
    ''')
    assert result_of(server.execute(body)) == ["ENOENT", "ENOENT"]
