"""The playground at / in Chromium: typing and running with the keyboard alone, the examples
menu, errors marked in the editor, figures, files in and out, share links, API keys, a
phone-width window, and the Content-Security-Policy as the browser enforces it."""

import base64
import http.server
import os
import re
import tempfile
import threading

import pytest
from pyexecd_testing import wait_until_running

from .conftest import PHONE, By, Keys

HELLO = "def main():\n    return 6 * 7"


def b64url(text):
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def execute_count(server, code=None):
    """POST /execute requests the server has answered (with `code`), from GET /metrics."""
    total = 0
    prefix = 'pyexecd_requests_total{endpoint="/execute",code="' + (code or "")
    for line in server.get("/metrics").raw.decode().splitlines():
        if line.startswith(prefix):
            total += int(float(line.rsplit(" ", 1)[1]))
    return total


def test_page_loads_with_every_hook(page):
    page.open()
    for testid in ("editor", "run", "result", "stdout", "stderr", "error", "duration",
                   "figures", "files"):
        assert page.driver.find_elements(By.CSS_SELECTOR, f'[data-testid="{testid}"]'), testid
    assert page.driver.title == "pyexecd playground"
    # The editor is CodeMirror with line numbers and Python highlighting.
    assert page.driver.find_elements(By.CSS_SELECTOR, ".CodeMirror .CodeMirror-linenumber")
    assert page.driver.find_elements(By.CSS_SELECTOR, ".CodeMirror .cm-keyword")


def test_script_typed_and_run_with_the_keyboard(page):
    page.open()
    page.focus_editor()
    page.keys().key_down(Keys.CONTROL).send_keys("a").key_up(Keys.CONTROL) \
        .send_keys(Keys.DELETE).send_keys("def main():", Keys.ENTER).perform()
    # CodeMirror indents the body of the def; Tab adds a level, Shift+Tab takes it back.
    assert page.editor_value() == "def main():\n    "
    page.keys().send_keys(Keys.TAB).perform()
    assert page.editor_value() == "def main():\n        "
    page.keys().key_down(Keys.SHIFT).send_keys(Keys.TAB).key_up(Keys.SHIFT).perform()
    assert page.editor_value() == "def main():\n    "
    page.keys().send_keys('print("typed")', Keys.ENTER, "return 6 * 7").perform()
    assert page.editor_value() == 'def main():\n    print("typed")\n    return 6 * 7'
    page.run(how="keys")
    assert page.text("result") == "42"
    assert page.text("stdout") == "typed"
    assert re.fullmatch(r"[0-9.]+ ms", page.text("duration")), page.text("duration")
    assert re.fullmatch(r"[0-9a-f]{32}", page.text("request-id")), page.text("request-id")


def test_every_control_is_reached_with_tab(page):
    """Tab walks the page; in the editor Tab indents, and Esc then Tab walks on."""
    page.open()
    page.driver.execute_script("document.activeElement.blur()")
    seen = []
    for _ in range(40):
        page.keys().send_keys(Keys.TAB).perform()
        active = page.driver.switch_to.active_element
        in_editor = page.driver.execute_script(
            "return document.querySelector('.CodeMirror').CodeMirror.hasFocus()")
        seen.append("editor" if in_editor else active.get_attribute("data-testid")
                    or active.get_attribute("id") or active.tag_name)
        if in_editor:
            page.keys().send_keys(Keys.ESCAPE).perform()
    for want in ("examples", "run", "share", "editor", "stdin", "args", "kwargs",
                 "file-input", "return-files", "timeout"):
        assert want in seen, (want, seen)
    # Tab inside the editor did not type anything: Esc let the focus out.
    assert page.editor_value() == 'def main():\n    return "Hello, World!"\n'


@pytest.mark.parametrize("example,result", [
    ("pandas", {"mean_A": "2.0", "sum_B": "15"}),
    ("numpy", {"mean": "3.0", "std": "1.4142135623730951"}),
])
def test_example_from_the_menu(page, example, result):
    page.open()
    page.choose_example(example)
    assert f"import {example}" in page.editor_value()
    page.by_testid("examples").send_keys(Keys.CONTROL, Keys.ENTER)  # Ctrl+Enter off the editor
    page.wait(lambda d: page.runs() == 1, "the run did not finish")
    shown = page.text("result")
    for key, value in result.items():
        assert f'"{key}": {value}' in shown, shown


