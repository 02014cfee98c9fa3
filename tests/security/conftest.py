"""Fixtures and helpers for the security tests of pyexecd.

Every test posts a hostile script, asserts the exact failure (an errno name,
an error code), and then asserts that the service still answers a normal
request. Every layer test also shows that the same probe gets a different
answer when that layer is switched off with `--disable-layers`, so that a
test cannot pass for the wrong reason (a layer that does nothing, a probe
that would fail anyway).

Servers are started as real processes on port 0 (`--log-format json`; the
port is read from the `listening` log line); layer-off comparisons mostly use
the cheaper one-shot form `pyexecd exec --disable-layers X -`, which runs a
script in the same sandbox and prints the same JSON.

Run as root with Debian's interpreter:
    /usr/bin/python3 -m pytest -p no:cacheprovider -q tests/security
PYEXECD_BIN overrides the binary; PYEXECD_MUST_WORK=1 (set by CI) turns the
skips of `require()` into failures.

PYEXECD_URL=http://HOST:PORT runs the escape attempts against the pyexecd
already running there (default configuration, e.g. in a container): `server`
is then a client of it, and no root is needed here. What needs a pyexecd
process of its own (the layer-off comparisons, servers with other flags, the
server's pid or environment, this host's view of what a script left behind)
is skipped, also with PYEXECD_MUST_WORK=1, and counted at the end of the run:
`start_server` and `require_binary()` (so `exec_script()`) skip by
themselves; other tests are marked `needs_process` or call
`skip_in_url_mode()` before that part.
"""

import json
import os
import subprocess
import signal
import textwrap
import threading
import time
import uuid
from pathlib import Path

import pytest
from pyexecd_testing import HTTP_TIMEOUT, Client, RemoteServer, ServerProcess, clean_env
from urlmode import SERVER_URL, hooks, skip_in_url_mode

SUITE = Path(__file__).resolve().parent
REPO = SUITE.parents[1]
BINARY = os.environ.get("PYEXECD_BIN", str(REPO / "build" / "pyexecd"))
MUST_WORK = os.environ.get("PYEXECD_MUST_WORK") == "1"

EXEC_TIMEOUT = 120
RETRIES = 3  # the binary may be relinked while the suite runs

# Every server and run here uses its own uid range: RLIMIT_NPROC is counted per
# uid host-wide, so the bombs here must not share uids with another pyexecd on
# the same host (the integration suite, with the default 100000, may run at the
# same time). A server at PYEXECD_URL has the default, 100000.
UID_BASE = 100000 if SERVER_URL else 300000
MAX_SLOTS = 64  # uids run from UID_BASE to UID_BASE + slots (concurrency + spares)
COMMON_FLAGS = ("--uid-base", str(UID_BASE))
CONCURRENCY = 2  # slots of every server here: the cross-sandbox tests need two

# A value that must never reach a sandbox: set in the main server's environment.
SECRET = "pyexecd-secret-" + uuid.uuid4().hex
SERVER_ENV = {"SECRET_TOKEN": SECRET, "PYEXECD_LOG_LEVEL": "info"}

# The complete environment of a sandbox (docs/design/DESIGN.md section 3, plus the thread
# pins of the numeric libraries).
SANDBOX_ENV = {
    "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "HOME": "/tmp",
    "LANG": "C.UTF-8",
    "MPLBACKEND": "Agg",
    "NUMEXPR_MAX_THREADS": "1",
    "NUMEXPR_NUM_THREADS": "1",
    "OMP_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "VECLIB_MAXIMUM_THREADS": "1",
}

TRIVIAL_SCRIPT = "def main():\n    return 1\n"

