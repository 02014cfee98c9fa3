"""Connection exhaustion (finding 4 of the attack review): one client cannot starve others.

The contract: --max-connections (1024) bounds all open connections, and
--max-connections-per-client (128) those of one peer address. A new connection from a
client at its limit closes that client's oldest connection that has not sent a complete
request yet (still sending its head or body, or idle between requests); at the global
limit, the oldest such connection overall. A connection whose script is running, or whose
response is being written, is never closed for this. --header-timeout (10 s) bounds the
time from a connection's acceptance (or its first byte) until its request head is
complete, so a slowloris that sends one byte a second, which never looks idle, is closed
all the same; --connection-timeout (30 s) stays the idle limit of keep-alive connections
and of bodies being sent.

So /health, /ready and /metrics always answer, even when thousands of half-sent requests
come from the same address and /execute is saturated.

Each test starts its own server (so no flood outlives its test), on loopback only; other
clients are other loopback addresses (127.0.0.2, ...), bound before connecting. Times are
liveness bounds (LIVENESS, CLOSE_BOUND), never performance asserts; the latencies measured
under a flood are printed (pytest -s shows them).
"""

import resource
import threading
import time

import pytest

from .conftest import Server, skip_in_url_mode
from .rawhttp import (BODY, connect, content_length, describe, exchange, post, read,
                      request, script_body, send)

LIVENESS = 5.0  # seconds a probe may take under attack before it counts as unanswered
CLOSE_BOUND = 15.0  # seconds within which a slowloris must be closed at --header-timeout 2s
FLOOD = 3000  # half-sent connections from one address
OPEN_BOUND = 60.0  # seconds to open a flood (each connect bounded by CONNECT_EACH)
CONNECT_EACH = 2.0

PARTIAL_HEAD = b"GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: "  # and never the rest
REST_OF_HEAD = b"1\r\n\r\n"  # completes PARTIAL_HEAD: a valid GET /health

SMALL_LIMITS = ("--max-connections-per-client", "8", "--max-connections", "64")
SLEEPING = script_body("import time\ndef main():\n    time.sleep(3)\n    return 'slept'\n")

PROBES = {
    "GET /health": request(b"GET", b"/health", b"Connection: close"),
    "GET /ready": request(b"GET", b"/ready", b"Connection: close"),
    "GET /metrics": request(b"GET", b"/metrics", b"Connection: close"),
    "POST /execute": post(b"Connection: close", content_length(BODY)),
}


