"""HTTP/1.1 over a bare socket, for the framing and connection tests.

http.client normalizes what these tests must send byte for byte (bare LFs, duplicate
fields, odd request lines), and hides what they must see (how many responses came back
on one connection, and whether the server then closed it). Here a test sends raw bytes
and gets back every response the server wrote, in order, plus whether it closed.

Timeouts here are liveness bounds only: reading stops at end of stream, once the
expected number of responses is in, or after READ_IDLE seconds without a byte.
"""

import json
import socket
from email.utils import parsedate_to_datetime
from typing import Any, NamedTuple, Optional

READ_IDLE = 5.0  # seconds without a byte before a read gives up (a liveness bound)
CONNECT_TIMEOUT = 10.0

BODY = b'{"script": "def main():\\n    return 1\\n"}'  # a valid /execute body; result 1

# Appended behind a malformed request: a complete, valid request that the server must
# never answer, because nothing on a connection after a framing error is a request.
HIDDEN = b"GET /health HTTP/1.1\r\nHost: x\r\nX-Request-Id: hidden-request\r\n\r\n"


class RawResponse(NamedTuple):
    status: int
    headers: list  # (lower-cased name, value) in order
    body: bytes

    def header(self, name) -> Optional[str]:
        """The value of the field `name`; several fields are joined with ", "."""
        values = [v for k, v in self.headers if k == name.lower()]
        return ", ".join(values) if values else None

    @property
    def json(self) -> Any:
        try:
            return json.loads(self.body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            return None

    def closes(self) -> bool:
        """True if the response says `Connection: close`."""
        tokens = (self.header("connection") or "").lower().split(",")
        return "close" in (t.strip() for t in tokens)


class Exchange(NamedTuple):
    responses: list  # every complete RawResponse, in order
    closed: bool  # the server ended the connection (EOF or reset) within the bound
    raw: bytes  # everything received, for failure messages

    def statuses(self):
        return [r.status for r in self.responses]


def connect(host, port, source=None, timeout=CONNECT_TIMEOUT) -> socket.socket:
    """A connected socket; `source` binds the client side to that address first (e.g.
    127.0.0.2, to be another client of a server on loopback)."""
    return socket.create_connection((host, port), timeout=timeout,
                                    source_address=(source, 0) if source else None)


def send(sock, data: bytes):
    """Sends what it can: a server that answers early and closes may cut the sending."""
    try:
        sock.sendall(data)
    except (BrokenPipeError, ConnectionResetError):
        pass


def read(sock, count=None, idle=READ_IDLE) -> Exchange:
    """Reads until end of stream, until `count` responses are complete (if given), or
    until `idle` seconds pass without a byte."""
    raw, closed = b"", False
    sock.settimeout(idle)
    while count is None or len(parse(raw)[0]) < count:
        try:
            chunk = sock.recv(65536)
        except socket.timeout:
            break
        except ConnectionResetError:
            closed = True
            break
        if not chunk:
            closed = True
            break
        raw += chunk
    responses, _ = parse(raw, at_eof=closed)
    return Exchange(responses, closed, raw)


def exchange(host, port, data: bytes, count=None, source=None, idle=READ_IDLE) -> Exchange:
    """Sends `data` on a new connection and reads what comes back (see `read`)."""
    with connect(host, port, source) as sock:
        send(sock, data)
        return read(sock, count, idle)


def parse(raw: bytes, at_eof=False):
    """The complete responses at the start of `raw`, and the bytes left after them.
    A body is delimited by Content-Length; without one it runs to the end of the stream
    (so it is complete only `at_eof`)."""
    responses = []
    while True:
        head_end = raw.find(b"\r\n\r\n")
        if head_end < 0:
            return responses, raw
        lines = raw[:head_end].decode("latin-1").split("\r\n")
        version, _, rest = lines[0].partition(" ")
        if not version.startswith("HTTP/") or not rest[:3].isdigit():
            return responses, raw  # not a response: left in the raw bytes
        headers = [(name.strip().lower(), value.strip())
                   for name, _, value in (line.partition(":") for line in lines[1:])]
        length = next((v for k, v in headers if k == "content-length"), None)
        start = head_end + 4
        if length is not None and not length.isdigit():
            return responses, raw
        if length is None:
            if not at_eof:
                return responses, raw
            end = len(raw)
        else:
            end = start + int(length)
            if end > len(raw):
                return responses, raw
        responses.append(RawResponse(int(rest[:3]), headers, raw[start:end]))
        raw = raw[end:]


def request(method, target, *fields, body=b"", version=b"HTTP/1.1", host=b"x") -> bytes:
    """The bytes of a request: its line, `Host: host` (none if host is None), `fields` as
    raw lines in order, the empty line, `body`. Nothing else is added: framing fields
    (Content-Length, Transfer-Encoding) are the caller's, so that they can be wrong."""
    lines = [b"%s %s %s" % (method, target, version)]
    if host is not None:
        lines.append(b"Host: " + host)
    return b"\r\n".join([*lines, *fields]) + b"\r\n\r\n" + body


def post(*fields, body=BODY, version=b"HTTP/1.1") -> bytes:
    """POST /execute with a JSON Content-Type, then `fields`, then `body` (no framing
    field is added)."""
    return request(b"POST", b"/execute", b"Content-Type: application/json", *fields,
                   body=body, version=version)


def content_length(body: bytes) -> bytes:
    return b"Content-Length: %d" % len(body)


def script_body(source: str) -> bytes:
    """The /execute body that runs `source`."""
    return json.dumps({"script": source}).encode("utf-8")


def chunked(*pieces: bytes, ext=b"", trailer=b"") -> bytes:
    """`pieces` as a chunked body: each chunk's size line carries `ext`; `trailer` (raw
    field lines, each ending in CRLF) goes between the last chunk and the final CRLF."""
    out = b"".join(b"%x%s\r\n%s\r\n" % (len(p), ext, p) for p in pieces)
    return out + b"0\r\n" + trailer + b"\r\n"


def describe(ex: Exchange) -> str:
    return (f"statuses {ex.statuses()}, server closed: {ex.closed}, "
            f"received {ex.raw[:600]!r}{'...' if len(ex.raw) > 600 else ''}")


def assert_standard_headers(resp: RawResponse):
    """Every response carries Date (an HTTP date), Content-Length (its body's length),
    Content-Type and X-Request-Id."""
    for name in ("date", "content-length", "content-type", "x-request-id"):
        assert resp.header(name), f"no {name} field in {resp.headers}"
    assert int(resp.header("content-length")) == len(resp.body), resp
    assert parsedate_to_datetime(resp.header("date")).tzinfo is not None, resp.header("date")
