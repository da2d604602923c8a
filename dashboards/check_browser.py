"""Loads Datasette pages in headless Chromium over the DevTools protocol and
fails on any HTTP error, JavaScript error or chart without data; writes a PNG
screenshot of each page. Run by dashboards/check, which serves the database.

usage: check_browser.py BASE_URL OUT_DIR NAME=PATH [NAME=PATH ...]
A PATH under /-/dashboards/ is checked as a dashboard (every chart's query
returns rows and every chart draws), any other as a canned query (its table
has rows).
"""

import base64
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

from websockets.sync.client import connect

TIMEOUT = 60  # seconds for one page to load and draw every chart
WIDTH = 1440


class Failure(Exception):
    pass


class Page:
    """One browser tab, driven over its DevTools websocket."""

    def __init__(self, ws):
        self.ws = ws
        self.next_id = 0
        self.events = []

    def call(self, method, **params):
        self.next_id += 1
        my_id = self.next_id
        self.ws.send(json.dumps({"id": my_id, "method": method, "params": params}))
        deadline = time.monotonic() + TIMEOUT
        while True:
            msg = json.loads(self.ws.recv(timeout=max(0.1, deadline - time.monotonic())))
            if msg.get("id") == my_id:
                if "error" in msg:
                    raise Failure(f"{method}: {msg['error']}")
                return msg.get("result", {})
            self.events.append(msg)

    def pump(self, seconds):
        """Collects events for a while."""
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            try:
                self.events.append(json.loads(self.ws.recv(timeout=end - time.monotonic())))
            except TimeoutError:
                break

    def evaluate(self, expr):
        r = self.call("Runtime.evaluate", expression=expr, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in r:
            raise Failure(f"evaluating {expr[:60]}...: {r['exceptionDetails']}")
        return r["result"].get("value")


def start_browser(profile):
    chromium = os.environ.get("CHROMIUM", "chromium")
    proc = subprocess.Popen(
        [
            chromium,
            "--headless=new",
            "--no-sandbox",  # CI runs as root, where the sandbox cannot start
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--hide-scrollbars",
            "--no-first-run",
            "--remote-debugging-address=127.0.0.1",
            "--remote-debugging-port=0",
            f"--user-data-dir={profile}",
            f"--window-size={WIDTH},1000",
            "about:blank",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        if not line and proc.poll() is not None:
            raise Failure(f"{chromium} exited with {proc.returncode} before listening")
        if "DevTools listening on ws://" in line:
            port = line.split("ws://127.0.0.1:")[1].split("/")[0]
            # Keep draining stderr so Chromium never blocks on a full pipe.
            threading.Thread(target=proc.stderr.read, daemon=True).start()
            return proc, int(port)
    proc.kill()
    raise Failure(f"{chromium} did not open its DevTools port within 30 s")


def new_tab(port):
    req = urllib.request.Request(f"http://127.0.0.1:{port}/json/new?about:blank", method="PUT")
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.load(r)


def load(page, url):
    """Navigates and waits for the load event; returns the events seen."""
    page.events.clear()
    page.call("Page.navigate", url=url)
    deadline = time.monotonic() + TIMEOUT
    while not any(e.get("method") == "Page.loadEventFired" for e in page.events):
        if time.monotonic() > deadline:
            raise Failure(f"{url} did not finish loading within {TIMEOUT} s")
        page.pump(0.2)


def problems_in(page, base):
    """HTTP errors, failed requests and JavaScript errors seen so far."""
    out = []
    for e in page.events:
        m, p = e.get("method"), e.get("params", {})
        if m == "Network.responseReceived":
            status = p["response"]["status"]
            if status >= 400:
                out.append(f"HTTP {status} for {p['response']['url'][:200]}")
        elif m == "Network.loadingFailed" and not p.get("canceled"):
            out.append(f"request failed: {p.get('errorText')} ({p.get('type')})")
        elif m == "Runtime.exceptionThrown":
            d = p["exceptionDetails"]
            out.append("JavaScript exception: " + d.get("exception", {}).get("description", d.get("text", "")))
        elif m == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
            args = " ".join(str(a.get("value", a.get("description", ""))) for a in p.get("args", []))
            out.append(f"console.{p['type']}: {args}")
        elif m == "Log.entryAdded" and p["entry"]["level"] == "error":
            out.append(f"browser log error: {p['entry']['text']} {p['entry'].get('url', '')}")
    return out


def chart_data(page):
    """Rows each chart's query returned: {url: rows}."""
    out = {}
    for e in page.events:
        if e.get("method") != "Network.responseReceived":
            continue
        url = e["params"]["response"]["url"]
        if ".json?sql=" not in url:
            continue
        body = page.call("Network.getResponseBody", requestId=e["params"]["requestId"])
        data = json.loads(body["body"])
        out[url] = len(data.get("rows", []))
    return out


def screenshot(page, path):
    height = page.evaluate("Math.ceil(document.documentElement.scrollHeight)")
    page.call(
        "Emulation.setDeviceMetricsOverride",
        width=WIDTH,
        height=min(int(height), 6000),
        deviceScaleFactor=1,
        mobile=False,
    )
    page.pump(1.0)  # charts re-fit to the new size
    shot = page.call("Page.captureScreenshot", format="png", captureBeyondViewport=True)
    with open(path, "wb") as f:
        f.write(base64.b64decode(shot["data"]))
    page.call("Emulation.setDeviceMetricsOverride", width=WIDTH, height=1000, deviceScaleFactor=1, mobile=False)


def check_dashboard(page):
    charts = page.evaluate("document.querySelectorAll('[id^=chart-]:not([id^=chart-tooltip-])').length")
    if not charts:
        raise Failure("the dashboard has no charts")
    # Every chart ends up holding a drawing: vega's canvas/svg, or a metric/table.
    draw = """
        Array.from(document.querySelectorAll('[id^=chart-]:not([id^=chart-tooltip-])')).filter(el => {
            const c = el.querySelector('canvas, svg');
            if (c) { const r = c.getBoundingClientRect(); return r.width > 50 && r.height > 30; }
            return el.querySelector('p, table') !== null && el.innerText.trim().length > 0;
        }).length
    """
    deadline = time.monotonic() + TIMEOUT
    while True:
        drawn = page.evaluate(draw)
        if drawn == charts:
            break
        if time.monotonic() > deadline:
            raise Failure(f"only {drawn} of {charts} charts drew within {TIMEOUT} s")
        page.pump(0.5)
    page.pump(1.0)
    data = chart_data(page)
    empty = [u for u, n in data.items() if n == 0]
    if empty:
        raise Failure(f"{len(empty)} chart(s) got no rows, e.g. {empty[0][:300]}")
    return f"{charts} charts drawn, {len(data)} queries returned rows ({sum(data.values())} rows)"


def check_query(page):
    rows = page.evaluate("document.querySelectorAll('table.rows-and-columns tbody tr').length")
    if not rows:
        raise Failure("the canned query's table has no rows")
    return f"{rows} rows"


def main():
    base, out_dir, pages = sys.argv[1].rstrip("/"), sys.argv[2], sys.argv[3:]
    os.makedirs(out_dir, exist_ok=True)
    # Chromium's helper processes may still write into the profile after
    # the browser itself exits; a scratch profile left half-removed is no
    # failure of the dashboards.
    with tempfile.TemporaryDirectory(ignore_cleanup_errors=True) as profile:
        proc, port = start_browser(profile)
        try:
            ws_url = new_tab(port)["webSocketDebuggerUrl"]
            with connect(ws_url, max_size=64 * 1024 * 1024, open_timeout=20) as ws:
                return check_pages(Page(ws), base, out_dir, pages)
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()


def check_pages(page, base, out_dir, pages):
    """Loads each NAME=PATH, checks it and screenshots it; 0 when all pass."""
    for domain in ("Page", "Runtime", "Network", "Log"):
        page.call(f"{domain}.enable")
    page.call("Emulation.setDeviceMetricsOverride", width=WIDTH, height=1000, deviceScaleFactor=1, mobile=False)
    failed = []
    for spec in pages:
        name, path = spec.split("=", 1)
        url = base + path
        try:
            load(page, url)
            if path.startswith("/-/dashboards/"):
                what = check_dashboard(page)
            else:
                what = check_query(page)
            page.pump(0.5)
            problems = problems_in(page, base)
            shot = os.path.join(out_dir, f"{name}.png")
            screenshot(page, shot)
            if problems:
                raise Failure("; ".join(problems))
            print(f"ok   {name}: {url}: {what}; screenshot {shot}")
        except Failure as e:
            failed.append(name)
            print(f"FAIL {name}: {url}: {e}")
    if failed:
        print(f"browser check failed for: {', '.join(failed)}")
        return 1
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except Failure as e:
        print(f"browser check failed: {e}")
        sys.exit(1)
