"""Operations features: API keys, request ids, graceful SIGTERM."""

import os
import signal
import json
import socket
import tempfile
import threading
import time

import pytest

from .conftest import assert_ok, metric, run_binary, skip_in_url_mode, wait_until_running

BODY = {"script": "def main():\n    return 1\n"}


@pytest.fixture(scope="module")
def keyed_server(start_server):
    with tempfile.NamedTemporaryFile("w", suffix=".keys", delete=False) as f:
        f.write("# operators' keys\n\n  key-one  \nkey-two\n")
    try:
        yield start_server("--api-keys-file", f.name)
    finally:
        os.unlink(f.name)


@pytest.mark.parametrize("header", [None, "Bearer wrong", "Bearer key-one-", "Bearer key-on",
                                    "Basic key-one", "Bearer ", "key-one"])
def test_execute_needs_a_valid_key(keyed_server, header):
    resp = keyed_server.post(BODY, headers={"Authorization": header} if header else None)
    assert resp.status == 401 and resp.json["code"] == "UNAUTHORIZED", resp
    assert resp.headers.get("www-authenticate") == "Bearer"


@pytest.mark.parametrize("key", ["key-one", "key-two"])
def test_execute_with_a_valid_key(keyed_server, key):
    assert_ok(keyed_server.post(BODY, headers={"Authorization": f"Bearer {key}"}))


def test_health_and_ready_stay_open(keyed_server):
    assert keyed_server.get("/health").status == 200
    assert keyed_server.get("/ready").status == 200


def test_missing_keys_file_refuses_to_start():
    proc = run_binary("--listen", "127.0.0.1", "--port", "0",
                      "--api-keys-file", "/nonexistent/keys", "--preload", "", timeout=120)
    assert proc.returncode != 0
    assert b"API keys" in proc.stderr


def test_request_id_is_echoed_and_logged(server):
    resp = server.post(BODY, headers={"X-Request-Id": "trace-abc.123"})
    assert resp.headers["x-request-id"] == "trace-abc.123"
    skip_in_url_mode("reads the server's log")
    assert server.wait_for_log('"request_id":"trace-abc.123"')


def test_unsafe_request_id_is_replaced(server):
    resp = server.post(BODY, headers={"X-Request-Id": "a b\"c"})
    rid = resp.headers["x-request-id"]
    assert rid != 'a b"c' and len(rid) == 32


def test_sigterm_drains_in_flight_and_exits_zero(start_server):
    srv = start_server("--pool-size", "1", shared_ok=False)
    result = {}

    def slow():
        result["resp"] = srv.execute("import time\ndef main():\n    time.sleep(2)\n    return 7\n")

    t = threading.Thread(target=slow)
    t.start()
    wait_until_running(srv)
    os.kill(srv.proc.pid, signal.SIGTERM)
    time.sleep(0.3)
    with pytest.raises(OSError):  # no longer accepting
        socket.create_connection(("127.0.0.1", srv.port), timeout=2).close()
    t.join(timeout=30)
    assert result["resp"].status == 200 and result["resp"].json["result"] == 7
    assert srv.proc.wait(timeout=30) == 0


def test_sigterm_past_the_grace_answers_running_and_queued(start_server):
    """The grace (8 s) ends: the running script is killed and the queued one never runs;
    both clients still get an answer (the queued one after the executor's thread ended)."""
    srv = start_server("--pool-size", "0", "--concurrency", "1", "--timeout", "60",
                       shared_ok=False)
    results = {}

    def run(name, seconds):
        results[name] = srv.execute(
            f"import time\ndef main():\n    time.sleep({seconds})\n    return 1\n")

    running = threading.Thread(target=run, args=("running", 50))
    running.start()
    wait_until_running(srv)
    queued = threading.Thread(target=run, args=("queued", 0))
    queued.start()
    deadline = time.monotonic() + 30
    while metric(srv, "pyexecd_queue_depth") < 1:
        assert time.monotonic() < deadline, "the second request was not queued"
        time.sleep(0.05)
    os.kill(srv.proc.pid, signal.SIGTERM)
    running.join(timeout=60)
    queued.join(timeout=60)
    for name in ("running", "queued"):
        resp = results[name]
        assert resp.status in (500, 503), (name, resp)
        assert "shutting down" in resp.json["error"], (name, resp.json)
    assert srv.proc.wait(timeout=30) == 0


def test_metrics_move(start_server):
    srv = start_server("--pool-size", "1", shared_ok=False)
    ok = 'pyexecd_requests_total{endpoint="/execute",code="OK"}'
    timeouts = "pyexecd_timeouts_total"
    before_ok, before_t = metric(srv, ok), metric(srv, timeouts)
    assert_ok(srv.post(BODY))
    resp = srv.execute("while True: pass", timeout=0.3)
    assert resp.json["code"] == "TIMEOUT"
    assert metric(srv, ok) == before_ok + 1
    assert metric(srv, timeouts) == before_t + 1
    assert metric(srv, "pyexecd_request_duration_seconds_count") >= 2
    text = srv.get("/metrics").raw.decode()
    for name in ("pyexecd_queue_depth", "pyexecd_sandboxes_in_use", "pyexecd_sandboxes_warm",
                 "pyexecd_sandbox_setup_failures_total", "pyexecd_oom_kills_total",
                 "pyexecd_zygote_restarts_total", "pyexecd_zygotes_up"):
        assert f"# TYPE {name} " in text, name
    srv.stop()


