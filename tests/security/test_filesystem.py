"""Mount namespace: what of the host a script can read, where it can write,
and how much."""

import os
import sys
from pathlib import Path

import pytest

from .conftest import (BINARY, SERVER_URL, assert_still_serving, exec_script, require, result_of,
                       script, unique)

BINARY_DIR = str(Path(BINARY).resolve().parent)

# Host paths that must not exist in the sandbox's view, this host's pyexecd among them
# (a server at PYEXECD_URL runs a copy of its own, elsewhere).
HOST_PATHS = ["/etc/shadow", "/etc/gshadow", "/root", "/home", "/srv", "/var", "/opt", "/mnt",
              "/sys", "/boot", "/run"]
OWN_BINARY = [BINARY_DIR, str(Path(BINARY).resolve())]
ABSENT = HOST_PATHS + OWN_BINARY

STAT_ALL = script('''
    def main():
        return {p: outcome(os.stat, p) for p in PATHS}
''')


def stat_script(paths):
    return STAT_ALL.replace("PATHS", repr(list(paths)))


@pytest.fixture(scope="module")
def absent_probe(server):
    return result_of(server.execute(stat_script(ABSENT)))


@pytest.mark.parametrize("path", HOST_PATHS + [
    pytest.param(path, marks=pytest.mark.needs_process("the path of this host's pyexecd"))
    for path in OWN_BINARY])
def test_mountns_host_path_absent(server, absent_probe, path):
    assert absent_probe[path] == "ENOENT"
    assert_still_serving(server)


def searchable_by_all(path):
    """Whether any uid may stat PATH: every directory above it is searchable by others
    (a checkout under a 0700 /root is not, to the sandbox's uid)."""
    parent = Path(path).resolve().parent
    return all(os.stat(d).st_mode & 0o001 for d in [parent, *parent.parents])


def test_mountns_host_paths_present_without_layer():
    """The same probe with the mount namespace off sees the host's files."""
    present = [p for p in ABSENT if os.path.exists(p) and searchable_by_all(p)]
    require(present, "none of the probed paths exists on this host")
    got = result_of(exec_script(stat_script(present), disable="mountns"))
    assert got == {p: "ok" for p in present}


def test_mountns_shadow_unreadable(server):
    body = script('''
        def main():
            try:
                with open("/etc/shadow") as f:
                    return f.read()
            except OSError as e:
                return errname(e.errno)
    ''')
    assert result_of(server.execute(body)) == "ENOENT"
    assert_still_serving(server)


def test_mountns_root_is_only_the_documented_entries(server):
    body = script('''
        def main():
            return sorted(os.listdir("/"))
    ''')
    entries = set(result_of(server.execute(body)))
    allowed = {"bin", "dev", "etc", "lib", "lib32", "lib64", "libx32", "proc", "sbin", "tmp",
               "usr"}
    assert entries <= allowed, entries - allowed
    assert {"dev", "etc", "proc", "tmp", "usr"} <= entries


STDLIB_LINKS = script('''
    import sysconfig
    from pathlib import Path

    def main():
        stdlib = Path(sysconfig.get_paths()["stdlib"])
        links = [p for p in stdlib.iterdir()
                 if p.is_symlink() and os.readlink(p).startswith("/etc/")]
        return {str(p): "ok" if p.exists() else "ENOENT" for p in links}
''')


def test_mountns_stdlib_links_into_etc_resolve(server):
    """Debian links files of the stdlib into /etc/python3.X (sitecustomize.py): the
    sandbox's generated /etc has that directory for the interpreter it embeds, whatever its
    version, so a script's own `python3` sees the same stdlib as the zygote. The sandbox
    lists the links of its own stdlib (a remote server's Python may not be this one's);
    with a server of our own, they are the host's."""
    got = result_of(server.execute(STDLIB_LINKS))
    if not SERVER_URL:
        stdlib = Path(f"/usr/lib/python3.{sys.version_info[1]}")
        host = [str(p) for p in stdlib.iterdir()
                if p.is_symlink() and os.readlink(p).startswith("/etc/") and p.exists()]
        require(host, f"no symlink from {stdlib} into /etc on this host")
        assert sorted(got) == sorted(host)
    require(got, "no symlink from the server's stdlib into /etc")
    assert got == {p: "ok" for p in got}


