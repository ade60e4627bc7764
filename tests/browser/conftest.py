"""The real service (`analytics serve --demo`) and Debian's headless Chromium, network blocked
except loopback, for the dashboard's browser tests. Screenshots go to build/screenshots/ (or
$ANALYTICS_TEST_ARTIFACTS)."""

from __future__ import annotations

import os
import queue
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import attrs
import pytest

from tests.conftest import require_service

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
START_TIMEOUT = 180.0
BROWSER_TZ = "America/New_York"  # the browser's own zone: the dashboard's default


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@attrs.frozen
class Service:
    """A running `analytics serve --demo`: where it is, the demo org and its printed key."""

    base: str
    org_id: str
    key: str
    admin_key: str


def _healthy(base: str) -> bool:
    try:
        with urllib.request.urlopen(f"{base}/analytics/v1/status/healthz", timeout=2) as r:
            return r.status == 200
    except OSError:
        return False


@pytest.fixture(scope="session")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    """The embedded service with demo data, as `make run` starts it, on a free port."""
    port = _free_port()
    data = tmp_path_factory.mktemp("ui-service")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ANALYTICS_", "PROMETHEUS_"))}
    env.update({"ANALYTICS_PORT": str(port), "ANALYTICS_WORKERS": "1",
                "ANALYTICS_DATA_DIR": str(data), "ANALYTICS_WORKER_POLL_SECONDS": "0.2",
                "ANALYTICS_ATTRIBUTION_KEYS": "team,feature", "PYTHONUNBUFFERED": "1"})
    cli = [sys.executable, "-m", "analytics_app.cli"]
    subprocess.run([*cli, "migrate"], env=env, check=True, capture_output=True, timeout=120)
    proc = subprocess.Popen([*cli, "serve", "--demo"], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    assert proc.stdout is not None
    stdout = proc.stdout
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in stdout], daemon=True).start()
    base = f"http://127.0.0.1:{port}"
    output: list[str] = []
    try:
        started = time.monotonic()
        while not any(line.startswith("Health:") for line in output):
            assert proc.poll() is None, "serve exited early:\n" + "".join(output)
            assert time.monotonic() - started < START_TIMEOUT, "".join(output)
            try:
                output.append(lines.get(timeout=1))
            except queue.Empty:
                continue
        text = "".join(output)
        org = re.search(r"^Org .*: ([0-9a-f-]{36})$", text, re.M)
        key = re.search(r"^  (ak_\S+)$", text, re.M)
        assert org, text
        assert key, text
        assert f"Dashboard: {base}/analytics/ui/" in text
        while not _healthy(base):
            time.sleep(0.2)
        admin = subprocess.run([*cli, "apikey", "create", "--role", "admin", "--name", "ui"],
                               env=env, check=True, capture_output=True, text=True, timeout=60)
        admin_key = re.search(r"ak_\w+", admin.stdout)
        assert admin_key, admin.stdout
        yield Service(base, org.group(1), key.group(1), admin_key.group(0))
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=60)


@pytest.fixture(scope="session")
def artifacts() -> Path:
    """Where screenshots are saved."""
    path = Path(os.environ.get("ANALYTICS_TEST_ARTIFACTS", ROOT / "build" / "screenshots"))
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture(scope="session")
def downloads(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The browser's download directory."""
    return tmp_path_factory.mktemp("downloads")


@pytest.fixture(scope="session")
def chrome(downloads: Path) -> Iterator[object]:
    """Headless Debian Chromium through chromedriver; every host but loopback unreachable."""
    require_service("Debian chromium and chromium-driver",
                    Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()
                    and shutil.which(CHROMEDRIVER) is not None)
    from selenium import webdriver  # noqa: PLC0415  # only when the browser exists
    from selenium.webdriver.chrome.service import Service as DriverService  # noqa: PLC0415

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                "--window-size=1280,1000", "--proxy-server=http://127.0.0.1:9",
                "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    options.add_experimental_option("prefs", {
        "download.default_directory": str(downloads), "download.prompt_for_download": False})
    service = DriverService(CHROMEDRIVER, env={**os.environ, "TZ": BROWSER_TZ})
    driver = webdriver.Chrome(service=service, options=options)
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()
