"""Memory, descriptors and file size: the per-slot cgroup and the rlimits, each
shown to hold alone (the other switched off) and both shown to be needed."""

import pytest

from .conftest import assert_error, assert_still_serving, exec_script, result_of, script

MEMORY_LIMIT_MESSAGE = "Memory limit exceeded"


def assert_memory_limit(body):
    assert_error(body, "MEMORY_LIMIT")
    assert body["error"] == MEMORY_LIMIT_MESSAGE, body


def test_memory_bomb_is_memory_limit(server):
    body = script('''
        def main():
            return len(list(range(100000000)))
    ''')
    assert_memory_limit(server.execute(body))
    assert_still_serving(server)


# A slow bomb: 1 MiB at a time (each one touched), capped at 400 MiB, so that it
# only fails where a layer stops it (--memory-mb 64).
GROWTH_BOMB = script('''
    def main():
        chunks = []
        for _ in range(400):
            chunks.append(b"\\x01" * (1 << 20))
        return len(chunks)
''')
SMALL_MEMORY = ("--memory-mb", "64")


@pytest.mark.parametrize("disable", [None, "rlimits", "cgroups"],
                         ids=["all-layers", "cgroup-only", "rlimit-only"])
def test_growth_bomb_is_memory_limit(disable):
    """With rlimits off only the cgroup (its OOM kill, detected) can stop it;
    with cgroups off only RLIMIT_AS can."""
    assert_memory_limit(exec_script(GROWTH_BOMB, *SMALL_MEMORY, disable=disable))


def test_growth_bomb_completes_without_layers():
    assert result_of(exec_script(GROWTH_BOMB, *SMALL_MEMORY, disable="rlimits,cgroups")) == 400


# RLIMIT_AS is per process: four children of 100 MiB each stay under it, and only
# the slot's cgroup bounds their sum.
PROCESS_MEMORY_BOMB = script('''
    import time

    def main():
        children = []
        for _ in range(4):
            pid = os.fork()
            if pid == 0:
                block = b"\\x01" * (100 << 20)
                time.sleep(2)
                os._exit(0)
            children.append(pid)
        return [os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) for pid in children]
''')


def test_cgroups_memory_of_all_processes_is_bounded():
    body = exec_script(PROCESS_MEMORY_BOMB, "--memory-mb", "200")
    if body.get("code") == "MEMORY_LIMIT":  # cgroup v2: memory.oom.group kills all
        assert_memory_limit(body)
    else:  # cgroup v1: the OOM killer picks children; the script sees them die
        statuses = result_of(body)
        assert -9 in statuses, statuses


def test_cgroups_memory_of_all_processes_unbounded_without_layer():
    assert result_of(exec_script(PROCESS_MEMORY_BOMB, "--memory-mb", "200",
                                 disable="cgroups")) == [0, 0, 0, 0]


def test_memory_limit_then_service_still_serves(server):
    body = script('''
        def main():
            data = bytearray()
            while True:
                data += b"x" * (16 << 20)
    ''')
    assert_memory_limit(server.execute(body))
    assert_still_serving(server)


# -- rlimits --------------------------------------------------------------------------

LIMITS = script('''
    import resource

    def main():
        return {name: list(resource.getrlimit(getattr(resource, name)))
                for name in ("RLIMIT_CORE", "RLIMIT_NOFILE", "RLIMIT_NPROC", "RLIMIT_FSIZE",
                             "RLIMIT_MEMLOCK")}
''')


def test_rlimits_are_set(server):
    got = result_of(server.execute(LIMITS))
    assert got == {"RLIMIT_CORE": [0, 0], "RLIMIT_NOFILE": [256, 256],
                   "RLIMIT_NPROC": [128, 128], "RLIMIT_FSIZE": [64 << 20, 64 << 20],
                   "RLIMIT_MEMLOCK": [0, 0]}


def test_rlimits_not_set_without_layer():
    got = result_of(exec_script(LIMITS, disable="rlimits"))
    assert got["RLIMIT_NOFILE"] != [256, 256] and got["RLIMIT_FSIZE"] != [64 << 20, 64 << 20]


FD_BOMB = script('''
    def main():
        fds = []
        try:
            while len(fds) < 1000:
                fds.append(os.open("/dev/null", os.O_RDONLY))
        except OSError as e:
            return [errname(e.errno), len(fds)]
        return ["no error", len(fds)]
''')


def test_rlimits_descriptor_bomb_is_emfile(server):
    result, opened = result_of(server.execute(FD_BOMB))
    assert result == "EMFILE"
    assert opened < 256
    assert_still_serving(server)


def test_rlimits_descriptor_bomb_fails_without_layer():
    assert result_of(exec_script(FD_BOMB, disable="rlimits")) == ["no error", 1000]


BIG_FILE = script('''
    def main():
        written = 0
        try:
            with open("/tmp/big", "wb") as f:
                while written < 80:
                    f.write(b"x" * (1 << 20))
                    f.flush()
                    written += 1
        except OSError as e:
            return [errname(e.errno), written]
        return ["no error", written]
''')


def test_rlimits_file_size_is_efbig():
    """RLIMIT_FSIZE (64 MiB) behind a /tmp big enough not to fill first."""
    assert result_of(exec_script(BIG_FILE, "--tmp-size", "128M")) == ["EFBIG", 64]


def test_rlimits_file_size_fails_without_layer():
    assert result_of(exec_script(BIG_FILE, "--tmp-size", "128M",
                                 disable="rlimits")) == ["no error", 80]
