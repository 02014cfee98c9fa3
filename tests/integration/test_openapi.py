"""GET /openapi.json is the contract, and the real responses match it for every row."""

import os
import re
import signal
import threading

import pytest
from jsonschema import Draft202012Validator, RefResolver

from .conftest import wait_until_running


ROWS = {
    "OK": ({"script": "def main():\n    return {'a': [1, 2.5, None]}\n"}, 200),
    "INVALID_REQUEST": ({"script": 1}, 400),
    "SYNTAX_ERROR": ({"script": "def main(:\n    pass\n"}, 400),
    "MISSING_MAIN": ({"script": "x = 1\n"}, 400),
    "RUNTIME_ERROR": ({"script": "def main():\n    return 1 / 0\n"}, 422),
    "NOT_JSON_SERIALIZABLE": ({"script": "def main():\n    return {1, 2}\n"}, 422),
    "TIMEOUT": ({"script": "def main():\n    while True: pass\n", "timeout": 0.3}, 422),
    "MEMORY_LIMIT": ({"script": "def main():\n    return list(range(100000000))\n"}, 422),
    "OUTPUT_LIMIT": ({"script": "def main():\n    while True: print('x' * 1000)\n"}, 422),
    "CRASHED": ({"script": "import ctypes\ndef main():\n    ctypes.string_at(0)\n"}, 422),
}


@pytest.fixture(scope="module")
def spec(server):
    resp = server.get("/openapi.json")
    assert resp.status == 200 and resp.headers["content-type"] == "application/json"
    doc = resp.json
    assert doc["openapi"].startswith("3.1")
    return doc


def validate(doc, path, method, resp):
    schema = doc["paths"][path][method]["responses"][str(resp.status)]["content"][
        "application/json"]["schema"]
    Draft202012Validator(schema, resolver=RefResolver.from_schema(doc)).validate(resp.json)


@pytest.mark.parametrize("row", list(ROWS))
def test_execute_rows_match_the_contract(server, spec, row):
    body, status = ROWS[row]
    resp = server.post(body)
    assert resp.status == status, resp
    if row != "OK":
        assert resp.json["code"] == row
    validate(spec, "/execute", "post", resp)


def test_transport_rows_match_the_contract(server, spec):
    too_big = server.post(b"{" + b" " * (2 << 20) + b"}")
    media = server.post({"script": "x"}, content_type="text/plain")
    missing = server.get("/nope")
    method = server.get("/execute")
    for resp, status in ((too_big, 413), (media, 415), (missing, 404), (method, 405)):
        assert resp.status == status, resp
        validate(spec, "/execute", "post", resp)
    validate(spec, "/health", "get", server.get("/health"))
    validate(spec, "/ready", "get", server.get("/ready"))


def test_unauthorized_overloaded_internal_match_the_contract(start_server, spec, tmp_path):
    keys = tmp_path / "keys"
    keys.write_text("k\n")
    srv = start_server("--api-keys-file", str(keys), "--concurrency", "1", "--pool-size", "0",
                       "--queue-size", "0", shared_ok=False)
    auth = {"Authorization": "Bearer k"}
    unauthorized = srv.post(ROWS["OK"][0])
    assert unauthorized.status == 401
    validate(spec, "/execute", "post", unauthorized)

    slow = {"script": "import time\ndef main():\n    time.sleep(3)\n    return 1\n"}
    out = {}
    t = threading.Thread(target=lambda: out.setdefault("r", srv.post(slow, headers=auth)))
    t.start()
    wait_until_running(srv)
    overloaded = srv.post(ROWS["OK"][0], headers=auth)
    assert overloaded.status == 503
    validate(spec, "/execute", "post", overloaded)

    # The zygote dies under the running request: INTERNAL, and the service recovers.
    zygote = max(int(m.group(1)) for line in srv.log_lines
                 for m in [re.search(r"zygote (\d+) ready", line)] if m)
    os.kill(zygote, signal.SIGKILL)
    t.join(timeout=30)
    assert out["r"].status == 500 and out["r"].json["code"] == "INTERNAL", out["r"]
    validate(spec, "/execute", "post", out["r"])
    srv.stop()
