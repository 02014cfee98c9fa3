"""The workloads the seccomp allow-list is derived from and checked against: what the
README promises scripts may do (the standard library, `os`, numpy, pandas, subprocess,
multiprocessing, threads, signals, files in /tmp, sqlite3), each as a function that
returns a deterministic JSON value.

WORKLOADS maps a name to (body, expected): `body` defines `w_<name>()` (and helpers whose
names start with `_<name>_`), so that the bodies can also be concatenated into one script
(`combined_script()`), which test_seccomp_allowlist.py runs under strace to see every
system call the workloads make under the filter. Functions used by multiprocessing live at
the top level of the script: pickle finds them in the script's module.
"""

import textwrap

from .conftest import script

NUMPY = '''
import numpy as np


def w_numpy():
    m = np.array([[2.0, 1.0], [1.0, 3.0]])
    inv = np.linalg.inv(m)
    big = np.ones((300, 300)) @ np.ones((300, 300))  # BLAS
    rng = np.random.default_rng(7)
    a = np.arange(12.0).reshape(3, 4)
    np.save("/tmp/np_a.npy", a)
    mm = np.memmap("/tmp/np_m.dat", dtype="float64", mode="w+", shape=(4096,))
    mm[:] = 2.0
    mm.flush()
    total = float(mm.sum())
    del mm
    large = np.zeros(40 << 17)  # 40 MiB: its own mapping, returned to the kernel on del
    large[::4096] = 1.0
    n = int(large.sum())
    del large
    return {
        "inv": inv.round(4).tolist(),
        "eig": sorted(np.linalg.eigvals(m).round(4).tolist()),
        "fft": np.fft.rfft(np.ones(8)).real.round(4).tolist(),
        "big": float(big[0, 0]),
        "rng": len(rng.integers(0, 10, 5)),
        "load": np.load("/tmp/np_a.npy").sum().item(),
        "memmap": total,
        "large": n,
        "legacy": 0 <= np.random.rand() < 1,
    }
'''

PANDAS = '''
import pandas as pd


def w_pandas():
    df = pd.DataFrame({"k": ["a", "b", "a", "c"], "v": [1, 2, 3, 4]})
    right = pd.DataFrame({"k": ["a", "b"], "w": [10, 20]})
    df.to_csv("/tmp/pd.csv", index=False)
    df.to_json("/tmp/pd.json")
    ts = pd.date_range("2024-03-30", periods=3, freq="D", tz="Europe/Paris")
    return {
        "groupby": df.groupby("k")["v"].sum().to_dict(),
        "merge": list(df.merge(right, on="k").shape),
        "pivot": df.pivot_table(index="k", values="v", aggfunc="mean")["v"].to_dict(),
        "csv": pd.read_csv("/tmp/pd.csv")["v"].sum().item(),
        "json": len(pd.read_json("/tmp/pd.json")),
        "tz": [str(t.utcoffset()) for t in ts],
        "rolling": pd.Series(range(6)).rolling(3).mean().dropna().tolist(),
        "describe": pd.Series([1.0, 2.0, 3.0]).describe()["mean"].item(),
    }
'''

SUBPROCESS = '''
import subprocess
import sys


def w_subprocess():
    py = subprocess.run([sys.executable, "-c", "import sys, json, os; print(sys.version_info[0])"],
                        capture_output=True, text=True, timeout=60)
    sh = subprocess.run(["sh", "-c", "echo $((6 * 7)); exit 3"], capture_output=True, text=True)
    cat = subprocess.Popen(["cat"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                           pipesize=1 << 17)
    piped = cat.communicate(b"through cat", timeout=30)[0].decode()
    try:
        subprocess.run(["sleep", "5"], timeout=0.2)
        timed_out = False
    except subprocess.TimeoutExpired:
        timed_out = True
    # A script that closed its stdin: the pipe's write end lands on fd 0, and the child
    # moves it away before dup2 (_posixsubprocess's dup()).
    pid = os.fork()
    if pid == 0:
        os.close(0)
        r = subprocess.run(["echo", "moved"], stdout=subprocess.PIPE)
        os._exit(0 if r.stdout == b"moved\\n" else 1)
    low_fd = os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
    return {
        "low fd": low_fd,
        "python3": py.stdout.strip(),
        "sh": [sh.stdout.strip(), sh.returncode],
        "sleep": subprocess.run(["sleep", "0.01"]).returncode,
        "cat": piped,
        "timeout": timed_out,
        "shell": subprocess.check_output("ls /usr | grep -c bin", shell=True).decode().strip(),
        "session": subprocess.run(["true"], start_new_session=True).returncode,
        "group": subprocess.run(["true"], process_group=0).returncode,
        "devnull": subprocess.run(["true"], stdin=subprocess.DEVNULL,
                                  stdout=subprocess.DEVNULL).returncode,
        "system": os.waitstatus_to_exitcode(os.system("exit 4")),
        "posix_spawn": os.waitstatus_to_exitcode(
            os.waitpid(os.posix_spawn("/bin/true", ["true"], {}), 0)[1]),
    }
'''