def test_every_example_does_what_its_name_says(page):
    """Each entry of the menu runs: an example answers 200, an error example the code it
    is named after."""
    page.open()
    entries = page.driver.execute_script("""
        return Array.from(document.querySelectorAll('#example optgroup option'))
            .map(o => [o.parentNode.label, o.value, o.textContent]);""")
    assert len(entries) >= 14, entries
    for group, value, name in entries:
        page.choose_example(value)
        if group == "Errors":
            page.run(expect_status=400 if name in ("SYNTAX_ERROR", "MISSING_MAIN") else 422)
            assert page.text("error").startswith(name + " "), (name, page.text("error"))
        else:
            page.run()
            assert not page.visible("error"), (name, page.text("error"))


def test_inputs_example_sends_stdin_args_and_kwargs(page):
    page.open()
    page.choose_example("inputs")
    assert page.by_testid("stdin").get_attribute("value") == "Ada\n"
    page.run()
    result = page.by_testid("result")
    assert "2 items" in result.text
    assert result.text.count('"Hello, Ada"') == 2, result.text


def test_result_is_a_collapsible_tree(page):
    page.open()
    page.set_editor("def main():\n    return {'a': {'b': [1, 2, 3]}, 'big': 10 ** 30, 'f': 0.1}")
    page.run()
    result = page.by_testid("result")
    # Numbers keep their text: a 31-digit integer is not rounded to a double.
    assert '"big": 1000000000000000000000000000000' in result.text
    assert '"f": 0.1' in result.text
    # The whole object and "a" are open, "b" (two levels down) is folded.
    nodes = result.find_elements(By.CSS_SELECTOR, "details")
    assert [n.get_attribute("open") is not None for n in nodes] == [True, True, False]
    assert nodes[2].text == '"b": [3 items]'
    nodes[2].find_element(By.TAG_NAME, "summary").click()
    assert nodes[2].get_attribute("open") is not None
    assert "2: 3" in nodes[2].text
    nodes[1].find_element(By.TAG_NAME, "summary").click()
    assert nodes[1].get_attribute("open") is None
    assert nodes[1].text == '"a": {1 key}'


@pytest.mark.parametrize("example,code,status,line", [
    ("runtime", "RUNTIME_ERROR", 422, 2),
    ("syntax", "SYNTAX_ERROR", 400, 1),
    ("missing-main", "MISSING_MAIN", 400, None),
])
def test_error_is_shown_and_its_line_marked(page, example, code, status, line):
    page.open()
    page.choose_example(example)
    page.run(expect_status=status)
    assert page.visible("error")
    assert page.text("error").startswith(code), page.text("error")
    marked = page.driver.find_elements(By.CSS_SELECTOR, ".pg-error-line .CodeMirror-linenumber")
    assert [m.text for m in marked] == ([str(line)] if line else [])
    if code == "RUNTIME_ERROR":
        assert "ZeroDivisionError" in page.text("error")
        assert 'File "<script>", line 2' in page.text("error")
    # Editing the script clears the mark.
    if line:
        page.set_editor("def main():\n    return 1\n")
        assert not page.driver.find_elements(By.CSS_SELECTOR, ".pg-error-line")


def test_stderr_and_invalid_arguments(page):
    page.open()
    page.set_editor("import sys\ndef main():\n    print('to stderr', file=sys.stderr)\n")
    page.run()
    assert page.text("stderr") == "to stderr"
    assert page.text("result") == "null"
    # Arguments that are not a JSON array are refused before anything is sent.
    page.by_testid("args").send_keys("{not json")
    before = execute_count(page.server)
    page.by_testid("run").click()
    page.wait(lambda d: page.visible("error"), "no error shown")
    assert page.text("error").startswith("NOT SENT"), page.text("error")
    assert "args is not valid JSON" in page.text("error")
    assert execute_count(page.server) == before
    page.by_testid("args").clear()
    page.run()
    assert execute_count(page.server) == before + 1


def test_stop_closes_the_request(page):
    page.open()
    page.set_editor("def main():\n    while True:\n        pass\n")
    closed = execute_count(page.server, "CLIENT_CLOSED")
    before = page.runs()
    page.by_testid("run").click()
    page.wait(lambda d: page.visible("stop"), "no Stop button while running")
    wait_until_running(page.server)
    page.by_testid("stop").click()
    page.wait(lambda d: page.runs() > before, "Stop did not end the run")
    assert page.text("error").startswith("STOPPED"), page.text("error")
    assert not page.visible("stop")
    # The service saw its client leave and stopped the script (counted as CLIENT_CLOSED).
    page.wait(lambda d: execute_count(page.server, "CLIENT_CLOSED") == closed + 1,
              "the service did not stop the script")


