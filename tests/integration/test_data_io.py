"""Data in, artifacts out (README, "Files in" and "Files out"): `stdin`, `args`/`kwargs`,
input `files` and `return_files`, each field and each of its errors, over HTTP only."""

import base64
import textwrap

import pytest

from .conftest import SUCCESS_KEYS, assert_error, assert_ok, run_ok

# One server holding every small bound of the feature that the tests below need.
SMALL_ARGS = ("--preload", "", "--max-files", "3", "--max-output-files", "2",
              "--output-files-limit", "1000", "--tmp-size", "1M", "--max-body", "4M")

RUNTIME_KEYS = {"error", "code", "traceback", "stdout", "stderr", "duration_ms"}
UNSERIALIZABLE_KEYS = {"error", "code", "stdout", "stderr", "duration_ms"}
FILE_KEYS = {"files", "files_omitted", "files_truncated"}
STDIN_TEXT = "first line\nzweite Zeile \u00e9 \u2603\nthird\n"
MiB = 1024 * 1024


@pytest.fixture(scope="module")
def small_server(start_server):
    return start_server(*SMALL_ARGS)


def src(text):
    return textwrap.dedent(text).lstrip("\n")


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def entry(path, content="x", encoding=None, **extra):
    e = {"path": path, "content": content, **extra}
    if encoding is not None:
        e["encoding"] = encoding
    return e


def returned(body) -> dict:
    """{path: bytes} of a response's `files` (in order), after checking every entry's shape,
    that size == len(decoded content), and the byte order of the paths."""
    assert body.get("files", None) != [], "an empty `files` must be left out"
    out = {}
    for f in body.get("files", []):
        assert set(f) == {"path", "size", "encoding", "content"}, f
        assert f["encoding"] == "base64", f
        data = base64.b64decode(f["content"], validate=True)
        assert f["size"] == len(data), f
        assert f["path"] not in out, f"duplicate path {f['path']!r}"
        out[f["path"]] = data
    assert list(out) == sorted(out, key=lambda p: p.encode()), list(out)
    return out


def bad_request(resp, *needles):
    """Asserts 400 INVALID_REQUEST whose error contains every needle; returns the error.
    A needle of over 64 characters (a path at a length bound) may be abbreviated in the
    message: its first 32 characters must be there."""
    error = assert_error(resp, 400, "INVALID_REQUEST")["error"]
    for needle in needles:
        needle = needle if len(needle) <= 64 else needle[:32]
        assert needle in error, f"{needle!r} not in {error!r}"
    return error


# -- stdin ---------------------------------------------------------------------------------


STDIN_READERS = {
    # input() line by line until EOFError
    "input": ("def main():\n    lines = []\n    while True:\n        try:\n"
              "            lines.append(input())\n        except EOFError:\n"
              "            return '\\n'.join(lines) + '\\n'\n"),
    "sys.stdin.read": "import sys\ndef main():\n    return sys.stdin.read()\n",
    # os.read(0, n) until b"": the UTF-8 bytes on file descriptor 0
    "os.read": ("import os\ndef main():\n    data = b''\n    while chunk := os.read(0, 7):\n"
                "        data += chunk\n    return data.decode()\n"),
    # a child inherits fd 0
    "subprocess": ("import subprocess\ndef main():\n    return subprocess.run(['cat'], "
                   "stdout=subprocess.PIPE, timeout=30).stdout.decode()\n"),
}


@pytest.mark.parametrize("script", STDIN_READERS.values(), ids=list(STDIN_READERS))
def test_stdin_readers(server, script):
    """input(), sys.stdin.read(), os.read(0, n) and a subprocess child all read the whole
    stdin (non-ASCII included), then EOF."""
    assert run_ok(server, script, stdin=STDIN_TEXT)["result"] == STDIN_TEXT


@pytest.mark.parametrize("fields", [{}, {"stdin": ""}], ids=["absent", "empty"])
def test_stdin_absent_or_empty_is_eof(server, fields):
    """Without stdin (or with ""), every reader gets EOF at once."""
    script = src("""
        import os, sys
        def main():
            try:
                line = input()
            except EOFError:
                line = "EOFError"
            return [line, sys.stdin.read(), os.read(0, 10).decode()]
        """)
    assert run_ok(server, script, **fields)["result"] == ["EOFError", "", ""]