def test_mountns_service_binary_not_writable_through_proc_self_exe(server):
    """The script is a fork of the zygote, whose executable is the service
    binary: /proc/self/exe must not open it for writing (CVE-2019-5736 style)."""
    body = script('''
        def main():
            return outcome(os.open, "/proc/self/exe", os.O_WRONLY)
    ''')
    assert result_of(server.execute(body)) in ("EACCES", "ETXTBSY")
    assert_still_serving(server)


def test_mountns_service_binary_not_readable_through_proc_self_exe(server):
    """Nothing of the service's binary directory is in the view (docs/design/DESIGN.md
    section 3). Every sandbox is a fork of the zygote, so /proc/self/exe names the
    zygote's executable: the zygote runs from a sealed in-memory copy of the binary
    (no host path), which only root may open. (The code itself is of course mapped
    in the sandbox's own memory, like every library.)"""
    body = script('''
        def main():
            try:
                link = os.readlink("/proc/self/exe")
            except OSError as e:
                link = errname(e.errno)
            try:
                with open("/proc/self/exe", "rb") as f:
                    head = f.read(4).hex()
            except OSError as e:
                head = errname(e.errno)
            return {"link": link, "head": head}
    ''')
    got = result_of(server.execute(body))
    if not SERVER_URL:  # a remote server's binary lives on its own host
        assert BINARY_DIR not in got["link"], got
    assert got["link"].startswith("/memfd:"), got
    assert got["head"] == "EACCES", got


# -- writes --------------------------------------------------------------------------

WRITE_TARGETS = ["/", "/usr", "/usr/lib", "/bin", "/etc", "/dev", "/lib"]

CREATE = script('''
    def create(path):
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        os.close(fd)

    def main():
        return {d: outcome(create, os.path.join(d, NAME)) for d in DIRS}
''')


def create_script(dirs, name):
    return CREATE.replace("DIRS", repr(list(dirs))).replace("NAME", repr(name))


@pytest.mark.parametrize("directory", WRITE_TARGETS)
def test_mountns_write_outside_tmp_is_erofs(server, directory):
    got = result_of(server.execute(create_script([directory], unique())))
    assert got == {directory: "EROFS"}
    assert_still_serving(server)


def test_mountns_write_outside_tmp_not_erofs_without_layer():
    """With the host's file system, the unprivileged uid gets EACCES instead
    (credentials stay on, so nothing is created on the host)."""
    name = unique()
    targets = [d for d in WRITE_TARGETS if os.path.isdir(d)]
    try:
        got = result_of(exec_script(create_script(targets, name), disable="mountns"))
    finally:
        leaked = [os.path.join(d, name) for d in targets if os.path.lexists(os.path.join(d, name))]
        for path in leaked:
            os.unlink(path)
    assert not leaked, f"the probe created files on the host: {leaked}"
    assert got == {d: "EACCES" for d in targets}


def test_mountns_tmp_is_writable(server):
    body = script('''
        def main():
            with open("/tmp/x", "w") as f:
                f.write("hello")
            return open("/tmp/x").read()
    ''')
    assert result_of(server.execute(body)) == "hello"


def test_mountns_read_only_and_nosuid_mounts(server):
    """/ and /usr are read-only and nosuid; /tmp is nosuid and nodev."""
    body = script('''
        def main():
            out = {}
            for line in open("/proc/self/mountinfo"):
                fields = line.split()
                out[fields[4]] = fields[5].split(",")
            return out
    ''')
    mounts = result_of(server.execute(body))
    for point in ("/", "/usr"):
        assert {"ro", "nosuid", "nodev"} <= set(mounts[point]), (point, mounts[point])
    assert {"rw", "nosuid", "nodev"} <= set(mounts["/tmp"]), mounts["/tmp"]


