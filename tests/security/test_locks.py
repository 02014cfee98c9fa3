"""POSIX record locks between concurrent requests (issue 13, finding 6; docs/THREAT-MODEL.md).

The seccomp filter allows fcntl's F_SETLK, F_SETLKW and F_GETLK (sqlite3 needs all three)
and refuses flock and OFD locks (test_side_channels.py). A record lock belongs to an
inode: where two sandboxes reach the same inode, one's lock is the other's F_GETLK answer
(a read lock on a read-only file), or blocks the other's lock (a write lock on a device
node, opened read-write). So every file system a sandbox reaches by path is its own
(src/sandbox/view.c): overlays of the zygote's root and of the host's /usr, the device nodes
of an overlay of the host's /dev, its own /tmp and /proc, and stdin opened from its own
/dev/null.

One request (the holder) locks every target and holds the locks; another (the prober)
starts 0.5 s later, while they are held, and asks F_GETLK for each through the same path,
and tries a write lock of each device node. With the view, the prober finds every target
free; with `--disable-layers mountns` (the host's files themselves) it finds every lock,
which shows the view is what hides them. The host itself must not see a sandbox's locks
either. What stays shared (the nsfs files of the user and time namespaces, the one inode
of every eventfd and epoll descriptor) is listed in docs/THREAT-MODEL.md, and measured by
the last test here.
"""

import fcntl
import os
import shutil
import struct
import sysconfig
import threading
import time

import pytest

from .conftest import (Server, assert_overlap, assert_still_serving, require, require_root,
                       result_of, run_concurrently, script, skip_in_url_mode)

HOLD = 3.0  # seconds the holder holds its locks; the prober starts 0.5 s in

# name -> (path in the sandbox, opened read-write). The stdlib file and directory are of
# the host's /usr; /etc/ld.so.cache and /etc/alternatives were binds of the host's;
# /etc/passwd, / and /dev are of the zygote's root; /proc/cmdline is masked with a bind of
# /dev/null; "stdin" is descriptor 0. Device nodes are opened read-write, so their locks
# are write locks, which block; on the others only read locks can be taken.
TARGETS = {
    "stdlib file": ("STDLIB/colorsys.py", False),
    "stdlib directory": ("STDLIB", False),
    "/etc/ld.so.cache": ("/etc/ld.so.cache", False),
    "/etc/alternatives": ("/etc/alternatives", False),
    "/etc/passwd": ("/etc/passwd", False),
    "/": ("/", False),
    "/dev": ("/dev", False),
    "stdin": (0, False),
    "/proc/cmdline": ("/proc/cmdline", False),
    "/dev/null": ("/dev/null", True),
    "/dev/zero": ("/dev/zero", True),
    "/dev/random": ("/dev/random", True),
    "/dev/urandom": ("/dev/urandom", True),
}
DEVICES = [name for name, (_, rw) in TARGETS.items() if rw]

COMMON = f'''
    import fcntl, struct, sysconfig, time

    STDLIB = sysconfig.get_paths()["stdlib"]
    TARGETS = {TARGETS!r}

    def lock(fd, cmd, kind):
        got = fcntl.fcntl(fd, cmd, struct.pack("hhqqi4x", kind, 0, 0, 0, 0))
        return struct.unpack("hhqqi4x", got)[0]

    def open_target(name):
        path, rw = TARGETS[name]
        if path == 0:
            return os.dup(0)
        path = path.replace("STDLIB", STDLIB)
        return os.open(path, (os.O_RDWR if rw else os.O_RDONLY) | os.O_CLOEXEC)
'''

# Locks stdin and the /proc mask first: on a shared node they are the same inode as
# /dev/null, whose write lock (taken last) then covers them. Holds the locks `hold` seconds.
def holder(hold):
    return script(COMMON + f'''
    def main():
        out = {{}}
        for name, (_, rw) in TARGETS.items():
            try:
                fd = open_target(name)
                lock(fd, fcntl.F_SETLK, fcntl.F_WRLCK if rw else fcntl.F_RDLCK)
                out[name] = "write lock" if rw else "read lock"
            except OSError as e:
                out[name] = errname(e.errno)
        held_from = time.monotonic()
        time.sleep({hold})
        return {{"out": out, "held_from": held_from, "held_until": time.monotonic()}}
''')


