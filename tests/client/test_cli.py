"""`python3 -m pyexecd_client run`: the request's fields from the command line, the body
printed as the service sent it, and `pyexecd exec`'s exit statuses (0 success, 1 the
script's or the request's error, 2 the service's), compared with exec itself."""

import json
import subprocess
import sys

import pytest
from pyexecd_testing import clean_env

from .conftest import BINARY, KEY, OVERLOADED_BODY, Reply, client_env, free_port


def run_cli(*args, stdin=None, cwd=None, **env):
    return subprocess.run([sys.executable, "-m", "pyexecd_client", "run", *args],
                          input=stdin, capture_output=True, cwd=cwd, env=client_env(**env),
                          timeout=300)


def run_exec(*args, stdin=None, cwd=None):
    return subprocess.run([BINARY, "exec", "--preload", "", *args], input=stdin,
                          capture_output=True, cwd=cwd, env=clean_env(), timeout=300)


def body(proc):
    """The one JSON object the command printed."""
    assert proc.stdout.endswith(b"\n") and proc.stdout.count(b"\n") == 1, proc
    return json.loads(proc.stdout)


def test_every_field_from_the_command_line(server, tmp_path):
    (tmp_path / "s.py").write_text(
        "import sys\ndef main(a, b=0):\n"
        "    open('out.txt', 'w').write(sys.stdin.read().upper())\n"
        "    return [a, b, open('in/d.csv').read(), open('sub/raw.bin', 'rb').read().hex()]\n")
    (tmp_path / "d.csv").write_bytes(b"x,y\n1,2\n")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "raw.bin").write_bytes(b"\0\xff")
    proc = run_cli("s.py", "--url", server.url, "--file", "in/d.csv=d.csv", "--file",
                   "sub/raw.bin", "--stdin", "-", "--arg", "7", "--kwarg", 'b=[1, "z"]',
                   "--return-files", "--timeout", "5", "--memory-mb", "128",
                   stdin=b"hello\n", cwd=tmp_path)
    assert proc.returncode == 0, proc
    out = body(proc)
    assert out["result"] == [7, [1, "z"], "x,y\n1,2\n", "00ff"]
    assert [f["path"] for f in out["files"]] == ["out.txt"]


def test_the_script_from_stdin_and_the_url_from_the_environment(server):
    proc = run_cli("-", stdin=b"def main():\n    return 'piped'\n", PYEXECD_URL=server.url)
    assert (proc.returncode, body(proc)["result"]) == (0, "piped"), proc


def test_the_api_key_from_the_environment(keyed_server, tmp_path):
    script = tmp_path / "s.py"
    script.write_text("def main():\n    return 1\n")
    refused = run_cli(str(script), "--url", keyed_server.url)
    assert (refused.returncode, body(refused)["code"]) == (1, "UNAUTHORIZED")
    ok = run_cli(str(script), "--url", keyed_server.url, PYEXECD_API_KEY=KEY)
    assert (ok.returncode, body(ok)["result"]) == (0, 1), ok


SCRIPTS = {
    "success": "def main():\n    return 1\n",
    "runtime error": "def main():\n    return 1 / 0\n",
    "syntax error": "def main(:\n    pass\n",
    "missing main": "x = 1\n",
    "crash": "import ctypes\ndef main():\n    ctypes.string_at(0)\n",
}


@pytest.mark.parametrize("name", sorted(SCRIPTS))
def test_exit_status_is_execs(server, tmp_path, name):
    script = tmp_path / "s.py"
    script.write_text(SCRIPTS[name])
    ours, theirs = run_cli(str(script), "--url", server.url), run_exec(str(script))
    assert ours.returncode == theirs.returncode, (ours, theirs)
    assert body(ours).get("code") == body(theirs).get("code")
    assert ours.returncode == (0 if name == "success" else 1)


def test_a_refused_request_is_status_1_as_with_exec(server, tmp_path):
    script = tmp_path / "s.py"
    script.write_text("def main():\n    return 1\n")
    (tmp_path / "d").write_text("x")
    args = ("--file", f"../d={tmp_path / 'd'}", str(script))
    ours, theirs = run_cli(*args, "--url", server.url), run_exec(*args)
    assert (ours.returncode, theirs.returncode) == (1, 1), (ours, theirs)
    assert body(ours)["code"] == body(theirs)["code"] == "INVALID_REQUEST"
    assert body(ours)["error"] == body(theirs)["error"]


@pytest.mark.parametrize("args, needle", [
    (("--arg", "{bad"), "--arg {bad: not a JSON value"),
    (("--kwarg", "nameless"), "--kwarg nameless: not NAME=JSON"),
])
def test_an_argument_that_cannot_be_sent_is_status_1(tmp_path, args, needle):
    script = tmp_path / "s.py"
    script.write_text("def main(*a, **k):\n    return a\n")
    # Nothing listens at the URL: the request is refused before any connection.
    proc = run_cli(*args, str(script), "--url", f"http://127.0.0.1:{free_port()}")
    assert (proc.returncode, proc.stdout) == (1, b""), proc
    assert needle in proc.stderr.decode()


def test_an_unreadable_file_is_status_2_as_with_exec(server, tmp_path):
    script = tmp_path / "s.py"
    script.write_text("def main():\n    return 1\n")
    args = ("--file", str(tmp_path / "absent"), str(script))
    ours, theirs = run_cli(*args, "--url", server.url), run_exec(*args)
    assert (ours.returncode, ours.stdout) == (theirs.returncode, theirs.stdout) == (2, b"")
    assert "absent" in ours.stderr.decode()


def test_no_answer_is_status_2(tmp_path):
    script = tmp_path / "s.py"
    script.write_text("def main():\n    return 1\n")
    url = f"http://127.0.0.1:{free_port()}"
    proc = run_cli(str(script), "--url", url)
    assert (proc.returncode, proc.stdout) == (2, b""), proc
    assert f"cannot connect to {url}" in proc.stderr.decode()


@pytest.mark.parametrize("reply", [
    Reply(503, OVERLOADED_BODY, {"Retry-After": "0"}),
    Reply(500, {"error": "Internal error: x", "code": "INTERNAL", "request_id": "r"}),
])
def test_a_service_error_is_status_2_and_printed(stub, tmp_path, reply):
    s = stub(reply)
    script = tmp_path / "s.py"
    script.write_text("def main():\n    return 1\n")
    proc = run_cli(str(script), "--url", s.url, "--retries", "1")
    assert proc.returncode == 2, proc
    assert proc.stdout == reply.body + b"\n"
    assert len(s.requests) == (2 if reply.status == 503 else 1)


def test_the_body_is_printed_as_the_service_sent_it(stub, tmp_path):
    raw = b'{"result":1.10,"stdout":"","stderr":"","duration_ms":1}'
    s = stub(Reply(200, raw))
    script = tmp_path / "s.py"
    script.write_text("def main():\n    return 1\n")
    proc = run_cli(str(script), "--url", s.url)
    assert (proc.returncode, proc.stdout) == (0, raw + b"\n")
    sent = json.loads(s.requests[0][3])
    assert sent == {"script": "def main():\n    return 1\n"}


def test_usage_errors_are_status_2():
    for args in (("-", "--stdin", "-"), ("--retries", "-1", "s.py"), ("s.py", "--url", "x")):
        proc = run_cli(*args, stdin=b"")
        assert proc.returncode == 2, (args, proc)
        assert b"usage:" in proc.stderr, (args, proc)