MULTIPROCESSING = '''
import multiprocessing as mp
from multiprocessing import shared_memory


def _multiprocessing_put(q, value):
    q.put(value * 2)


def _multiprocessing_add(counter, lock):
    with lock:
        counter.value += 1


def w_multiprocessing():
    out = {}
    with mp.Pool(2) as pool:
        out["pool"] = pool.map(abs, [-1, -2, -3])
    q = mp.Queue()
    p = mp.Process(target=_multiprocessing_put, args=(q, 21))
    p.start()
    out["queue"] = q.get(timeout=60)
    p.join()
    out["exitcode"] = p.exitcode
    shm = shared_memory.SharedMemory(create=True, size=4096)
    shm.buf[0] = 7
    other = shared_memory.SharedMemory(name=shm.name)
    out["shm"] = other.buf[0]
    other.close()
    shm.close()
    shm.unlink()
    counter, lock = mp.Value("i", 0), mp.Lock()
    procs = [mp.Process(target=_multiprocessing_add, args=(counter, lock)) for _ in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join()
    out["value"] = counter.value
    sem = mp.Semaphore(2)
    out["semaphore"] = sem.acquire(timeout=1)
    sem.release()
    for method in ("spawn", "forkserver"):
        with mp.get_context(method).Pool(1) as pool:
            out[method] = pool.map(abs, [-5])
    with mp.Manager() as manager:
        d = manager.dict()
        d["x"] = 1
        out["manager"] = dict(d)
    return out
'''

THREADS = '''
import concurrent.futures
import ctypes
import queue
import threading


def w_threads():
    with concurrent.futures.ThreadPoolExecutor(4) as ex:
        squares = list(ex.map(lambda x: x * x, range(8)))
    ev, q = threading.Event(), queue.Queue()
    timer = threading.Timer(0.01, ev.set)
    timer.start()
    threads = [threading.Thread(target=q.put, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    libc = ctypes.CDLL(None)
    libc.pthread_self.restype = ctypes.c_ulong
    libc.pthread_setname_np.argtypes = [ctypes.c_ulong, ctypes.c_char_p]
    libc.pthread_getname_np.argtypes = [ctypes.c_ulong, ctypes.c_char_p, ctypes.c_size_t]
    name = ctypes.create_string_buffer(16)
    libc.pthread_setname_np(libc.pthread_self(), b"pyexecd-w")
    libc.pthread_getname_np(libc.pthread_self(), name, 16)
    cond = threading.Condition()
    with cond:
        waited = cond.wait(timeout=0.01)
    return {"squares": squares, "event": ev.wait(10), "queued": sorted(q.get() for _ in range(4)),
            "cond": waited, "native_id": threading.get_native_id() > 0,
            "name": name.value.decode()}
'''