def test_figure_is_shown_inline(page):
    page.open()
    page.choose_example("figure")
    page.run()
    assert page.text("result") == '"drawn"'
    img = page.by_testid("figures").find_element(By.TAG_NAME, "img")
    assert img.get_attribute("src").startswith("data:image/png;base64,iVBORw0KGgo")
    # The image decodes: the browser knows its pixel size, the one the answer gave.
    size = page.driver.execute_async_script(
        "const img = arguments[0], done = arguments[1];"
        "img.decode().then(() => done([img.naturalWidth, img.naturalHeight]),"
        "                  (e) => done(String(e)));", img)
    assert size == [640, 480], size
    assert "640×480" in page.by_testid("figures").text


def test_file_round_trip(page):
    page.open()
    page.set_editor("import os\n\ndef main():\n"
                    "    text = open('in/data.csv').read()\n"
                    "    os.makedirs('out', exist_ok=True)\n"
                    "    with open('out/upper.txt', 'w') as f:\n"
                    "        f.write(text.upper())\n"
                    "    return len(text)\n")
    content = "x,y\nspam,é\n"
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "data.csv")
        with open(path, "w", encoding="utf-8") as f:
            f.write(content)
        page.by_testid("file-input").send_keys(path)
        entry = page.wait(lambda d: d.find_elements(
            By.CSS_SELECTOR, '[data-testid="file-list"] li input'), "the file was not listed")[0]
    assert entry.get_attribute("value") == "data.csv"
    entry.send_keys(Keys.CONTROL, "a")
    entry.send_keys("in/data.csv")
    page.by_testid("return-files").click()
    page.run()
    assert page.text("result") == str(len(content))
    link = page.by_testid("files").find_element(By.TAG_NAME, "a")
    assert link.text == "out/upper.txt"
    assert link.get_attribute("download") == "upper.txt"
    # A real download, started from the keyboard.
    with tempfile.TemporaryDirectory() as downloads:
        page.driver.execute_cdp_cmd("Browser.setDownloadBehavior",
                                    {"behavior": "allow", "downloadPath": downloads})
        link.send_keys(Keys.ENTER)
        saved = os.path.join(downloads, "upper.txt")
        page.wait(lambda d: os.path.exists(saved) and os.path.getsize(saved) > 0,
                  "the file was not downloaded")
        with open(saved, encoding="utf-8") as f:
            assert f.read() == content.upper()


def test_dropped_file_is_sent(page):
    page.open()
    # What a drop from the desktop delivers: a DataTransfer holding a File.
    page.driver.execute_script("""
        const dt = new DataTransfer();
        dt.items.add(new File(['dropped\\n'], 'notes.txt', {type: 'text/plain'}));
        const zone = document.getElementById('dropzone');
        zone.dispatchEvent(new DragEvent('dragover', {dataTransfer: dt, bubbles: true,
                                                      cancelable: true}));
        zone.dispatchEvent(new DragEvent('drop', {dataTransfer: dt, bubbles: true,
                                                  cancelable: true}));""")
    page.wait(lambda d: d.find_elements(By.CSS_SELECTOR, '[data-testid="file-list"] li'),
              "the dropped file was not listed")
    page.set_editor("def main():\n    return open('notes.txt').read()\n")
    page.run()
    assert page.text("result") == '"dropped\\n"'


def test_share_link_loads_without_running(page):
    script = "def main():\n    return 'é ☃ 😀'\n"
    page.open()
    page.set_editor(script)
    page.by_testid("stdin").send_keys("line one")
    page.by_testid("share").click()
    link = page.wait(lambda d: page.by_testid("share-link").get_attribute("value"),
                     "no share link")
    fragment = link.split("#", 1)[1]
    assert f"script={b64url(script)}" in fragment.split("&")
    assert f"stdin={b64url('line one')}" in fragment.split("&")
    assert page.driver.current_url == link  # the address bar holds it too

    before = execute_count(page.server)
    page.open(link)
    assert page.editor_value() == script
    assert page.by_testid("stdin").get_attribute("value") == "line one"
    assert "nothing has run" in page.text("status")
    assert page.text("result") == ""
    # A hand-made link with base64 padding loads as well.
    padded = base64.urlsafe_b64encode(HELLO.encode()).decode()
    assert padded.endswith("=")
    page.open(page.url + "#script=" + padded)
    assert page.editor_value() == HELLO
    assert execute_count(page.server) == before, "opening a link ran the script"
    page.run()  # the count above does count runs
    assert execute_count(page.server) == before + 1


def test_bad_share_link_is_reported(page):
    page.open(page.url + "#script=%%%")
    assert "not base64url" in page.text("status")
    assert page.editor_value() == 'def main():\n    return "Hello, World!"\n'