HOLDER = holder(HOLD)

PROBER = script(COMMON + '''
    def main():
        out = {}
        for name, (_, rw) in TARGETS.items():
            try:
                fd = open_target(name)
                kind = lock(fd, fcntl.F_GETLK, fcntl.F_WRLCK)
                out[name] = {"F_GETLK": "free" if kind == fcntl.F_UNLCK else "held"}
                if rw:
                    out[name]["F_SETLK"] = outcome(lock, fd, fcntl.F_SETLK, fcntl.F_WRLCK)
                os.close(fd)
            except OSError as e:
                out[name] = errname(e.errno)
        return {"out": out, "last_try": time.monotonic()}
''')

FREE = {name: {"F_GETLK": "free", **({"F_SETLK": "ok"} if rw else {})}
        for name, (_, rw) in TARGETS.items()}
HELD = {name: {"F_GETLK": "held", **({"F_SETLK": "EAGAIN"} if rw else {})}
        for name, (_, rw) in TARGETS.items()}
LOCKED = {name: "write lock" if rw else "read lock" for name, (_, rw) in TARGETS.items()}


# The holder's locks, released as it ends.
TAKER = holder(0)


def hold_and_probe(srv, probe):
    """Runs HOLDER on `srv` and, 0.5 s later, `probe()` (in this thread) while the locks
    are held; returns the holder's locks and what the probe returned."""
    out = {}

    def hold():
        try:
            out["holder"] = srv.execute(HOLDER)
        except BaseException as e:  # reported below, in the test's thread
            out["holder"] = e

    thread = threading.Thread(target=hold)
    thread.start()
    time.sleep(0.5)
    try:
        probed = probe()
    finally:
        thread.join(60)
    if isinstance(out.get("holder"), BaseException):
        raise out["holder"]
    holder = result_of(out["holder"])
    assert holder["out"] == LOCKED, holder  # else the probe would prove nothing
    assert_overlap(holder, probed)
    return probed["out"]


def probe_from_sandbox(srv):
    return hold_and_probe(srv, lambda: result_of(srv.execute(PROBER)))


@pytest.fixture(scope="module")
def probed(server):
    """What a concurrent request saw of another's locks (one pair of requests for all
    targets)."""
    got = probe_from_sandbox(server)
    assert_still_serving(server)
    return got


@pytest.fixture(scope="module")
def probed_without_layer(layer_off_server):
    return probe_from_sandbox(layer_off_server("mountns"))


@pytest.mark.parametrize("target", list(TARGETS))
def test_locks_of_another_request_are_invisible(probed, target):
    assert probed[target] == FREE[target]


@pytest.mark.parametrize("target", list(TARGETS))
def test_locks_of_another_request_seen_without_layer(probed_without_layer, target):
    """Without the mount namespace every sandbox sees the host's files themselves (and
    stdin is the host's /dev/null)."""
    assert probed_without_layer[target] == HELD[target]


# -- the host ---------------------------------------------------------------------------


def host_probe():
    """F_GETLK, from this process, on the host's files behind the sandbox's paths (the
    view's /usr and device nodes are overlays of exactly these)."""
    stdlib = sysconfig.get_paths()["stdlib"]
    paths = {"stdlib file": f"{stdlib}/colorsys.py", "stdlib directory": stdlib,
             "/etc/ld.so.cache": "/etc/ld.so.cache", "/etc/alternatives": "/etc/alternatives",
             **{name: name for name in DEVICES}}
    out = {}
    for name, path in paths.items():
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        try:
            got = fcntl.fcntl(fd, fcntl.F_GETLK, struct.pack("hhqqi4x", fcntl.F_WRLCK, 0, 0, 0, 0))
            out[name] = "free" if struct.unpack("hhqqi4x", got)[0] == fcntl.F_UNLCK else "held"
        finally:
            os.close(fd)
    return {"out": out, "last_try": time.monotonic()}


