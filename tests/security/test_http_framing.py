"""Strict HTTP/1.1 framing (RFC 9112): what makes request smuggling impossible.

A request whose framing is in any doubt is answered once, `400 INVALID_REQUEST` (505 for
an unsupported version, 413 for a body over --max-body, 431 for an oversized head) with
`Connection: close`, and the connection is then closed. Each refused case here is sent
with a complete, valid request (`HIDDEN`) right behind it: were any part of the bad
request read differently than the server reads it (the classic CL.TE / TE.CL
desynchronisation), the hidden request would be answered. The tests assert that exactly
one response comes back and that the server then closes, so a second answer cannot hide
behind a slow one.

The other half: valid requests keep working, framed exactly (a request pipelined behind
each of them is answered too), and connections persist as HTTP/1.1 says.

Raw sockets throughout (rawhttp.py): http.client would normalize the very bytes under
test. Against a server at PYEXECD_URL these run too, except those that need a server
with other limits.
"""

import pytest

from .rawhttp import (BODY, HIDDEN, assert_standard_headers, chunked, connect,
                      content_length, describe, exchange, post, read, request, script_body,
                      send)

CHUNKED = chunked(BODY)  # BODY in one chunk
MAX_BODY = 4096  # of the server with a small --max-body
HEAD_LIMIT = 32 * 1024
FIELD_LIMIT = 100


def get(*fields, version=b"HTTP/1.1", host=b"x"):
    return request(b"GET", b"/health", *fields, version=version, host=host)


def line(request_line: bytes) -> bytes:
    """A request with the given request line and a Host field."""
    return request_line + b"\r\nHost: x\r\n\r\n"


def chunked_post(chunks: bytes, te=b"Transfer-Encoding: chunked") -> bytes:
    return post(te, body=chunks)


def assert_refused(ex, status=400, code="INVALID_REQUEST"):
    """One answer, `status` with the JSON error `code` and Connection: close, then the end
    of the connection: nothing behind the refused request was answered."""
    assert ex.statuses() == [status], f"expected one {status}, got {describe(ex)}"
    resp = ex.responses[0]
    body = resp.json
    assert isinstance(body, dict) and body.get("code") == code, (
        f"not a JSON error with code {code}: {describe(ex)}")
    assert isinstance(body.get("error"), str) and body["error"], body
    assert resp.closes(), f"no Connection: close in {resp.headers}"
    assert ex.closed, f"the connection was left open: {describe(ex)}"
    assert_standard_headers(resp)


def refuse(srv, data, status=400, code="INVALID_REQUEST"):
    """Sends `data` with HIDDEN behind it; asserts it is refused, and that the server
    still answers on a new connection."""
    assert_refused(exchange(srv.host, srv.port, data + HIDDEN), status, code)
    assert srv.alive(), "the server no longer answers GET /health"


@pytest.fixture(scope="module")
def small_body_server(start_server):
    return start_server("--preload", "", "--max-body", str(MAX_BODY))


# -- framing errors: 400 and close ---------------------------------------------------