FILES = '''
import fcntl
import glob
import pathlib
import shutil
import tempfile


def w_files():
    out = {}
    os.makedirs("/tmp/f/a/b", exist_ok=True)
    with open("/tmp/f/a/x.txt", "w") as f:
        f.write("hello\\n")
        f.flush()
        os.fsync(f.fileno())
        os.fdatasync(f.fileno())
    fd = os.open("/tmp/f/raw", os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
    os.write(fd, b"0123456789")
    os.pwrite(fd, b"AB", 2)
    os.writev(fd, [b"c", b"d"])
    os.lseek(fd, 0, os.SEEK_SET)
    out["pread"] = os.pread(fd, 4, 0).decode()
    buf = bytearray(3)
    os.readv(fd, [buf])
    os.preadv(fd, [bytearray(2)], 0)
    os.pwritev(fd, [b"zz"], 8)
    os.ftruncate(fd, 6)
    os.posix_fallocate(fd, 0, 4096)
    out["fstat"] = os.fstat(fd).st_size
    fd2 = os.dup(fd)
    os.dup2(fd, 20)
    os.dup2(fd, 21, inheritable=False)
    fd22 = fcntl.fcntl(fd, fcntl.F_DUPFD, 22)
    fcntl.fcntl(fd22, fcntl.F_SETFL, fcntl.fcntl(fd22, fcntl.F_GETFL) | os.O_APPEND)
    out["F_DUPFD"] = [fd22, bool(fcntl.fcntl(fd22, fcntl.F_GETFL) & os.O_APPEND)]
    fcntl.lockf(fd, fcntl.LOCK_EX)
    fcntl.lockf(fd, fcntl.LOCK_UN)
    fcntl.lockf(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    out["lockf test"] = os.lockf(fd, os.F_TEST, 0)
    fcntl.lockf(fd, fcntl.LOCK_UN)
    os.fchmod(fd, 0o600)
    os.fchown(fd, os.getuid(), os.getgid())
    out["fstatvfs"] = os.fstatvfs(fd).f_bsize > 0
    try:  # user.* attributes on tmpfs: Linux 6.6 and later
        os.setxattr(fd, "user.fd", b"1")
        out["fxattr"] = [os.getxattr(fd, "user.fd").decode(), os.listxattr(fd)]
        os.removexattr(fd, "user.fd")
    except OSError as e:
        out["fxattr"] = errname(e.errno)
    os.close(21)
    os.close(fd22)
    os.set_inheritable(fd2, True)
    os.set_blocking(fd2, False)
    out["inheritable"] = [os.get_inheritable(fd2), os.get_blocking(fd2)]
    for n in (fd, fd2, 20):
        os.close(n)
    os.truncate("/tmp/f/raw", 3)
    os.symlink("/tmp/f/a/x.txt", "/tmp/f/link")
    os.lchown("/tmp/f/link", os.getuid(), os.getgid())
    out["lxattr"] = os.listxattr("/tmp/f/link", follow_symlinks=False)
    try:
        os.setxattr("/tmp/f/link", "user.l", b"1", follow_symlinks=False)
    except OSError as e:  # user.* attributes are for regular files and directories only
        out["lsetxattr"] = errname(e.errno)
    try:
        os.getxattr("/tmp/f/link", "user.l", follow_symlinks=False)
    except OSError as e:
        out["lgetxattr"] = errname(e.errno)
    try:
        os.removexattr("/tmp/f/link", "user.l", follow_symlinks=False)
    except OSError as e:
        out["lremovexattr"] = errname(e.errno)
    os.link("/tmp/f/a/x.txt", "/tmp/f/hard")
    out["readlink"] = os.readlink("/tmp/f/link")
    out["lstat"] = os.path.islink("/tmp/f/link")
    os.chmod("/tmp/f/a/x.txt", 0o640)
    os.chown("/tmp/f/a/x.txt", os.getuid(), os.getgid())
    os.utime("/tmp/f/a/x.txt", (1e9, 1e9 + 2))
    out["mtime"] = os.stat("/tmp/f/a/x.txt").st_mtime
    os.rename("/tmp/f/hard", "/tmp/f/hard2")
    os.replace("/tmp/f/hard2", "/tmp/f/hard3")
    os.unlink("/tmp/f/hard3")
    os.mkfifo("/tmp/f/fifo")
    os.mknod("/tmp/f/node")
    out["access"] = [os.access("/tmp/f/a/x.txt", os.R_OK), os.access("/usr", os.W_OK)]
    dirfd = os.open("/tmp/f", os.O_RDONLY | os.O_DIRECTORY)
    out["dir_fd"] = os.stat("a/x.txt", dir_fd=dirfd).st_size
    os.mkdir("c", dir_fd=dirfd)
    os.rename("c", "c2", src_dir_fd=dirfd, dst_dir_fd=dirfd)
    os.symlink("c2", "c3", dir_fd=dirfd)
    os.link("raw", "raw2", src_dir_fd=dirfd, dst_dir_fd=dirfd, follow_symlinks=False)
    os.chmod("raw2", 0o644, dir_fd=dirfd)
    os.chown("raw2", os.getuid(), os.getgid(), dir_fd=dirfd)
    out["faccessat"] = [os.access("raw2", os.R_OK, dir_fd=dirfd),
                        os.access("/tmp/f/raw2", os.W_OK, effective_ids=True)]
    for name in ("c3", "raw2"):
        os.unlink(name, dir_fd=dirfd)
    os.rmdir("c2", dir_fd=dirfd)
    os.fchdir(dirfd)
    out["getcwd"] = os.getcwd()
    os.chdir("/tmp")
    out["fwalk"] = sorted(len(files) for _, _, files, _ in os.fwalk("/tmp/f"))
    os.close(dirfd)
    out["listdir"] = sorted(os.listdir("/tmp/f"))
    out["scandir"] = sorted(e.name for e in os.scandir("/tmp/f/a"))
    out["walk"] = sum(len(files) for _, _, files in os.walk("/tmp/f"))
    out["glob"] = glob.glob("/tmp/f/a/*.txt")
    out["statvfs"] = os.statvfs("/tmp").f_bsize > 0
    out["disk_usage"] = shutil.disk_usage("/tmp").total > 0
    shutil.copy2("/tmp/f/a/x.txt", "/tmp/f/copy2")
    shutil.copytree("/tmp/f/a", "/tmp/g")
    shutil.move("/tmp/g", "/tmp/h")
    shutil.make_archive("/tmp/arch", "gztar", "/tmp/h")
    shutil.unpack_archive("/tmp/arch.tar.gz", "/tmp/unpacked")
    shutil.make_archive("/tmp/arch", "zip", "/tmp/h")
    out["archive"] = sorted(os.listdir("/tmp/unpacked"))
    shutil.rmtree("/tmp/h")
    try:  # as fxattr
        os.setxattr("/tmp/f/copy2", "user.k", b"v")
        out["xattr"] = [os.getxattr("/tmp/f/copy2", "user.k").decode(),
                        os.listxattr("/tmp/f/copy2")]
        os.removexattr("/tmp/f/copy2", "user.k")
    except OSError as e:
        out["xattr"] = errname(e.errno)
    with tempfile.TemporaryDirectory() as d, tempfile.NamedTemporaryFile(dir=d) as t:
        t.write(b"t")
        t.flush()
        out["tempfile"] = pathlib.Path(t.name).read_bytes().decode()
    r, w = os.pipe()
    os.write(w, b"p")
    out["pipe"] = os.read(r, 1).decode()
    fcntl.fcntl(w, fcntl.F_SETPIPE_SZ, 1 << 16)
    out["pipe size"] = fcntl.fcntl(w, fcntl.F_GETPIPE_SZ)
    src = os.open("/tmp/f/a/x.txt", os.O_RDONLY)
    dst = os.open("/tmp/f/sent", os.O_WRONLY | os.O_CREAT, 0o600)
    out["sendfile"] = os.sendfile(dst, src, 0, 6)
    out["copy_file_range"] = os.copy_file_range(src, dst, 6, 0, 6)
    os.write(w, b"spl")
    out["splice"] = os.splice(r, dst, 3)
    for n in (r, w, src, dst):
        os.close(n)
    mfd = os.memfd_create("w")
    os.write(mfd, b"m")
    out["memfd"] = os.fstat(mfd).st_size
    os.close(mfd)
    efd = os.eventfd(0)
    os.eventfd_write(efd, 3)
    out["eventfd"] = os.eventfd_read(efd)
    os.close(efd)
    out["umask"] = os.umask(0o022) >= 0
    with open("/tmp/f/a/x.txt", "rb") as f:
        for advice in (os.POSIX_FADV_SEQUENTIAL, os.POSIX_FADV_RANDOM, os.POSIX_FADV_NOREUSE,
                       os.POSIX_FADV_NORMAL):
            os.posix_fadvise(f.fileno(), 0, 0, advice)
    with open("/usr/lib/os-release" if os.path.exists("/usr/lib/os-release") else "/etc/passwd") as f:
        out["read_only_tree"] = len(f.read()) > 0
    try:
        open("/usr/pyexecd-nope", "w")
    except OSError as e:
        out["read_only_write"] = errname(e.errno)
    return out
'''

