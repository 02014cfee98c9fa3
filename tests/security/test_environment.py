"""The clean environment: nothing of the service's environment (its PYEXECD_*
configuration, a SECRET_TOKEN an operator set) reaches a script, neither in
os.environ, nor in /proc/1/environ, nor anywhere in the script's memory."""

import pytest

from .conftest import SANDBOX_ENV, SECRET, SERVER_URL, assert_still_serving, result_of, script

ENVIRON = script('''
    def main():
        try:
            with open("/proc/1/environ", "rb") as f:
                raw = f.read().decode()
            proc = dict(entry.split("=", 1) for entry in raw.split("\\0") if entry)
        except OSError as e:
            proc = errname(e.errno)
        return {"os.environ": dict(os.environ), "/proc/1/environ": proc}
''')


def test_environment_is_only_the_clean_set(server):
    got = result_of(server.execute(ENVIRON))
    assert got["os.environ"] == SANDBOX_ENV
    # The script is PID 1, but no longer dumpable after its uid switch, so its
    # own environ file belongs to root: unreadable, or else the same clean set.
    assert got["/proc/1/environ"] in ("EACCES", SANDBOX_ENV), got["/proc/1/environ"]
    if not SERVER_URL:  # only a server we started holds the secret
        assert SECRET not in repr(got)
    assert_still_serving(server)


# The needle is built at run time from its hex form, so the only copy of it in
# the script's memory is that one bytes object (its data starts 32 bytes into
# the object on 64-bit CPython); every other match is a leak. Anonymous
# mappings (heap, stack, arenas) and writable data segments are scanned: that is
# where an environment block or a copied configuration would be, and reading
# them cannot fault (unlike a file mapping past its end). The scan reads through
# one buffer mapped before it starts and left out of it, so that it makes no copy
# of what it reads anywhere it looks (a bytes object per chunk did: once malloc
# placed such a copy in a free part of the heap still to be scanned, the needle
# was found twice, as happened in the docker lane).
MEMORY_SCAN = script('''
    import mmap
    import sys
    BYTES_HEADER = sys.getsizeof(b"") - 1
    CHUNK = 4 << 20

    def regions(skip):
        out = []
        for line in open("/proc/self/maps"):
            fields = line.split()
            name = fields[5] if len(fields) > 5 else ""
            anonymous = name in ("", "[heap]", "[stack]") or name.startswith("[anon")
            start, end = (int(x, 16) for x in fields[0].split("-"))
            if start <= skip < end:
                continue
            if fields[1][0] == "r" and (anonymous or fields[1][:2] == "rw"):
                out.append((start, end))
        return out

    def main():
        planted = bytearray.fromhex(NEEDLE_HEX) if PLANT else None
        needle = bytes.fromhex(NEEDLE_HEX)
        own = id(needle) + BYTES_HEADER
        buf = mmap.mmap(-1, CHUNK + len(needle))
        base = ctypes.addressof(ctypes.c_char.from_buffer(buf))
        found_self, others, scanned = False, set(), 0
        for start, end in regions(base):
            for at in range(start, end, CHUNK):
                n = min(CHUNK + len(needle), end - at)
                ctypes.memmove(base, at, n)
                pos = buf.find(needle, 0, n)
                while pos >= 0:
                    if at + pos == own:
                        found_self = True
                    else:
                        others.add(hex(at + pos))
                    pos = buf.find(needle, pos + 1, n)
                scanned += min(CHUNK, end - at)
        return {"found_self": found_self, "others": sorted(others), "scanned": scanned}
''')


def memory_scan(plant):
    return (MEMORY_SCAN.replace("NEEDLE_HEX", repr(SECRET.encode().hex()))
            .replace("PLANT", repr(plant)))


@pytest.mark.needs_process("the secret is in the environment of a server started here")
def test_environment_secret_not_in_script_memory(server):
    got = result_of(server.execute(memory_scan(plant=False)))
    assert got["found_self"], got  # the scan covered the needle's own memory
    assert got["others"] == [], f"{SECRET!r} found in the sandbox's memory at {got['others']}"
    assert_still_serving(server)


def test_environment_memory_scan_finds_a_planted_copy(server):
    """The scan's control: one other copy of the value in memory is found."""
    got = result_of(server.execute(memory_scan(plant=True)))
    assert got["found_self"] and len(got["others"]) == 1, got