# Prepended to every hostile script: `outcome(fn, *args)` is "ok" or the errno
# name of the OSError fn raised; `syscall(nr, *args)` is "ok" or the errno name
# of a raw system call (bubblewrap's try-syscall, in Python).
PRELUDE = '''\
import ctypes, errno, os
_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long


def errname(num):
    return errno.errorcode.get(num, "errno %d" % num)


def outcome(fn, *args, **kwargs):
    try:
        fn(*args, **kwargs)
    except OSError as e:
        return errname(e.errno)
    return "ok"


def syscall(nr, *args):
    ctypes.set_errno(0)
    r = _libc.syscall(ctypes.c_long(nr), *[ctypes.c_long(a) for a in args])
    return errname(ctypes.get_errno()) if r < 0 else "ok"
'''


def script(body: str) -> str:
    """A complete script: PRELUDE plus `body` (dedented), which defines main()."""
    return PRELUDE + "\n\n" + textwrap.dedent(body)


def require(condition, reason):
    """Skips the test unless `condition`; with PYEXECD_MUST_WORK=1, fails instead."""
    if condition:
        return
    if MUST_WORK:
        pytest.fail(f"PYEXECD_MUST_WORK=1 but: {reason}")
    pytest.skip(reason)


def require_root():
    require(os.geteuid() == 0, "the sandbox needs root (namespaces, cgroups, uid switch)")


def require_binary():
    skip_in_url_mode("runs the pyexecd binary here")
    if not os.access(BINARY, os.X_OK):
        pytest.fail(f"pyexecd binary not found or not executable: {BINARY} "
                    "(build it, or set PYEXECD_BIN)")


# -- HTTP server -----------------------------------------------------------------


class SecurityClient(Client):
    def execute(self, source, **fields) -> dict:
        """POSTs /execute; returns the JSON body with the HTTP status as `_status`."""
        resp = super().execute(source, **fields)
        assert isinstance(resp.json, dict), f"HTTP {resp.status}: {resp.raw[:2000]!r}"
        return {**resp.json, "_status": resp.status}


class Remote(SecurityClient, RemoteServer):
    """The pyexecd at PYEXECD_URL (see RemoteServer)."""


class Server(SecurityClient, ServerProcess):
    """A pyexecd started here on its own uid range (COMMON_FLAGS) with `extra_args`."""

    def __init__(self, extra_args=(), env=None, listen="127.0.0.1"):
        super().__init__(BINARY, (*COMMON_FLAGS, *extra_args), clean_env(**(env or {})),
                         listen=listen, attempts=RETRIES)


# -- one-shot CLI ------------------------------------------------------------------