PROCESS = '''
import resource


def w_process():
    out = {}
    pid = os.fork()
    if pid == 0:
        os._exit(5)
    out["fork"] = os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    out["waitid"] = os.waitid(os.P_PID, pid, os.WEXITED).si_status
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    out["wait4"] = os.wait4(pid, 0)[0] == pid
    pid = os.fork()
    if pid == 0:
        import time
        time.sleep(60)
        os._exit(0)
    pidfd = os.pidfd_open(pid)
    import signal as _s
    _s.pidfd_send_signal(pidfd, _s.SIGKILL)
    out["pidfd"] = os.waitid(os.P_PIDFD, pidfd, os.WEXITED).si_status
    os.close(pidfd)
    out["pgid"] = os.getpgid(0)
    out["ids"] = [os.getuid() == os.geteuid(), os.getgid() == os.getegid(),
                  os.getresuid()[0] == os.getuid(), os.getresgid()[0] == os.getgid(),
                  os.getgroups(), os.getpid(), os.getppid(), os.getpgrp(), os.getsid(0)]
    out["uname"] = os.uname().sysname
    out["times"] = os.times().elapsed > 0
    out["loadavg"] = len(os.getloadavg())
    out["cpu_count"] = os.cpu_count() > 0
    out["affinity"] = len(os.sched_getaffinity(0)) > 0
    os.sched_setaffinity(0, os.sched_getaffinity(0))
    os.sched_yield()
    out["priority"] = os.getpriority(os.PRIO_PROCESS, 0)
    os.setpriority(os.PRIO_PROCESS, 0, 1)
    out["nice"] = os.nice(1)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft // 2, hard))
    out["rlimit"] = resource.getrlimit(resource.RLIMIT_NOFILE)[0] == soft // 2
    out["rusage"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss > 0
    out["prlimit"] = resource.prlimit(0, resource.RLIMIT_CORE)
    import grp, locale, platform, pwd
    out["user"] = [pwd.getpwnam("sandbox").pw_dir, grp.getgrnam("sandbox").gr_name,
                   pwd.getpwuid(0).pw_name]
    out["platform"] = platform.system()
    out["locale"] = locale.setlocale(locale.LC_ALL, "C.UTF-8")
    out["isatty"] = [os.isatty(0), os.isatty(1)]
    out["terminal"] = shutil_size()
    with open("/proc/self/status") as f:
        out["status"] = [l.split()[0] for l in f if l.startswith(("Uid:", "Seccomp:"))]
    for name in ("/proc/self/maps", "/proc/cpuinfo", "/proc/meminfo", "/proc/self/cgroup",
                 "/proc/self/stat", "/proc/self/limits"):
        with open(name) as f:
            f.read()
    out["proc_pids"] = min(int(p) for p in os.listdir("/proc") if p.isdigit())  # own pid ns
    out["fds"] = sorted(int(n) for n in os.listdir("/proc/self/fd"))[:3]
    return out


def shutil_size():
    import shutil
    return shutil.get_terminal_size((80, 24)).columns
'''