@pytest.mark.parametrize("value", [1, ["a"], {"a": "b"}, True], ids=["int", "list", "obj", "bool"])
def test_stdin_not_a_string(server, value):
    """A stdin that is not a string is a 400 mentioning stdin."""
    bad_request(server.execute("def main():\n    return 1\n", stdin=value), "stdin")


# -- args and kwargs -----------------------------------------------------------------------

JSON_VALUES = [1, -7, 2.5, 1.0, "s", "", [1, [2, "x"]], {"k": {"n": None}}, True, False, None]
TYPE_NAMES = ["int", "int", "float", "float", "str", "str", "list", "dict", "bool", "bool",
              "NoneType"]
ECHO = src("""
    def main(*args, **kwargs):
        return {"args": [[type(a).__name__, a] for a in args],
                "kwargs": {k: [type(v).__name__, v] for k, v in kwargs.items()}}
    """)


def test_args_and_kwargs_of_every_json_type(server):
    """Every JSON type arrives in args and in kwargs as json.loads gives it."""
    kwargs = {f"k{i}": v for i, v in enumerate(JSON_VALUES)}
    typed = [[t, v] for t, v in zip(TYPE_NAMES, JSON_VALUES)]
    result = run_ok(server, ECHO, args=JSON_VALUES, kwargs=kwargs)["result"]
    assert result == {"args": typed, "kwargs": {f"k{i}": p for i, p in enumerate(typed)}}


TYPED_REPR = "def main(*args):\n    return [[type(a).__name__, repr(a)] for a in args]\n"


def test_astral_strings_and_floats_arrive_exactly(server):
    """Astral characters stay in strings; floats keep their value."""
    values = ["\U0001F600\u00e9", 1e-300, 123456789.125, -0.5]
    result = run_ok(server, TYPED_REPR, args=values)["result"]
    assert result == [[type(v).__name__, repr(v)] for v in values]


def test_nul_in_a_string_arrives(server):
    """A string holding U+0000 is a JSON value too: it arrives whole."""
    result = run_ok(server, TYPED_REPR, args=["a\u0000b"])["result"]
    assert result == [["str", repr("a\u0000b")]]


def test_big_integers_arrive_exactly(server):
    """An integer beyond 64 bits is a JSON value too: json.loads gives an exact int."""
    values = [2 ** 70, -(2 ** 64)]
    result = run_ok(server, TYPED_REPR, args=values)["result"]
    assert result == [[type(v).__name__, repr(v)] for v in values]


def test_args_and_kwargs_bind_to_the_signature(server):
    """main(*args, **kwargs): positional, keyword-only and catch-all parameters."""
    script = "def main(a, b, *, c=0, **rest):\n    return [a, b, c, rest]\n"
    body = run_ok(server, script, args=[1, "two"], kwargs={"c": 3, "d": [4]})
    assert body["result"] == [1, "two", 3, {"d": [4]}]


def test_empty_args_and_kwargs_call_main_without_arguments(server):
    """args [] and kwargs {} are main()."""
    script = "def main(x='default'):\n    return x\n"
    assert run_ok(server, script, args=[], kwargs={})["result"] == "default"


@pytest.mark.parametrize("script, fields", [
    ("def main():\n    return 1\n", {"args": [1]}),
    ("def main():\n    return 1\n", {"kwargs": {"x": 1}}),
    ("def main(x, y):\n    return x\n", {"args": [1]}),
    ("def main(x):\n    return x\n", {"args": [1], "kwargs": {"x": 2}}),
], ids=["extra-arg", "unknown-kwarg", "missing-arg", "twice"])
def test_signature_mismatch_is_the_scripts_type_error(server, script, fields):
    """A call that does not fit main's signature is the script's TypeError: 422."""
    body = assert_error(server.execute(script, **fields), 422, "RUNTIME_ERROR", ran=True)
    assert "TypeError" in body["error"], body
    assert "traceback" in body, body


