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

import http.client
import json
import os
import queue
import select
import signal
import subprocess
import threading
import time
import uuid
from pathlib import Path
from typing import Any, NamedTuple

import pytest
from urlmode import SERVER_URL, hooks, parse_server_url, skip_in_url_mode

SUITE = Path(__file__).resolve().parent
REPO = SUITE.parents[1]
BINARY = os.environ.get("PYEXECD_BIN", str(REPO / "build" / "pyexecd"))

STARTUP_TIMEOUT = 60  # seconds; the zygote imports pandas before the server listens
STOP_GRACE = 10  # seconds between SIGTERM and SIGKILL
HTTP_TIMEOUT = 120  # socket timeout; a liveness guard, not a timing assertion
SEND_CHUNK = 64 * 1024

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


class Response(NamedTuple):
    """One HTTP answer. `headers` has lower-cased names; `json` is None
    unless `raw` is strict JSON (UTF-8, no NaN/Infinity tokens)."""

    status: int
    headers: dict
    json: Any
    raw: bytes


def _reject_constant(name):
    raise ValueError(f"non-standard JSON constant {name}")


def parse_strict_json(raw: bytes):
    """The JSON value in `raw`, or None if it is not strict JSON."""
    try:
        return json.loads(raw.decode("utf-8"), parse_constant=_reject_constant)
    except (UnicodeDecodeError, ValueError):
        return None


def encode_body(body) -> bytes:
    if isinstance(body, bytes):
        return body
    if isinstance(body, str):
        return body.encode("utf-8")
    return json.dumps(body).encode("utf-8")


def clean_env(**overrides) -> dict:
    """The test runner's environment without any pyexecd configuration,
    plus `overrides`."""
    env = {k: v for k, v in os.environ.items()
           if k != "PORT" and not k.startswith("PYEXECD_")}
    env.update(overrides)
    return env


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


class Client:
    """The HTTP side of a pyexecd at `host`:`port`."""

    def __init__(self, host, port=None):
        self.host = host
        self.port = port

    def alive(self):
        """True while the server answers GET /health."""
        try:
            return self.get("/health").status == 200
        except OSError:
            return False

    def request(self, method, path, body=None, headers=None, chunked=False) -> Response:
        """Sends one request on a fresh connection. The body is streamed so
        that a server answering early (413) and closing is still read."""
        conn = http.client.HTTPConnection(self.host, self.port, timeout=HTTP_TIMEOUT)
        try:
            conn.putrequest(method, path, skip_accept_encoding=True)
            for name, value in (headers or {}).items():
                conn.putheader(name, value)
            if body is not None:
                if chunked:
                    conn.putheader("Transfer-Encoding", "chunked")
                else:
                    conn.putheader("Content-Length", str(len(body)))
            conn.endheaders()
            if body is not None:
                self._send_body(conn.sock, body, chunked)
            resp = conn.getresponse()
            raw = resp.read()
            hdrs = {}
            for name, value in resp.getheaders():
                key = name.lower()
                hdrs[key] = f"{hdrs[key]}, {value}" if key in hdrs else value
            return Response(resp.status, hdrs, parse_strict_json(raw), raw)
        finally:
            conn.close()

    @staticmethod
    def _send_body(sock, body, chunked):
        pieces = [body[i:i + SEND_CHUNK] for i in range(0, len(body), SEND_CHUNK)]
        if chunked:
            pieces = [b"%x\r\n%s\r\n" % (len(p), p) for p in pieces] + [b"0\r\n\r\n"]
        for piece in pieces:
            readable, _, _ = select.select([sock], [], [], 0)
            if readable:  # the server has answered (or closed) already
                return
            try:
                sock.sendall(piece)
            except (BrokenPipeError, ConnectionResetError):
                return

    def post(self, body, headers=None, content_type="application/json",
             path="/execute", chunked=False) -> Response:
        all_headers = {} if content_type is None else {"Content-Type": content_type}
        all_headers.update(headers or {})
        return self.request("POST", path, encode_body(body), all_headers, chunked)

    def execute(self, script, **fields) -> Response:
        return self.post({"script": script, **fields})

    def get(self, path) -> Response:
        return self.request("GET", path)


class RemoteServer(Client):
    """The pyexecd at PYEXECD_URL: HTTP only. It has no pid, process or log
    lines here; a test that needs them is marked `needs_process`."""

    def __init__(self, url):
        super().__init__(*parse_server_url(url))
        self.url = url

    def stderr_text(self):
        return f"(the log of the server at {self.url} is not visible here)"


