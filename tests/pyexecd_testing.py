"""What tests/integration and tests/security share: a clean environment for the binary, the
HTTP client, and a pyexecd process started on an ephemeral port and stopped by its pid.
Each conftest imports it (pytest puts tests/ on sys.path for both packages, as for
urlmode.py) and adds what only its suite needs."""

import http.client
import json
import os
import queue
import select
import signal
import subprocess
import threading
import time
from typing import Any, NamedTuple

import pytest
from urlmode import parse_server_url, skip_in_url_mode

STARTUP_TIMEOUT = 60  # seconds; the zygote imports numpy and pandas before the port opens
STOP_GRACE = 10  # seconds between SIGTERM and SIGKILL
HTTP_TIMEOUT = 120  # socket timeout; a liveness guard, not a timing assertion
SEND_CHUNK = 64 * 1024


def clean_env(**overrides) -> dict:
    """The test runner's environment without any pyexecd configuration, plus `overrides`."""
    env = {k: v for k, v in os.environ.items()
           if k != "PORT" and not k.startswith("PYEXECD_")}
    env.update(overrides)
    return env


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


def parse_log_line(line):
    """The JSON object on a log line, or None."""
    try:
        record = json.loads(line)
    except ValueError:
        return None
    return record if isinstance(record, dict) else None


def encode_body(body) -> bytes:
    if isinstance(body, bytes):
        return body
    if isinstance(body, str):
        return body.encode("utf-8")
    return json.dumps(body).encode("utf-8")


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


def metric(srv, name):
    """The value of one unlabelled (or fully spelled-out) metric of `srv`'s GET /metrics."""
    for line in srv.get("/metrics").raw.decode().splitlines():
        if line.split(" ")[0] == name:
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def wait_for(pred, timeout):
    """Polls `pred` until it is true; fails after `timeout` seconds (a bound, not a timing
    assertion)."""
    deadline = time.monotonic() + timeout
    while not pred():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def start_plot_zygote(srv, timeout=300):
    """Starts the plot zygote of `srv` (one with default flags: one zygote and the plot
    zygote) with a script that names matplotlib, and waits, bounded, until a second zygote
    serves, so that plotting tests see the service as it is once it has seen a plot: before
    that, a plot imports matplotlib in its own sandbox, which takes more than the default
    256 MiB under the sanitizer build's quarantine. Returns whether it is up."""
    srv.execute("# matplotlib\ndef main():\n    return 1\n")
    deadline = time.monotonic() + timeout
    while metric(srv, "pyexecd_zygotes_up") < 2:
        if time.monotonic() > deadline:
            return False
        time.sleep(0.2)
    return True


def wait_until_running(srv, n=1, timeout=60):
    """Waits (bounded) until `n` sandboxes of `srv` serve requests: no guessing with sleeps."""
    deadline = time.monotonic() + timeout
    while metric(srv, "pyexecd_sandboxes_in_use") < n:
        assert time.monotonic() < deadline, "no request started running"
        time.sleep(0.05)


class RemoteServer(Client):
    """The pyexecd at PYEXECD_URL: HTTP only. It has no pid, process or log
    lines here; a test that needs them is marked `needs_process`."""

    def __init__(self, url):
        super().__init__(*parse_server_url(url))
        self.url = url

    def stderr_text(self):
        return f"(the log of the server at {self.url} is not visible here)"


class ServerProcess(Client):
    """A pyexecd process on an ephemeral port of `listen` (`--port 0`: the port is read from
    its `listening` log line), ready once /ready answers. `start()`, then `stop()` by pid.
    `attempts` > 1 retries a start that failed (the binary may be relinked meanwhile)."""

    def __init__(self, binary, args=(), env=None, listen="127.0.0.1", attempts=1):
        super().__init__("::1" if ":" in listen else listen)
        self.binary = binary
        self.listen = listen
        self.args = [binary, "--listen", listen, "--port", "0", "--log-format", "json",
                     *args]
        self.env = clean_env() if env is None else env
        self.attempts = attempts
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
        if not os.access(self.binary, os.X_OK):
            pytest.fail(f"pyexecd binary not found or not executable: {self.binary} "
                        "(build it with `make build`, or set PYEXECD_BIN)")
        why = "no attempt"
        for attempt in range(self.attempts):
            if attempt:
                time.sleep(2)
            try:
                why = self._start_once()
            except OSError as e:  # ETXTBSY/ENOENT while the binary is relinked
                why = repr(e)
            if why is None:
                return self
            self.stop()
        pytest.fail(f"pyexecd {' '.join(self.args[1:])} did not start: {why}; "
                    f"stderr:\n{self.stderr_text()}")

    def _start_once(self):
        """None once the server is ready; else why not."""
        self.log_lines = []
        self._lines = queue.Queue()
        self.proc = subprocess.Popen(self.args, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE, env=self.env)
        self._reader = threading.Thread(target=self._drain_stderr, daemon=True)
        self._reader.start()
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return f"no 'listening' log line within {STARTUP_TIMEOUT}s"
            try:
                line = self._lines.get(timeout=remaining)
            except queue.Empty:
                continue
            if line is None:
                self.proc.wait()
                return f"it exited during start-up (status {self.proc.returncode})"
            record = parse_log_line(line)
            if (record is not None
                    and str(record.get("message", "")).startswith("listening")
                    and type(record.get("port")) is int):
                self.port = record["port"]
                self._wait_until_ready(deadline)
                return None

    def _drain_stderr(self):
        for raw in self.proc.stderr:
            line = raw.decode("utf-8", "replace").rstrip("\n")
            self.log_lines.append(line)
            self._lines.put(line)
        self._lines.put(None)  # EOF

    def _wait_until_ready(self, deadline):
        """Waits (bounded) for /ready; proceeds either way so that the
        readiness tests, not the fixture, report a broken /ready."""
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


class ServerPool:
    """The servers a test session starts. `start(*flags, env=None, shared_ok=True)` returns a
    started `make(flags, env)` (env: clean_env() plus `env`), the same one for every caller
    with the same flags and environment unless `shared_ok` is False; `stop_all()` stops
    each by pid."""

    def __init__(self, make):
        self._make = make
        self._shared = {}
        self._started = []

    def start(self, *extra_args, env=None, shared_ok=True):
        key = (tuple(extra_args), tuple(sorted((env or {}).items())))
        if shared_ok and key in self._shared:
            return self._shared[key]
        srv = self._make(extra_args, None if env is None else clean_env(**env))
        self._started.append(srv)
        srv.start()
        if shared_ok:
            self._shared[key] = srv
        return srv

    def stop_all(self):
        for srv in self._started:
            srv.stop()
