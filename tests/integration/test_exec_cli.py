"""`pyexecd exec` with the request's other fields: --file, --stdin, --arg, --kwarg and
--return-files build the body an HTTP client would send, which then gets exactly the checks
of POST /execute."""

import base64
import json

from .conftest import run_binary

SCRIPT = ('import sys\n'
          'def main(a, b=0):\n'
          '    open("out.txt", "w").write(sys.stdin.read().upper())\n'
          '    return [a, b, open("in/d.csv").read()]\n')


def exec_json(*args, stdin=None):
    proc = run_binary("exec", "--preload", "", *args, stdin=stdin)
    return proc.returncode, json.loads(proc.stdout.decode()), proc.stderr.decode()


def test_every_field_from_the_command_line(tmp_path):
    script = tmp_path / "s.py"
    script.write_text(SCRIPT)
    data = tmp_path / "d.csv"
    data.write_bytes(b"x,y\n1,2\n")
    status, body, err = exec_json("--file", f"in/d.csv={data}", "--stdin", "-", "--arg", "7",
                                  "--kwarg", 'b=[1, "z"]', "--return-files", str(script),
                                  stdin=b"hello\n")
    assert status == 0, (body, err)
    assert body["result"] == [7, [1, "z"], "x,y\n1,2\n"]
    [out] = body["files"]
    assert out["path"] == "out.txt" and base64.b64decode(out["content"]) == b"HELLO\n"


def test_file_keeps_its_relative_path(tmp_path, monkeypatch):
    """--file PATH without DEST= puts the file at PATH (relative to the working directory)."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "f.bin").write_bytes(bytes(range(256)))
    script = tmp_path / "s.py"
    script.write_text("def main():\n    return list(open('sub/f.bin', 'rb').read()[:3])\n")
    status, body, err = exec_json("--file", "sub/f.bin", str(script))
    assert (status, body["result"]) == (0, [0, 1, 2]), (body, err)


def test_bad_inputs_are_the_requests_errors(tmp_path):
    script = tmp_path / "s.py"
    script.write_text("def main(*a):\n    return a\n")
    data = tmp_path / "d"
    data.write_text("x")
    for args, needle in (((f"--file=../d={data}",), 'files[0] ("../d")'),
                         (("--arg", "{bad"), "--arg {bad: not a JSON value"),
                         (("--kwarg", "nameless"), "--kwarg nameless: not NAME=JSON")):
        status, body, _ = exec_json(*args, str(script))
        assert status == 1 and body["code"] == "INVALID_REQUEST", body
        assert needle in body["error"], body


def test_unreadable_input_is_a_service_side_failure(tmp_path):
    script = tmp_path / "s.py"
    script.write_text("def main():\n    return 1\n")
    proc = run_binary("exec", "--preload", "", "--file", str(tmp_path / "absent"), str(script))
    assert proc.returncode == 2 and proc.stdout == b""
    assert "absent" in proc.stderr.decode()


def test_script_and_stdin_cannot_both_be_stdin():
    proc = run_binary("exec", "--stdin", "-", "-", stdin=b"def main():\n    return 1\n")
    assert proc.returncode != 0
    assert "cannot both be read from stdin" in proc.stderr.decode()