N = len(BODY)
REFUSED = {
    # 1. Content-Length and Transfer-Encoding together, in either order.
    "cl-then-te": post(content_length(CHUNKED), b"Transfer-Encoding: chunked", body=CHUNKED),
    "te-then-cl": post(b"Transfer-Encoding: chunked", b"Content-Length: 3", body=CHUNKED),
    # 2. Content-Length: exactly one field, 1*DIGIT, within 63 bits.
    "two-cl-different": post(content_length(BODY), b"Content-Length: 5"),
    "two-cl-equal": post(content_length(BODY), content_length(BODY)),
    "cl-list": post(b"Content-Length: %d, %d" % (N, N)),
    "cl-plus": post(b"Content-Length: +%d" % N),
    "cl-minus": post(b"Content-Length: -1"),
    "cl-inner-space": post(b"Content-Length: %d %d" % divmod(N, 10)),
    "cl-empty": post(b"Content-Length: "),
    "cl-hex": post(b"Content-Length: 0x%x" % N),
    "cl-2^63": post(b"Content-Length: 9223372036854775808"),
    "cl-huge": post(b"Content-Length: 123456789012345678901234567890"),
    # 3. Transfer-Encoding: exactly "chunked", one field, HTTP/1.1 only.
    "te-gzip-chunked": chunked_post(CHUNKED, b"Transfer-Encoding: gzip, chunked"),
    "te-chunked-chunked": chunked_post(CHUNKED, b"Transfer-Encoding: chunked, chunked"),
    "te-xchunked": chunked_post(CHUNKED, b"Transfer-Encoding: xchunked"),
    "te-chunked-param": chunked_post(CHUNKED, b"Transfer-Encoding: chunked;x"),
    "te-identity": chunked_post(BODY, b"Transfer-Encoding: identity"),
    "te-two-fields": chunked_post(
        CHUNKED, b"Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked"),
    "te-in-http-1.0": post(b"Transfer-Encoding: chunked", body=CHUNKED, version=b"HTTP/1.0"),
    # 4. Field lines.
    "space-before-colon": post(b"Content-Length : %d" % N),
    "tab-before-colon": post(b"Content-Length\t: %d" % N),
    "obs-fold-space": post(b"X-Test: a", b" b", content_length(BODY)),
    "obs-fold-tab": post(b"X-Test: a", b"\tb", content_length(BODY)),
    "bare-lf-throughout": post(content_length(BODY)).replace(b"\r\n", b"\n"),
    "bare-lf-request-line": post(content_length(BODY)).replace(b"\r\n", b"\n", 1),
    "bare-lf-one-field": post(b"X-Test: 1\nX-Other: 2", content_length(BODY)),
    "bare-lf-ends-head": post(content_length(BODY)).replace(b"\r\n\r\n", b"\r\n\n"),
    "cr-without-lf": post(b"X-Test: a\rb", content_length(BODY)),
    "nul-in-value": post(b"X-Test: a\x00b", content_length(BODY)),
    "ctl-in-value": post(b"X-Test: a\x01b", content_length(BODY)),
    "esc-in-value": post(b"X-Test: a\x1bb", content_length(BODY)),
    "del-in-value": post(b"X-Test: a\x7fb", content_length(BODY)),
    "empty-name": post(b": x", content_length(BODY)),
    "space-in-name": post(b"X Test: 1", content_length(BODY)),
    "at-in-name": post(b"X@Test: 1", content_length(BODY)),
    "paren-in-name": post(b"X(Test): 1", content_length(BODY)),
    "no-colon": post(b"X-Test", content_length(BODY)),
    # 5. The request line: METHOD SP origin-form or absolute-form SP HTTP/1.x.
    "double-space": line(b"GET  /health HTTP/1.1"),
    "space-before-version": line(b"GET /health  HTTP/1.1"),
    "tab-separator": line(b"GET\t/health HTTP/1.1"),
    "trailing-space": line(b"GET /health HTTP/1.1 "),
    "leading-space": line(b" GET /health HTTP/1.1"),
    "no-version": line(b"GET /health"),
    "target-without-slash": line(b"GET health HTTP/1.1"),
    "target-asterisk": line(b"GET * HTTP/1.1"),
    "target-authority": line(b"GET x:80 HTTP/1.1"),
    # 6. Host: exactly one in HTTP/1.1.
    "no-host": get(host=None),
    "two-hosts": get(b"Host: y"),
    # 7. Chunked bodies.
    "chunk-size-not-hex": chunked_post(b"zz\r\n" + BODY + b"\r\n0\r\n\r\n"),
    "chunk-size-minus": chunked_post(b"-1\r\n" + BODY + b"\r\n0\r\n\r\n"),
    "chunk-size-plus": chunked_post(b"+%x\r\n" % N + BODY + b"\r\n0\r\n\r\n"),
    "chunk-size-0x": chunked_post(b"0x%x\r\n" % N + BODY + b"\r\n0\r\n\r\n"),
    "chunk-size-leading-space": chunked_post(b" %x\r\n" % N + BODY + b"\r\n0\r\n\r\n"),
    "chunk-size-trailing-space": chunked_post(b"%x \r\n" % N + BODY + b"\r\n0\r\n\r\n"),
    "chunk-size-17-digits": chunked_post(b"1%016x\r\n" % N + BODY + b"\r\n0\r\n\r\n"),
    "chunk-size-2^63": chunked_post(b"8000000000000000\r\n" + BODY + b"\r\n0\r\n\r\n"),
    "chunk-size-bare-lf": chunked_post(b"%x\n" % N + BODY + b"\r\n0\r\n\r\n"),
    "chunk-data-bare-lf": chunked_post(b"%x\r\n" % N + BODY + b"\n0\r\n\r\n"),
    "chunk-data-longer": chunked_post(b"%x\r\n" % (N - 2) + BODY + b"\r\n0\r\n\r\n"),
    "last-chunk-bare-lf": chunked_post(b"%x\r\n" % N + BODY + b"\r\n0\n\r\n"),
    "final-crlf-missing": chunked_post(b"%x\r\n" % N + BODY + b"\r\n0\r\n"),
}


