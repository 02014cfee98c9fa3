"""Shared fixtures and helpers for the black-box HTTP tests of pyexecd.

The service is started as a real process on an ephemeral port
(`--port 0 --log-format json`); its port is read from the structured
`listening` log line on stderr. Everything else goes through HTTP
(`http.client` only) or the binary's command line.

Run with Debian's interpreter: `/usr/bin/python3 -m pytest tests/integration`.
Set PYEXECD_BIN to test a binary other than `<repo>/build/pyexecd`.

PYEXECD_URL=http://HOST:PORT tests the pyexecd already running there (with the
default configuration, e.g. in a container) instead: `server` is then a client
of it. A test that needs a server process of its own (other flags, its logs,
its pid and children, the binary's command line) is skipped, whatever
PYEXECD_MUST_WORK says, and counted at the end of the run: the fixtures and
helpers that start a process skip by themselves; a test that looks at the
`server`'s process or at this host is marked `needs_process`, or calls
`skip_in_url_mode()` before that part.
"""

import os
import subprocess
import uuid
from pathlib import Path

import pytest
# The shared helpers. metric, parse_log_line, parse_strict_json and wait_until_running are
# here for the test modules, which import them from this conftest with the rest.
from pyexecd_testing import (STARTUP_TIMEOUT, RemoteServer, Response, ServerPool, ServerProcess,
                             clean_env, metric, parse_log_line, parse_strict_json,
                             wait_until_running)
from urlmode import SERVER_URL, hooks, skip_in_url_mode

SUITE = Path(__file__).resolve().parent
REPO = SUITE.parents[1]
BINARY = os.environ.get("PYEXECD_BIN", str(REPO / "build" / "pyexecd"))

# The documented limits of a server started without flags.
DEFAULT_OUTPUT_LIMIT = 1024 * 1024
DEFAULT_MAX_BODY = 1024 * 1024

# A second server with small limits, shared by the limit tests.
LIMITS = {"timeout": 5, "output_limit": 1000, "max_body": 2048}
LIMITED_ARGS = (
    "--timeout", str(LIMITS["timeout"]),
    "--output-limit", str(LIMITS["output_limit"]),
    "--max-body", str(LIMITS["max_body"]),
)

# Fields every /execute outcome that ran the script carries.
SUCCESS_KEYS = {"result", "stdout", "stderr", "duration_ms"}

TRIVIAL_SCRIPT = "def main():\n    return {'alive': True}\n"


def run_binary(*args, env=None, stdin=None, timeout=STARTUP_TIMEOUT * 2):
    """Runs the binary to completion (killed if it outlives `timeout`)."""
    skip_in_url_mode("runs the pyexecd binary here")
    return subprocess.run(
        [BINARY, *args],
        input=stdin,
        capture_output=True,
        env=clean_env() if env is None else env,
        timeout=timeout,
    )


class Server(ServerProcess):
    """A pyexecd started here with `extra_args` (see ServerProcess)."""

    def __init__(self, extra_args=(), env=None):
        super().__init__(BINARY, extra_args, env)


# -- assertions shared by the test modules ------------------------------------


def describe(resp: Response) -> str:
    return f"HTTP {resp.status}: {resp.raw[:2000]!r}"


def assert_json_object(resp: Response):
    assert isinstance(resp.json, dict), f"body is not a JSON object: {describe(resp)}"
    assert resp.headers.get("x-request-id"), f"no X-Request-Id: {resp.headers}"
    return resp.json


def assert_ok(resp: Response):
    """Asserts a 200 /execute outcome; returns its body."""
    assert resp.status == 200, describe(resp)
    body = assert_json_object(resp)
    assert SUCCESS_KEYS <= body.keys(), body
    assert isinstance(body["stdout"], str) and isinstance(body["stderr"], str), body
    duration = body["duration_ms"]
    assert isinstance(duration, (int, float)) and not isinstance(duration, bool), body
    assert duration >= 0, body
    return body


def assert_error(resp: Response, status: int, code: str, *, ran=False):
    """Asserts an error outcome with `status` and `code`; returns its body.
    With `ran`, the script got to run, so stdout and stderr are present."""
    assert (resp.status, (resp.json or {}).get("code")) == (status, code), describe(resp)
    body = assert_json_object(resp)
    assert isinstance(body.get("error"), str) and body["error"], body
    assert "result" not in body, body
    if ran:
        assert isinstance(body.get("stdout"), str), body
        assert isinstance(body.get("stderr"), str), body
    return body


def run_ok(server, script, **fields):
    """Executes `script`, asserts success, returns the body."""
    return assert_ok(server.execute(script, **fields))


def assert_still_serving(server):
    """A normal request after whatever the test did still succeeds."""
    body = run_ok(server, TRIVIAL_SCRIPT)
    assert body["result"] == {"alive": True}
    assert server.alive(), "pyexecd exited"


def traceback_files(traceback: str):
    """The file names of the `File "...", line N` frames, in order."""
    files = []
    for line in traceback.splitlines():
        stripped = line.strip()
        if stripped.startswith('File "'):
            files.append(stripped[len('File "'):].split('"', 1)[0])
    return files


def unique_marker():
    return "pyexecd-marker-" + uuid.uuid4().hex


# -- PYEXECD_URL mode ----------------------------------------------------------


pytest_configure, pytest_collection_modifyitems, pytest_terminal_summary = hooks(
    SUITE, REPO, "its pid, children, logs or host")


# -- fixtures ------------------------------------------------------------------


@pytest.fixture(scope="session")
def start_server():
    """Factory: `start_server(*flags, env=None, shared_ok=True)` returns a started Server.
    Servers with the same flags are shared across the session unless `shared_ok=False`.
    All are stopped at the end of the session (ServerPool)."""
    pool = ServerPool(Server)
    yield pool.start
    pool.stop_all()


@pytest.fixture(scope="session")
def server(request):
    """The server with default limits: the one at PYEXECD_URL, or one started here."""
    if not SERVER_URL:
        return request.getfixturevalue("start_server")()
    srv = RemoteServer(SERVER_URL)
    if not srv.alive():
        pytest.fail(f"PYEXECD_URL={SERVER_URL}: no answer to GET /health")
    return srv


@pytest.fixture(scope="session")
def limited_server(start_server):
    """A server with small limits (see LIMITS)."""
    return start_server(*LIMITED_ARGS)


def children_of(pid):
    """The pids of a process's children (of all its threads)."""
    kids = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            kids += [int(p) for p in (task / "children").read_text().split()]
        except FileNotFoundError:  # the thread ended meanwhile
            pass
    return kids


def find_zygotes(server_pid):
    """The server's zygote processes (its children running `pyexecd __zygote`)."""
    zygotes = []
    for kid in children_of(server_pid):
        try:
            cmdline = Path(f"/proc/{kid}/cmdline").read_bytes()
        except FileNotFoundError:
            continue
        if b"__zygote" in cmdline:
            zygotes.append(kid)
    assert zygotes, f"no child of {server_pid} has __zygote in its command line"
    return zygotes