SIGNALS = '''
import signal
import time


def w_signals():
    got = []
    signal.signal(signal.SIGUSR1, lambda s, f: got.append(s))
    os.kill(os.getpid(), signal.SIGUSR1)
    signal.raise_signal(signal.SIGUSR1)
    signal.pthread_kill(threading_main_id(), signal.SIGUSR1)
    signal.signal(signal.SIGALRM, lambda s, f: got.append(s))
    signal.setitimer(signal.ITIMER_REAL, 0.01)
    time.sleep(0.2)
    signal.alarm(0)
    old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGUSR2})
    os.kill(os.getpid(), signal.SIGUSR2)
    pending = signal.SIGUSR2 in signal.sigpending()
    info = signal.sigtimedwait({signal.SIGUSR2}, 1)
    signal.pthread_sigmask(signal.SIG_SETMASK, old)
    r, w = os.pipe()
    os.set_blocking(w, False)
    signal.set_wakeup_fd(w)
    os.kill(os.getpid(), signal.SIGUSR1)
    woke = len(os.read(r, 16)) > 0
    signal.set_wakeup_fd(-1)
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.write(w, b"r")
        signal.pause()
        os._exit(0)
    os.read(r, 1)
    time.sleep(0.05)  # into pause() by now, or soon: SIGTERM ends it either way
    os.kill(pid, signal.SIGTERM)
    child = os.waitpid(pid, 0)[1]
    # A stop and continue of a sleeping program restarts its sleep (restart_syscall).
    import subprocess
    sleeper = subprocess.Popen(["sleep", "0.3"])
    time.sleep(0.1)
    sleeper.send_signal(signal.SIGSTOP)
    time.sleep(0.05)
    sleeper.send_signal(signal.SIGCONT)
    stopped = sleeper.wait(30)
    import faulthandler
    faulthandler.enable()
    faulthandler.dump_traceback_later(30)
    faulthandler.cancel_dump_traceback_later()
    faulthandler.disable()
    return {"handled": got, "pending": pending, "sigtimedwait": info.si_signo,
            "wakeup_fd": woke, "child": os.WIFSIGNALED(child) and os.WTERMSIG(child),
            "stopped and continued": stopped,
            "itimer": signal.getitimer(signal.ITIMER_REAL)[0]}


def threading_main_id():
    import threading
    return threading.main_thread().ident
'''

TIME = '''
import datetime
import time
import zoneinfo


def w_time():
    t0 = time.monotonic()
    time.sleep(0.01)
    slept = time.monotonic() - t0 >= 0.01
    clocks = [time.time(), time.perf_counter(), time.process_time(), time.thread_time(),
              time.clock_gettime(time.CLOCK_BOOTTIME), time.clock_getres(time.CLOCK_MONOTONIC)]
    ny = datetime.datetime(2024, 7, 1, 12, tzinfo=zoneinfo.ZoneInfo("America/New_York"))
    time.tzset()
    return {"slept": slept, "clocks": all(c >= 0 for c in clocks),
            "zoneinfo": ny.utcoffset().total_seconds(),
            "local": datetime.datetime.now().astimezone().tzinfo is not None,
            "strftime": time.strftime("%Y", time.gmtime(0))}
'''

RANDOM = '''
import random
import secrets
import uuid


def w_random():
    return {"random": 0 <= random.random() < 1, "system": 0 <= random.SystemRandom().random() < 1,
            "urandom": len(os.urandom(16)), "getrandom": len(os.getrandom(16)),
            "secrets": len(secrets.token_hex(8)), "uuid4": uuid.uuid4().version,
            "uuid1": uuid.uuid1().version, "randbytes": len(random.randbytes(4))}
'''

SQLITE = '''
import sqlite3


def _sqlite_writer(path, n):
    con = sqlite3.connect(path, timeout=30)
    with con:
        con.execute("insert into t values (?)", (n,))
    con.close()


def w_sqlite():
    out = {}
    con = sqlite3.connect("/tmp/db.sqlite")
    con.execute("create table t (x integer)")
    with con:
        con.executemany("insert into t values (?)", [(i,) for i in range(10)])
    other = sqlite3.connect("/tmp/db.sqlite")
    out["second connection"] = other.execute("select count(*) from t").fetchone()[0]
    other.close()
    import multiprocessing as mp
    procs = [mp.Process(target=_sqlite_writer, args=("/tmp/db.sqlite", 100 + i)) for i in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join()
    out["two processes"] = con.execute("select count(*) from t").fetchone()[0]
    con.close()
    wal = sqlite3.connect("/tmp/wal.sqlite")
    out["wal"] = wal.execute("pragma journal_mode=wal").fetchone()[0]
    wal.execute("create table t (x)")
    with wal:
        wal.execute("insert into t values (1)")
    out["wal read"] = sqlite3.connect("/tmp/wal.sqlite").execute("select x from t").fetchone()[0]
    wal.close()
    mem = sqlite3.connect(":memory:")
    out["memory"] = mem.execute("select 6 * 7").fetchone()[0]
    return out
'''

