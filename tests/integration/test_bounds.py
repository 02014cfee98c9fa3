"""Every user-controllable size, at its bound and one past it."""

import json
import socket

import pytest

from .conftest import LIMITS, assert_error, assert_ok

OUT = LIMITS["output_limit"]


def body_of_size(n):
    """A valid request body of exactly n bytes (its script pads with a comment)."""
    base = json.dumps({"script": "def main():\n    return 1\n#"})
    assert n >= len(base)
    return json.dumps({"script": "def main():\n    return 1\n#" + "x" * (n - len(base))}).encode()


def test_body_at_and_past_the_bound(limited_server):
    at = body_of_size(LIMITS["max_body"])
    assert len(at) == LIMITS["max_body"]
    assert_ok(limited_server.post(at))
    past = body_of_size(LIMITS["max_body"] + 1)
    assert_error(limited_server.post(past), 413, "PAYLOAD_TOO_LARGE")


@pytest.mark.parametrize("stream", ["stdout", "stderr"])
def test_output_at_and_past_the_bound(limited_server, stream):
    write = f"import sys\ndef main():\n    sys.{stream}.write('x' * {{n}})\n    return 1\n"
    body = assert_ok(limited_server.execute(write.format(n=OUT)))
    assert len(body[stream]) == OUT
    err = assert_error(limited_server.execute(write.format(n=OUT + 1)), 422, "OUTPUT_LIMIT",
                       ran=True)
    assert err["truncated"] is True and len(err[stream]) == OUT


def test_result_at_and_past_the_bound(start_server):
    limit = 4096
    srv = start_server("--result-limit", str(limit))
    # json.dumps("xxx") is the string plus two quotes.
    at = srv.execute(f"def main():\n    return 'x' * {limit - 2}\n")
    assert_ok(at)
    past = assert_error(srv.execute(f"def main():\n    return 'x' * {limit - 1}\n"), 422,
                        "OUTPUT_LIMIT", ran=True)
    assert str(limit) in past["error"]


def test_result_nesting_at_and_past_the_bound(server):
    nest = "def main():\n    v = 1\n    for _ in range({n}):\n        v = [v]\n    return v\n"
    assert_ok(server.execute(nest.format(n=64)))
    assert_error(server.execute(nest.format(n=65)), 422, "NOT_JSON_SERIALIZABLE", ran=True)


def test_request_nesting_and_keys(server):
    # The request has three known keys; a fourth is refused, whatever it holds.
    ok = {"script": "def main():\n    return 1\n", "timeout": 1, "memory_mb": 64}
    assert_ok(server.post(ok))
    assert_error(server.post(dict(ok, extra=1)), 400, "INVALID_REQUEST")
    # Deep nesting is refused by the parser (jansson stops at 2048 levels), not a crash.
    deep = b'{"script": "x", "n": ' + b"[" * 5000 + b"]" * 5000 + b"}"
    assert_error(server.post(deep), 400, "INVALID_REQUEST")


def test_header_size_bound(server):
    # A request head (request line and fields) is at most 32 KiB (src/http/parse.h).
    def get_with_header(size):
        with socket.create_connection((server.host, server.port), timeout=30) as s:
            try:
                s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nX-Pad: " + b"a" * size +
                          b"\r\nConnection: close\r\n\r\n")
            except OSError:  # the server closed while we were still sending
                pass
            data = b""
            while True:
                try:
                    chunk = s.recv(65536)
                except ConnectionResetError:  # refused while we were still sending
                    return data
                if not chunk:
                    return data
                data += chunk

    assert get_with_header(8 * 1024).startswith(b"HTTP/1.1 200")
    big = get_with_header(64 * 1024)
    assert not big.startswith(b"HTTP/1.1 200")  # refused (431) or closed, never served
    assert server.get("/health").status == 200