@pytest.mark.parametrize("field, value", [
    ("args", {"a": 1}), ("args", "x"), ("args", 1), ("args", True),
    ("kwargs", [1]), ("kwargs", "x"), ("kwargs", 1), ("kwargs", False),
])
def test_args_kwargs_wrong_type(server, field, value):
    """args must be an array and kwargs an object: else 400 naming the field."""
    bad_request(server.execute("def main(*a, **k):\n    return 1\n", **{field: value}), field)


@pytest.mark.parametrize("field", ["stdin", "args", "kwargs", "files", "return_files"])
def test_null_is_a_wrong_type(server, field):
    """An explicit null is not the documented type of any new field: 400."""
    bad_request(server.execute("def main(*a, **k):\n    return 1\n", **{field: None}))


# -- files in ------------------------------------------------------------------------------

BLOB = bytes(range(256)) * 3


def test_files_are_written_before_the_module_body(server):
    """utf-8 and base64 files (encoding defaults to utf-8), parents created, cwd /tmp,
    modes 0644/0755, owned by the script's uid, which may rewrite and delete them."""
    files = [entry("hello.txt", "h\u00e9llo \u2603\n"),
             entry("bin/blob.bin", b64(BLOB), "base64"),
             entry("a/b/c/d.txt", "deep", "utf-8")]
    script = src("""
        import os, stat
        AT_IMPORT = open("hello.txt", "rb").read().hex()
        def mode(p):
            return oct(stat.S_IMODE(os.stat(p).st_mode))
        def main():
            info = {"import": AT_IMPORT, "cwd": os.getcwd(),
                    "blob": open("/tmp/bin/blob.bin", "rb").read().hex(),
                    "deep": open("a/b/c/d.txt").read(),
                    "modes": [mode(p) for p in ("hello.txt", "a/b/c/d.txt", "a", "a/b/c")],
                    "mine": all(os.stat(p).st_uid == os.getuid() for p in ("hello.txt", "a"))}
            with open("hello.txt", "w") as f:
                f.write("rewritten")
            os.remove("bin/blob.bin")
            info["after"] = [open("hello.txt").read(), os.path.exists("bin/blob.bin")]
            return info
        """)
    result = run_ok(server, script, files=files)["result"]
    assert result == {"import": "h\u00e9llo \u2603\n".encode().hex(), "cwd": "/tmp",
                      "blob": BLOB.hex(), "deep": "deep",
                      "modes": ["0o644", "0o644", "0o755", "0o755"], "mine": True,
                      "after": ["rewritten", False]}


def test_pandas_reads_a_csv_from_files(server):
    """pd.read_csv("in/data.csv") reads a CSV given in `files`."""
    csv = "name,v\nalpha,1\nbeta,2.5\ngamma,4\n"
    script = src("""
        import pandas as pd
        def main():
            df = pd.read_csv("in/data.csv")
            return {"columns": list(df.columns), "rows": len(df), "sum": float(df["v"].sum())}
        """)
    result = run_ok(server, script, files=[entry("in/data.csv", csv)])["result"]
    assert result == {"columns": ["name", "v"], "rows": 3, "sum": 7.5}


def test_binary_content_round_trip(server):
    """Bytes in through base64, read exactly, bytes out through return_files."""
    script = src("""
        def main():
            data = open("in.bin", "rb").read()
            with open("out.bin", "wb") as f:
                f.write(data[::-1])
            return len(data)
        """)
    body = run_ok(server, script, files=[entry("in.bin", b64(BLOB), "base64")],
                  return_files=True)
    assert body["result"] == len(BLOB)
    assert returned(body) == {"out.bin": BLOB[::-1]}


LONG_PATH = "/".join(["a" * 255, "b" * 255, "c" * 255, "d" * 254, "e"])
GOOD_PATHS = ["x" * 255, "\u00e9" * 127 + "a", LONG_PATH, "/".join(f"p{i}" for i in range(16)),
              ".hidden", "..x", "...", "a b/c-d_e.f", "\u65e5\u672c/\u8a9e.txt"]


def test_paths_at_the_bounds_are_accepted(server):
    """255-byte components, a 1024-byte path, 16 components and dotted names are valid."""
    assert len(LONG_PATH.encode()) == 1024 and len(GOOD_PATHS[1].encode()) == 255
    files = [entry(p, str(i)) for i, p in enumerate(GOOD_PATHS)]
    # Bytes paths: what is tested is the file, not the sandbox's file-system encoding.
    script = "def main(paths):\n    return [open(p.encode()).read() for p in paths]\n"
    body = run_ok(server, script, files=files, args=[GOOD_PATHS])
    assert body["result"] == [str(i) for i in range(len(GOOD_PATHS))]