STDLIB = '''
import asyncio
import bz2
import gzip
import hashlib
import json
import logging
import lzma
import mmap
import select
import selectors
import socket
import zipfile


async def _stdlib_async():
    proc = await asyncio.create_subprocess_exec("echo", "async", stdout=asyncio.subprocess.PIPE)
    out, _ = await proc.communicate()
    await asyncio.sleep(0.001)
    return out.decode().strip()


def w_stdlib():
    out = {}
    a, b = socket.socketpair()
    a.sendall(b"x")
    out["socketpair"] = b.recv(1).decode()
    socket.send_fds(a, [b"fd"], [0])
    msg, fds, _, _ = socket.recv_fds(b, 16, 1)
    out["send_fds"] = [msg.decode(), len(fds)]
    os.close(fds[0])
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind("/tmp/sock")
    srv.listen(1)
    cli = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    cli.connect("/tmp/sock")
    conn, _ = srv.accept()
    cli.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 65536)
    conn.sendall(b"unix")
    out["unix"] = cli.recv(4).decode()
    out["peercred"] = len(cli.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12))
    out["peername"] = cli.getpeername()
    out["sockname"] = srv.getsockname()
    cli.shutdown(socket.SHUT_RDWR)
    dg = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    dg.bind("/tmp/dgram")
    dg.sendto(b"dg", "/tmp/dgram")
    out["dgram"] = dg.recvfrom(2)[0].decode()
    for s in (a, b, srv, cli, conn, dg):
        s.close()
    r, w = os.pipe()
    os.write(w, b"s")
    out["select"] = len(select.select([r], [], [], 1)[0])
    p = select.poll()
    p.register(r, select.POLLIN)
    out["poll"] = len(p.poll(1000))
    ep = select.epoll()
    ep.register(r, select.EPOLLIN)
    out["epoll"] = len(ep.poll(1))
    ep.close()
    with selectors.DefaultSelector() as sel:
        sel.register(r, selectors.EVENT_READ)
        out["selectors"] = len(sel.select(1))
    os.close(r)
    os.close(w)
    out["asyncio"] = asyncio.run(_stdlib_async())
    with mmap.mmap(-1, 1 << 21, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS) as m:
        for advice in (mmap.MADV_SEQUENTIAL, mmap.MADV_RANDOM, mmap.MADV_HUGEPAGE,
                       mmap.MADV_NOHUGEPAGE, mmap.MADV_NORMAL, mmap.MADV_FREE,
                       mmap.MADV_DONTNEED):
            m.madvise(advice)
        m.write(b"mm")
    with mmap.mmap(-1, 8192) as m:
        m.write(b"mm")
        m.resize(16384)
        out["mmap"] = m[:2].decode()
    with open("/tmp/mapped", "wb") as f:
        f.write(b"file-mapped")
    with open("/tmp/mapped", "r+b") as f, mmap.mmap(f.fileno(), 0) as m:
        out["mmap file"] = m[:4].decode()
        m.flush()
    data = b"pyexecd" * 1000
    out["compress"] = [len(gzip.decompress(gzip.compress(data))), len(bz2.decompress(bz2.compress(data))),
                       len(lzma.decompress(lzma.compress(data)))]
    with zipfile.ZipFile("/tmp/z.zip", "w") as z:
        z.writestr("a", "b")
    out["zip"] = zipfile.ZipFile("/tmp/z.zip").namelist()
    out["sha256"] = hashlib.sha256(b"").hexdigest()[:8]
    logging.basicConfig(filename="/tmp/log.txt", level=logging.INFO, force=True)
    logging.info("logged")
    out["json"] = json.loads(json.dumps({"a": [1, 2]}))
    import ctypes, decimal, email.message, fractions, http.client, ssl, statistics, xml.etree.ElementTree
    out["ctypes callback"] = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_int)(lambda x: x + 1)(41)
    out["decimal"] = str(decimal.Decimal(1) / 7)[:6]
    out["statistics"] = statistics.median([3, 1, 2])
    out["ssl"] = ssl.OPENSSL_VERSION.split()[0]
    print("to stdout")
    import sys
    print("to stderr", file=sys.stderr)
    return out
'''


