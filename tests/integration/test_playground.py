"""GET / and /static/: the browser playground's files as HTTP serves them (the page itself
is tested in Chromium by tests/browser). The page must be self-contained and locked down by
its headers: a strict Content-Security-Policy, nosniff, cache validators; and
--playground=false must take all of it away."""

import re
from html.parser import HTMLParser

import pytest

from .conftest import TRIVIAL_SCRIPT, assert_error, run_ok

ASSET_TYPES = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8",
               ".svg": "image/svg+xml"}


def csp_directives(resp):
    """{directive: [sources]} of the Content-Security-Policy header."""
    header = resp.headers.get("content-security-policy")
    assert header, f"no Content-Security-Policy: {resp.headers}"
    out = {}
    for part in header.split(";"):
        words = part.split()
        if words:
            out[words[0]] = words[1:]
    return out


def assert_locked_down(resp):
    csp = csp_directives(resp)
    assert csp["default-src"] == ["'self'"], csp
    # Figures are data: images; nothing else is allowed beyond 'self'.
    assert csp["img-src"] == ["'self'", "data:"], csp
    for directive in ("object-src", "base-uri", "form-action", "frame-ancestors"):
        assert csp[directive] == ["'none'"], csp
    allowed = {"default-src", "img-src", "object-src", "base-uri", "form-action",
               "frame-ancestors"}
    assert set(csp) == allowed, f"unexpected directives: {set(csp) - allowed}"
    header = resp.headers["content-security-policy"]
    for word in ("unsafe-inline", "unsafe-eval", "unsafe-hashes", "*", "http:", "https:"):
        assert word not in header.split(), header
    assert resp.headers.get("x-content-type-options") == "nosniff", resp.headers


class PageParser(HTMLParser):
    """What the page loads, and anything inline that the CSP would refuse."""

    def __init__(self):
        super().__init__()
        self.refs, self.inline = [], []
        self._tag = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self._tag = tag
        for name in ("src", "href"):
            if name in attrs:
                self.refs.append(attrs[name])
        if tag == "script" and "src" not in attrs:
            self.inline.append("<script> without src")
        if tag == "style":
            self.inline.append("<style>")
        for name in attrs:
            if name == "style" or name.startswith("on"):
                self.inline.append(f"<{tag} {name}=...>")


@pytest.fixture(scope="module")
def page(server):
    resp = server.get("/")
    assert resp.status == 200, resp
    parser = PageParser()
    parser.feed(resp.raw.decode("utf-8"))
    return resp, parser


def test_page_headers(page):
    resp, _ = page
    assert resp.headers["content-type"] == "text/html; charset=utf-8"
    assert_locked_down(resp)
    assert resp.headers["cache-control"] == "no-cache"
    assert re.fullmatch(r'"[0-9a-f]{20}"', resp.headers["etag"]), resp.headers
    assert resp.headers.get("x-request-id")


def test_page_is_self_contained(page, server):
    resp, parser = page
    assert not parser.inline, parser.inline
    assert parser.refs, "the page loads nothing?"
    for ref in parser.refs:
        m = re.fullmatch(r"(/static/[A-Za-z0-9._-]+)\?v=([0-9a-f]{20})", ref)
        assert m, f"the page loads {ref!r}: only versioned /static/ files"
        asset = server.get(ref)
        assert asset.status == 200, (ref, asset.status)
        # ?v= is the file's own ETag: a new binary's page asks for new URLs.
        assert asset.headers["etag"] == f'"{m[2]}"', (ref, asset.headers)
        assert asset.headers["cache-control"] == "public, max-age=31536000, immutable"
        suffix = "." + m[1].rsplit(".", 1)[1]
        assert asset.headers["content-type"] == ASSET_TYPES[suffix], asset.headers
        assert_locked_down(asset)
        # The query is only a version: the same bytes without it.
        assert server.get(m[1]).raw == asset.raw


def test_codemirror_is_embedded(server):
    js = server.get("/static/codemirror.js")
    assert js.status == 200 and b"CodeMirror" in js.raw[:200]
    assert server.get("/static/python.js").status == 200
    assert server.get("/static/codemirror.css").status == 200


@pytest.mark.parametrize("path", ["/", "/static/app.js"])
def test_conditional_get(server, path):
    full = server.get(path)
    etag = full.headers["etag"]
    for value in (etag, f"W/{etag}", f'"other", {etag}', "*"):
        resp = server.request("GET", path, headers={"If-None-Match": value})
        assert resp.status == 304, (value, resp.status)
        assert resp.raw == b""
        assert resp.headers["etag"] == etag
        assert int(resp.headers["content-length"]) == len(full.raw)
    for value in ('"other"', etag[:-2] + '"', "W/"):
        resp = server.request("GET", path, headers={"If-None-Match": value})
        assert resp.status == 200 and resp.raw == full.raw, value


def test_head(server):
    full = server.get("/")
    head = server.request("HEAD", "/")
    assert head.status == 200 and head.raw == b""
    assert int(head.headers["content-length"]) == len(full.raw)
    assert_locked_down(head)


def test_query_is_ignored(server):
    assert server.get("/?script=x").raw == server.get("/").raw


@pytest.mark.parametrize("path", ["/static/", "/static/nope.js", "/static", "/index.html",
                                  "/static/../static/app.js", "/static/app.js/",
                                  "/static//app.js", "/web/app.js", "//"])
def test_unknown_files(server, path):
    assert_error(server.get(path), 404, "NOT_FOUND")


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE"])
def test_wrong_method(server, method):
    resp = server.request(method, "/", b"{}", {"Content-Type": "application/json"})
    assert_error(resp, 405, "METHOD_NOT_ALLOWED")
    assert resp.headers["allow"] == "GET, HEAD"


@pytest.mark.parametrize("how", ["flag", "environment"])
def test_playground_can_be_turned_off(start_server, how):
    if how == "flag":
        srv = start_server("--playground=false")
    else:
        srv = start_server(env={"PYEXECD_PLAYGROUND": "false"})
    for path in ("/", "/static/app.js", "/static/codemirror.js"):
        assert_error(srv.get(path), 404, "NOT_FOUND")
    assert run_ok(srv, TRIVIAL_SCRIPT)["result"] == {"alive": True}