BAD_PATHS = {
    "empty": "", "absolute": "/abs", "root": "/", "double-slash": "a//b", "trailing": "a/",
    "dot": ".", "dotdot": "..", "dot-first": "./a", "dot-last": "a/.", "dot-middle": "a/./b",
    "dotdot-first": "../a", "dotdot-middle": "a/../b", "nul": "a\u0000b",
    "component-256": "x" * 256, "component-256-bytes": "\u00e9" * 128,
    "path-1025": LONG_PATH + "e", "components-17": "/".join(f"p{i}" for i in range(17)),
}


@pytest.mark.parametrize("path", BAD_PATHS.values(), ids=list(BAD_PATHS))
def test_path_rule_violation(server, path):
    """Every path rule: 400 naming files[INDEX] and the path."""
    resp = server.execute("def main():\n    return 1\n", files=[entry("ok.txt"), entry(path)])
    bad_request(resp, "files[1]", *([] if "\0" in path else [path]))


BAD_ENTRIES = {
    "entry-string": ([entry("ok.txt"), "x.txt"], 1, None),
    "entry-list": ([["p.txt", "x"]], 0, None),
    "no-path": ([{"content": "x"}], 0, None),
    "path-number": ([{"path": 1, "content": "x"}], 0, None),
    "no-content": ([entry("ok.txt"), {"path": "c.txt"}], 1, "c.txt"),
    "content-number": ([{"path": "c.txt", "content": 5}], 0, "c.txt"),
    "content-object": ([{"path": "c.txt", "content": {"a": 1}}], 0, "c.txt"),
    "encoding-number": ([entry("c.txt", encoding=1)], 0, "c.txt"),
    "encoding-hex": ([entry("c.txt", encoding="hex")], 0, "c.txt"),
    "encoding-latin1": ([entry("ok.txt"), entry("c.txt", encoding="latin-1")], 1, "c.txt"),
    "encoding-empty": ([entry("c.txt", encoding="")], 0, "c.txt"),
    "unknown-key": ([entry("c.txt", mode=420)], 0, "c.txt"),
}


@pytest.mark.parametrize("files, index, path", BAD_ENTRIES.values(), ids=list(BAD_ENTRIES))
def test_bad_file_entry(server, files, index, path):
    """A malformed entry: 400 naming files[INDEX] (and its path when it has one)."""
    resp = server.execute("def main():\n    return 1\n", files=files)
    bad_request(resp, f"files[{index}]", *([path] if path else []))


@pytest.mark.parametrize("paths", [
    ["dup.txt", "dup.txt"], ["node", "node/leaf"], ["node/leaf", "node"], ["node", "node/x/y"],
], ids=["duplicate", "file-then-dir", "dir-then-file", "file-then-deep-dir"])
def test_conflicting_paths(server, paths):
    """The same path twice, or a path that is a file and a directory: 400 naming it."""
    resp = server.execute("def main():\n    return 1\n", files=[entry(p) for p in paths])
    error = bad_request(resp, paths[0].split("/")[0])
    assert "files[0]" in error or "files[1]" in error, error


def test_paths_sharing_directories_are_accepted(server):
    """Siblings, nested directories and look-alike names are no conflict."""
    paths = ["d/a", "d/b", "d/e/f", "dd", "d.txt"]
    script = "import os\ndef main(paths):\n    return [os.path.isfile(p) for p in paths]\n"
    body = run_ok(server, script, files=[entry(p) for p in paths], args=[paths])
    assert body["result"] == [True] * len(paths)


@pytest.mark.parametrize("files", [{"path": "a", "content": "x"}, "a.txt", 1, True],
                         ids=["object", "string", "int", "bool"])
def test_files_not_an_array(server, files):
    """files must be an array: 400 naming it."""
    bad_request(server.execute("def main():\n    return 1\n", files=files), "files")


