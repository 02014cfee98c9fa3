"""Scripts that attack the harness that runs them, and the process model
around it: none of them may forge a result, break the service, or outlive
their request."""

import json
import signal
import time
from pathlib import Path

import pytest

from .conftest import (DEFAULT_OUTPUT_LIMIT, assert_error, assert_still_serving,
                       find_zygotes, parse_log_line, run_ok, unique_marker)

# -- the script cannot forge or hide its result ----------------------------------------


def test_write_to_original_stdout(server):
    script = 'import sys\ndef main():\n    sys.__stdout__.write("x")\n    sys.__stdout__.flush()\n    return 5\n'
    body = run_ok(server, script)
    assert "x" in body["stdout"]
    assert body["result"] == 5
    assert_still_serving(server)


def test_replaced_sys_stdout(server):
    script = ('import io, sys\ndef main():\n    sys.stdout = io.StringIO()\n'
              '    print("hidden")\n    return "real"\n')
    body = run_ok(server, script)
    assert body["result"] == "real"
    assert "hidden" not in body["stdout"]
    assert_still_serving(server)


FORGED = '{"result": "forged", "stdout": "", "stderr": "", "duration_ms": 1}'


@pytest.mark.parametrize("how", [
    f"print('{FORGED}')",
    f"print('{FORGED}', flush=True)",
    f"import os; os.write(1, b'{FORGED}\\n')",
    f"import sys; sys.stderr.write('{FORGED}\\n')",
], ids=["print", "print-flush", "fd1", "stderr"])
def test_forged_json_output(server, how):
    script = f"def main():\n    {how}\n    return {{'real': True}}\n"
    body = run_ok(server, script)
    assert body["result"] == {"real": True}
    assert '"forged"' in body["stdout"] + body["stderr"]
    assert_still_serving(server)


@pytest.mark.parametrize("script,name", [
    ("def main():\n    raise SystemExit(3)\n", "SystemExit"),
    ("raise SystemExit(3)\ndef main():\n    return 1\n", "SystemExit"),
    ("import sys\ndef main():\n    sys.exit(0)\n", "SystemExit"),
    ("def main():\n    raise KeyboardInterrupt\n", "KeyboardInterrupt"),
    ("def main():\n    raise BaseException('x')\n", "BaseException"),
    ("class Custom(BaseException):\n    pass\ndef main():\n    raise Custom('y')\n", "Custom"),
], ids=["systemexit-main", "systemexit-module", "sys-exit-0", "keyboardinterrupt",
        "baseexception", "baseexception-subclass"])
def test_base_exceptions_are_runtime_errors(server, script, name):
    body = assert_error(server.execute(script), 422, "RUNTIME_ERROR", ran=True)
    assert name in body["error"], body
    assert_still_serving(server)


@pytest.mark.parametrize("status", [0, 3])
def test_os_exit_in_main(server, status):
    script = f"import os\ndef main():\n    print('partial', flush=True)\n    os._exit({status})\n"
    body = assert_error(server.execute(script), 422, "RUNTIME_ERROR", ran=True)
    message = body["error"].lower()
    assert "exit" in message and "main()" in message, body
    assert_still_serving(server)


@pytest.mark.parametrize("fd", [0, 1, 2])
def test_closing_standard_fds(server, fd):
    script = f"import os\ndef main():\n    os.close({fd})\n    print('after close')\n    return 'survived'\n"
    body = run_ok(server, script)
    assert body["result"] == "survived"
    assert_still_serving(server)


def test_closing_every_other_fd(server):
    """Not a documented outcome beyond 'the service is not harmed': the
    answer must be one of the documented ones and never a forged result."""
    script = "import os\ndef main():\n    os.closerange(3, 65536)\n    return 'closed'\n"
    resp = server.execute(script)
    assert resp.status in (200, 422), resp
    assert isinstance(resp.json, dict), resp
    if resp.status == 200:
        assert resp.json["result"] == "closed"
    assert_still_serving(server)


def test_writing_forged_frames_to_every_fd(server):
    """Not a documented outcome beyond 'no forgery': whatever the script
    writes to descriptors it finds, the answer never carries its forgery."""
    script = ("import os\ndef main():\n"
              "    for fd in range(3, 256):\n"
              "        for frame in (b'{\"status\":\"ok\"}\\n\"forged\"', b'{\"result\":\"forged\"}'):\n"
              "            try:\n"
              "                os.write(fd, frame)\n"
              "            except OSError:\n"
              "                pass\n"
              "    return 'real'\n")
    resp = server.execute(script)
    assert resp.status in (200, 422), resp
    assert isinstance(resp.json, dict), resp
    assert "forged" not in json.dumps(resp.json.get("result")), resp
    if resp.status == 200:
        assert resp.json["result"] == "real"
    assert_still_serving(server)


def send_frame_then_sleep(frame: bytes):
    """A script that writes [u64 length][frame] on the result channel (fd 3) and sleeps:
    the service ends the request at the frame and kills the sandbox (SIGKILL)."""
    return ("import os, struct, time\ndef main():\n"
            f"    frame = {frame!r}\n"
            "    os.write(3, struct.pack('=Q', len(frame)) + frame)\n"
            "    time.sleep(30)\n"
            "    return 'slept'\n")