TOOLS = """
import subprocess

_TOOLS = {
    "ls": "ls -la /usr/bin/python3 | wc -l",
    "cat": "cat /etc/hostname",
    "files": "mkdir -p /tmp/t/a/b && touch /tmp/t/a/f && cp -r /tmp/t /tmp/t2 && mv /tmp/t2 /tmp/t3"
             " && ln -s /tmp/t3 /tmp/t4 && chmod -R u+w /tmp/t3 && rm -r /tmp/t3 /tmp/t4 && echo ok",
    "find": "find /tmp/t -type f | sort",
    "text": "printf 'b\\\\na\\\\nb\\\\n' | sort | uniq | sed s/b/x/ | awk '{print toupper($0)}' | tr -d '\\\\n'",
    "grep": "grep -c ^root: /etc/passwd",
    "gzip": "head -c 100 /dev/urandom | gzip | gunzip | wc -c",
    "tar": "tar czf /tmp/t.tgz -C /usr/share zoneinfo/UTC && tar xzf /tmp/t.tgz -C /tmp"
           " && tar tzf /tmp/t.tgz",
    "date": "date -u -d @0 +%Y",
    "id": "id -u >/dev/null && echo ok",
    "uname": "uname -s",
    "df": "df /tmp | tail -n 1 | wc -l",
    "stat": "stat -c %s /etc/hostname",
    "du": "du -s /tmp/t | cut -f2",
    "bash": "bash -c 'for i in 1 2; do echo $i; done | wc -l'",
    "python3": "python3 -c 'import sqlite3, json, numpy; print(json.dumps([1]))'",
    "which": "which python3",
    "seq": "seq 3 | tac | head -n 1",
    "md5sum": "md5sum /etc/hostname | cut -c1-8",
    # procps is not in the container image: there, the same answer without it.
    "ps": "if command -v ps >/dev/null; then ps -e -o pid= | wc -l | tr -d ' ' | grep -c .; "
          "else echo 1; fi",
    "xargs": "echo a b | xargs -n 1 | wc -l",
}


def w_tools():
    out = {}
    for name, cmd in _TOOLS.items():
        p = subprocess.run(cmd, shell=True, capture_output=True, text=True, timeout=60)
        out[name] = [p.returncode, p.stdout.strip(), p.stderr.strip()[-300:]]
    return out
"""

# name -> (body, expected result of w_<name>())

MATPLOTLIB = '''
import io as _mpl_io


def w_matplotlib():
    # Imported here, not at the top: in the traced run nothing is preloaded, so the import
    # itself (fontconfig's fc-list, the font cache in the writable /tmp) runs under the
    # filter too.
    import matplotlib
    import matplotlib.pyplot as plt
    import numpy as np

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(4, 2), dpi=50)
    ax1.plot([0, 1, 2], [2, 0, 1], label="line")
    ax1.legend()
    ax1.set_title("$x^2$ \u00e9")
    ax2.imshow(np.arange(16.0).reshape(4, 4))
    plt.show()
    out = {}
    for fmt in ("png", "svg", "pdf"):
        buf = _mpl_io.BytesIO()
        fig.savefig(buf, format=fmt)
        out[fmt] = buf.getvalue()[:4]
    fig.savefig("/tmp/mpl_plot.png")
    with open("/tmp/mpl_plot.png", "rb") as f:
        head = f.read(24)
    plt.close("all")
    return {
        "backend": matplotlib.get_backend().lower(),
        "png": out["png"] == b"\\x89PNG", "svg": out["svg"] == b"<?xm", "pdf": out["pdf"] == b"%PDF",
        "size": [int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")],
        "open": plt.get_fignums(),
    }
'''