def exec_script(source, *flags, disable=None, env=None) -> dict:
    """Runs `pyexecd exec [flags] -` with `source` on stdin and returns the JSON it
    prints. `disable` is the --disable-layers value. --preload "" keeps it cheap;
    the sandbox is the same."""
    require_binary()
    args = [BINARY, "exec", "--preload", "", *COMMON_FLAGS, *flags]
    if disable:
        args += ["--disable-layers", disable]
    args.append("-")
    last = None
    for _ in range(RETRIES):
        try:
            proc = subprocess.run(args, input=source.encode("utf-8"), capture_output=True,
                                  env=clean_env(**(env or {})), timeout=EXEC_TIMEOUT)
        except OSError as e:  # ETXTBSY/ENOENT while the binary is relinked
            last = repr(e)
            time.sleep(2)
            continue
        try:
            body = json.loads(proc.stdout.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            body = None
        if isinstance(body, dict):
            return body
        last = (f"exit {proc.returncode}, stdout {proc.stdout[:500]!r}, "
                f"stderr {proc.stderr[-2000:]!r}")
        time.sleep(2)
    pytest.fail(f"{' '.join(args[1:])} printed no JSON object: {last}")


# -- assertions --------------------------------------------------------------------


def result_of(body: dict):
    """The `result` of a successful run (HTTP 200 or the CLI's equivalent)."""
    assert "result" in body and body.get("_status", 200) == 200, body
    return body["result"]


def assert_error(body: dict, code: str):
    assert body.get("code") == code, body
    assert body.get("_status", 422) == 422, body
    assert "result" not in body, body
    return body


def assert_still_serving(server):
    """After whatever the test did, a normal request still succeeds."""
    assert server.alive(), f"pyexecd exited:\n{server.stderr_text()[-4000:]}"
    assert result_of(server.execute(TRIVIAL_SCRIPT)) == 1


def run_concurrently(server, first, second, head_start=0.5, **fields):
    """Posts `first`, then (after `head_start` s) `second`, on two connections;
    returns both bodies. The server must have two free slots."""
    out = {}

    def post_first():
        try:
            out["first"] = server.execute(first, **fields)
        except BaseException as e:  # reported below, in the test's thread
            out["first"] = e

    thread = threading.Thread(target=post_first)
    thread.start()
    time.sleep(head_start)
    try:
        second_body = server.execute(second, **fields)
    finally:
        thread.join(HTTP_TIMEOUT)
    if isinstance(out.get("first"), BaseException):
        raise out["first"]
    return out["first"], second_body


def assert_overlap(holder, prober):
    """Sanity check of a cross-sandbox test: the prober's attempts happened while
    the holder held its resource (both report CLOCK_MONOTONIC readings, which a
    sandbox shares with the host). Not a timing assertion: it only guards
    against a vacuous pass if the two requests did not run at the same time."""
    assert holder["held_from"] <= prober["last_try"] <= holder["held_until"], (holder, prober)


def host_pids_matching(needle):
    """Host pids whose command line contains `needle` (our own probes' unique
    arguments)."""
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                cmdline = f.read().replace(b"\0", b" ").decode("utf-8", "replace")
        except OSError:
            continue
        if needle in cmdline and int(entry) != os.getpid():
            pids.append(int(entry))
    return pids


def kill_pids(pids):
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def unique(prefix="pyexecd-sec"):
    return f"{prefix}-{uuid.uuid4().hex[:12]}"




# -- PYEXECD_URL mode ----------------------------------------------------------------


pytest_configure, pytest_collection_modifyitems, pytest_terminal_summary = hooks(
    SUITE, REPO, "its pid, environment or host")


# -- fixtures ------------------------------------------------------------------------


@pytest.fixture(scope="session")
def start_server():
    """Factory: start_server(*flags, env=None, listen=...) -> a started, shared Server."""
    skip_in_url_mode("starts pyexecd here")
    require_root()
    shared, started = {}, []

    def start(*flags, env=None, listen="127.0.0.1"):
        key = (flags, tuple(sorted((env or {}).items())), listen)
        if key not in shared:
            srv = Server(flags, env, listen)
            started.append(srv)
            shared[key] = srv.start()
        return shared[key]

    yield start
    for srv in started:
        srv.stop()


@pytest.fixture(scope="session")
def server(request):
    """The production-like server: default limits and preloads, two slots, and a
    secret in its environment. Or the one at PYEXECD_URL: its defaults (as many slots as
    its CPUs; the cross-sandbox tests need two), no secret."""
    if not SERVER_URL:
        return request.getfixturevalue("start_server")(
            "--concurrency", str(CONCURRENCY), env=SERVER_ENV)
    srv = Remote(SERVER_URL)
    if not srv.alive():
        pytest.fail(f"PYEXECD_URL={SERVER_URL}: no answer to GET /health")
    return srv


@pytest.fixture(scope="session")
def layer_off_server(start_server):
    """Factory: a cheap server (no preloads, two slots) with `layers` disabled."""
    def start(layers, *flags, listen="127.0.0.1"):
        return start_server("--preload", "", "--concurrency", str(CONCURRENCY),
                            "--disable-layers", layers, *flags, listen=listen)
    return start


@pytest.fixture(autouse=True)
def _root_only():
    if not SERVER_URL:  # a client of the server at PYEXECD_URL needs no root
        require_root()
