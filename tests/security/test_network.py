"""Network: the filter refuses every socket family but AF_UNIX, and each slot's
network namespace (only a down `lo`) leaves nothing to reach, not the service's
own port and not another sandbox's abstract unix sockets."""

import socket

import pytest

from .conftest import (assert_overlap, assert_still_serving, exec_script, require,
                       result_of, run_concurrently, script, unique)


def ipv6_loopback():
    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


CONNECT = script('''
    import socket

    def connect(family, address):
        try:
            s = socket.socket(family, socket.SOCK_STREAM)
        except OSError as e:
            return "socket " + errname(e.errno)
        try:
            s.settimeout(10)
            s.connect(address)
            s.close()
            return "connected"
        except OSError as e:
            return "connect " + errname(e.errno)

    def main():
        return {"127.0.0.1": connect(socket.AF_INET, ("127.0.0.1", PORT4)),
                "::1": connect(socket.AF_INET6, ("::1", PORT6, 0, 0))}
''')


def connect_script(port4, port6):
    return CONNECT.replace("PORT4", str(port4)).replace("PORT6", str(port6))


def test_seccomp_connect_to_own_port_is_socket_eperm(server):
    got = result_of(server.execute(connect_script(server.port, server.port)))
    assert got == {"127.0.0.1": "socket EPERM", "::1": "socket EPERM"}
    assert_still_serving(server)


@pytest.mark.parametrize("disable,expected", [
    (None, {"127.0.0.1": "socket EPERM", "::1": "socket EPERM"}),
    # The filter off: the socket exists, but the namespace's lo is down.
    ("seccomp", {"127.0.0.1": "connect ENETUNREACH", "::1": "connect EADDRNOTAVAIL"}),
    # Also the network namespace off: the host's loopback, the service's port.
    ("seccomp,netns", {"127.0.0.1": "connected", "::1": "connected"}),
], ids=["all-layers", "seccomp-off", "seccomp-netns-off"])
def test_seccomp_netns_own_port_fails_without_layer(layer_off_server, start_server,
                                                    disable, expected):
    """Two servers of the same configuration, on 127.0.0.1 and on ::1: each
    probe connects to the port of the server that runs it."""
    require(ipv6_loopback(), "no IPv6 loopback on this host")
    if disable is None:
        v4, v6 = (start_server("--preload", "", listen=addr) for addr in ("127.0.0.1", "::1"))
    else:
        v4, v6 = (layer_off_server(disable, listen=addr) for addr in ("127.0.0.1", "::1"))
    for srv in (v4, v6):
        assert result_of(srv.execute(connect_script(v4.port, v6.port))) == expected
        assert_still_serving(srv)


OTHER_FAMILIES = script('''
    import socket

    def main():
        out = {}
        for name in ("AF_INET", "AF_INET6", "AF_NETLINK", "AF_PACKET", "AF_VSOCK",
                     "AF_ALG"):
            family = getattr(socket, name)
            kind = socket.SOCK_DGRAM if name != "AF_ALG" else socket.SOCK_SEQPACKET
            out[name] = outcome(socket.socket, family, kind)
        out["AF_UNIX"] = outcome(socket.socket, socket.AF_UNIX, socket.SOCK_STREAM)
        out["socketpair AF_UNIX"] = outcome(socket.socketpair)
        return out
''')


def test_seccomp_only_unix_sockets(server):
    got = result_of(server.execute(OTHER_FAMILIES))
    assert got == {"AF_INET": "EPERM", "AF_INET6": "EPERM", "AF_NETLINK": "EPERM",
                   "AF_PACKET": "EPERM", "AF_VSOCK": "EPERM", "AF_ALG": "EPERM",
                   "AF_UNIX": "ok", "socketpair AF_UNIX": "ok"}
    assert_still_serving(server)


def test_seccomp_only_unix_sockets_fails_without_layer():
    got = result_of(exec_script(OTHER_FAMILIES, disable="seccomp"))
    # Unprivileged and in an empty namespace, but no longer refused by the
    # filter: inet and netlink sockets are created.
    assert got["AF_INET"] == "ok" and got["AF_INET6"] == "ok" and got["AF_NETLINK"] == "ok", got