@pytest.fixture(autouse=True, scope="module")
def _enough_descriptors():
    """A flood needs thousands of sockets here, and the servers started below inherit the
    limit: raise the soft RLIMIT_NOFILE to the hard one."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    yield
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


@pytest.fixture
def fresh_server():
    """Factory: a new pyexecd (no preloads) with `flags`, stopped at the end of the test,
    so that no connection of one test is still counted in the next."""
    skip_in_url_mode("starts servers with flags of its own")
    started = []

    def start(*flags):
        srv = Server(("--preload", "", *flags))
        started.append(srv)
        return srv.start()

    yield start
    for srv in started:
        srv.stop()


@pytest.fixture
def sockets():
    """Every client socket a test opens goes here; all are closed at its end."""
    held = []
    yield held
    for s in held:
        s.close()


def open_half_sent(srv, count, held, source=None, first=PARTIAL_HEAD):
    """`count` connections from `source` (default 127.0.0.1), each having sent `first`, a
    head that never ends; added to `held` and returned. A connect that fails or times out
    (a server that no longer accepts) is skipped; the caller checks how many opened."""
    opened = []
    deadline = time.monotonic() + OPEN_BOUND
    for _ in range(count):
        if time.monotonic() > deadline:
            break
        try:
            s = connect(srv.host, srv.port, source, timeout=CONNECT_EACH)
        except OSError:
            continue
        held.append(s)
        send(s, first)
        opened.append(s)
    return opened


def closed_by_server(sock) -> bool:
    """True once the server has ended the connection (end of stream or reset), whatever it
    sent before; never blocks."""
    timeout = sock.gettimeout()
    sock.setblocking(False)
    try:
        while True:
            if not sock.recv(65536):
                return True
    except BlockingIOError:
        return False
    except ConnectionResetError:
        return True
    finally:
        sock.settimeout(timeout)


def wait_closed(sock, bound=LIVENESS) -> bool:
    """True if the server ends the connection within `bound` seconds."""
    return read(sock, idle=bound).closed


def probe(srv, name, source=None):
    """Sends PROBES[name] on a new connection; returns (response or None, seconds)."""
    start = time.monotonic()
    ex = exchange(srv.host, srv.port, PROBES[name], count=1, source=source, idle=LIVENESS)
    elapsed = time.monotonic() - start
    return (ex.responses[0] if ex.responses else None), elapsed


def assert_probes_answered(srv, what, source=None):
    """Each probe is answered 200 within LIVENESS; prints how long each took."""
    for name in PROBES:
        resp, elapsed = probe(srv, name, source)
        print(f"{what}: {name} answered in {elapsed * 1000:.1f} ms" if resp else
              f"{what}: {name} NOT answered within {elapsed:.1f} s")
        assert resp is not None, f"{name} unanswered for {elapsed:.1f} s {what}"
        assert resp.status == 200, (name, resp)
        if name == "POST /execute":
            assert resp.json.get("result") == 1, resp


def drip_until_closed(socks, bound):
    """Sends one byte a second on each of `socks` until the server has closed them all or
    `bound` seconds have passed. Returns the sockets still open and the seconds it took."""
    start = time.monotonic()
    live = list(socks)
    while live and time.monotonic() - start < bound:
        for s in live:
            try:
                s.send(b"a")
            except OSError:
                pass
        time.sleep(1)
        live = [s for s in live if not closed_by_server(s)]
    return live, time.monotonic() - start


def is_served(sock):
    """Completes a PARTIAL_HEAD sent on `sock`: True if it is then answered 200."""
    send(sock, REST_OF_HEAD)
    ex = read(sock, count=1, idle=LIVENESS)
    return ex.statuses() == [200]


def wait_until_running(srv, bound=30):
    """Waits (bounded) until a sandbox serves a request, by /metrics."""
    deadline = time.monotonic() + bound
    while time.monotonic() < deadline:
        metrics = srv.request("GET", "/metrics").raw.decode()
        if any(line.startswith("pyexecd_sandboxes_in_use ") and float(line.split()[1]) >= 1
               for line in metrics.splitlines()):
            return
        time.sleep(0.05)
    pytest.fail("no request started running")


# -- floods from one address ---------------------------------------------------------


def test_probes_are_answered_under_a_flood_of_half_sent_requests(fresh_server, sockets):
    """3000 connections from 127.0.0.1 that each sent part of a head and then nothing, all
    held open (default limits: 1024 in all, 128 per client): GET /health, /ready, /metrics
    and a POST /execute from the same address are each answered within LIVENESS."""
    srv = fresh_server()
    flood = open_half_sent(srv, FLOOD, sockets)
    print(f"flood: {len(flood)} of {FLOOD} half-sent connections opened")
    assert len(flood) > 1024, "the flood did not even pass --max-connections"
    assert_probes_answered(srv, f"under {len(flood)} half-sent connections")
    evicted = sum(closed_by_server(s) for s in flood)
    print(f"flood: {evicted} of them closed by the server")


def test_slowloris_is_closed_by_the_header_timeout(fresh_server, sockets):
    """The same flood, but each connection sends one more byte of its head every second,
    so none ever looks idle: with --header-timeout 2s every one is closed within
    CLOSE_BOUND, and the probes are answered meanwhile."""
    srv = fresh_server("--header-timeout", "2s")
    flood = open_half_sent(srv, FLOOD, sockets)
    assert len(flood) > 1024, "the flood did not even pass --max-connections"
    assert_probes_answered(srv, f"under a slowloris of {len(flood)}")
    live, elapsed = drip_until_closed(flood, CLOSE_BOUND)
    print(f"slowloris: {len(flood) - len(live)} of {len(flood)} closed after {elapsed:.1f} s")
    assert len(live) == 0, f"slowloris connections still open after {elapsed:.1f} s"


def test_default_header_timeout_closes_a_slowloris(fresh_server, sockets):
    """Without flags the header timeout is 10 s: 20 connections dripping one byte a second
    (under every connection limit, so none is evicted) are all closed within 25 s."""
    srv = fresh_server()
    flood = open_half_sent(srv, 20, sockets)
    live, elapsed = drip_until_closed(flood, 25)
    print(f"default header timeout: {len(flood) - len(live)} closed after {elapsed:.1f} s")
    assert len(live) == 0, f"slowloris connections still open after {elapsed:.1f} s"


def test_silent_connection_is_closed_by_the_header_timeout(fresh_server, sockets):
    """A connection that sends nothing at all is closed --header-timeout after it was
    accepted (2 s here), not only at the 30 s idle timeout."""
    srv = fresh_server("--header-timeout", "2s")
    sock = connect(srv.host, srv.port)
    sockets.append(sock)
    assert wait_closed(sock, CLOSE_BOUND), f"still open after {CLOSE_BOUND} s"


def test_header_timeout_bounds_only_the_head(fresh_server, sockets):
    """--header-timeout is about the head: with 2s, a body sent slowly over ~4 s (the
    head complete at once) is still run, and a keep-alive connection idle 4 s after a
    response still serves its next request (both are --connection-timeout's, 30 s)."""
    srv = fresh_server("--header-timeout", "2s")
    sock = connect(srv.host, srv.port)
    sockets.append(sock)
    step = len(BODY) // 8 + 1
    send(sock, post(content_length(BODY), body=b""))  # the head, complete at once
    for i in range(0, len(BODY), step):  # the body, over ~4 s
        time.sleep(0.5)
        send(sock, BODY[i:i + step])
    ex = read(sock, count=1, idle=LIVENESS)
    assert ex.statuses() == [200] and ex.responses[0].json.get("result") == 1, describe(ex)
    time.sleep(4)  # idle between requests, past the header timeout
    send(sock, request(b"GET", b"/health"))
    again = read(sock, count=1, idle=LIVENESS)
    assert again.statuses() == [200], describe(again)


# -- who is closed to make room ------------------------------------------------------


def open_in_order(srv, count, held, source=None):
    """`count` half-sent connections from `source`; the first is made clearly the oldest
    (the server has had it alone for a moment). Returns them, oldest first."""
    first = open_half_sent(srv, 1, held, source)
    time.sleep(0.5)
    return first + open_half_sent(srv, count - 1, held, source)


def test_oldest_half_sent_connection_of_a_client_is_closed_for_its_new_one(
        fresh_server, sockets):
    """With --max-connections-per-client 8, 8 half-sent connections from 127.0.0.1 and a
    9th: the 9th is served, the oldest of the 8 is closed, and the 7 others are kept (one
    of them, completed, is then served)."""
    srv = fresh_server(*SMALL_LIMITS)
    held = open_in_order(srv, 8, sockets)
    assert len(held) == 8
    resp, elapsed = probe(srv, "GET /health")
    assert resp is not None and resp.status == 200, f"the 9th unanswered ({elapsed:.1f} s)"
    assert wait_closed(held[0]), "the oldest half-sent connection was not closed"
    assert not any(closed_by_server(s) for s in held[1:]), "a newer connection was closed"
    assert is_served(held[1])


def test_a_flood_from_one_client_leaves_other_clients_alone(fresh_server, sockets):
    """127.0.0.2 holds 8 half-sent connections (its per-client limit); 127.0.0.1 then
    opens 200. None of 127.0.0.2's is closed (each, completed, is served), and a new
    client, 127.0.0.3, is served at once."""
    srv = fresh_server(*SMALL_LIMITS)
    neighbour = open_half_sent(srv, 8, sockets, source="127.0.0.2")
    assert len(neighbour) == 8
    open_half_sent(srv, 200, sockets)
    resp, elapsed = probe(srv, "GET /health", source="127.0.0.3")
    assert resp is not None and resp.status == 200, f"127.0.0.3 unanswered ({elapsed:.1f} s)"
    assert not any(closed_by_server(s) for s in neighbour), "127.0.0.2 lost a connection"
    assert all(is_served(s) for s in neighbour)


def test_oldest_half_sent_connection_overall_is_closed_at_the_global_limit(
        fresh_server, sockets):
    """With --max-connections 64, 8 clients (127.0.0.1 .. 127.0.0.8) at their limit of 8
    fill it; a 9th client is served, the oldest connection overall (127.0.0.1's first) is
    closed, and the newest (127.0.0.8's last) is kept."""
    srv = fresh_server(*SMALL_LIMITS)
    held = open_in_order(srv, 8, sockets, source="127.0.0.1")
    for n in range(2, 9):
        held += open_half_sent(srv, 8, sockets, source=f"127.0.0.{n}")
    assert len(held) == 64
    resp, elapsed = probe(srv, "GET /health", source="127.0.0.9")
    assert resp is not None and resp.status == 200, f"127.0.0.9 unanswered ({elapsed:.1f} s)"
    assert wait_closed(held[0]), "the oldest connection overall was not closed"
    assert not closed_by_server(held[-1]), "the newest connection was closed"
    assert is_served(held[-1])


def test_running_execute_is_never_closed_for_a_flood(fresh_server, sockets):
    """A POST /execute whose script sleeps 3 s is running when 127.0.0.1 (its own address)
    opens 300 connections and nine other clients 20 each, against limits of 8 per client
    and 64 in all (so both limits evict): it is not closed to make room, and gets its
    200."""
    srv = fresh_server(*SMALL_LIMITS, "--concurrency", "1", "--pool-size", "1")
    running = connect(srv.host, srv.port)
    sockets.append(running)
    send(running, post(content_length(SLEEPING), body=SLEEPING))
    wait_until_running(srv)
    open_half_sent(srv, 300, sockets)
    for n in range(2, 11):
        open_half_sent(srv, 20, sockets, source=f"127.0.0.{n}")
    ex = read(running, count=1, idle=30)
    assert ex.statuses() == [200], describe(ex)
    assert ex.responses[0].json.get("result") == "slept", describe(ex)


# -- a saturated executor --------------------------------------------------------------


def test_probes_are_answered_while_execute_is_saturated(fresh_server):
    """With one sandbox and a queue of one, four scripts sleeping 3 s: one runs, one waits
    and the others are refused (503), and meanwhile GET /health, /ready and /metrics are
    answered within LIVENESS: they never wait for a sandbox."""
    srv = fresh_server("--concurrency", "1", "--queue-size", "1", "--pool-size", "1")
    sleeper = post(b"Connection: close", content_length(SLEEPING), body=SLEEPING)
    statuses = []

    def run():
        statuses.extend(exchange(srv.host, srv.port, sleeper, count=1, idle=30).statuses())

    threads = [threading.Thread(target=run) for _ in range(4)]
    for t in threads:
        t.start()
    wait_until_running(srv)
    for name in ("GET /health", "GET /ready", "GET /metrics"):
        resp, elapsed = probe(srv, name)
        print(f"/execute saturated: {name} answered in {elapsed * 1000:.1f} ms")
        assert resp is not None and resp.status == 200, (name, resp, elapsed)
    for t in threads:
        t.join(60)
    assert len(statuses) == 4 and set(statuses) == {200, 503}, statuses  # it was saturated
