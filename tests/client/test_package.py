"""pyexecd_client without a service: the installed package, its typing, the parsing of
answers (figures included, which the service may not send yet), saving returned files,
building request bodies, run_function's script, Retry-After."""

import base64
import datetime
import importlib.metadata
import re
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import pytest

import pyexecd_client
from pyexecd_client import (ERROR_CLASSES, Client, Execution, ExecutionError, Figure,
                            OutputFile, ServiceError, error_class, function_script,
                            request_body)
from pyexecd_client.client import retry_after_seconds

from .conftest import REPO, site_dir


def test_the_installed_copy_is_the_one_tested():
    site = site_dir()
    assert Path(pyexecd_client.__file__).resolve().is_relative_to(site.resolve())
    assert (site / "pyexecd_client" / "py.typed").is_file()
    assert importlib.metadata.version("pyexecd-client") == pyexecd_client.__version__


def service_codes():
    """{code: HTTP status} of the service's one status table."""
    text = (REPO / "src" / "api" / "status.c").read_text()
    return {code: int(status)
            for code, status in re.findall(r'\{"([A-Z_]+)", (\d+)\}', text)}


def test_every_error_code_of_the_service_has_its_class():
    codes = service_codes()
    assert len(codes) > 10, codes  # the table was read
    # OK is no error; CLIENT_CLOSED is logged for a client that has gone: none receives it.
    expected = {c: s for c, s in codes.items() if c not in ("OK", "CLIENT_CLOSED")}
    assert set(ERROR_CLASSES) == set(expected)
    for code, status in expected.items():
        cls = error_class(code)
        assert cls.CODE == code and issubclass(cls, ExecutionError)
        assert issubclass(cls, ServiceError) == (status >= 500), code
        e = cls({"error": "m", "code": code}, status)
        assert (e.code, e.status, e.message) == (code, status, "m")
    assert error_class("SOMETHING_NEW") is ExecutionError


TYPED_USE = '''
from pyexecd_client import Client, Execution, OutputFile, ScriptRuntimeError

client = Client("http://localhost:8080", api_key="k", timeout=5.0)
run: Execution = client.execute("def main():\\n    return 1", files={"a": b"x"}, args=[1])
files: list[OutputFile] = run.files
png: bytes = run.figures[0].png_bytes() if run.figures else b""
try:
    client.execute("x")
except ScriptRuntimeError as e:
    where: str | None = e.traceback
wrong: int = run.duration_ms
'''


def test_the_package_is_typed(tmp_path):
    """mypy sees the package's types through py.typed: one error, on the last line's float
    assigned to an int (without py.typed, mypy would refuse to look at the package)."""
    use = tmp_path / "use.py"
    use.write_text(TYPED_USE)
    proc = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-incremental", "--cache-dir",
         str(tmp_path / "cache"), "--python-executable", sys.executable, str(use)],
        capture_output=True, text=True, cwd=tmp_path, timeout=600,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(site_dir())})
    errors = [line for line in proc.stdout.splitlines() if ": error:" in line]
    last = len(TYPED_USE.strip("\n").splitlines()) + 1
    assert len(errors) == 1 and f"use.py:{last}:" in errors[0], proc.stdout + proc.stderr
    assert 'expression has type "float"' in errors[0], errors


