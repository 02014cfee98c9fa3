"""pyexecd_client against a real pyexecd: success and every field of a request, each error
code the service can be made to answer (its exception class and attributes), the API key,
a refused connection, run_function."""

import base64
import os
import re
import signal
import threading

import pytest
from pyexecd_testing import wait_until_running

from pyexecd_client import (Client, ConnectionFailedError, CrashedError, InternalServiceError,
                            InvalidRequestError, MemoryLimitError, MissingMainError,
                            NotFoundError, NotJsonSerializableError, OutputLimitError,
                            OverloadedError, PayloadTooLargeError, RequestError, ScriptError,
                            ScriptRuntimeError, ScriptSyntaxError, ScriptTimeoutError,
                            ServiceError, UnauthorizedError)

from .conftest import KEY, free_port

REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")


@pytest.fixture(scope="session")
def client(server):
    return Client(server.url)


def test_success_carries_every_field(client):
    run = client.execute("import sys\ndef main():\n    print('out')\n"
                         "    print('err', file=sys.stderr)\n    return {'n': [1, 2.5, None]}\n")
    assert run.result == {"n": [1, 2.5, None]}
    assert (run.stdout, run.stderr) == ("out\n", "err\n")
    assert isinstance(run.duration_ms, float) and run.duration_ms >= 0
    assert REQUEST_ID.fullmatch(run.request_id), run.request_id
    assert run.files == [] and run.figures == [] and run.files_omitted == []
    assert run.response["result"] == run.result


def test_stdin_args_and_kwargs(client):
    run = client.execute("def main(greeting, n=1):\n    name = input()\n"
                         "    return [greeting + ', ' + name] * n\n",
                         stdin="Ada\n", args=["Hello"], kwargs={"n": 2})
    assert run.result == ["Hello, Ada", "Hello, Ada"]
    run = client.execute("import sys\ndef main(*a, **k):\n    return [sys.stdin.read(), a, k]\n",
                         stdin="é\n".encode(), args=(1, [2]), kwargs={"x": {"y": None}})
    assert run.result == ["é\n", [1, [2]], {"x": {"y": None}}]


CHANGE_FILES = ("import os\n"
                "def main():\n"
                "    data = open('in/all.bin', 'rb').read()\n"
                "    os.makedirs('out', exist_ok=True)\n"
                "    open('out/reversed.bin', 'wb').write(data[::-1])\n"
                "    open('text.txt', 'a').write(' and more')\n"
                "    return [len(data), open('text.txt').read(),\n"
                "            len(open('local.bin', 'rb').read())]\n")


def test_files_go_in_and_come_back(client, tmp_path):
    local = tmp_path / "local.bin"
    local.write_bytes(bytes(range(256)) * 4)
    run = client.execute(CHANGE_FILES, return_files=True,
                         files={"in/all.bin": bytes(range(256)), "text.txt": "é",
                                "local.bin": local})
    assert run.result == [256, "é and more", 1024]
    # The unchanged inputs (in/all.bin, local.bin) are not returned; sorted by path.
    assert [(f.path, f.size) for f in run.files] == [("out/reversed.bin", 256),
                                                    ("text.txt", len("é and more".encode()))]
    assert run.files[0].content == bytes(range(256))[::-1]
    assert run.files[1].text() == "é and more"
    saved = run.save_files(tmp_path / "saved")
    assert saved == [tmp_path / "saved/out/reversed.bin", tmp_path / "saved/text.txt"]
    assert saved[0].read_bytes() == bytes(range(256))[::-1]


def test_wire_entries_go_in_as_they_are(client):
    run = client.execute(
        "def main():\n    return [open('a.txt').read(), open('b/c.bin', 'rb').read().hex()]\n",
        files=[{"path": "a.txt", "content": "plain"},
               {"path": "b/c.bin", "content": base64.b64encode(b"\0\xff").decode(),
                "encoding": "base64"}])
    assert run.result == ["plain", "00ff"]
    assert run.files == []  # not asked for


# -- each error code the service can be made to answer ----------------------------------


def test_syntax_error(client):
    with pytest.raises(ScriptSyntaxError) as info:
        client.execute("def main(:\n    pass")
    e = info.value
    assert (e.status, e.code, e.line, e.column) == (400, "SYNTAX_ERROR", 1, 10)
    assert isinstance(e, ScriptError) and "SyntaxError" in e.message
    assert REQUEST_ID.fullmatch(e.request_id)


def test_missing_main(client):
    with pytest.raises(MissingMainError) as info:
        client.execute("print('body ran')\ndef some_function():\n    return 1")
    e = info.value
    assert (e.status, e.code, e.stdout, e.stderr) == (400, "MISSING_MAIN", "body ran\n", "")


def test_runtime_error_carries_the_traceback_output_and_files(client):
    with pytest.raises(ScriptRuntimeError) as info:
        client.execute("def main():\n    print('before')\n    open('left.txt', 'w').write('x')\n"
                       "    return 1 / 0\n", return_files=True)
    e = info.value
    assert (e.status, e.code, e.stdout) == (422, "RUNTIME_ERROR", "before\n")
    assert e.message == "ZeroDivisionError: division by zero"
    assert e.traceback.startswith("Traceback") and 'File "<script>", line 4' in e.traceback
    assert e.traceback.rstrip("\n") in str(e)  # what an uncaught one prints
    assert [(f.path, f.content) for f in e.files] == [("left.txt", b"x")]
    assert isinstance(e.duration_ms, float)