@pytest.mark.parametrize("data", REFUSED.values(), ids=list(REFUSED))
def test_framing_error_is_refused_and_nothing_behind_it_is_answered(server, data):
    """Each framing error of the contract (cases 1-7) is answered 400 INVALID_REQUEST with
    Connection: close, the connection is closed, and the valid request pipelined behind
    it is never answered."""
    refuse(server, data)


@pytest.mark.parametrize("version", [b"HTTP/2.0", b"HTTP/3.0", b"HTTP/0.9"])
def test_unsupported_version_is_505(server, version):
    """A well-formed request line with a major version other than 1: 505 with code
    INVALID_REQUEST, then closed."""
    refuse(server, get(version=version), 505)


def test_a_later_minor_version_is_served_as_1_1(server):
    """RFC 9112 section 2.3: a message of HTTP/1.x with x above 1 is processed as 1.1 (the
    hidden request behind it is then answered too)."""
    served_with_the_one_behind(server, get(version=b"HTTP/1.2"))


# -- sizes: 413 and 431 ------------------------------------------------------------


def test_content_length_over_max_body_is_refused_before_the_body(small_body_server):
    """An announced Content-Length over --max-body is answered 413 PAYLOAD_TOO_LARGE with
    Connection: close as soon as the head is in: no byte of the body is ever sent."""
    srv = small_body_server
    ex = exchange(srv.host, srv.port, post(b"Content-Length: %d" % (MAX_BODY + 1), body=b""))
    assert_refused(ex, 413, "PAYLOAD_TOO_LARGE")
    assert srv.alive()


def test_largest_content_length_is_413_not_400(small_body_server):
    """2^63 - 1 is a valid Content-Length (it fits in 63 bits; 2^63 is a 400 above): it is
    over --max-body, so 413, answered before the body."""
    srv = small_body_server
    ex = exchange(srv.host, srv.port, post(b"Content-Length: 9223372036854775807", body=b""))
    assert_refused(ex, 413, "PAYLOAD_TOO_LARGE")


@pytest.mark.parametrize("chunks", [
    chunked(*[b"x" * 1024] * 5),  # each chunk under the limit, their total over it
    chunked(b"x" * (MAX_BODY + 1)),  # one chunk over it
], ids=["total-over", "one-chunk-over"])
def test_chunked_body_over_max_body_is_refused(small_body_server, chunks):
    """A chunked body whose total passes --max-body: 413 PAYLOAD_TOO_LARGE, Connection:
    close, and the request pipelined behind it is not answered."""
    refuse(small_body_server, chunked_post(chunks), 413, "PAYLOAD_TOO_LARGE")


def padded_get(head_size):
    """GET /health whose head (request line through the empty line, CRLFs included) is
    exactly `head_size` bytes."""
    bare = get(b"X-Pad: ")
    return get(b"X-Pad: " + b"a" * (head_size - len(bare)))


def with_fields(count):
    """GET /health with `count` fields in all (Host included)."""
    return get(*[b"X-Field-%d: %d" % (i, i) for i in range(count - 1)])


@pytest.mark.parametrize("data", [padded_get(HEAD_LIMIT + 1), padded_get(4 * HEAD_LIMIT),
                                  with_fields(FIELD_LIMIT + 1)],
                         ids=["head-32KiB+1", "head-128KiB", f"{FIELD_LIMIT + 1}-fields"])
def test_oversized_head_is_431(server, data):
    """A head over 32 KiB, or with more than 100 fields: 431 with code INVALID_REQUEST,
    then closed."""
    refuse(server, data, 431)


# -- valid requests keep working, framed exactly -------------------------------------


def served_with_the_one_behind(srv, data, status=200):
    """Sends `data` with HIDDEN behind it: both are answered, in order, on one connection
    (the server read exactly the bytes of the first). Returns the first."""
    ex = exchange(srv.host, srv.port, data + HIDDEN, count=2)
    assert ex.statuses() == [status, 200], describe(ex)
    first, hidden = ex.responses
    assert hidden.header("x-request-id") == "hidden-request", hidden.headers
    assert not first.closes(), describe(ex)
    for resp in ex.responses:
        assert_standard_headers(resp)
    return first