GOOD_BASE64 = {"": b"", "YQ==": b"a", "YWI=": b"ab", "YWJj": b"abc", "+/8=": b"\xfb\xff"}
BAD_BASE64 = {
    "no-padding-1": "YQ", "no-padding-2": "YWI", "short-padding": "YQ=", "odd-length": "YWJjZA=",
    "newline": "YWJj\n", "crlf-inside": "YW\r\nJj", "space-inside": "YW Jj",
    "leading-space": " YWJj",
    "tab": "YWJj\t", "urlsafe-dash": "YWJ-", "urlsafe-underscore": "YWJ_", "star": "YWJj*",
    "padding-inside": "YQ==YWI=", "padding-first": "=YWJ", "non-ascii": "YWJ\u00e4",
}


@pytest.mark.parametrize("text", GOOD_BASE64, ids=["empty", "pad2", "pad1", "nopad", "plus-slash"])
def test_strict_base64_accepted(server, text):
    """Canonical standard-alphabet base64 decodes to the exact bytes."""
    script = "def main():\n    return open('f.bin', 'rb').read().hex()\n"
    body = run_ok(server, script, files=[entry("f.bin", text, "base64")])
    assert bytes.fromhex(body["result"]) == GOOD_BASE64[text]


@pytest.mark.parametrize("text", BAD_BASE64.values(), ids=list(BAD_BASE64))
def test_strict_base64_rejected(server, text):
    """Missing padding, whitespace, line breaks or a foreign alphabet: 400."""
    resp = server.execute("def main():\n    return 1\n", files=[entry("f.bin", text, "base64")])
    bad_request(resp, "files[0]", "f.bin")


def test_max_files(small_server):
    """--max-files 3: three entries run, a fourth is a 400."""
    three = [entry(f"f{i}") for i in range(3)]
    assert run_ok(small_server, "def main():\n    return 1\n", files=three)["result"] == 1
    resp = small_server.execute("def main():\n    return 1\n", files=three + [entry("f3")])
    bad_request(resp)


def test_files_larger_than_tmp(small_server):
    """--tmp-size 1M: a 2 MiB file, or two of 700 KiB, are 413; 256 KiB still runs."""
    for files in ([entry("big.txt", "x" * (2 * MiB))],
                  [entry("one.txt", "x" * (700 * 1024)), entry("two.txt", "y" * (700 * 1024))]):
        resp = small_server.execute("def main():\n    return 1\n", files=files)
        assert_error(resp, 413, "PAYLOAD_TOO_LARGE")
    script = "import os\ndef main():\n    return os.path.getsize('fits.txt')\n"
    body = run_ok(small_server, script, files=[entry("fits.txt", "z" * (256 * 1024))])
    assert body["result"] == 256 * 1024


# -- return_files --------------------------------------------------------------------------


def test_created_file_is_returned(server):
    """A file the script wrote comes back as path, size, base64 and content."""
    script = "def main():\n    open('out.txt', 'wb').write(b'hello')\n    return 1\n"
    body = run_ok(server, script, return_files=True)
    assert body.keys() == SUCCESS_KEYS | {"files"}, body
    assert body["files"] == [{"path": "out.txt", "size": 5, "encoding": "base64",
                              "content": b64(b"hello")}]


def test_returned_files_are_sorted_by_utf8_bytes(server):
    """The order is the byte order of the whole UTF-8 path, not a per-directory walk."""
    names = ["\u00e9.txt", "b.txt", "a/x", "a0", "a.txt", "Z.txt", "a-b", "e.txt"]
    script = src("""
        import os
        def main(names):
            os.mkdir("a")
            for n in names:
                open(n.encode(), "wb").write(n.encode())
            return 1
        """)
    body = run_ok(server, script, args=[names], return_files=True)
    files = returned(body)
    assert list(files) == ["Z.txt", "a-b", "a.txt", "a/x", "a0", "b.txt", "e.txt", "\u00e9.txt"]
    assert all(files[n] == n.encode() for n in names)