def test_not_json_serializable(client):
    with pytest.raises(NotJsonSerializableError) as info:
        client.execute("def main():\n    return {1, 2}")
    assert (info.value.status, info.value.code) == (422, "NOT_JSON_SERIALIZABLE")
    assert "set" in info.value.message


def test_timeout(client):
    with pytest.raises(ScriptTimeoutError) as info:
        client.execute("def main():\n    print('started', flush=True)\n    while True: pass",
                       timeout=0.5)
    e = info.value
    assert (e.status, e.code, e.stdout) == (422, "TIMEOUT", "started\n")
    assert "0.5 s" in e.message


def test_memory_limit(client):
    with pytest.raises(MemoryLimitError) as info:
        client.execute("def main():\n    return len(bytearray(512 * 1024 * 1024))", memory_mb=64)
    assert (info.value.status, info.value.code) == (422, "MEMORY_LIMIT")
    assert info.value.message == "Memory limit exceeded"


def test_output_limit(start_server):
    srv = start_server("--output-limit", "1000")
    with pytest.raises(OutputLimitError) as info:
        Client(srv.url).execute("def main():\n    while True: print('x' * 100)")
    e = info.value
    assert (e.status, e.code, e.truncated) == (422, "OUTPUT_LIMIT", True)
    assert 0 < len(e.stdout) <= 1000 and set(e.stdout) <= {"x", "\n"}


def test_crashed(client):
    with pytest.raises(CrashedError) as info:
        client.execute("import ctypes\ndef main():\n    print('here', flush=True)\n"
                       "    ctypes.string_at(0)")
    e = info.value
    assert (e.status, e.code, e.signal, e.stdout) == (422, "CRASHED", "SIGSEGV", "here\n")


def test_invalid_request(client):
    with pytest.raises(InvalidRequestError) as info:
        client.execute("def main():\n    return 1", timeout=10_000)
    assert (info.value.status, info.value.code) == (400, "INVALID_REQUEST")
    assert "timeout" in info.value.message and isinstance(info.value, RequestError)
    with pytest.raises(InvalidRequestError, match=r'files\[1\] \("\.\./x"\)'):
        client.execute("def main():\n    return 1", files={"ok": "", "../x": ""})


def test_payload_too_large(start_server):
    """A body far over --max-body: the service answers from its Content-Length (and drains
    the rest for a moment; test_stub.py has a server that does not)."""
    srv = start_server("--max-body", "4096")
    with pytest.raises(PayloadTooLargeError) as info:
        Client(srv.url).execute("def main():\n    return 1", stdin="x" * (8 << 20))
    assert (info.value.status, info.value.code) == (413, "PAYLOAD_TOO_LARGE")
    assert "4096" in info.value.message


def test_not_found(server):
    with pytest.raises(NotFoundError) as info:
        Client(server.url + "/not/here").execute("def main():\n    return 1")
    assert (info.value.status, info.value.code) == (404, "NOT_FOUND")


def test_api_key(keyed_server):
    script = "def main():\n    return 'in'"
    for key in (None, "wrong-key"):
        with pytest.raises(UnauthorizedError) as info:
            Client(keyed_server.url, api_key=key).execute(script)
        assert (info.value.status, info.value.code) == (401, "UNAUTHORIZED")
    assert Client(keyed_server.url, api_key=KEY).execute(script).result == "in"


def test_overloaded_then_internal(start_server):
    """One sandbox, no queue: a second request while the first runs is OVERLOADED (not
    retried with max_retries=0); then the zygote is killed under the first: INTERNAL."""
    srv = start_server("--concurrency", "1", "--pool-size", "0", "--queue-size", "0",
                       shared_ok=False)
    client = Client(srv.url, max_retries=0)
    out = {}

    def slow():
        try:
            client.execute("import time\ndef main():\n    time.sleep(30)\n    return 1\n")
        except Exception as e:  # the test's thread reports what it got
            out["error"] = e

    t = threading.Thread(target=slow)
    t.start()
    wait_until_running(srv)
    with pytest.raises(OverloadedError) as info:
        client.execute("def main():\n    return 1")
    e = info.value
    assert (e.status, e.code, e.retry_after, e.attempts) == (503, "OVERLOADED", 1.0, 1)
    assert isinstance(e, ServiceError)

    zygotes = [int(m.group(1)) for line in srv.log_lines
               for m in [re.search(r"zygote (\d+) ready", line)] if m]
    assert zygotes, srv.stderr_text()
    os.kill(max(zygotes), signal.SIGKILL)
    t.join(timeout=60)
    assert not t.is_alive()
    e = out.get("error")
    assert isinstance(e, InternalServiceError), repr(e)
    assert (e.status, e.code) == (500, "INTERNAL")
    assert REQUEST_ID.fullmatch(e.request_id), e.request_id
    srv.stop()


def test_connection_refused():
    url = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(ConnectionFailedError) as info:
        Client(url).execute("def main():\n    return 1")
    e = info.value
    assert not e.sent and e.url == url
    assert str(e).startswith(f"cannot connect to {url}: ") and "refused" in str(e), e


# -- run_function ----------------------------------------------------------------------


def average(values, *, scale=1):
    import numpy as np
    print("n =", len(values))
    return float(np.mean(values)) * scale


def fails(x):
    return {"x": x}["y"]


def test_run_function(client):
    run = client.run_function(average, [1, 2, 3, 6], scale=10)
    assert (run.result, run.stdout) == (30.0, "n = 4\n")
    with pytest.raises(ScriptRuntimeError) as info:
        client.run_function(fails, 1)
    assert info.value.message == "KeyError: 'y'"
    assert "in fails" in info.value.traceback