def test_locks_of_a_request_are_invisible_to_the_host(server):
    skip_in_url_mode("looks at this host's files")
    out = hold_and_probe(server, host_probe)
    assert out == dict.fromkeys(out, "free"), out


def test_locks_of_a_request_seen_by_the_host_without_layer(layer_off_server):
    out = hold_and_probe(layer_off_server("mountns"), host_probe)
    assert out == dict.fromkeys(out, "held"), out


# -- what needs the locks: sqlite3 and lockf in /tmp --------------------------------------

SQLITE_AND_LOCKF = script('''
    import fcntl, sqlite3

    def in_child(fn):
        """fn()'s outcome in a child process: record locks are per process."""
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.write(w, outcome(fn).encode())
            os._exit(0)
        os.close(w)
        got = os.read(r, 64).decode()
        os.waitpid(pid, 0)
        return got

    def main():
        out = {}
        a = sqlite3.connect("rollback.db", timeout=0)
        a.execute("create table t (x)")
        a.commit()
        a.execute("begin immediate")
        a.execute("insert into t values (1)")
        b = sqlite3.connect("rollback.db", timeout=0)
        try:
            b.execute("begin immediate")
            out["second writer"] = "not blocked"
        except sqlite3.OperationalError as e:
            out["second writer"] = str(e)
        a.commit()
        b.execute("insert into t values (2)")
        b.commit()
        out["rows"] = [x for (x,) in b.execute("select x from t order by x")]

        w = sqlite3.connect("wal.db")
        out["journal"] = w.execute("pragma journal_mode=wal").fetchone()[0]
        w.execute("create table t (x)")
        w.execute("insert into t values (3)")
        w.commit()
        out["wal reader"] = sqlite3.connect("wal.db").execute("select x from t").fetchall()

        with open("lockf", "w+") as f:
            fcntl.lockf(f, fcntl.LOCK_EX)
            out["lockf in a child"] = in_child(
                lambda: fcntl.lockf(os.open("lockf", os.O_RDWR), fcntl.LOCK_EX | fcntl.LOCK_NB))
            out["F_TEST in a child"] = in_child(
                lambda: os.lockf(os.open("lockf", os.O_RDWR), os.F_TEST, 0))
        out["lockf after unlock"] = in_child(
            lambda: fcntl.lockf(os.open("lockf", os.O_RDWR), fcntl.LOCK_EX | fcntl.LOCK_NB))
        return out
''')


def test_sqlite3_and_lockf_in_tmp_work(server):
    """The locks the filter allows, and the view keeps per sandbox, still do their job
    inside the sandbox: a second writer is refused, WAL mode works, and another process
    sees an fcntl.lockf lock (F_SETLK) and os.lockf's F_TEST (F_GETLK)."""
    got = result_of(server.execute(SQLITE_AND_LOCKF))
    assert got == {
        "second writer": "database is locked",
        "rows": [1, 2],
        "journal": "wal",
        "wal reader": [[3]],
        "lockf in a child": "EAGAIN",
        "F_TEST in a child": "EACCES",
        "lockf after unlock": "ok",
    }
    assert_still_serving(server)


# -- what stays shared (docs/THREAT-MODEL.md, item 5) -------------------------------------