def test_phone_width(page):
    page.driver.set_window_size(*PHONE)
    page.open()
    overflow = page.driver.execute_script(
        "return document.documentElement.scrollWidth - document.documentElement.clientWidth")
    assert overflow <= 0, f"the page is {overflow}px wider than the window"
    panes = page.driver.find_elements(By.CSS_SELECTOR, ".pane")
    assert panes[0].rect["x"] == panes[1].rect["x"], "the panes are not stacked"
    page.choose_example("pandas")
    page.run()
    assert '"sum_B": 15' in page.text("result")


@pytest.fixture(scope="module")
def keyed_server(start_server, tmp_path_factory):
    keys = tmp_path_factory.mktemp("keys") / "keys"
    keys.write_text("# the test's key\nplayground-key\n")
    return start_server("--api-keys-file", str(keys))


def test_api_key(page, keyed_server):
    page.server = keyed_server
    page.url = f"http://{keyed_server.host}:{keyed_server.port}/"
    page.open()
    page.driver.execute_script("localStorage.clear()")
    page.run(expect_status=401)
    assert "requires an API key" in page.text("error")
    key = page.by_testid("api-key")
    assert key.is_displayed()
    key.send_keys("wrong")
    page.run(expect_status=401)
    assert "refused this API key" in page.text("error")
    key.send_keys(Keys.CONTROL, "a")
    before = page.runs()
    key.send_keys("playground-key", Keys.ENTER)  # Enter in the key field runs
    page.wait(lambda d: page.runs() > before, "Enter in the key field did not run")
    assert page.text("http-status").startswith("200"), page.text("error")
    assert page.text("result") == '"Hello, World!"'
    assert page.driver.execute_script(
        "return localStorage.getItem('pyexecd.apiKey')") == "playground-key"
    page.open()
    assert page.by_testid("api-key").get_attribute("value") == "playground-key"
    page.driver.execute_script("localStorage.clear()")


def test_content_security_policy_is_enforced(page):
    """An inline script, an inline style attribute and an inline event handler are refused
    by the browser:
    what the CSP header promises holds where it matters. (Console errors are expected
    here, and checked to be the CSP's.)"""
    page.open()
    outcome = page.driver.execute_script("""
        window.__inlineRan = false;
        const s = document.createElement('script');
        s.textContent = 'window.__inlineRan = true;';
        document.body.appendChild(s);
        const d = document.createElement('div');
        d.setAttribute('style', 'width: 123px');
        document.body.appendChild(d);
        window.__handlerRan = false;
        d.setAttribute('onclick', 'window.__handlerRan = true');
        d.click();
        return {inline: window.__inlineRan, width: d.getBoundingClientRect().width === 123,
                handler: window.__handlerRan};
    """)
    assert outcome == {"inline": False, "width": False, "handler": False}, outcome
    errors = page.console_errors()
    assert errors and all("Content Security Policy" in e for e in errors), errors


@pytest.fixture
def other_site():
    """A page of another origin (another port of 127.0.0.1), as another site would be."""
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            body = b"<!doctype html><title>elsewhere</title>"
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    httpd = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/"
    httpd.shutdown()
    thread.join()


def test_other_sites_cannot_run_scripts_through_a_visitor(page, other_site):
    """Another site's page posting to /execute from a visitor's browser: the JSON request
    needs a CORS preflight, which pyexecd does not grant (OPTIONS is a 405); the one a page
    may send without (text/plain) is a 415. Nothing runs."""
    page.open()
    page.run()  # from its own page, it runs
    before = execute_count(page.server, "OK")
    page.driver.get(other_site)
    outcome = page.driver.execute_async_script("""
        const url = arguments[0], done = arguments[1], body = JSON.stringify(
            {script: 'def main():\\n    return 1'});
        const json = fetch(url, {method: 'POST', body,
                                 headers: {'Content-Type': 'application/json'}})
            .then(r => 'answered ' + r.status, e => e.name);
        const plain = fetch(url, {method: 'POST', body, mode: 'no-cors',
                                  headers: {'Content-Type': 'text/plain'}})
            .then(r => r.type, e => e.name);
        Promise.all([json, plain]).then(done);
    """, page.url + "execute")
    assert outcome == ["TypeError", "opaque"], outcome
    assert execute_count(page.server, "OK") == before
    assert execute_count(page.server, "UNSUPPORTED_MEDIA_TYPE") >= 1
    errors = page.console_errors()
    assert errors and all("CORS" in e or "/execute" in e for e in errors), errors