SERVED = {
    "chunked-extension-name": chunked_post(chunked(BODY, ext=b";name")),
    "chunked-extension-value": chunked_post(chunked(BODY, ext=b";name=value")),
    "chunked-extensions": chunked_post(chunked(BODY, ext=b";a=1;b;c=2")),
    "chunked-several-chunks": chunked_post(chunked(BODY[:10], BODY[10:11], BODY[11:])),
    "chunk-size-leading-zeros": chunked_post(b"%020x\r\n" % N + BODY + b"\r\n0000\r\n\r\n"),
    "te-upper-case": chunked_post(CHUNKED, b"Transfer-Encoding: CHUNKED"),
    "trailer-ignored": chunked_post(chunked(BODY, trailer=b"Content-Length: 5\r\nX-T: 1\r\n")),
    "cl-leading-zeros": post(b"Content-Length: 000%d" % N),
    "tab-in-value": post(b"X-Test: a\tb", content_length(BODY)),
    "absolute-form": request(b"POST", b"http://x/execute", b"Content-Type: application/json",
                             content_length(BODY), body=BODY),
    "empty-lines-before": b"\r\n\r\n" + post(content_length(BODY)),
}


@pytest.mark.parametrize("data", SERVED.values(), ids=list(SERVED))
def test_valid_request_is_served_and_framed_exactly(server, data):
    """Valid framings the contract allows (chunk extensions, several chunks, leading
    zeros, trailers that are ignored even when they name Content-Length, absolute-form,
    empty lines before the request line) run the script, and the request pipelined
    behind is answered too: the server consumed exactly this request."""
    assert served_with_the_one_behind(server, data).json.get("result") == 1


def test_head_and_fields_at_their_bounds_are_served(server):
    """A head of exactly 32 KiB and a head of exactly 100 fields are not over the limits:
    both are served (the 431 cases above are one past these bounds)."""
    served_with_the_one_behind(server, padded_get(HEAD_LIMIT))
    served_with_the_one_behind(server, with_fields(FIELD_LIMIT))


# -- persistent connections ----------------------------------------------------------


def tagged(data: bytes, tag: str) -> bytes:
    """`data` with an X-Request-Id field `tag` after its request line."""
    first, rest = data.split(b"\r\n", 1)
    return first + b"\r\nX-Request-Id: " + tag.encode() + b"\r\n" + rest


@pytest.mark.parametrize("execute_at", [0, 3], ids=["execute-first", "execute-last"])
def test_pipelined_requests_are_answered_in_order_on_a_kept_connection(server, execute_at):
    """Three GET /health and one POST /execute, pipelined in one write: four responses,
    in the order of the requests (an /execute first holds the three behind it), none
    closing the connection, which then serves a fifth request."""
    requests = [get()] * 3
    requests.insert(execute_at, post(content_length(BODY)))
    tags = [f"pipelined-{i}" for i in range(len(requests))]
    data = b"".join(tagged(r, t) for r, t in zip(requests, tags))
    with connect(server.host, server.port) as s:
        send(s, data)
        ex = read(s, count=4)
        assert [r.header("x-request-id") for r in ex.responses] == tags, describe(ex)
        assert ex.responses[execute_at].json.get("result") == 1, describe(ex)
        assert all(r.status == 200 and not r.closes() for r in ex.responses), describe(ex)
        send(s, HIDDEN)
        again = read(s, count=1)
    assert again.statuses() == [200] and not again.closed, describe(again)


@pytest.mark.parametrize("data", [
    get(b"Connection: close"),
    post(b"Connection: close", content_length(BODY)),
    get(version=b"HTTP/1.0", host=None),
    post(content_length(BODY), version=b"HTTP/1.0"),
], ids=["close-get", "close-execute", "http-1.0-get", "http-1.0-execute"])
def test_request_that_ends_the_connection_is_answered_then_closed(server, data):
    """`Connection: close` from the client, or an HTTP/1.0 request: answered once, then the
    server closes; the request pipelined behind it is not answered."""
    ex = exchange(server.host, server.port, data + HIDDEN)
    assert ex.statuses() == [200] and ex.closed, describe(ex)
    assert_standard_headers(ex.responses[0])


@pytest.mark.parametrize("data", [
    request(b"GET", b"/metrics"),
    request(b"GET", b"/openapi.json"),
    request(b"GET", b"/ready"),
    request(b"GET", b"/nope"),
    request(b"DELETE", b"/execute"),
    request(b"POST", b"/execute", b"Content-Type: text/plain", content_length(BODY), body=BODY),
    post(content_length(b"{}"), body=b"{}"),
    post(content_length(script_body("def main():\n    1 / 0\n")),
         body=script_body("def main():\n    1 / 0\n")),
], ids=["metrics", "openapi", "ready", "404", "405", "415", "400-body", "422"])
def test_every_response_carries_date_length_type_and_request_id(server, data):
    """Date, Content-Length, Content-Type and X-Request-Id on each kind of answer (the
    framing errors and the 200s are checked in the tests above)."""
    ex = exchange(server.host, server.port, data, count=1)
    assert len(ex.responses) == 1, describe(ex)
    assert_standard_headers(ex.responses[0])
