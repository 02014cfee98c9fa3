"""Routes other than the /execute contract itself, and what every response
carries."""

import threading

import pytest

from .conftest import TRIVIAL_SCRIPT, assert_error, assert_json_object, run_ok


def test_health(server):
    resp = server.get("/health")
    assert resp.status == 200
    assert assert_json_object(resp)["status"] == "ok"


def test_ready(server):
    resp = server.get("/ready")
    assert resp.status == 200
    assert assert_json_object(resp)["status"] == "ready"


@pytest.mark.parametrize("path", ["/nope", "/execute/extra", "/healthz", "/EXECUTE"])
def test_unknown_path(server, path):
    assert_error(server.get(path), 404, "NOT_FOUND")


def test_unknown_path_with_post(server):
    resp = server.post({"script": TRIVIAL_SCRIPT}, path="/run")
    assert_error(resp, 404, "NOT_FOUND")


@pytest.mark.parametrize("method,path,allowed", [
    ("GET", "/execute", "POST"),
    ("PUT", "/execute", "POST"),
    ("DELETE", "/execute", "POST"),
    ("POST", "/health", "GET"),
    ("POST", "/ready", "GET"),
    ("DELETE", "/health", "GET"),
])
def test_wrong_method(server, method, path, allowed):
    body = b'{"script": "def main():\\n    return 1"}' if method in ("PUT", "POST") else None
    headers = {"Content-Type": "application/json"} if body else None
    resp = server.request(method, path, body, headers)
    assert_error(resp, 405, "METHOD_NOT_ALLOWED")
    allow = [m.strip() for m in resp.headers.get("allow", "").split(",")]
    assert allowed in allow, resp.headers


REQUESTS = {
    "health": lambda s: s.get("/health"),
    "ready": lambda s: s.get("/ready"),
    "not-found": lambda s: s.get("/nope"),
    "method-not-allowed": lambda s: s.get("/execute"),
    "ok": lambda s: s.execute(TRIVIAL_SCRIPT),
    "invalid": lambda s: s.post(b"not json"),
    "media-type": lambda s: s.post(b"{}", content_type="text/plain"),
    "runtime-error": lambda s: s.execute("def main():\n    1 / 0\n"),
}


@pytest.mark.parametrize("send", REQUESTS.values(), ids=list(REQUESTS))
def test_every_response_is_json_with_a_request_id(server, send):
    first, second = send(server), send(server)
    for resp in (first, second):
        assert_json_object(resp)
        assert resp.headers.get("content-type", "").startswith("application/json"), resp.headers
    assert first.headers["x-request-id"] != second.headers["x-request-id"]


def test_concurrent_requests_get_their_own_results(server):
    count = 6
    script = "import time\ndef main():\n    time.sleep(0.5)\n    return {n}\n"
    results = [None] * count

    def worker(n):
        try:
            results[n] = run_ok(server, script.format(n=n))["result"]
        except BaseException as exc:  # reported by the assertion below
            results[n] = exc

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == list(range(count))
