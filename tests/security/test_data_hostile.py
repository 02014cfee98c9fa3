"""Hostile data in and artifacts out (README, "Files in" and "Files out"): path escapes in
`files`, symlinks and races planted for the `return_files` collection, floods of files, deep
trees, names that are not UTF-8, a file that keeps growing, and a large stdin. Every answer
is a clear error or a bounded, correct response, and the service keeps serving."""

import base64
import hashlib
import json
import textwrap

import pytest

from .conftest import assert_still_serving, result_of

# The documented defaults of a server started without the new flags.
MAX_OUTPUT_FILES = 100
OUTPUT_FILES_LIMIT = 8 * 1024 * 1024
MAX_OMITTED_LISTED = 100
MAX_DEPTH = 16
MAX_BODY = 1024 * 1024
# Lines of the sandbox's generated /etc/passwd: none may reach a response.
PASSWD_MARKERS = ("root:x:0:0", "/usr/sbin/nologin")


def src(text):
    return textwrap.dedent(text).lstrip("\n")


def files_of(body) -> dict:
    """{path: bytes} of `files`, after checking the bounds of the whole answer: entry shape,
    size == len(base64decode(content)) for every file, byte order, at most the default
    number of files and bytes, and a sorted files_omitted of at most 100 paths."""
    assert body.get("files", None) != [], body
    out = {}
    for f in body.get("files", []):
        assert set(f) == {"path", "size", "encoding", "content"}, f
        assert f["encoding"] == "base64", f
        data = base64.b64decode(f["content"], validate=True)
        assert f["size"] == len(data), (f["path"], f["size"], len(data))
        assert f["path"] not in out, f["path"]
        out[f["path"]] = data
    assert list(out) == sorted(out, key=lambda p: p.encode()), list(out)
    assert len(out) <= MAX_OUTPUT_FILES, len(out)
    assert sum(map(len, out.values())) <= OUTPUT_FILES_LIMIT
    omitted = body.get("files_omitted", [])
    assert omitted != [] or "files_omitted" not in body, body
    assert len(omitted) <= MAX_OMITTED_LISTED and all(isinstance(p, str) for p in omitted)
    assert omitted == sorted(omitted, key=lambda p: p.encode()), omitted
    assert not set(omitted) & set(out), (omitted, list(out))
    assert body.get("files_truncated", True) is True, body
    return out


def assert_no_passwd(body):
    """Nothing of /etc/passwd anywhere in the response, decoded file contents included."""
    text = json.dumps(body)
    contents = [base64.b64decode(f["content"]) for f in body.get("files", [])]
    for marker in PASSWD_MARKERS:
        assert marker not in text, marker
        assert not any(marker.encode() in c for c in contents), marker


# -- path escapes --------------------------------------------------------------------------

LONG = "/".join(["a" * 255, "b" * 255, "c" * 255, "d" * 254, "e"])  # 1024 bytes
ESCAPES = {
    "dotdot": "../x", "absolute": "/etc/x", "climb": "a/../../x", "dot": "a/./b",
    "dotdot-only": "..", "deep-climb": "a/b/../../../etc/passwd", "nul": "x\u0000/../../etc/x",
    "component-256": "c" * 256, "path-1025": LONG + "e",
    "components-17": "/".join(["p"] * 17),
}


@pytest.mark.parametrize("path", ESCAPES.values(), ids=list(ESCAPES))
def test_path_escape_is_rejected(server, path):
    """A path that leaves the working directory or breaks a bound: 400 naming files[0]."""
    body = server.execute("def main():\n    return 'ran'\n",
                          files=[{"path": path, "content": "pwned"}], return_files=True)
    assert (body["_status"], body.get("code")) == (400, "INVALID_REQUEST"), body
    assert "files[0]" in body["error"], body
    assert "result" not in body and "files" not in body, body
    assert_still_serving(server)


# -- symlinks ------------------------------------------------------------------------------


def test_planted_symlinks_are_neither_followed_nor_returned(server):
    """Symlinks `out -> /etc`, to /etc/passwd, relative ones, and an input file replaced by
    a symlink: none is followed or returned, no byte of /etc/passwd is in the response."""
    script = src("""
        import os
        PASSWD = open("/etc/passwd").read()
        def main():
            os.symlink("/etc", "out")
            os.symlink("/etc/passwd", "pw")
            os.mkdir("sub")
            os.symlink("/etc/passwd", "sub/pw")
            os.symlink("../../../../../etc/passwd", "sub/rel")
            os.symlink("/", "sub/root")
            os.remove("data.txt")
            os.symlink("/etc/passwd", "data.txt")
            open("ok.txt", "w").write("ok")
            return "root:x:0:0" in PASSWD
        """)
    body = server.execute(script, files=[{"path": "data.txt", "content": "input"}],
                          return_files=True)
    assert result_of(body) is True, "sanity: the sandbox has an /etc/passwd to leak"
    assert files_of(body) == {"ok.txt": b"ok"}
    for path in body.get("files_omitted", []):
        assert not path.startswith(("out/", "sub/root/")), body
    assert_no_passwd(body)
    assert_still_serving(server)