class Server(Client):
    """A running pyexecd. Start with `start()`, stop with `stop()`."""

    def __init__(self, extra_args=(), env=None):
        super().__init__("127.0.0.1")
        self.args = [BINARY, "--listen", self.host, "--port", "0",
                     "--log-format", "json", *extra_args]
        self.env = clean_env() if env is None else env
        self.proc = None
        self.log_lines = []  # every stderr line, decoded, in order
        self._lines = queue.Queue()
        self._reader = None

    @property
    def pid(self):
        return self.proc.pid

    # -- lifecycle ---------------------------------------------------------

    def start(self):
        skip_in_url_mode("starts pyexecd here")
        if not os.access(BINARY, os.X_OK):
            pytest.fail(f"pyexecd binary not found or not executable: {BINARY} "
                        "(build it with `make -C <repo> build` or set PYEXECD_BIN)")
        self.proc = subprocess.Popen(self.args, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE, env=self.env)
        self._reader = threading.Thread(target=self._drain_stderr, daemon=True)
        self._reader.start()
        self.port = self._wait_for_port()
        self._wait_until_ready()
        return self

    def _drain_stderr(self):
        for raw in self.proc.stderr:
            line = raw.decode("utf-8", "replace").rstrip("\n")
            self.log_lines.append(line)
            self._lines.put(line)
        self._lines.put(None)  # EOF

    def _wait_for_port(self):
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self.stop()
                pytest.fail(f"no 'listening' log line within {STARTUP_TIMEOUT}s; "
                            f"stderr so far:\n{self.stderr_text()}")
            try:
                line = self._lines.get(timeout=remaining)
            except queue.Empty:
                continue
            if line is None:
                self.stop()
                pytest.fail(f"pyexecd exited during start-up (status {self.proc.returncode}); "
                            f"stderr:\n{self.stderr_text()}")
            record = parse_log_line(line)
            if (record is not None
                    and str(record.get("message", "")).startswith("listening")
                    and type(record.get("port")) is int):
                return record["port"]

    def _wait_until_ready(self):
        """Waits (bounded) for /ready; proceeds either way so that the
        readiness tests, not the fixture, report a broken /ready."""
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while time.monotonic() < deadline and self.proc.poll() is None:
            try:
                if self.get("/ready").status == 200:
                    return
            except OSError:
                pass
            time.sleep(0.1)

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self):
        """SIGTERM by pid, SIGKILL after STOP_GRACE seconds. Idempotent.
        Returns the exit status."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=STOP_GRACE)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        if self._reader is not None:
            self._reader.join(timeout=STOP_GRACE)
        return self.proc.returncode

    # -- logs --------------------------------------------------------------

    def stderr_text(self):
        return "\n".join(self.log_lines)

    def wait_for_log(self, needle, timeout=2.0):
        """True once a log line contains `needle` (bounded wait)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(needle in line for line in list(self.log_lines)):
                return True
            time.sleep(0.05)
        return False


def parse_log_line(line):
    """The JSON object on a log line, or None."""
    try:
        record = json.loads(line)
    except ValueError:
        return None
    return record if isinstance(record, dict) else None


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
    """Factory: `start_server(*flags)` returns a started Server. Servers with
    the same flags are shared across the session unless `shared=False`.
    All are stopped at the end of the session."""
    shared = {}
    started = []

    def start(*extra_args, env=None, shared_ok=True):
        key = (tuple(extra_args), tuple(sorted((env or {}).items())))
        if shared_ok and key in shared:
            return shared[key]
        srv = Server(extra_args, None if env is None else clean_env(**env))
        started.append(srv)
        srv.start()
        if shared_ok:
            shared[key] = srv
        return srv

    yield start
    for srv in started:
        srv.stop()


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


def metric(srv, name):
    """The value of one unlabelled (or fully spelled-out) metric of GET /metrics."""
    for line in srv.get("/metrics").raw.decode().splitlines():
        if line.split(" ")[0] == name:
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def wait_until_running(srv, n=1, timeout=60):
    """Waits (bounded) until `n` sandboxes serve requests: no guessing with sleeps."""
    deadline = time.monotonic() + timeout
    while metric(srv, "pyexecd_sandboxes_in_use") < n:
        assert time.monotonic() < deadline, "no request started running"
        time.sleep(0.05)


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
