"""The playground (GET /) in a real browser: Debian's chromium, headless, driven through
chromium-driver by python3-selenium, against a pyexecd started here on an ephemeral port.

Every wait is an explicit WebDriverWait on something the page shows (the machine is slow
and shared); no test sleeps or asserts a time. Each test leaves a screenshot in
PYEXECD_SCREENSHOTS (default: build/screenshots) and fails if the browser's console got an
error that the test did not expect (an /execute answer the test asked for with a 4xx or
5xx status is logged by Chromium as a failed resource load: that one is expected).

Without chromium, chromium-driver or selenium the tests skip, unless PYEXECD_MUST_WORK=1
(CI), where they fail."""

import os
import re
import shutil
from pathlib import Path

import pytest
from pyexecd_testing import ServerPool, ServerProcess
from urlmode import hooks

SUITE = Path(__file__).resolve().parent
REPO = SUITE.parents[1]
BINARY = os.environ.get("PYEXECD_BIN", str(REPO / "build" / "pyexecd"))
SCREENSHOTS = Path(os.environ.get("PYEXECD_SCREENSHOTS", str(REPO / "build" / "screenshots")))
MUST_WORK = os.environ.get("PYEXECD_MUST_WORK") == "1"
CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
WAIT = 90  # seconds: a liveness guard for each wait, not a timing assertion
WIDE = (1280, 1000)
PHONE = (390, 844)

pytest_configure, pytest_collection_modifyitems, pytest_terminal_summary = hooks(
    SUITE, REPO, "a pyexecd process and a browser here")

try:
    from selenium import webdriver
    from selenium.common.exceptions import WebDriverException
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import Select, WebDriverWait
    SELENIUM = None
except ImportError as e:  # reported by the `browser` fixture
    SELENIUM = e


def skip_or_fail(reason):
    if MUST_WORK:
        pytest.fail(f"PYEXECD_MUST_WORK=1 but: {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def start_server():
    """Factory: a started pyexecd with `flags`, stopped by pid at the end of the session."""
    pool = ServerPool(lambda flags, env: ServerProcess(BINARY, flags, env))
    yield pool.start
    pool.stop_all()


@pytest.fixture(scope="session")
def server(start_server):
    return start_server()


@pytest.fixture(scope="session")
def browser():
    if SELENIUM is not None:
        skip_or_fail(f"python3-selenium is missing ({SELENIUM}): scripts/install-deps")
    for path in (CHROMIUM, CHROMEDRIVER):
        if not shutil.which(path):
            skip_or_fail(f"{path} is missing: scripts/install-deps installs chromium and "
                         "chromium-driver")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    # --no-sandbox: Chromium refuses to start as root with its own sandbox on; the tests
    # run as root (pyexecd needs it) and load only the page under test.
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--disable-extensions", "--no-first-run", "--lang=en-US",
                f"--window-size={WIDE[0]},{WIDE[1]}"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    try:
        driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    except WebDriverException as e:
        skip_or_fail(f"chromium did not start: {e.msg}")
    driver.set_page_load_timeout(WAIT)
    driver.set_script_timeout(WAIT)
    yield driver
    driver.quit()


class Page:
    """The playground open in the browser, with the test's hooks (data-testid)."""

    def __init__(self, driver, server):
        self.driver = driver
        self.server = server
        self.url = f"http://{server.host}:{server.port}/"
        self.expected_statuses = set()  # /execute answers the test asks for

    # -- navigation --------------------------------------------------------------------

    def open(self, url=None):
        self.driver.get("about:blank")
        self.driver.get(url or self.url)
        self.wait(lambda d: d.execute_script(
            "return document.body && document.body.classList.contains('ready')"),
            "the page did not start (body.ready)")
        return self

    def wait(self, condition, message):
        return WebDriverWait(self.driver, WAIT).until(condition, message)

    # -- elements ----------------------------------------------------------------------

    def by_testid(self, testid):
        return self.driver.find_element(By.CSS_SELECTOR, f'[data-testid="{testid}"]')

    def text(self, testid):
        return self.by_testid(testid).text

    def visible(self, testid):
        return self.by_testid(testid).is_displayed()

    def editor_value(self):
        return self.driver.execute_script(
            "return document.querySelector('.CodeMirror').CodeMirror.getValue()")

    def set_editor(self, text):
        """Sets the script without the keyboard (the keyboard has its own test)."""
        self.driver.execute_script(
            "document.querySelector('.CodeMirror').CodeMirror.setValue(arguments[0])", text)

    def focus_editor(self):
        self.driver.find_element(By.CSS_SELECTOR, ".CodeMirror").click()
        self.wait(lambda d: d.execute_script(
            "return document.querySelector('.CodeMirror').CodeMirror.hasFocus()"),
            "the editor did not take the focus")

    def keys(self):
        return ActionChains(self.driver)

    def choose_example(self, example_id):
        Select(self.by_testid("examples")).select_by_value(example_id)

    def runs(self):
        return int(self.driver.execute_script("return document.body.dataset.runs || '0'"))

    def run(self, how="click", expect_status=200):
        """Runs and waits until the answer is shown. `how`: "click" the Run button, or
        "keys" (Ctrl+Enter where the focus is)."""
        self.expected_statuses.add(expect_status)
        before = self.runs()
        if how == "click":
            self.by_testid("run").click()
        else:
            self.keys().key_down(Keys.CONTROL).send_keys(Keys.ENTER).key_up(Keys.CONTROL).perform()
        self.wait(lambda d: self.runs() > before, "the run did not finish")
        status = self.text("http-status")
        assert status.startswith(f"{expect_status} "), (status, self.text("status"),
                                                        self.text("error"))
        return self

    # -- the console -------------------------------------------------------------------

    def console_errors(self):
        """The console's errors since the last call, less the expected /execute answers."""
        errors = []
        for entry in self.driver.get_log("browser"):
            if entry["level"] != "SEVERE":
                continue
            m = re.search(r"/execute - Failed to load resource: the server responded with a "
                          r"status of (\d+)", entry["message"])
            if entry.get("source") == "network" and m and int(m[1]) in self.expected_statuses:
                continue
            errors.append(entry["message"])
        return errors


@pytest.fixture
def page(browser, server, request):
    browser.set_window_size(*WIDE)
    browser.get_log("browser")  # what an earlier test left
    p = Page(browser, server)
    yield p
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    browser.save_screenshot(str(SCREENSHOTS / f"{request.node.name}.png"))
    errors = p.console_errors()
    assert not errors, f"the browser's console has errors: {errors}"


__all__ = ["By", "Keys", "Page", "PHONE", "WIDE", "WAIT"]