WORKLOADS = {
    "numpy": (NUMPY, {
        "inv": [[0.6, -0.2], [-0.2, 0.4]], "eig": [1.382, 3.618],
        "fft": [8.0, 0.0, 0.0, 0.0, 0.0], "big": 300.0, "rng": 5, "load": 66.0,
        "memmap": 8192.0, "large": 1280, "legacy": True}),
    "pandas": (PANDAS, {
        "groupby": {"a": 4, "b": 2, "c": 4}, "merge": [3, 3],
        "pivot": {"a": 2.0, "b": 2.0, "c": 4.0}, "csv": 10, "json": 4,
        "tz": ["1:00:00", "1:00:00", "2:00:00"], "rolling": [1.0, 2.0, 3.0, 4.0],
        "describe": 2.0}),
    "subprocess": (SUBPROCESS, {
        "low fd": 0, "python3": "3", "sh": ["42", 3], "sleep": 0, "cat": "through cat", "timeout": True,
        "shell": "2", "session": 0, "group": 0, "devnull": 0, "system": 4, "posix_spawn": 0}),
    "multiprocessing": (MULTIPROCESSING, {
        "pool": [1, 2, 3], "queue": 42, "exitcode": 0, "shm": 7, "value": 2, "semaphore": True,
        "spawn": [5], "forkserver": [5], "manager": {"x": 1}}),
    "threads": (THREADS, {
        "squares": [0, 1, 4, 9, 16, 25, 36, 49], "event": True, "queued": [0, 1, 2, 3],
        "cond": False, "native_id": True, "name": "pyexecd-w"}),
    "files": (FILES, {
        "pread": "01AB", "fstat": 4096, "F_DUPFD": [22, True], "lockf test": None,
        "fstatvfs": True, "fxattr": ["1", ["user.fd"]], "lxattr": [], "lsetxattr": "EPERM",
        "lgetxattr": "ENODATA", "lremovexattr": "EPERM", "faccessat": [True, True],
        "pipe size": 65536, "inheritable": [True, False], "readlink": "/tmp/f/a/x.txt",
        "lstat": True, "mtime": 1000000002.0, "access": [True, False], "dir_fd": 6, "getcwd": "/tmp/f",
        "fwalk": [0, 1, 4], "listdir": ["a", "fifo", "link", "node", "raw"],
        "scandir": ["b", "x.txt"], "walk": 5, "glob": ["/tmp/f/a/x.txt"], "statvfs": True,
        "disk_usage": True, "archive": ["b", "x.txt"], "xattr": ["v", ["user.k"]],
        "tempfile": "t", "pipe": "p", "sendfile": 6, "copy_file_range": 6, "splice": 3,
        "memfd": 1, "eventfd": 3, "umask": True, "read_only_tree": True,
        "read_only_write": "EROFS"}),
    "process": (PROCESS, {
        "fork": 5, "waitid": 0, "pgid": 0, "wait4": True, "pidfd": 9,
        "ids": [True, True, True, True, [], 1, 0, 0, 0], "uname": "Linux", "times": True,
        "loadavg": 3, "cpu_count": True, "affinity": True, "priority": 0, "nice": 2,
        "rlimit": True, "rusage": True, "prlimit": [0, 0], "user": ["/tmp", "sandbox", "root"],
        "platform": "Linux", "locale": "C.UTF-8", "isatty": [False, False], "terminal": 80,
        "status": ["Uid:", "Seccomp:"], "proc_pids": 1, "fds": [0, 1, 2]}),
    "signals": (SIGNALS, {
        "handled": [10, 10, 10, 14, 10], "pending": True, "sigtimedwait": 12, "wakeup_fd": True,
        "child": 15, "stopped and continued": 0, "itimer": 0.0}),
    "time": (TIME, {"slept": True, "clocks": True, "zoneinfo": -14400.0, "local": True,
                    "strftime": "1970"}),
    "random": (RANDOM, {"random": True, "system": True, "urandom": 16, "getrandom": 16,
                        "secrets": 16, "uuid4": 4, "uuid1": 1, "randbytes": 4}),
    "sqlite": (SQLITE, {"second connection": 10, "two processes": 12, "wal": "wal",
                        "wal read": 1, "memory": 42}),
    "stdlib": (STDLIB, {
        "socketpair": "x", "send_fds": ["fd", 1], "unix": "unix", "peercred": 12,
        "sockname": "/tmp/sock", "peername": "/tmp/sock", "dgram": "dg", "select": 1, "poll": 1, "epoll": 1,
        "selectors": 1, "asyncio": "async", "mmap": "mm", "mmap file": "file",
        "compress": [7000, 7000, 7000], "zip": ["a"], "sha256": "e3b0c442",
        "json": {"a": [1, 2]}, "ctypes callback": 42, "decimal": "0.1428", "statistics": 2,
        "ssl": "OpenSSL"}),
    "tools": (TOOLS, {
        "ls": [0, "1", ""], "cat": [0, "sandbox", ""], "files": [0, "ok", ""],
        "find": [0, "/tmp/t/a/f", ""], "text": [0, "AX", ""], "grep": [0, "1", ""],
        "gzip": [0, "100", ""], "tar": [0, "zoneinfo/UTC", ""], "date": [0, "1970", ""],
        "id": [0, "ok", ""], "uname": [0, "Linux", ""], "df": [0, "1", ""], "stat": [0, "8", ""],
        "du": [0, "/tmp/t", ""], "bash": [0, "2", ""], "python3": [0, "[1]", ""],
        "which": [0, "/usr/bin/python3", ""], "seq": [0, "3", ""], "md5sum": [0, "c139f3ee", ""],
        "ps": [0, "1", ""], "xargs": [0, "2", ""]}),
    # Last: the fonts it opens stay open, and would shift the fd numbers of the others.
    "matplotlib": (MATPLOTLIB, {
        "backend": "agg", "png": True, "svg": True, "pdf": True, "size": [200, 100], "open": []}),
}


def workload_script(name):
    body, _ = WORKLOADS[name]
    return script(textwrap.dedent(body) + f"\n\ndef main():\n    return w_{name}()\n")


def combined_script(names=None):
    """One script running every workload in turn (each in a fresh /tmp subtree is not
    needed: their paths do not collide); main() returns {name: result}."""
    names = list(names or WORKLOADS)
    bodies = "\n\n".join(textwrap.dedent(WORKLOADS[n][0]) for n in names)
    calls = ", ".join(f"{n!r}: w_{n}()" for n in names)
    return script(bodies + f"\n\ndef main():\n    return {{{calls}}}\n")


# Results that depend on the kernel, not on the filter: user.* extended attributes on
# tmpfs exist from Linux 6.6 on; before, the file system answers EOPNOTSUPP (a refusal by
# the filter would be ENOSYS or EPERM). Every *xattr* field of the files workload.
KERNEL_DEPENDENT = {"files": ("xattr", ("EOPNOTSUPP", "ENOTSUP"))}  # one errno, two names


def differences(name, got, expected):
    """The fields where `got` differs from `expected` (empty when they match), but for
    KERNEL_DEPENDENT fields, which may instead hold the file system's refusal."""
    if not isinstance(got, dict) or not isinstance(expected, dict):
        return [] if got == expected else [("value", got, expected)]
    part, alt = KERNEL_DEPENDENT.get(name, (None, None))
    keys = sorted(set(got) | set(expected))
    return [(k, got.get(k), expected.get(k)) for k in keys
            if got.get(k) != expected.get(k)
            and not (part and part in k and k in expected and got.get(k) in alt)]


def matches(name, got, expected):
    return not differences(name, got, expected)
