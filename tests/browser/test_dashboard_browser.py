"""The dashboard in a real browser (headless Debian Chromium, network blocked but loopback):
sign in, the overview's totals against the API's, a zone switch, an export downloaded,
another org refused, CSP, sign-out."""

from __future__ import annotations

import json
import re
import time
import urllib.parse
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.browser.conftest import BROWSER_TZ, Service

UI = "/analytics/ui"
WAIT = 30.0

pytestmark = pytest.mark.slow


def _wait(driver: Any, condition: str, timeout: float = WAIT) -> Any:
    """Poll a JavaScript expression until it is truthy."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = driver.execute_script(f"return {condition};")
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {condition} on {driver.current_url}")


def _api(service: Service, path: str, **params: str) -> dict[str, Any]:
    url = f"{service.base}/analytics/v1{path}?{urllib.parse.urlencode(params)}"
    request = urllib.request.Request(url, headers={"X-API-Key": service.key})
    with urllib.request.urlopen(request, timeout=30) as r:
        body: dict[str, Any] = json.load(r)
    return body


def _kpi(driver: Any, label: str) -> str:
    value: str = driver.execute_script(
        "return document.querySelector(`[data-kpi='${arguments[0]}'] .value`).dataset.exact;",
        label)
    return value


def _window(driver: Any) -> dict[str, str]:
    found: dict[str, str] = driver.execute_script(
        "const w = document.querySelector('.window'); "
        "return {start: w.dataset.start, end: w.dataset.end, tz: document.body.dataset.tz};")
    return found


def _shot(driver: Any, artifacts: Path, name: str) -> None:
    driver.save_screenshot(str(artifacts / f"dashboard-{name}.png"))


@pytest.fixture(scope="module")
def signed_in(chrome: Any, service: Service, artifacts: Path) -> Any:
    """Sign in through the form with the key `serve --demo` printed."""
    chrome.get(f"{service.base}{UI}/")
    assert "/sign-in" in chrome.current_url
    _shot(chrome, artifacts, "sign-in")
    chrome.find_element("id", "credential").send_keys(service.key)
    chrome.find_element("css selector", "main.sign-in button[type=submit]").click()
    _wait(chrome, "document.body.dataset.page === 'overview'")
    return chrome


def test_overview_totals_equal_the_apis(signed_in: Any, service: Service,
                                        artifacts: Path) -> None:
    """Signed in, the overview (in the browser's zone) shows the API's totals exactly and
    draws its chart from the package's own scripts."""
    driver = signed_in
    _wait(driver, f"new URL(location.href).searchParams.get('tz') === '{BROWSER_TZ}'")
    _wait(driver, "document.body.dataset.firstChart === '1'")
    window = _window(driver)
    assert window["tz"] == BROWSER_TZ
    api = _api(service, f"/orgs/{service.org_id}/usage", start=window["start"],
               end=window["end"], tz=window["tz"])
    assert _kpi(driver, "Reported cost") == api["totals"]["costEstimateCentsExact"]
    assert _kpi(driver, "Catalog cost") == api["totals"]["catalogCostCentsExact"]
    assert _kpi(driver, "Invocations") == str(api["totals"]["invocations"])
    assert api["totals"]["invocations"] > 0
    assert driver.execute_script("return document.querySelectorAll('.chart canvas').length") >= 1
    _shot(driver, artifacts, "overview")


def test_switching_the_zone_moves_the_day_buckets(signed_in: Any, service: Service,
                                                  artifacts: Path) -> None:
    """Choosing Asia/Kolkata re-renders the page with days starting at its midnight."""
    driver = signed_in
    driver.get(f"{service.base}{UI}/orgs/{service.org_id}?tz=UTC&range=7d")
    utc_first = int(_wait(driver, "document.querySelector('[data-t]')?.dataset.t"))
    driver.execute_script(
        "const s = document.querySelector('select[name=tz]'); s.value = 'Asia/Kolkata';"
        "s.dispatchEvent(new Event('change', {bubbles: true}));")
    _wait(driver, "document.body.dataset.tz === 'Asia/Kolkata'")
    kolkata_first = int(_wait(driver, "document.querySelector('[data-t]')?.dataset.t"))
    assert (utc_first - kolkata_first) % 86400 == 19800  # local midnight is 18:30 UTC
    _shot(driver, artifacts, "overview-kolkata")


def test_reliability_page_draws_rates_and_latency(signed_in: Any, service: Service,
                                                  artifacts: Path) -> None:
    """The reliability page draws both charts and lists error codes; the numbers are the
    API's."""
    driver = signed_in
    driver.get(f"{service.base}{UI}/orgs/{service.org_id}/reliability?tz=UTC&range=31d")
    _wait(driver, "document.body.dataset.chartsReady === '2'")
    window = _window(driver)
    api = _api(service, f"/orgs/{service.org_id}/reliability", start=window["start"],
               end=window["end"], tz="UTC", granularity="day", groupBy="none")
    assert _kpi(driver, "Invocations") == str(api["totals"]["invocations"])
    assert _kpi(driver, "Failure rate") == repr(api["totals"]["errorRate"])
    _shot(driver, artifacts, "reliability")


def test_an_export_is_created_and_downloaded(signed_in: Any, service: Service,
                                             downloads: Path, artifacts: Path) -> None:
    """The exports form queues a job; once the embedded worker ran it, Download saves it."""
    driver = signed_in
    driver.get(f"{service.base}{UI}/orgs/{service.org_id}/exports?tz=UTC")
    driver.find_element("css selector", ".export-form button[type=submit]").click()
    _wait(driver, "location.search.includes('created=')")
    deadline = time.monotonic() + WAIT
    while not driver.find_elements("css selector", "a.download"):
        assert time.monotonic() < deadline, "the export never succeeded"
        time.sleep(0.5)
        driver.refresh()
    _shot(driver, artifacts, "exports")
    driver.find_element("css selector", "a.download").click()
    deadline = time.monotonic() + WAIT
    while not list(downloads.glob("*.csv")):
        assert time.monotonic() < deadline, "no file downloaded"
        time.sleep(0.2)
    saved = next(downloads.glob("*.csv"))
    time.sleep(0.5)
    assert saved.read_text().startswith("bucket_start,")


def test_budgets_page_lists_the_demo_budget(signed_in: Any, service: Service,
                                            artifacts: Path) -> None:
    """The demo's budgets are listed with their status."""
    driver = signed_in
    driver.get(f"{service.base}{UI}/orgs/{service.org_id}/budgets?tz=UTC")
    assert driver.find_elements("css selector", "tr[data-budget]")
    _shot(driver, artifacts, "budgets")


def test_another_orgs_url_is_refused(signed_in: Any, service: Service) -> None:
    """Opening another org's overview is a 403 page."""
    driver = signed_in
    driver.get(f"{service.base}{UI}/orgs/{uuid.uuid4()}?tz=UTC")
    assert driver.find_element("tag name", "h1").text == "Access denied"


def test_the_csp_blocks_inline_scripts(signed_in: Any, service: Service) -> None:
    """An injected inline script does not run on a dashboard page."""
    driver = signed_in
    driver.get(f"{service.base}{UI}/orgs/{service.org_id}?tz=UTC")
    driver.execute_script(
        "const s = document.createElement('script'); s.textContent = 'window.__inline = 1;';"
        "document.body.appendChild(s);")
    time.sleep(0.2)
    assert driver.execute_script("return window.__inline") is None
    logs = " ".join(e["message"] for e in driver.get_log("browser"))
    assert "Content Security Policy" in logs


def test_the_browser_reaches_nothing_but_loopback(chrome: Any) -> None:
    """The charts above were drawn with the network blocked: another host does not load."""
    from selenium.common.exceptions import WebDriverException  # noqa: PLC0415

    with pytest.raises(WebDriverException, match=r"net::ERR_(PROXY_CONNECTION_FAILED|NAME_NOT)"):
        chrome.get("https://cdn.jsdelivr.net/npm/uplot/dist/uPlot.iife.min.js")


def test_the_page_is_usable_on_a_phone(signed_in: Any, service: Service,
                                       artifacts: Path) -> None:
    """At 390 px wide nothing overflows horizontally and the charts still draw."""
    driver = signed_in
    driver.set_window_size(390, 900)
    try:
        driver.get(f"{service.base}{UI}/orgs/{service.org_id}?tz=UTC")
        _wait(driver, "document.body.dataset.firstChart === '1'")
        overflow = driver.execute_script(
            "return document.documentElement.scrollWidth - window.innerWidth")
        wide = driver.execute_script(
            "return [...document.querySelectorAll('main *')].filter(e => "
            "e.getBoundingClientRect().right > window.innerWidth + 1).slice(0, 8)"
            ".map(e => e.tagName + '.' + e.className + ' ' + e.getBoundingClientRect().right)")
        assert overflow <= 1, wide
        _shot(driver, artifacts, "overview-phone")
    finally:
        driver.set_window_size(1280, 1000)


def test_signing_out_ends_the_session(signed_in: Any, service: Service) -> None:
    """Sign out, then every page sends the browser back to the sign-in form."""
    driver = signed_in
    driver.get(f"{service.base}{UI}/orgs/{service.org_id}?tz=UTC")
    driver.find_element("css selector", "form.signout button").click()
    _wait(driver, "location.pathname.endsWith('/sign-in')")
    driver.get(f"{service.base}{UI}/orgs/{service.org_id}?tz=UTC")
    assert "/sign-in" in driver.current_url
    assert not [c for c in driver.get_cookies() if c["name"] == "analytics_session"]
    assert re.search("Sign in", driver.page_source)


def test_an_admin_sorts_the_fleet_and_opens_an_org(chrome: Any, service: Service,
                                                   artifacts: Path) -> None:
    """Signed in as admin: the fleet lists every demo org, sorts by a column from the
    keyboard-reachable header button, and an org's link opens its overview."""
    chrome.delete_all_cookies()
    chrome.get(f"{service.base}{UI}/sign-in")
    chrome.find_element("id", "credential").send_keys(service.admin_key)
    chrome.find_element("css selector", "main.sign-in button[type=submit]").click()
    _wait(chrome, "document.body.dataset.page === 'fleet'")
    rows = chrome.find_elements("css selector", "table[data-table=fleet] tbody tr")
    assert len(rows) >= 2
    invocations = chrome.find_element(
        "xpath", "//table[@data-table='fleet']//th[.//button[normalize-space()='Invocations']]")
    invocations.find_element("tag name", "button").click()
    assert invocations.get_attribute("aria-sort") == "ascending"
    values = [int(c.get_attribute("data-sort") or 0) for c in chrome.find_elements(
        "css selector", "table[data-table=fleet] tbody tr td:nth-of-type(4)")]
    assert values == sorted(values)
    _shot(chrome, artifacts, "fleet")
    chrome.find_element("css selector", f"a[href^='{UI}/orgs/{service.org_id}']").click()
    _wait(chrome, "document.body.dataset.page === 'overview'")
    assert service.org_id in chrome.current_url