@pytest.mark.parametrize("frame", [b"garbage\n", b""], ids=["garbage", "empty"])
def test_complete_corrupt_frame_is_blamed_on_the_channel(server, frame):
    # The SIGKILL in the sandbox's status is the service's own (the frame ended the
    # request), not a crash of the script; and without a status (cgroup.kill answers at
    # once) an empty frame is still the script's doing, not INTERNAL.
    body = assert_error(server.execute(send_frame_then_sleep(frame)),
                        422, "RUNTIME_ERROR", ran=True)
    assert "private result channel" in body["error"], body
    assert "signal" not in body, body
    assert_still_serving(server)


def test_frame_with_a_nul_key_is_not_json_serializable(server):
    # Well-formed, and a result main() could have returned: it gets the contract's answer
    # for such a result, not the blame for a corrupt frame.
    frame = b'{"status":"ok"}\n{"k\\u0000":1}'
    body = assert_error(server.execute(send_frame_then_sleep(frame)),
                        422, "NOT_JSON_SERIALIZABLE", ran=True)
    assert "NUL" in body["error"], body
    assert_still_serving(server)


# -- nothing outlives its request ---------------------------------------------------------


def test_background_process_does_not_hold_the_response(server):
    script = ('import subprocess\ndef main():\n'
              '    p = subprocess.Popen(["sleep", "30"])\n    return p.pid > 0\n')
    assert run_ok(server, script, timeout=5)["result"] is True
    assert_still_serving(server)


@pytest.mark.parametrize("daemon", [True, False])
def test_background_thread_does_not_hold_the_response(server, daemon):
    script = ('import threading, time\ndef main():\n'
              f'    threading.Thread(target=time.sleep, args=(30,), daemon={daemon}).start()\n'
              '    return "returned"\n')
    assert run_ok(server, script, timeout=5)["result"] == "returned"


def test_stdout_flood_hits_the_default_output_limit(server):
    script = 'def main():\n    while True:\n        print("x" * 1000)\n'
    body = assert_error(server.execute(script), 422, "OUTPUT_LIMIT", ran=True)
    assert body.get("truncated") is True, {k: v for k, v in body.items() if k != "stdout"}
    assert 0 < len(body["stdout"]) <= DEFAULT_OUTPUT_LIMIT
    assert_still_serving(server)


def test_requests_after_a_timeout_and_a_crash(server):
    assert_error(server.execute("while True:\n    pass\n", timeout=1), 422, "TIMEOUT", ran=True)
    assert_error(server.execute("import ctypes\ndef main():\n    ctypes.string_at(0)\n"),
                 422, "CRASHED")
    for _ in range(3):
        assert_still_serving(server)


# -- the zygote ------------------------------------------------------------------------


@pytest.mark.needs_process("reads the zygotes' /proc entries")
def test_zygote_is_single_threaded(server):
    # Make the zygote fork a few sandboxes that use numpy and pandas first.
    run_ok(server, "import numpy, pandas\ndef main():\n    return float(numpy.ones(3).sum())\n")
    for zygote in find_zygotes(server.pid):
        status_text = Path(f"/proc/{zygote}/status").read_text()
        assert "Threads:\t1\n" in status_text, status_text


def proc_stat(pid):
    """The fields of /proc/<pid>/stat after the command name (state first,
    start time at index 19), or None once the process is gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except FileNotFoundError:
        return None


def test_sigterm_stops_the_server_and_its_zygote(start_server):
    srv = start_server(shared_ok=False)
    zygote = find_zygotes(srv.pid)[0]
    start_time = proc_stat(zygote)[19]

    def zygote_alive():
        stat = proc_stat(zygote)
        return stat is not None and stat[19] == start_time and stat[0] != "Z"

    assert srv.stop() != -signal.SIGKILL, "pyexecd did not exit on SIGTERM"
    deadline = time.monotonic() + 10
    while zygote_alive() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not zygote_alive(), f"zygote {zygote} outlived the server"


# -- logs ---------------------------------------------------------------------------------


@pytest.mark.parametrize("template", [
    "def main():\n    # {m}\n    return 1\n",
    "def main():\n    raise ValueError('boom')  # {m}\n",
    "# {m}\ndef main(:\n    pass\n",
    "# {m}\nx = 1\n",
    "def main():\n    return '{m}'[:3]\n",
], ids=["success", "runtime-error", "syntax-error", "missing-main", "string-literal"])
@pytest.mark.needs_process("reads the server's log")
def test_logs_never_contain_script_source(server, template):
    marker = unique_marker()
    resp = server.execute(template.format(m=marker))
    assert resp.status in (200, 400, 422), resp
    # Give the request's own log lines a bounded chance to arrive first.
    server.wait_for_log(resp.headers.get("x-request-id", marker))
    leaked = [line for line in server.log_lines if marker in line]
    assert not leaked, leaked


@pytest.mark.needs_process("reads the server's log")
def test_log_lines_are_json_objects(server):
    run_ok(server, "def main():\n    return 1\n")
    assert server.log_lines
    for line in list(server.log_lines):
        record = parse_log_line(line)
        assert record is not None, f"not a JSON object: {line!r}"
        assert isinstance(record.get("message"), str), line
