"""pyexecd_client against a stub HTTP server, for the answers a real pyexecd cannot be made
to give on demand: 503 + Retry-After then success (the retries), the error codes the client
never provokes itself (it always sends application/json with POST), a code from a newer
service, a proxy's page, and an answer that never comes."""

import json
import socket
import threading

import pytest

from pyexecd_client import (Client, ConnectionFailedError, ExecutionError,
                            MethodNotAllowedError, OverloadedError, PayloadTooLargeError,
                            UnexpectedResponseError, UnsupportedMediaTypeError)

from .conftest import OK_BODY, OVERLOADED_BODY, Reply

RETRY_NOW = {"Retry-After": "0"}  # a real wait is no business of a test


def test_503_with_retry_after_is_retried_until_it_succeeds(stub):
    s = stub(Reply(503, OVERLOADED_BODY, RETRY_NOW), Reply(503, OVERLOADED_BODY, RETRY_NOW),
             Reply(200, OK_BODY, {"X-Request-Id": "third"}))
    run = Client(s.url, max_retries=3).execute("def main():\n    return 1", stdin="x")
    assert run.result == 1 and run.request_id == "third"
    bodies = [json.loads(body) for _, _, _, body in s.requests]
    assert len(bodies) == 3 and all(b == bodies[0] for b in bodies), bodies
    assert bodies[0] == {"script": "def main():\n    return 1", "stdin": "x"}


@pytest.mark.parametrize("max_retries", [0, 1, 4])
def test_retries_are_bounded(stub, max_retries):
    s = stub(Reply(503, OVERLOADED_BODY, RETRY_NOW))
    with pytest.raises(OverloadedError) as info:
        Client(s.url, max_retries=max_retries).execute("x")
    assert len(s.requests) == max_retries + 1
    e = info.value
    assert (e.status, e.code, e.attempts, e.retry_after) == (503, "OVERLOADED",
                                                             max_retries + 1, 0.0)
    assert e.message == OVERLOADED_BODY["error"]


def test_503_without_retry_after_is_not_retried(stub):
    s = stub(Reply(503, OVERLOADED_BODY))
    with pytest.raises(OverloadedError) as info:
        Client(s.url).execute("x")
    assert len(s.requests) == 1 and info.value.retry_after is None


def test_a_wait_longer_than_max_retry_wait_is_not_waited(stub):
    s = stub(Reply(503, OVERLOADED_BODY, {"Retry-After": "3600"}))
    with pytest.raises(OverloadedError) as info:
        Client(s.url, max_retries=5, max_retry_wait=30).execute("x")
    assert len(s.requests) == 1 and info.value.retry_after == 3600.0


def test_other_errors_are_not_retried(stub):
    s = stub(Reply(500, {"error": "Internal error: x", "code": "INTERNAL", "request_id": "r"},
                   RETRY_NOW))
    with pytest.raises(ExecutionError) as info:
        Client(s.url).execute("x")
    assert len(s.requests) == 1
    assert (info.value.code, info.value.request_id) == ("INTERNAL", "r")


@pytest.mark.parametrize("status, code, cls", [
    (415, "UNSUPPORTED_MEDIA_TYPE", UnsupportedMediaTypeError),
    (405, "METHOD_NOT_ALLOWED", MethodNotAllowedError),
])
def test_codes_the_client_never_provokes_still_have_their_class(stub, status, code, cls):
    s = stub(Reply(status, {"error": "no", "code": code}, {"X-Request-Id": "rid"}))
    with pytest.raises(cls) as info:
        Client(s.url).execute("x")
    e = info.value
    assert (e.status, e.code, e.message, e.request_id) == (status, code, "no", "rid")
    assert e.stdout is None and e.traceback is None and e.files == []


def test_a_code_this_version_does_not_know_is_an_execution_error(stub):
    s = stub(Reply(418, {"error": "new", "code": "TEAPOT", "stdout": "o", "line": 3}))
    with pytest.raises(ExecutionError) as info:
        Client(s.url).execute("x")
    e = info.value
    assert type(e) is ExecutionError
    assert (e.code, e.status, e.stdout, e.line) == ("TEAPOT", 418, "o", 3)


@pytest.mark.parametrize("status, body", [
    (502, b"<html><body>Bad Gateway</body></html>"),
    (200, json.dumps({"stdout": "", "stderr": ""}).encode()),
    (200, b"[1, 2]"),
    (400, json.dumps({"message": "not ours"}).encode()),
    (200, b"\xff\xfe"),
])
def test_an_answer_that_is_not_pyexecds_is_said_so(stub, status, body):
    s = stub(Reply(status, body))
    with pytest.raises(UnexpectedResponseError) as info:
        Client(s.url).execute("x")
    assert info.value.status == status and info.value.body == body
    assert s.url in str(info.value)


def test_the_request_carries_the_key_and_the_url_path(stub):
    s = stub(Reply(200, OK_BODY))
    Client(s.url + "/pyexecd/", api_key="sekret").execute("def main():\n    return 1")
    [(method, path, headers, _)] = s.requests
    assert (method, path) == ("POST", "/pyexecd/execute")
    assert headers["Authorization"] == "Bearer sekret"
    assert headers["Content-Type"] == "application/json"


def test_no_answer_within_the_clients_timeout(stub):
    hold = threading.Event()
    s = stub(Reply(200, OK_BODY, hold=hold))
    with pytest.raises(ConnectionFailedError) as info:
        Client(s.url, timeout=0.5).execute("x")
    hold.set()
    e = info.value
    assert e.sent and "no answer from" in str(e) and "may have run" in str(e), e


def test_an_early_answer_is_read_though_the_body_was_not_taken():
    """A server that answers 413 from the head and closes without reading the body (so its
    kernel resets the connection): the client stops sending, and reports that answer rather
    than the broken pipe."""
    answer = json.dumps({"error": "too large", "code": "PAYLOAD_TOO_LARGE"}).encode()
    with socket.create_server(("127.0.0.1", 0)) as listener:
        def serve():
            conn, _ = listener.accept()
            with conn:
                head = b""
                while b"\r\n\r\n" not in head:
                    head += conn.recv(4096)
                conn.sendall(b"HTTP/1.1 413 Payload Too Large\r\nConnection: close\r\n"
                             b"Content-Type: application/json\r\n"
                             b"Content-Length: %d\r\n\r\n%s" % (len(answer), answer))

        t = threading.Thread(target=serve, daemon=True)
        t.start()
        url = f"http://127.0.0.1:{listener.getsockname()[1]}"
        with pytest.raises(PayloadTooLargeError) as info:
            Client(url).execute("def main():\n    return 1", stdin="x" * (32 << 20))
        t.join(timeout=30)
    assert (info.value.status, info.value.message) == (413, "too large")
