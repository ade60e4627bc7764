"""Dashboard: time from navigation to the overview's first chart, and page weight as served.

Usage: .venv/bin/python bench/dashboard_first_chart.py [--reuse NAME] [--keep] [--repeat 5]

Data: the planned-scale database of `bench/query_postgres.py` (250 orgs, 23 M rollups; built
here unless `--reuse NAME` names one kept earlier). Serves it with `analytics serve` (one
worker, embedded workers off), signs in headless Debian Chromium with an org_admin key of the
largest org and opens its overview for the 31 days before the data's end (UTC), `--repeat`
times. Prints, per run, the browser's `first-chart` mark (ms after navigation start, the
target is <= 1 s), the server's time to first byte, and the bytes transferred (compressed)
for the page and its assets; then the median and its ratio to the 1 s target.
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from benchdb import database_exists, drop_database, machine, server_url  # noqa: E402
from query_postgres import END, LARGEST_ORG, build, org_uuid  # noqa: E402

TARGET_MS = 1000.0
CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_healthy(base: str, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        assert proc.poll() is None, "analytics serve exited"
        try:
            with urllib.request.urlopen(f"{base}/analytics/v1/status/healthz", timeout=2):
                return
        except OSError:
            time.sleep(0.3)
    raise SystemExit("analytics serve did not become healthy")


def _browser() -> object:
    from selenium import webdriver  # noqa: PLC0415
    from selenium.webdriver.chrome.service import Service  # noqa: PLC0415

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                "--window-size=1280,1000", "--proxy-server=http://127.0.0.1:9"):
        options.add_argument(arg)
    return webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)


MEASURE = """
const nav = performance.getEntriesByType('navigation')[0];
const mark = performance.getEntriesByName('first-chart')[0];
const assets = performance.getEntriesByType('resource');
return {firstChart: mark ? mark.startTime : null,
        ttfb: nav.responseStart - nav.requestStart,
        page: nav.transferSize, decoded: nav.decodedBodySize,
        assets: assets.reduce((n, e) => n + e.transferSize, 0),
        assetsDecoded: assets.reduce((n, e) => n + e.decodedBodySize, 0)};
"""


def measure(base: str, key: str, repeat: int) -> None:
    """Sign in once, then time `repeat` cold navigations to the overview."""
    driver = _browser()
    try:
        driver.get(f"{base}/analytics/ui/sign-in")  # type: ignore[attr-defined]
        driver.find_element("id", "credential").send_keys(key)  # type: ignore[attr-defined]
        driver.find_element("css selector", "button[type=submit]").click()  # type: ignore[attr-defined]
        last = (END.date()).fromordinal(END.date().toordinal() - 1)
        first = last.fromordinal(last.toordinal() - 30)
        url = (f"{base}/analytics/ui/orgs/{org_uuid(LARGEST_ORG)}?tz=UTC&range=custom"
               f"&from={first}&to={last}")
        samples = []
        for i in range(repeat):
            driver.execute_cdp_cmd("Network.clearBrowserCache", {})  # type: ignore[attr-defined]
            driver.get(url)  # type: ignore[attr-defined]
            deadline = time.monotonic() + 60
            while not driver.execute_script(  # type: ignore[attr-defined]
                    "return document.body.dataset.firstChart === '1'"):
                assert time.monotonic() < deadline, "no chart drawn"
                time.sleep(0.02)
            m = driver.execute_script(MEASURE)  # type: ignore[attr-defined]
            samples.append(m["firstChart"])
            print(f"run {i + 1}: first chart {m['firstChart']:7.0f} ms | TTFB {m['ttfb']:6.0f}"
                  f" ms | page {m['page'] / 1024:5.1f} KiB ({m['decoded'] / 1024:.1f} KiB "
                  f"decoded) + assets {m['assets'] / 1024:5.1f} KiB "
                  f"({m['assetsDecoded'] / 1024:.1f} KiB decoded)")
        median = statistics.median(samples)
        print(f"median first chart {median:.0f} ms = {median / TARGET_MS:.2f} x the 1 s target")
    finally:
        driver.quit()  # type: ignore[attr-defined]


def main() -> None:
    """Build or reuse the scale database, serve it, measure, clean up."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--reuse", metavar="NAME")
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()
    print(machine())
    name = args.reuse or "analytics_bench_dashboard"
    if args.reuse:
        if not database_exists(name):
            raise SystemExit(f"no database {name!r}; build it with --keep first")
        url = server_url().set(database=name)
    else:
        url = build(name)
    port = _free_port()
    env = {**os.environ, "ANALYTICS_DATABASE_URL": url.render_as_string(hide_password=False),
           "ANALYTICS_PORT": str(port), "ANALYTICS_WORKERS": "1",
           "ANALYTICS_EMBEDDED_WORKER": "false"}
    cli = [sys.executable, "-m", "analytics_app.cli"]
    created = subprocess.run([*cli, "apikey", "create", "--org", str(org_uuid(LARGEST_ORG)),
                              "--role", "org_admin", "--name", "bench"], env=env,
                             capture_output=True, text=True, check=True)
    key = re.search(r"ak_\w+", created.stdout)
    assert key, created.stdout
    proc = subprocess.Popen([*cli, "serve"], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        base = f"http://127.0.0.1:{port}"
        _wait_healthy(base, proc)
        measure(base, key.group(0), args.repeat)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=60)
        if not args.keep and not args.reuse:
            drop_database(name)


if __name__ == "__main__":
    main()