def tiny_png(width, height):
    """A valid PNG of width x height grey pixels."""
    def chunk(kind, data):
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data)))
    raw = b"".join(b"\0" + b"\x80" * width for _ in range(height))
    return (b"\x89PNG\r\n\x1a\n"
            + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def b64(data):
    return base64.b64encode(data).decode()


OK = {"result": {"n": 3}, "stdout": "hi\n", "stderr": "", "duration_ms": 1.7}


def test_a_plain_answer_has_empty_files_and_figures():
    run = Execution.from_response(OK, "rid")
    assert (run.result, run.stdout, run.stderr, run.duration_ms) == ({"n": 3}, "hi\n", "", 1.7)
    assert run.files == [] and run.figures == [] and run.files_omitted == []
    assert not run.files_truncated and not run.figures_truncated
    assert run.request_id == "rid" and run.response == OK


def test_figures_are_parsed_and_give_their_png():
    png = tiny_png(3, 2)
    run = Execution.from_response({
        **OK,
        "figures": [{"format": "png", "width": 3, "height": 2, "content": b64(png)},
                    {"format": "png", "width": 640, "height": 480, "content": b64(png)}],
        "figures_truncated": True})
    assert [(f.format, f.width, f.height) for f in run.figures] == [("png", 3, 2),
                                                                     ("png", 640, 480)]
    assert run.figures[0].png_bytes() == png and run.figures_truncated
    assert run.figures[0]._repr_png_() == png


def test_figure_png_bytes_refuses_what_is_not_png(tmp_path):
    for fig in (Figure("svg", 1, 1, b"<svg/>"), Figure("png", 1, 1, b"GIF89a")):
        with pytest.raises(ValueError, match="not a PNG"):
            fig.png_bytes()
        with pytest.raises(ValueError):
            fig.save(tmp_path / "f.png")
    assert not (tmp_path / "f.png").exists()


@pytest.mark.parametrize("figure", [
    {"format": "png", "width": 1, "height": 1, "content": "not base64!"},
    {"format": "png", "width": 1, "height": 1, "content": "iVBORw0KGgo"},  # no padding
    {"format": "png", "width": "1", "height": 1, "content": ""},
    {"format": "png", "width": True, "height": 1, "content": ""},
    {"width": 1, "height": 1, "content": ""},
    "png",
])
def test_a_malformed_figure_is_refused(figure):
    with pytest.raises(ValueError):
        Execution.from_response({**OK, "figures": [figure]})


def test_returned_files_are_decoded():
    data = bytes(range(256))
    run = Execution.from_response({
        **OK, "files": [{"path": "out/a.bin", "size": 256, "encoding": "base64",
                         "content": b64(data)}],
        "files_omitted": ["big.bin"], "files_truncated": True})
    [f] = run.files
    assert (f.path, f.size, f.content) == ("out/a.bin", 256, data)
    assert run.files_omitted == ["big.bin"] and run.files_truncated
    assert OutputFile("t", "é\n".encode(), 3).text() == "é\n"


@pytest.mark.parametrize("entry", [
    {"path": "a", "size": 2, "encoding": "base64", "content": b64(b"x")},
    {"path": "a", "size": 1, "encoding": "utf-8", "content": "x"},
    {"path": "a", "size": 1, "encoding": "base64", "content": "eA"},
    {"size": 1, "encoding": "base64", "content": b64(b"x")},
])
def test_a_malformed_file_is_refused(entry):
    with pytest.raises(ValueError):
        Execution.from_response({**OK, "files": [entry]})


@pytest.mark.parametrize("response", [
    {"stdout": "", "stderr": "", "duration_ms": 1},
    {"result": 1, "stdout": None, "stderr": "", "duration_ms": 1},
    {"result": 1, "stdout": "", "stderr": "", "duration_ms": "1"},
    {**OK, "files": {"a": 1}},
    {**OK, "files_omitted": [1]},
])
def test_a_malformed_success_is_refused(response):
    with pytest.raises(ValueError):
        Execution.from_response(response)


# -- saving returned files: a path from the answer never leaves the directory -----------


@pytest.mark.parametrize("path", ["../x", "../../x", "{tmp}/abs", "a/../../x", "", "a//b",
                                  "./a", "a/.", "a/..", "a\0b"])
def test_save_refuses_a_path_that_leaves_the_directory(tmp_path, path):
    target = tmp_path / "d" / "e"
    target.mkdir(parents=True)
    with pytest.raises(ValueError, match="refusing to save"):
        OutputFile(path.format(tmp=tmp_path), b"owned", 5).save(target)
    written = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert written == [], written


def test_save_writes_below_the_directory(tmp_path):
    run = Execution.from_response({**OK, "files": [
        {"path": "a/b/c.txt", "size": 2, "encoding": "base64", "content": b64(b"hi")},
        {"path": "top", "size": 0, "encoding": "base64", "content": ""}]})
    assert run.save_files(tmp_path) == [tmp_path / "a/b/c.txt", tmp_path / "top"]
    assert (tmp_path / "a/b/c.txt").read_bytes() == b"hi"
    assert (tmp_path / "top").read_bytes() == b""


# -- request bodies --------------------------------------------------------------------


def body_of(script="def main():\n    return 1", **fields):
    import json
    return json.loads(request_body(script, **fields).decode("utf-8"))


def test_absent_fields_are_not_sent():
    assert body_of() == {"script": "def main():\n    return 1"}
    assert body_of(return_files=False) == body_of()


def test_every_field_is_sent(tmp_path):
    local = tmp_path / "local.bin"
    local.write_bytes(b"\0\1\2")
    body = body_of(files={"a.txt": "é", "b.bin": b"\xff\x00", "c.bin": local},
                   stdin="in", args=(1, "two"), kwargs={"k": [None]}, return_files=True,
                   timeout=2.5, memory_mb=64)
    assert body["files"] == [
        {"path": "a.txt", "content": "é", "encoding": "utf-8"},
        {"path": "b.bin", "content": b64(b"\xff\x00"), "encoding": "base64"},
        {"path": "c.bin", "content": b64(b"\0\1\2"), "encoding": "base64"}]
    assert (body["stdin"], body["args"], body["kwargs"]) == ("in", [1, "two"], {"k": [None]})
    assert (body["return_files"], body["timeout"], body["memory_mb"]) == (True, 2.5, 64)


def test_wire_file_entries_are_sent_as_they_are():
    entries = [{"path": "x", "content": "eA==", "encoding": "base64"}, {"path": "y",
                                                                        "content": "y"}]
    assert body_of(files=entries)["files"] == entries


def test_stdin_bytes_must_be_utf8():
    assert body_of(stdin="é".encode())["stdin"] == "é"
    with pytest.raises(ValueError, match="UTF-8"):
        request_body("x", stdin=b"\xff")


@pytest.mark.parametrize("fields, error", [
    ({"args": "abc"}, TypeError),
    ({"kwargs": {1: 2}}, TypeError),
    ({"args": [{1, 2}]}, TypeError),
    ({"args": [float("nan")]}, ValueError),
    ({"files": {"a": 3}}, TypeError),
    ({"files": "a.txt"}, TypeError),
    ({"files": [("a", "b")]}, TypeError),
    ({"stdin": 5}, TypeError),
])
def test_what_cannot_be_sent_is_refused_here(fields, error):
    with pytest.raises(error):
        request_body("def main():\n    return 1", **fields)


# -- run_function ----------------------------------------------------------------------


def top_level(a, b=2, *, c=3):
    import math
    return math.prod([a, b, c])


def decorator(fn):
    return fn


@decorator
def decorated():
    return 1


async def asynchronous():
    return 1


def test_function_script_defines_main_from_the_source():
    script = function_script(top_level)
    namespace = {}
    exec(compile(script, "<script>", "exec"), namespace)  # noqa: S102 - our own test source
    assert namespace["main"](5, c=7) == 70
    assert script.startswith("def top_level(a, b=2, *, c=3):\n")


def test_function_script_refuses_what_does_not_stand_alone():
    def nested():
        return 1

    class Holder:
        def method(self):
            return 1

    for fn, error in ((lambda: 1, ValueError), (nested, ValueError),
                      (Holder.method, ValueError), (Holder().method, TypeError),
                      (decorated, ValueError), (asynchronous, TypeError), (len, TypeError),
                      ("def main(): pass", TypeError)):
        with pytest.raises(error):
            function_script(fn)


# -- Retry-After, URLs, keys -----------------------------------------------------------


def test_retry_after_is_read_as_seconds_or_a_date():
    now = datetime.datetime(2026, 12, 7, 12, 0, 0, tzinfo=datetime.timezone.utc)
    assert retry_after_seconds("1") == 1.0
    assert retry_after_seconds(" 120 ") == 120.0
    assert retry_after_seconds("Mon, 07 Dec 2026 12:00:10 GMT", now) == 10.0
    assert retry_after_seconds("Mon, 07 Dec 2026 11:00:00 GMT", now) == 0.0
    for bad in (None, "", "soon", "-1", "1.5", "\u0661"):
        assert retry_after_seconds(bad, now) is None, bad


@pytest.mark.parametrize("url", ["localhost:8080", "ftp://h/", "http://", "http://h:x/",
                                 "http://h/?q=1", "http://h/#f", "http://u:p@h/"])
def test_a_bad_url_is_refused(url):
    with pytest.raises(ValueError, match="not a service URL"):
        Client(url)


@pytest.mark.parametrize("key", ["", "a b", "k\r\nX-Injected: 1", "é"])
def test_a_bad_api_key_is_refused(key):
    with pytest.raises(ValueError, match="api_key"):
        Client("http://127.0.0.1:1", api_key=key)