def test_only_created_or_changed_files_are_returned(server):
    """Unchanged inputs (also rewritten with the same content) and deleted ones are left
    out; changed, appended and new files come back."""
    files = [entry("keep.txt", "same"), entry("same.txt", "same"), entry("changed.txt", "old"),
             entry("deleted.txt", "bye"), entry("appended.txt", "abc"),
             entry("sub/keep.bin", b64(BLOB), "base64"), entry("sub/changed.bin", b64(b"\0\1"),
                                                                "base64")]
    script = src("""
        import os
        def main():
            open("keep.txt").read()
            open("same.txt", "w").write("same")
            open("changed.txt", "w").write("new")
            os.remove("deleted.txt")
            open("appended.txt", "a").write("d")
            open("sub/changed.bin", "wb").write(b"\\1\\0")
            open("sub/new.txt", "w").write("fresh")
            return 1
        """)
    body = run_ok(server, script, files=files, return_files=True)
    assert returned(body) == {"appended.txt": b"abcd", "changed.txt": b"new",
                              "sub/changed.bin": b"\1\0", "sub/new.txt": b"fresh"}


def test_nested_and_empty_files(server):
    """Files in new nested directories and an empty file are returned; directories are not."""
    script = src("""
        import os
        def main():
            os.makedirs("x/y/z")
            os.makedirs("emptydir/inner")
            open("x/y/z/deep.txt", "w").write("deep")
            open("empty.txt", "w").close()
            return 1
        """)
    body = run_ok(server, script, return_files=True)
    assert returned(body) == {"empty.txt": b"", "x/y/z/deep.txt": b"deep"}
    assert body["files"][0] == {"path": "empty.txt", "size": 0, "encoding": "base64",
                                "content": ""}


def test_symlinks_fifos_and_sockets_are_skipped(server):
    """Symlinks (to a file or a directory) are not returned; a FIFO and a socket are skipped
    (neither returned nor omitted), and the answer does not hang on the FIFO."""
    script = src("""
        import os, socket
        def main():
            os.mkdir("x")
            open("x/f.txt", "w").write("f")
            open("real.txt", "w").write("real")
            os.symlink("real.txt", "link.txt")
            os.symlink("x", "dirlink")
            os.symlink("/nonexistent", "dangling")
            os.mkfifo("pipe")
            s = socket.socket(socket.AF_UNIX)
            s.bind("sock")
            return 1
        """)
    body = run_ok(server, script, return_files=True, timeout=8)
    assert returned(body) == {"real.txt": b"real", "x/f.txt": b"f"}
    assert "files_omitted" not in body and "files_truncated" not in body, body


def test_files_on_runtime_error(server):
    """A 422 RUNTIME_ERROR still carries the files written before the exception."""
    script = "def main():\n    open('partial.txt', 'w').write('p')\n    raise ValueError('x')\n"
    body = assert_error(server.execute(script, return_files=True), 422, "RUNTIME_ERROR",
                        ran=True)
    assert body.keys() == RUNTIME_KEYS | {"files"}, body
    assert returned(body) == {"partial.txt": b"p"}


def test_files_on_not_json_serializable(server):
    """A 422 NOT_JSON_SERIALIZABLE still carries the files."""
    script = "def main():\n    open('r.txt', 'w').write('r')\n    return {1, 2}\n"
    body = assert_error(server.execute(script, return_files=True), 422,
                        "NOT_JSON_SERIALIZABLE", ran=True)
    assert body.keys() == UNSERIALIZABLE_KEYS | {"files"}, body
    assert returned(body) == {"r.txt": b"r"}


@pytest.mark.parametrize("files", [[], [entry("in.txt", "unchanged")]], ids=["none", "unchanged"])
def test_no_files_key_when_nothing_was_written(server, files):
    """return_files with nothing new or changed: no `files` key at all (no [])."""
    body = run_ok(server, "def main():\n    return 1\n", files=files, return_files=True)
    assert body.keys() == SUCCESS_KEYS, body


WRITER = src("""
    import os
    def main():
        for i in range(5):
            open(f"w{i}.txt", "w").write("w" * 5000)
        os.mkfifo("p")
        os.symlink("/etc/passwd", "l")
        return 1
    """)