# -- /tmp: size cap and privacy --------------------------------------------------------

FILL_TMP = script('''
    def main():
        path = "/tmp/" + NAME
        written = 0
        try:
            with open(path, "wb") as f:
                while written < CAP_MIB:
                    f.write(b"x" * (1 << 20))
                    f.flush()
                    written += 1
            result = "no error"
        except OSError as e:
            result = errname(e.errno)
        os.unlink(path)
        return [result, written]
''')


def fill_tmp_script(name, cap_mib):
    return FILL_TMP.replace("NAME", repr(name)).replace("CAP_MIB", str(cap_mib))


@pytest.fixture(scope="module")
def small_tmp_server(start_server):
    return start_server("--preload", "", "--tmp-size", "4M")


def test_mountns_filling_tmp_is_enospc(small_tmp_server):
    result, written = result_of(small_tmp_server.execute(fill_tmp_script(unique(), 64)))
    assert result == "ENOSPC"
    assert written <= 4
    assert_still_serving(small_tmp_server)


def test_mountns_filling_tmp_not_enospc_without_layer():
    """Without the mount namespace /tmp is the host's: the same 8 MiB fit (the
    script removes its file)."""
    name = unique()
    try:
        got = result_of(exec_script(fill_tmp_script(name, 8), "--tmp-size", "4M",
                                    disable="mountns"))
    finally:
        if os.path.lexists("/tmp/" + name):
            os.unlink("/tmp/" + name)
    assert got == ["no error", 8]


def test_mountns_inode_flood_is_enospc(server):
    body = script('''
        def main():
            n = 0
            try:
                while n < 100000:
                    open("/tmp/f%d" % n, "w").close()
                    n += 1
            except OSError as e:
                return [errname(e.errno), n]
            return ["no error", n]
    ''')
    result, created = result_of(server.execute(body))
    assert result == "ENOSPC"
    assert created < 100000
    assert_still_serving(server)


def test_mountns_tmp_not_shared_between_requests(server):
    name = unique()
    writer = script(f'''
        def main():
            with open("/tmp/{name}", "w") as f:
                f.write("left behind")
            return sorted(os.listdir("/tmp"))
    ''')
    reader = script(f'''
        def main():
            return [sorted(os.listdir("/tmp")), outcome(os.stat, "/tmp/{name}")]
    ''')
    assert name in result_of(server.execute(writer))
    for _ in range(3):  # whichever slot the next requests land in
        assert result_of(server.execute(reader)) == [[], "ENOENT"]
    if not SERVER_URL:  # the host's /tmp is only this machine's when the server is ours
        assert not os.path.exists("/tmp/" + name), "the sandbox's /tmp is the host's"


def test_mountns_tmp_shared_without_layer():
    name = unique()
    writer = script(f'''
        def main():
            with open("/tmp/{name}", "w") as f:
                f.write("left behind")
            return "written"
    ''')
    reader = script(f'''
        def main():
            return outcome(os.stat, "/tmp/{name}")
    ''')
    try:
        assert result_of(exec_script(writer, disable="mountns")) == "written"
        assert result_of(exec_script(reader, disable="mountns")) == "ok"
    finally:
        if os.path.lexists("/tmp/" + name):
            os.unlink("/tmp/" + name)


# -- symlinks: the service never follows a sandbox path ---------------------------------

CANARY = "/tmp/pyexecd-symlink-canary"


