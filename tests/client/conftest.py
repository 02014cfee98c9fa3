"""Fixtures of the tests of clients/python (pyexecd_client).

The package is installed as a user would install it, `pip install --no-build-isolation`
(Debian's setuptools; nothing is downloaded), from a copy of clients/python (setuptools
builds in the source tree) into a temporary directory put first on sys.path, before any
test module imports it; the directory is removed at the end of the run. Nothing is
installed into the system's Python.

The tests that need a service start pyexecd on 127.0.0.1 on an ephemeral port
(tests/pyexecd_testing.py) and stop it by pid; `Stub` is a small local HTTP server with
scripted answers, for what the service cannot be made to answer on demand (a 503 then a
200, a proxy's page, an answer that never comes).

Run with Debian's interpreter: `/usr/bin/python3 -m pytest tests/client`; PYEXECD_BIN
names a binary other than `<repo>/build/pyexecd`.
"""

import http.server
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import pytest
from pyexecd_testing import ServerPool, ServerProcess, clean_env

SUITE = Path(__file__).resolve().parent
REPO = SUITE.parents[1]
CLIENT_SRC = REPO / "clients" / "python"
BINARY = os.environ.get("PYEXECD_BIN", str(REPO / "build" / "pyexecd"))

# Set by pytest_configure: the temporary directory and, in it, where the package went.
INSTALL = {"tmp": None, "site": None}


def pip_install(dest: Path) -> Path:
    """Installs a copy of clients/python into dest/site; returns dest/site."""
    src, site = dest / "src", dest / "site"
    shutil.copytree(CLIENT_SRC, src, ignore=shutil.ignore_patterns(
        "build", "*.egg-info", "__pycache__", ".mypy_cache"))
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-build-isolation", "--no-index",
         "--no-deps", "--no-cache-dir", "--disable-pip-version-check", "--target", str(site),
         str(src)],
        capture_output=True, text=True, timeout=300,
        env=clean_env(PIP_ROOT_USER_ACTION="ignore", PIP_NO_INPUT="1"))
    if proc.returncode != 0:
        pytest.exit(f"pip install of clients/python failed ({proc.returncode}):\n"
                    f"{proc.stdout}\n{proc.stderr}", returncode=1)
    return site


def pytest_configure(config):
    tmp = Path(tempfile.mkdtemp(prefix="pyexecd-client-"))
    INSTALL["tmp"] = tmp
    INSTALL["site"] = pip_install(tmp)
    sys.path.insert(0, str(INSTALL["site"]))


def pytest_unconfigure(config):
    if INSTALL["tmp"] is not None:
        shutil.rmtree(INSTALL["tmp"], ignore_errors=True)


def site_dir() -> Path:
    return INSTALL["site"]


def client_env(**overrides):
    """The environment of a `python3 -m pyexecd_client` child: the installed package on
    its path, no PYEXECD_* variable but `overrides`."""
    return clean_env(PYTHONPATH=str(site_dir()), **overrides)


def free_port():
    """A TCP port of 127.0.0.1 that nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# -- pyexecd ---------------------------------------------------------------------------


class Server(ServerProcess):
    """A pyexecd started here with `extra_args`; `url` is its base URL."""

    def __init__(self, extra_args=(), env=None):
        super().__init__(BINARY, extra_args, env)

    @property
    def url(self):
        return f"http://{self.host}:{self.port}"


@pytest.fixture(scope="session")
def start_server():
    """Factory: `start_server(*flags)` returns a started Server, shared by the tests that
    ask for the same flags unless `shared_ok=False`. All are stopped at the end."""
    pool = ServerPool(Server)
    yield pool.start
    pool.stop_all()


@pytest.fixture(scope="session")
def server(start_server):
    """A pyexecd with its default flags."""
    return start_server()


@pytest.fixture(scope="session")
def keyed_server(start_server, tmp_path_factory):
    """A pyexecd whose POST /execute needs the API key KEY."""
    keys = tmp_path_factory.mktemp("keys") / "keys"
    keys.write_text(f"# the tests' key\n{KEY}\n")
    return start_server("--api-keys-file", str(keys))


KEY = "client-test-key_0123"


# -- a stub HTTP server ----------------------------------------------------------------


class Reply:
    """One scripted answer; with `hold`, the stub waits (bounded) for it to be set first."""

    def __init__(self, status, body, headers=None, hold=None):
        self.status = status
        self.body = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.headers = headers or {}
        self.hold = hold


class Stub:
    """A local HTTP server that answers the n-th request with the n-th Reply (the last one
    repeats) and records each request as (method, path, headers, body)."""

    def __init__(self, replies):
        self.replies = list(replies)
        self.requests = []
        stub = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with lock:
                    n = len(stub.requests)
                    stub.requests.append((self.command, self.path, dict(self.headers), body))
                reply = stub.replies[min(n, len(stub.replies) - 1)]
                if reply.hold is not None:
                    reply.hold.wait(60)
                self.send_response(reply.status)
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(reply.body)))
                self.send_header("Connection", "close")
                self.end_headers()
                self.wfile.write(reply.body)

            def log_message(self, *args):
                pass

        class Server(http.server.ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, request, client_address):
                pass  # a client that gave up (its timeout) before the answer

        lock = threading.Lock()
        self.httpd = Server(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,),
                                       daemon=True)
        self.thread.start()

    def close(self):
        for reply in self.replies:
            if reply.hold is not None:
                reply.hold.set()
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=30)


@pytest.fixture
def stub():
    """Factory: `stub(Reply, ...)` starts a Stub; each is closed after the test."""
    stubs = []

    def start(*replies):
        s = Stub(replies)
        stubs.append(s)
        return s

    yield start
    for s in stubs:
        s.close()


OK_BODY = {"result": 1, "stdout": "", "stderr": "", "duration_ms": 0.5}
OVERLOADED_BODY = {"error": "The queue is full; retry later", "code": "OVERLOADED"}