@pytest.mark.parametrize("fields", [{}, {"return_files": False}], ids=["absent", "false"])
def test_no_files_keys_without_return_files(server, small_server, fields):
    """Without return_files no files, files_omitted or files_truncated ever appears, even
    where the limits would omit (small_server: 2 files, 1000 bytes)."""
    for srv in (server, small_server):
        assert run_ok(srv, WRITER, **fields).keys() == SUCCESS_KEYS
    failing = WRITER.replace("return 1", "raise ValueError('x')")
    resp = server.execute(failing, **fields)
    assert assert_error(resp, 422, "RUNTIME_ERROR", ran=True).keys() == RUNTIME_KEYS


def test_max_output_files(small_server):
    """--max-output-files 2: two files returned, the other paths in files_omitted."""
    script = src("""
        def main():
            for name in ("d.txt", "b.txt", "a.txt", "c.txt"):
                open(name, "w").write(name)
            return 1
        """)
    body = run_ok(small_server, script, return_files=True)
    files = returned(body)
    omitted = body.get("files_omitted")
    assert len(files) == 2 and isinstance(omitted, list), body
    assert omitted == sorted(omitted, key=lambda p: p.encode()), body
    assert not set(files) & set(omitted), body
    assert set(files) | set(omitted) == {"a.txt", "b.txt", "c.txt", "d.txt"}, body
    assert all(files[n] == n.encode() for n in files)
    assert "files_truncated" not in body, body


def test_output_files_limit(small_server):
    """--output-files-limit 1000: a 5000-byte file is omitted (listed), a small one that
    comes after it in the order is still returned."""
    script = src("""
        def main():
            open("a_large.bin", "wb").write(b"L" * 5000)
            open("b_small.txt", "w").write("small")
            return 1
        """)
    body = run_ok(small_server, script, return_files=True)
    assert returned(body) == {"b_small.txt": b"small"}
    assert body.get("files_omitted") == ["a_large.bin"], body
    assert "files_truncated" not in body, body


@pytest.mark.parametrize("value", ["true", 1, 0, [], {}], ids=["str", "one", "zero", "list", "obj"])
def test_return_files_wrong_type(server, value):
    """return_files must be a boolean: else 400."""
    bad_request(server.execute("def main():\n    return 1\n", return_files=value))


# -- nothing changes without the new fields ------------------------------------------------


@pytest.mark.parametrize("script, status, keys", [
    ("def main():\n    open('x', 'w').write('x')\n    return 1\n", 200, SUCCESS_KEYS),
    ("def main():\n    raise ValueError('v')\n", 422, RUNTIME_KEYS),
    ("def main():\n    return {1}\n", 422, UNSERIALIZABLE_KEYS),
], ids=["success", "runtime-error", "not-serializable"])
def test_requests_without_new_fields_answer_as_before(server, script, status, keys):
    """A request of only the old fields gets exactly the old keys."""
    resp = server.post({"script": script, "timeout": 5})
    assert resp.status == status and isinstance(resp.json, dict), resp
    assert resp.json.keys() == keys, resp.json


def test_unknown_field_is_still_rejected(server):
    """The new fields do not open the door to others."""
    bad_request(server.execute("def main():\n    return 1\n", stdin="", std_in=""))


def test_scripts_name_files_in_utf8(server):
    """A script opens, lists and returns non-ASCII file names as text (Python's UTF-8 mode
    in the sandbox: with the ASCII file-system encoding, open("é.txt") raised)."""
    script = src("""
        import os
        def main():
            with open("caf\\u00e9 \\u2603.txt", "w") as f:
                f.write("x")
            return sorted(os.listdir("."))
        """)
    body = run_ok(server, script, return_files=True)
    assert "caf\u00e9 \u2603.txt" in body["result"]
    assert returned(body) == {"caf\u00e9 \u2603.txt": b"x"}


def test_metrics_count_the_bytes_in_and_out(server):
    """/metrics counts the bytes of input files (decoded), stdin and returned files."""
    from .conftest import metric
    names = ("pyexecd_input_file_bytes_total", "pyexecd_stdin_bytes_total",
             "pyexecd_output_file_bytes_total")
    before = [metric(server, n) for n in names]
    run_ok(server, "def main():\n    open('o', 'wb').write(b'x' * 1000)\n",
           files=[entry("a", b64(b"\0" * 300), "base64"), entry("b", "hi")],
           stdin="12345", return_files=True)
    after = [metric(server, n) for n in names]
    assert [a - b for a, b in zip(after, before)] == [302, 5, 1000]