SHARED = f'''
    import fcntl, select, struct, time

    def lock(fd, cmd, kind):
        got = fcntl.fcntl(fd, cmd, struct.pack("hhqqi4x", kind, 0, 0, 0, 0))
        return struct.unpack("hhqqi4x", got)[0]

    def descriptors():
        ep = select.epoll()  # kept open by the returned object
        return {{"/proc/self/ns/user": (os.open("/proc/self/ns/user", os.O_RDONLY), fcntl.F_RDLCK),
                "/proc/self/ns/time": (os.open("/proc/self/ns/time", os.O_RDONLY), fcntl.F_RDLCK),
                "eventfd": (os.eventfd(0), fcntl.F_WRLCK),
                "epoll": (ep.fileno(), fcntl.F_WRLCK)}}, ep

    def main():
        fds, keep = descriptors()
        if ROLE == "holder":
            for fd, kind in fds.values():
                lock(fd, fcntl.F_SETLK, kind)
            held_from = time.monotonic()
            time.sleep({HOLD})
            return {{"held_from": held_from, "held_until": time.monotonic()}}
        seen = {{name: "free" if lock(fd, fcntl.F_GETLK, fcntl.F_WRLCK) == fcntl.F_UNLCK
                else "held" for name, (fd, _) in fds.items()}}
        return {{"seen": seen, "last_try": time.monotonic()}}
'''


def test_documented_residuals_are_still_shared(server):
    """The residual of docs/THREAT-MODEL.md, measured: the nsfs files of the user and time
    namespaces (every sandbox is in the host's) and the kernel's one inode of all eventfd
    and epoll descriptors are shared, so a lock on them is seen by another request. This
    pins the documented list: if it fails, a channel closed (a kernel that gives each its
    own inode): update the docs."""
    holder, prober = run_concurrently(server, script(SHARED.replace("ROLE", '"holder"')),
                                      script(SHARED.replace("ROLE", '"prober"')))
    holder, prober = result_of(holder), result_of(prober)
    assert_overlap(holder, prober)
    assert prober["seen"] == dict.fromkeys(prober["seen"], "held"), prober


def view_namespaces(srv):
    """The mount namespaces the server's zygote holds by descriptor: its slots' views."""
    zygotes = [p for p in (int(x) for t in os.listdir(f"/proc/{srv.pid}/task")
                           for x in open(f"/proc/{srv.pid}/task/{t}/children").read().split())
               if b"__zygote" in open(f"/proc/{p}/cmdline", "rb").read()]
    assert len(zygotes) == 1, zygotes
    fds = f"/proc/{zygotes[0]}/fd"
    return {os.readlink(f"{fds}/{fd}") for fd in os.listdir(fds)
            if os.readlink(f"{fds}/{fd}").startswith("mnt:")}


def test_a_slots_view_is_shared_one_sandbox_after_the_other_and_no_lock_outlives_one(
        start_server):
    """A view is made once per slot (src/sandbox/view.c): the zygote holds one mount
    namespace per slot, and the sandboxes of a slot, which never run at once, enter copies
    of it; concurrent ones are in other slots (the tests above). With one slot and no pool
    every sandbox is in slot 0: the second finds none of the locks the first held when it
    ended."""
    srv = start_server("--concurrency", "1", "--pool-size", "0", "--zygotes", "1",
                       "--plot-zygote", "false")
    assert len(view_namespaces(srv)) == 1
    first = result_of(srv.execute(TAKER))
    second = result_of(srv.execute(PROBER))
    assert first["out"] == LOCKED, first
    assert second["out"] == FREE, second


def test_without_cap_sys_chroot_each_sandbox_builds_its_own_view():
    """Joining a slot's view (setns) needs CAP_SYS_CHROOT, which the README's docker run only
    adds as optional: without it each sandbox builds its whole view as before (the zygote
    holds no view), and locks stay invisible across concurrent requests."""
    skip_in_url_mode("starts pyexecd here")
    require_root()
    require(shutil.which("setpriv"), "setpriv is not installed")
    srv = Server(("--pool-size", "1", "--zygotes", "1", "--plot-zygote", "false"), None,
                 "127.0.0.1")
    srv.args = ["setpriv", "--bounding-set=-sys_chroot", "--inh-caps=-sys_chroot", "--"] + srv.args
    srv.start()
    try:
        assert srv.wait_for_log("views per sandbox", timeout=10), srv.stderr_text()
        assert view_namespaces(srv) == set()
        assert all(free == FREE[name] for name, free in probe_from_sandbox(srv).items())
    finally:
        srv.stop()
