"""The HTML report in a real browser: Debian's Chromium, headless.

`scopegate report --format html` runs on the example logs in this folder; the
page is opened in Chromium driven over the DevTools protocol (on a pipe,
`--remote-debugging-pipe`: no port, no extra package). Asserted: not one
console message, exception or log entry at error level (a blocked request or
a CSP violation would be one), the identities of the example shown in the
identities table, the attacker-chosen client id shown as text and not turned
into an element, and the three charts drawn with a size.

    .venv/bin/pytest -q tests/report            # SCOPEGATE_BIN, else cargo builds target/debug/scopegate
"""

import fcntl
import json
import os
import select
import shutil
import subprocess
import time
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
NOW = "2026-12-10T00:00:00Z"
EXPECTED = [
    ("corp", "billing-svc"),
    ("corp", "inventory-sync"),
    ("corp", "mystery-client"),
    ("partner", "<img src=x onerror=alert(1)>"),
    ("partner", "reports-bot"),
]


def chromium():
    for name in ("chromium", "chromium-browser"):
        path = shutil.which(name)
        if path:
            return path
    pytest.fail("chromium is not installed (scripts/setup installs it: apt-get install chromium)")


def scopegate():
    if os.environ.get("SCOPEGATE_BIN"):
        return os.environ["SCOPEGATE_BIN"]
    subprocess.run(["cargo", "build", "-q", "-p", "scopegate-cli"], cwd=ROOT, check=True)
    return str(ROOT / "target/debug/scopegate")


def example_args():
    return ["--now", NOW, "--config", str(HERE / "example-config.yaml"),
            "--registry", str(HERE / "example-registry.json"),
            str(HERE / "example-envoy.log"), str(HERE / "example-kong-error.log")]


class DevTools:
    """A minimal DevTools protocol client over Chromium's pipe (fd 3 in, fd 4
    out, messages ended by a NUL byte)."""

    def __init__(self, profile):
        to_chrome_r, self._to_chrome = os.pipe()
        self._from_chrome, from_chrome_w = os.pipe()

        def wire_fds():
            # Out of the way first, so that neither lands on the other's number.
            high_r = fcntl.fcntl(to_chrome_r, fcntl.F_DUPFD, 10)
            high_w = fcntl.fcntl(from_chrome_w, fcntl.F_DUPFD, 11)
            os.dup2(high_r, 3)
            os.dup2(high_w, 4)

        self.proc = subprocess.Popen(
            [chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
             "--no-default-browser-check", "--disable-extensions", "--remote-debugging-pipe",
             f"--user-data-dir={profile}", "about:blank"],
            # close_fds would close 3 and 4 after wire_fds; the parent's own
            # descriptors are not inheritable, so nothing else leaks.
            close_fds=False, preexec_fn=wire_fds,
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        os.close(to_chrome_r)
        os.close(from_chrome_w)
        self._buf = b""
        self._next = 0
        self.events = []

    def send(self, method, params=None, session=None, timeout=30):
        self._next += 1
        msg = {"id": self._next, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        os.write(self._to_chrome, json.dumps(msg).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            m = self._read(deadline)
            if m.get("id") == self._next:
                if "error" in m:
                    raise RuntimeError(f"{method}: {m['error']}")
                return m.get("result", {})
            self.events.append(m)

    def wait_for(self, method, timeout=30):
        deadline = time.monotonic() + timeout
        for m in self.events:
            if m.get("method") == method:
                return m
        while True:
            m = self._read(deadline)
            self.events.append(m)
            if m.get("method") == method:
                return m

    def _read(self, deadline):
        while b"\0" not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("Chromium did not answer")
            ready, _, _ = select.select([self._from_chrome], [], [], left)
            if ready:
                chunk = os.read(self._from_chrome, 1 << 16)
                if not chunk:
                    raise RuntimeError("Chromium closed the pipe: "
                                       + self.proc.stderr.read().decode(errors="replace")[-2000:])
                self._buf += chunk
        raw, self._buf = self._buf.split(b"\0", 1)
        return json.loads(raw)

    def close(self):
        try:
            self.send("Browser.close", timeout=5)
        except Exception:
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        os.close(self._to_chrome)
        os.close(self._from_chrome)


def problems(events):
    """Console messages, exceptions and error-level log entries."""
    out = []
    for e in events:
        m, p = e.get("method"), e.get("params", {})
        if m == "Runtime.consoleAPICalled":
            out.append(f"console.{p.get('type')}: {p.get('args')}")
        elif m == "Runtime.exceptionThrown":
            out.append(f"exception: {p.get('exceptionDetails')}")
        elif m == "Log.entryAdded" and p.get("entry", {}).get("level") in ("error", "warning"):
            out.append(f"log {p['entry'].get('level')}: {p['entry'].get('text')} {p['entry'].get('url', '')}")
    return out


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("report")
    html = tmp / "report.html"
    subprocess.run([scopegate(), "report", "--format", "html", "-o", str(html), *example_args()],
                   cwd=ROOT, check=True)
    browser = DevTools(tmp / "profile")
    try:
        target = browser.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = browser.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Runtime", "Log", "Page"):
            browser.send(f"{domain}.enable", session=session)
        browser.send("Page.navigate", {"url": html.as_uri()}, session=session)
        browser.wait_for("Page.loadEventFired")
        # Late messages (a blocked favicon, say) arrive after load: let them.
        time.sleep(0.5)
        browser.send("Runtime.evaluate", {"expression": "1"}, session=session)
        yield browser, session
    finally:
        browser.close()


def evaluate(page, expression):
    browser, session = page
    r = browser.send("Runtime.evaluate", {"expression": expression, "returnByValue": True},
                     session=session)
    assert "exceptionDetails" not in r, r
    return r["result"]["value"]


def test_the_page_logs_no_console_errors(page):
    browser, _ = page
    assert problems(browser.events) == []


def test_the_example_identities_are_shown(page):
    rows = evaluate(page, """JSON.stringify([...document.querySelectorAll('#identities-table tbody tr')]
        .map(tr => [tr.cells[0].textContent, tr.cells[1].textContent]))""")
    assert [tuple(r) for r in json.loads(rows)] == EXPECTED
    assert evaluate(page, "document.title") == "Scopegate identity report"


def test_a_client_id_from_the_logs_stays_text(page):
    assert evaluate(page, "document.querySelectorAll('img, script, iframe, object').length") == 0
    assert "<img src=x onerror=alert(1)>" in evaluate(page, "document.body.innerText")


def test_the_charts_are_drawn(page):
    sizes = json.loads(evaluate(page, """JSON.stringify(['timeline-chart', 'scopes-chart', 'denials-chart']
        .map(id => { const s = document.querySelector('#' + id + ' svg');
                     if (!s) return null; const b = s.getBoundingClientRect();
                     return [b.width, b.height, s.querySelectorAll('polyline, rect, circle').length]; }))"""))
    for size in sizes:
        assert size is not None
        width, height, marks = size
        assert width > 200 and height > 50 and marks > 0, sizes


def test_findings_name_the_offboarding_and_expiry_candidates(page):
    text = evaluate(page, "document.querySelector('#findings').innerText")
    for shown in ("legacy-export", "old-batch", "inventory-sync", "debug:all", "7200"):
        assert shown in text