def test_symlink_swap_race_never_leaks(server):
    """Threads keep swapping a file for a symlink to /etc/passwd and a directory for a
    symlink to / while the files are collected: only real files come back, with their own
    content, and the answer comes within the time limit."""
    script = src("""
        import os, threading, time
        def swap_file():
            while True:
                try:
                    os.symlink("/etc/passwd", "s.lnk")
                    os.rename("s.lnk", "victim")
                    with open("v.tmp", "wb") as f:
                        f.write(b"harmless")
                    os.rename("v.tmp", "victim")
                except OSError:
                    pass
        def swap_dir():
            while True:
                try:
                    os.rename("d", "d.real")
                    os.symlink("/", "d")
                    os.unlink("d")
                    os.rename("d.real", "d")
                except OSError:
                    pass
        def main():
            os.mkdir("d")
            open("d/x.txt", "w").write("inside")
            open("keep.txt", "w").write("keep")
            for target in (swap_file, swap_dir):
                threading.Thread(target=target, daemon=True).start()
            time.sleep(0.3)
            return "swapping"
        """)
    body = server.execute(script, return_files=True, timeout=8)
    assert result_of(body) == "swapping"
    expected = {"victim": b"harmless", "v.tmp": b"harmless", "d/x.txt": b"inside",
                "d.real/x.txt": b"inside", "keep.txt": b"keep"}
    for path, data in files_of(body).items():
        assert path in expected, path
        assert expected[path].startswith(data), (path, data)
    assert_no_passwd(body)
    assert_still_serving(server)


# -- FIFOs, sockets and directories in place of files --------------------------------------


def test_files_swapped_for_fifos_and_directories(server):
    """Threads keep replacing files with FIFOs and directories while the files are collected;
    a FIFO has a writer waiting, another a socket next to it. The answer comes within the
    time limit (no read blocks on a FIFO), and every returned file is a real one."""
    script = src("""
        import os, socket, threading, time
        def content(i):
            return (f"{i}:" * 40).encode()
        def churn(first):
            while True:
                for i in range(first, 20, 4):
                    name = f"f{i:02d}"
                    steps = (lambda: (open(name + ".tmp", "wb").write(content(i)),
                                      os.rename(name + ".tmp", name)),
                             lambda: (os.mkfifo(name + ".p"), os.rename(name + ".p", name)),
                             lambda: (os.unlink(name), os.mkdir(name),
                                      open(name + "/inner", "wb").write(content(i))),
                             lambda: (os.unlink(name + "/inner"), os.rmdir(name)))
                    for step in steps:
                        try:
                            step()
                        except OSError:
                            pass
        def feed_fifo():
            with open("w.fifo", "wb") as f:
                while True:
                    f.write(b"z" * 65536)
        def main():
            os.mkfifo("w.fifo")
            s = socket.socket(socket.AF_UNIX)
            s.bind("s.sock")
            s.listen()
            threads = [threading.Thread(target=churn, args=(k,), daemon=True) for k in range(4)]
            threads.append(threading.Thread(target=feed_fifo, daemon=True))
            for t in threads:
                t.start()
            time.sleep(0.3)
            return "churning"
        """)
    body = server.execute(script, return_files=True, timeout=8)
    assert result_of(body) == "churning"
    for path, data in files_of(body).items():
        name = path.split("/")[0].split(".")[0]
        assert name.startswith("f") and path in (name, name + ".tmp", name + "/inner"), path
        assert (f"{int(name[1:])}:" * 40).encode().startswith(data), (path, data)
    assert_still_serving(server)


# -- floods and depth ----------------------------------------------------------------------


def test_twenty_thousand_tiny_files(server):
    """20000 files asked for (as many as /tmp takes): at most --max-output-files come back,
    the walk stops early (files_truncated), the answer stays small."""
    script = src("""
        import os
        def main():
            made = 0
            for i in range(20000):
                try:
                    fd = os.open("f%05d" % i, os.O_WRONLY | os.O_CREAT, 0o644)
                except OSError:
                    break
                os.write(fd, b"%d" % i)
                os.close(fd)
                made += 1
            return made
        """)
    body = server.execute(script, return_files=True, timeout=10)
    made = result_of(body)
    assert made > 10000, f"sanity: only {made} files could be made"
    files = files_of(body)
    for path, data in files.items():
        assert data == str(int(path[1:])).encode(), (path, data)
    assert body.get("files_truncated") is True, {k: v for k, v in body.items() if k != "files"}
    assert len(json.dumps(body)) < MAX_BODY, len(json.dumps(body))
    assert_still_serving(server)