def test_symlinks_in_tmp_do_not_reach_the_host(server):
    content = "canary " + unique()
    with open(CANARY, "w") as f:
        f.write(content)
    before = os.stat(CANARY)
    shadow_before = os.stat("/etc/shadow") if os.path.exists("/etc/shadow") else None
    try:
        body = script(f'''
            import sys
            LINKS = {{"shadow": "/etc/shadow", "root": "/root", "canary": "{CANARY}",
                     "hostname": "/etc/hostname", "exe": "/proc/self/exe"}}

            def main():
                out = {{}}
                for name, target in LINKS.items():
                    link = "/tmp/" + name
                    os.symlink(target, link)
                    print(link, "->", os.readlink(link))
                    print(target, file=sys.stderr)
                # Through the link, the canary's path is the sandbox's own /tmp.
                with open("/tmp/canary", "w") as f:
                    f.write("overwritten")
                out["canary_write"] = "ok"
                out["shadow_read"] = outcome(lambda: open("/tmp/shadow").read())
                out["root_list"] = outcome(os.listdir, "/tmp/root")
                # Names a careless supervisor might read back: it must not.
                os.symlink("/etc/shadow", "/tmp/result.json")
                os.symlink("/root", "/tmp/stdout")
                return out
        ''')
        response = server.execute(body)
        got = result_of(response)
        assert got == {"canary_write": "ok", "shadow_read": "ENOENT", "root_list": "ENOENT"}
        assert "/tmp/shadow -> /etc/shadow\n" in response["stdout"]  # text, not followed
        if SERVER_URL:
            return  # the canary and /etc/shadow are this machine's, not the server's host's
        after = os.stat(CANARY)
        with open(CANARY) as f:
            assert f.read() == content
        assert (after.st_ino, after.st_mtime_ns, after.st_size) == \
            (before.st_ino, before.st_mtime_ns, before.st_size)
        if shadow_before is not None:
            assert os.stat("/etc/shadow").st_mtime_ns == shadow_before.st_mtime_ns
    finally:
        os.unlink(CANARY)
    assert_still_serving(server)


# -- devices ---------------------------------------------------------------------------


def test_mountns_dev_has_only_the_safe_nodes(server):
    body = script('''
        import stat

        def main():
            return sorted(n for n in os.listdir("/dev")
                          if stat.S_ISCHR(os.lstat("/dev/" + n).st_mode))
    ''')
    assert result_of(server.execute(body)) == ["null", "random", "urandom", "zero"]


def test_mountns_dev_nodes_present_without_layer():
    """Without the layer /dev is the host's, with its disks and ttys."""
    require(os.path.exists("/dev/tty"), "no /dev/tty on this host")
    body = script('''
        def main():
            return outcome(os.stat, "/dev/tty")
    ''')
    assert result_of(exec_script(body, disable="mountns")) == "ok"


# -- host facts in /proc ---------------------------------------------------------------

# Files of a fresh proc that describe the host, not the sandbox (issue 13, finding 8).
MASKED_PROC = ["/proc/config.gz", "/proc/cmdline", "/proc/partitions", "/proc/diskstats",
               "/proc/interrupts", "/proc/kallsyms", "/proc/timer_list", "/proc/sched_debug"]


def proc_sizes_script(paths):
    return script(f'''
        def main():
            out = {{}}
            for p in {paths!r}:
                try:
                    with open(p, "rb") as f:
                        out[p] = len(f.read())
                except OSError as e:
                    out[p] = errname(e.errno)
            return out
    ''')


def test_mountns_host_facts_in_proc_read_empty(server):
    """The kernel's configuration and command line, the host's disks and their I/O
    counters, interrupt counts: each reads as an empty file (or does not exist here)."""
    got = result_of(server.execute(proc_sizes_script(MASKED_PROC)))
    assert all(v in (0, "ENOENT") for v in got.values()), got
    assert_still_serving(server)


def test_mountns_host_facts_in_proc_readable_without_layer():
    got = result_of(exec_script(proc_sizes_script(MASKED_PROC), disable="mountns"))
    # Present on every Linux: what the masks hide with the layer on.
    assert got["/proc/cmdline"] > 0 and got["/proc/interrupts"] > 0, got