def _in_background(fn):
    out = {}
    t = threading.Thread(target=lambda: out.setdefault("resp", fn()))
    t.start()
    return t, out


def test_full_queue_answers_503_at_once(start_server):
    srv = start_server("--concurrency", "1", "--pool-size", "0", "--queue-size", "0",
                       shared_ok=False)
    t, out = _in_background(lambda: srv.execute("import time\ndef main():\n    time.sleep(2)\n"
                                                "    return 1\n"))
    wait_until_running(srv)  # the first request holds the only sandbox
    resp = srv.post(BODY)
    assert resp.status == 503 and resp.json["code"] == "OVERLOADED", resp
    assert resp.headers.get("retry-after") == "1"
    t.join(timeout=30)
    assert out["resp"].status == 200
    srv.stop()


def test_request_that_waited_past_its_timeout_is_not_run(start_server):
    srv = start_server("--concurrency", "1", "--pool-size", "0", shared_ok=False)
    t, out = _in_background(lambda: srv.execute("import time\ndef main():\n    time.sleep(2.5)\n"
                                                "    return 1\n"))
    wait_until_running(srv)
    resp = srv.post({"script": "def main():\n    print('ran')\n    return 1\n", "timeout": 1})
    assert resp.status == 503 and resp.json["code"] == "OVERLOADED", resp
    assert "not run" in resp.json["error"]
    t.join(timeout=30)
    assert out["resp"].status == 200
    srv.stop()


def test_slow_client_is_disconnected(start_server):
    srv = start_server("--connection-timeout", "1", "--pool-size", "1", shared_ok=False)
    with socket.create_connection(("127.0.0.1", srv.port), timeout=30) as s:
        s.sendall(b"POST /execute HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                  b"Content-Length: 100\r\n\r\n{\"scr")  # ... and never the rest
        assert s.recv(100) == b""  # closed by the server, not by our timeout
    # A script that runs longer than the connection timeout is not cut: its connection is
    # suspended, not idle.
    resp = srv.execute("import time\ndef main():\n    time.sleep(1.5)\n    return 2\n")
    assert resp.status == 200 and resp.json["result"] == 2
    srv.stop()


def test_connection_limit_displaces_the_oldest_idle_connection(start_server):
    """At --max-connections, a new connection closes the oldest one that has not sent a
    whole request, instead of waiting behind it."""
    srv = start_server("--max-connections", "2", "--pool-size", "1", shared_ok=False)
    held = [socket.create_connection(("127.0.0.1", srv.port), timeout=10) for _ in range(2)]
    held[1].sendall(b"GET /health HTTP/1.1\r\n")  # half a head
    time.sleep(0.3)
    with socket.create_connection(("127.0.0.1", srv.port), timeout=10) as extra:
        extra.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        assert extra.recv(100).startswith(b"HTTP/1.1 200")
    held[0].settimeout(10)
    assert held[0].recv(100) == b"", "the oldest idle connection was not the one closed"
    held[1].sendall(b"Host: x\r\nConnection: close\r\n\r\n")
    held[1].settimeout(10)
    assert held[1].recv(100).startswith(b"HTTP/1.1 200")
    for s in held:
        s.close()
    srv.stop()


def test_connection_limit_never_displaces_a_running_request(start_server):
    """Connections whose script runs are not displaced: with both taken by running
    scripts, a third connection is refused, and both scripts are answered."""
    srv = start_server("--max-connections", "2", "--concurrency", "2", "--pool-size", "0",
                       shared_ok=False)
    body = json.dumps({"script": "import time\ndef main():\n    time.sleep(2)\n    return 3\n"})
    request = (f"POST /execute HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
               f"Content-Length: {len(body)}\r\n\r\n{body}").encode()
    running = [socket.create_connection(("127.0.0.1", srv.port), timeout=30) for _ in range(2)]
    for s in running:
        s.sendall(request)
    time.sleep(0.5)
    with socket.create_connection(("127.0.0.1", srv.port), timeout=10) as extra:
        try:
            extra.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
            assert extra.recv(100) == b"", "served although every connection was running"
        except ConnectionResetError:
            pass  # refused: closed by the server
    for s in running:
        reply = s.recv(65536)
        assert reply.startswith(b"HTTP/1.1 200") and b'"result":3' in reply, reply
        s.close()
    srv.stop()


def test_keep_alive_serves_several_requests_on_one_connection(server):
    import http.client
    conn = http.client.HTTPConnection(server.host, server.port, timeout=60)
    try:
        socks = set()
        for i in range(3):
            conn.request("POST", "/execute", b'{"script": "def main():\\n    return 5\\n"}',
                         {"Content-Type": "application/json"})
            resp = conn.getresponse()
            assert resp.status == 200 and b'"result":5' in resp.read()
            socks.add(id(conn.sock))
        assert len(socks) == 1
    finally:
        conn.close()