INTERFACES = script('''
    import fcntl, socket, struct
    SIOCGIFFLAGS, IFF_UP = 0x8913, 0x1

    def main():
        out = {}
        with open("/proc/net/dev") as f:
            names = [line.split(":")[0].strip() for line in f if ":" in line]
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
            for name in names:
                req = struct.pack("16sH14x", name.encode(), 0)
                try:
                    flags = struct.unpack("16sH14x", fcntl.ioctl(s, SIOCGIFFLAGS, req))[1]
                except OSError as e:
                    out[name] = errname(e.errno)
                    continue
                out[name] = "up" if flags & IFF_UP else "down"
        return out
''')


def test_netns_only_a_loopback(server):
    """With every layer: only lo (/proc/net/dev), and the interface ioctl is refused by
    the seccomp allow-list (ENOSYS); the state of lo is read with the filter off, below."""
    assert result_of(server.execute(INTERFACES)) == {"lo": "ENOSYS"}


def test_netns_only_a_down_loopback():
    assert result_of(exec_script(INTERFACES, disable="seccomp")) == {"lo": "down"}


def test_netns_host_interfaces_visible_without_layer():
    # The host's interfaces, and its loopback up (a host with lo alone, such as a qemu
    # guest without a network device, still tells the layer's down lo from its own).
    host = [name for _, name in socket.if_nameindex()]
    got = result_of(exec_script(INTERFACES, disable="netns,seccomp"))
    assert sorted(got) == sorted(host)
    assert got["lo"] == "up"


# -- abstract unix sockets across concurrent sandboxes -----------------------------------

HOLDER = script('''
    import socket, time

    def main():
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.bind(b"\\0" + NAME)
        s.listen(5)
        s.settimeout(4)
        held_from = time.monotonic()
        try:
            conn, _ = s.accept()
            got = conn.recv(100).decode()
        except socket.timeout:
            got = None
        return {"held_from": held_from, "held_until": time.monotonic(), "received": got}
''')

PROBER = script('''
    import socket, time

    def main():
        deadline = time.monotonic() + 2
        while True:
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            last_try = time.monotonic()
            try:
                s.connect(b"\\0" + NAME)
                s.sendall(b"hello from another sandbox")
                return {"outcome": "connected", "last_try": last_try}
            except OSError as e:
                result = errname(e.errno)
            finally:
                s.close()
            if time.monotonic() > deadline:
                return {"outcome": result, "last_try": last_try}
            time.sleep(0.05)
''')


def abstract_pair():
    name = repr(unique("pyexecd-test").encode())
    return HOLDER.replace("NAME", name), PROBER.replace("NAME", name)


def test_netns_abstract_unix_socket_not_shared_between_sandboxes(server):
    holder, prober = abstract_pair()
    held, probed = run_concurrently(server, holder, prober)
    held, probed = result_of(held), result_of(probed)
    assert probed["outcome"] == "ECONNREFUSED", probed
    assert held["received"] is None, held
    assert_overlap(held, probed)
    assert_still_serving(server)


def test_netns_abstract_unix_socket_shared_without_layer(layer_off_server):
    srv = layer_off_server("netns")
    holder, prober = abstract_pair()
    held, probed = run_concurrently(srv, holder, prober)
    held, probed = result_of(held), result_of(probed)
    assert probed["outcome"] == "connected", probed
    assert held["received"] == "hello from another sandbox", held


# -- the host's abstract unix sockets (a desktop's X11, a container runtime's...) -------

HOST_SOCKET_PROBE = script('''
    import socket

    def main():
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        return outcome(s.connect, b"\\0" + NAME)
''')


@pytest.fixture
def host_abstract_socket():
    name = unique("pyexecd-host").encode()
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.bind(b"\0" + name)
        s.listen(5)
        yield HOST_SOCKET_PROBE.replace("NAME", repr(name))


@pytest.mark.needs_process("the socket is bound in this host's network namespace")
def test_netns_host_abstract_socket_unreachable(server, host_abstract_socket):
    assert result_of(server.execute(host_abstract_socket)) == "ECONNREFUSED"
    assert_still_serving(server)


def test_netns_host_abstract_socket_reachable_without_layer(host_abstract_socket):
    assert result_of(exec_script(host_abstract_socket, disable="netns")) == "ok"