def test_deep_directory_chain(server):
    """A chain of 40 directories with a file at each level and a symlink loop: files at
    most 16 levels deep come back, none deeper, and the walk ends."""
    script = src("""
        import os
        def main():
            path = ""
            for depth in range(1, 41):
                path = os.path.join(path, "d%02d" % depth)
                os.mkdir(path)
                open(os.path.join(path, "f"), "w").write(str(depth))
            os.symlink(".", "d01/loop")
            os.symlink("/tmp", "d01/d02/tmp")
            open("top.txt", "w").write("top")
            return 1
        """)
    body = server.execute(script, return_files=True, timeout=8)
    assert result_of(body) == 1
    chain = lambda k: "/".join("d%02d" % d for d in range(1, k + 1)) + "/f"  # k+1 components
    expected = {"top.txt": b"top"}
    expected.update({chain(k): str(k).encode() for k in range(1, MAX_DEPTH)})
    files = files_of(body)
    assert all(p.count("/") < MAX_DEPTH for p in files), [p for p in files if p.count("/") >= 16]
    assert files == expected
    assert_still_serving(server)


# -- names that are not UTF-8 --------------------------------------------------------------


def test_non_utf8_names_are_omitted_never_returned(server):
    """Names that are not valid UTF-8 (a file, and a file in such a directory) are listed in
    files_omitted with U+FFFD for each invalid byte, never in files; a valid twin is."""
    script = src("""
        import os
        def make(name):
            fd = os.open(name, os.O_WRONLY | os.O_CREAT, 0o644)
            os.write(fd, b"data")
            os.close(fd)
        def main():
            for name in (b"caf\\xe9", b"\\xff\\xfe.bin", b"x\\xc0\\xaf", b"ok\\xc3(.txt"):
                make(name)
            os.mkdir(b"dir\\xff")
            make(b"dir\\xff/inner.txt")
            open("caf\\u00e9".encode(), "w").write("valid")
            return 1
        """)
    body = server.execute(script, return_files=True)
    assert result_of(body) == 1
    assert files_of(body) == {"caf\u00e9": b"valid"}
    omitted = body.get("files_omitted", [])
    for name in ("caf\ufffd", "\ufffd\ufffd.bin", "x\ufffd\ufffd", "ok\ufffd(.txt"):
        assert name in omitted, (name, omitted)
    assert any(p.startswith("dir\ufffd") for p in omitted), omitted
    assert_still_serving(server)


# -- a file that keeps growing -------------------------------------------------------------


def test_file_growing_while_collected(server):
    """A background thread keeps appending to a file while it is collected: the answer is
    bounded, and if the file is returned its size is the length of its content."""
    script = src("""
        import os, threading, time
        def grow():
            fd = os.open("grow.bin", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
            chunk = b"g" * 4096
            while True:
                try:
                    os.write(fd, chunk)
                except OSError:
                    time.sleep(0.001)
        def main():
            threading.Thread(target=grow, daemon=True).start()
            while not os.path.exists("grow.bin") or os.path.getsize("grow.bin") < 256 * 1024:
                time.sleep(0.001)
            open("small.txt", "w").write("small")
            return 1
        """)
    body = server.execute(script, return_files=True, timeout=8)
    assert result_of(body) == 1
    files = files_of(body)
    assert files.get("small.txt") == b"small", list(files)
    if "grow.bin" in files:
        assert set(files["grow.bin"]) <= {ord("g")}
    else:
        assert "grow.bin" in body.get("files_omitted", []), body.get("files_omitted")
    assert_still_serving(server)


# -- a large stdin -------------------------------------------------------------------------

BIG_STDIN = "".join("%07d abcdefghijklmnopqrstuvwxyz\n" % i for i in range(900 * 1024 // 35))


def test_stdin_close_to_max_body_is_read_fully(server):
    """900 KiB of stdin (the default body limit is 1 MiB) arrives whole."""
    script = src("""
        import hashlib, sys
        def main():
            data = sys.stdin.read()
            return [len(data), hashlib.sha256(data.encode()).hexdigest()]
        """)
    fields = {"stdin": BIG_STDIN, "timeout": 8}
    assert len(json.dumps({"script": script, **fields})) < MAX_BODY
    body = server.execute(script, **fields)
    assert result_of(body) == [len(BIG_STDIN), hashlib.sha256(BIG_STDIN.encode()).hexdigest()]
    assert_still_serving(server)


@pytest.mark.parametrize("script", [
    "def main():\n    return 1\n",
    "import os\ndef main():\n    os.close(0)\n    return 1\n",
    "import sys\ndef main():\n    sys.stdin.read(10)\n    return 1\n",
], ids=["never-read", "closed", "partly-read"])
def test_large_stdin_not_read_does_not_block(server, script):
    """A script that leaves 900 KiB of stdin unread (or closes fd 0) is answered at once:
    feeding stdin never blocks the run."""
    assert result_of(server.execute(script, stdin=BIG_STDIN, timeout=8)) == 1
    assert_still_serving(server)
