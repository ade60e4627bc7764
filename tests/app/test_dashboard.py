"""The dashboard over the in-memory composition: sessions, CSRF, scoping, the same numbers."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import falcon.testing
import pytest

from analytics_adapters.memory import ManualClock
from analytics_app.bootstrap.application import Application
from analytics_core.sessions import session_hash
from tests.app.conftest import PREFIX, EventFactory, TokenFactory
from tests.app.dashboard_support import (
    UI,
    Browser,
    dashboard_app,
    exact_kpi,
    hidden,
)

KeyFactory = Callable[[uuid.UUID | None, str], str]


@pytest.fixture
def ui_client(application: Application) -> falcon.testing.TestClient:
    """A test client over the API with the dashboard mounted."""
    return falcon.testing.TestClient(dashboard_app(application))


@pytest.fixture
def browser(ui_client: falcon.testing.TestClient) -> Browser:
    """A cookie-keeping client."""
    return Browser(ui_client)


@pytest.fixture
def browser_factory(ui_client: falcon.testing.TestClient) -> Callable[[], Browser]:
    """Another browser over the same app."""
    return lambda: Browser(ui_client)


@pytest.fixture
def signed_in(browser: Browser, api_key: KeyFactory, org_a: uuid.UUID) -> Browser:
    """A browser signed in with an org_admin key of org A."""
    result = browser.sign_in(api_key(org_a, "org_admin"))
    assert result.status_code == 303, result.text
    return browser


def _events(ui_client: falcon.testing.TestClient, headers: dict[str, str],
            events: list[dict[str, Any]]) -> None:
    result = ui_client.simulate_post(f"{PREFIX}/events", json={"events": events},
                                     headers=headers)
    assert result.status_code == 202, result.text


def test_sign_in_form_sets_a_strict_httponly_token_cookie(browser: Browser) -> None:
    """The sign-in form carries a CSRF token also set as an HttpOnly, SameSite=Strict cookie."""
    result = browser.get(f"{UI}/sign-in")
    assert result.status_code == 200
    cookie = result.cookies["analytics_signin"]
    assert cookie.http_only
    assert cookie.same_site == "Strict"
    assert cookie.path == UI
    assert hidden(result.text, "csrf") == cookie.value


def test_pages_send_a_csp_that_forbids_inline_scripts(browser: Browser) -> None:
    """Every page's Content-Security-Policy allows scripts from the service only."""
    result = browser.get(f"{UI}/sign-in")
    csp = result.headers["content-security-policy"]
    assert "script-src 'self'" in csp
    assert "unsafe-inline" not in csp
    assert result.headers["x-frame-options"] == "DENY"
    assert "<script>" not in result.text


def test_sign_in_without_the_form_token_is_refused(
    browser: Browser, api_key: KeyFactory, org_a: uuid.UUID,
) -> None:
    """A sign-in POST without the form's CSRF token opens no session."""
    result = browser.post(f"{UI}/sign-in", {"credential": api_key(org_a, "org_admin")})
    assert result.status_code == 403
    assert "analytics_session" not in result.cookies


def test_a_wrong_key_shows_the_form_again_with_the_reason(browser: Browser) -> None:
    """An unknown key is a 401 page that says so; no session cookie is set."""
    result = browser.sign_in("ak_0000000000000000_" + "0" * 64)
    assert result.status_code == 401
    assert "Sign-in failed: invalid API key" in result.text
    assert "analytics_session" not in result.cookies


def test_signing_in_sets_a_session_cookie_with_safe_flags(
    browser: Browser, api_key: KeyFactory, org_a: uuid.UUID,
) -> None:
    """The session cookie is HttpOnly, SameSite=Strict, scoped to the dashboard, not Secure
    over plain http; the key itself is in no cookie and no redirect."""
    key = api_key(org_a, "org_admin")
    result = browser.sign_in(key)
    assert result.status_code == 303
    assert result.headers["location"] == UI
    cookie = result.cookies["analytics_session"]
    assert cookie.http_only
    assert cookie.same_site == "Strict"
    assert cookie.path == UI
    assert not cookie.secure
    assert key not in cookie.value
    assert key not in result.headers["location"]
    home = browser.get(UI)
    assert home.status_code == 303
    assert home.headers["location"] == f"{UI}/orgs/{org_a}"


def test_over_https_the_session_cookie_is_secure(
    ui_client: falcon.testing.TestClient, api_key: KeyFactory, org_a: uuid.UUID,
) -> None:
    """Served over https, the session cookie carries Secure."""
    form = ui_client.simulate_get(f"{UI}/sign-in", protocol="https")
    token = form.cookies["analytics_signin"].value
    assert form.cookies["analytics_signin"].secure
    result = ui_client.simulate_post(
        f"{UI}/sign-in", protocol="https", cookies={"analytics_signin": token},
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        body=f"csrf={token}&credential={api_key(org_a, 'org_admin')}")
    assert result.status_code == 303
    assert result.cookies["analytics_session"].secure


def test_sign_in_always_issues_a_new_session_id(
    browser: Browser, api_key: KeyFactory, org_a: uuid.UUID,
) -> None:
    """Session fixation: a session id presented at sign-in is replaced and stops working."""
    browser.sign_in(api_key(org_a, "org_admin"))
    first = browser.cookies["analytics_session"]
    browser.sign_in(api_key(org_a, "org_admin"))
    second = browser.cookies["analytics_session"]
    assert first != second
    stale = browser.client.simulate_get(f"{UI}/orgs/{org_a}",
                                        cookies={"analytics_session": first})
    assert stale.status_code == 303
    assert "/sign-in" in stale.headers["location"]


def test_without_a_session_a_page_redirects_to_sign_in_and_back(browser: Browser,
                                                              org_a: uuid.UUID) -> None:
    """An anonymous visit goes to the sign-in form, which remembers the page."""
    result = browser.get(f"{UI}/orgs/{org_a}/reliability")
    assert result.status_code == 303
    assert result.headers["location"].startswith(f"{UI}/sign-in?next=")
    form = browser.get(f"{UI}/sign-in", next=f"{UI}/orgs/{org_a}/reliability")
    assert hidden(form.text, "next") == f"{UI}/orgs/{org_a}/reliability"


def test_a_failed_sign_in_keeps_the_page_to_return_to(browser: Browser,
                                                      org_a: uuid.UUID) -> None:
    """After a wrong key the form still sends the user on to the page they asked for."""
    form = browser.get(f"{UI}/sign-in", next=f"{UI}/orgs/{org_a}/budgets")
    failed = browser.post(f"{UI}/sign-in", {"csrf": hidden(form.text, "csrf"),
                                            "credential": "ak_x_y",
                                            "next": f"{UI}/orgs/{org_a}/budgets"})
    assert failed.status_code == 401
    assert hidden(failed.text, "next") == f"{UI}/orgs/{org_a}/budgets"


def test_next_never_leaves_the_dashboard(browser: Browser) -> None:
    """An off-site `next` is dropped (no open redirect)."""
    form = browser.get(f"{UI}/sign-in", next="//evil.example/x")
    assert hidden(form.text, "next") == ""


def test_the_overview_shows_the_apis_totals_exactly(
    signed_in: Browser, ui_client: falcon.testing.TestClient, org_a: uuid.UUID,
    admin_of_a: dict[str, str], make_event: EventFactory,
) -> None:
    """The overview's cost, tokens and invocations equal the usage API's for its window."""
    _events(ui_client, admin_of_a, [make_event(org_a, costEstimateCents="1.2345"),
                                    make_event(org_a, costEstimateCents="10.5")])
    page = signed_in.get(f"{UI}/orgs/{org_a}", tz="Europe/Berlin", range="month")
    assert page.status_code == 200, page.text
    window = re.search(r'data-start="([^"]+)" data-end="([^"]+)"', page.text)
    assert window
    api = ui_client.simulate_get(
        f"{PREFIX}/orgs/{org_a}/usage", headers=admin_of_a,
        params={"start": window.group(1), "end": window.group(2), "tz": "Europe/Berlin"}).json
    assert exact_kpi(page.text, "Reported cost") == api["totals"]["costEstimateCentsExact"]
    assert exact_kpi(page.text, "Reported cost") == "11.7345"
    assert exact_kpi(page.text, "Invocations") == str(api["totals"]["invocations"]) == "2"
    assert exact_kpi(page.text, "Input tokens") == str(api["totals"]["inputTokens"])
    assert "$0.12" in page.text  # displayed rounded to the cent


def test_the_window_follows_the_zone(signed_in: Browser, org_a: uuid.UUID) -> None:
    """The same range in Asia/Kolkata starts at local midnight, 18:30 UTC the day before."""
    page = signed_in.get(f"{UI}/orgs/{org_a}", tz="Asia/Kolkata", range="month")
    start = re.search(r'data-start="([^"]+)"', page.text)
    assert start
    assert start.group(1) == "2024-02-29T18:30:00+00:00"
    assert 'data-tz="Asia/Kolkata"' in page.text
    assert 'data-tz-default="0"' in page.text


def test_without_a_zone_the_page_asks_the_browser(signed_in: Browser, org_a: uuid.UUID) -> None:
    """No `tz`: the page is UTC and flags that the browser's zone should be used."""
    page = signed_in.get(f"{UI}/orgs/{org_a}")
    assert 'data-tz-default="1"' in page.text


def test_an_unknown_zone_is_a_400_page_naming_tz(signed_in: Browser, org_a: uuid.UUID) -> None:
    """A bad zone is a clear error, never a 5xx."""
    page = signed_in.get(f"{UI}/orgs/{org_a}", tz="Mars/Olympus")
    assert page.status_code == 400
    assert "<code>tz</code>" in page.text
    assert "Mars/Olympus" in page.text


def test_another_orgs_page_is_403_and_audited(
    signed_in: Browser, org_a: uuid.UUID, org_b: uuid.UUID, audit: Callable[[uuid.UUID], list[Any]],
) -> None:
    """An org admin opening another org's page gets 403, recorded in that org's audit log."""
    for page in ("", "/reliability", "/exports", "/budgets", "/tables/spend-by-model.csv"):
        result = signed_in.get(f"{UI}/orgs/{org_b}{page}")
        assert result.status_code == 403, page
    entries = audit(org_b)
    assert entries
    assert len(entries) == 5, entries
    assert {(e.outcome, e.actor_org) for e in entries} == {("denied", org_a)}


def test_the_fleet_is_for_admins_only(signed_in: Browser) -> None:
    """An org admin cannot open the fleet view."""
    assert signed_in.get(f"{UI}/fleet").status_code == 403


def test_the_fleet_lists_every_org_with_spend_and_links(
    browser: Browser, ui_client: falcon.testing.TestClient, api_key: KeyFactory,
    org_a: uuid.UUID, org_b: uuid.UUID, auth: Callable[..., dict[str, str]],
    make_event: EventFactory,
) -> None:
    """An admin sees both orgs, each linking to its overview, largest spend first."""
    _events(ui_client, auth(org_a, "org_admin"), [make_event(org_a, costEstimateCents="2")])
    _events(ui_client, auth(org_b, "org_admin"), [make_event(org_b, costEstimateCents="5")])
    browser.sign_in(api_key(None, "admin"))
    assert browser.get(UI).headers["location"] == f"{UI}/fleet"
    page = browser.get(f"{UI}/fleet", tz="UTC")
    assert page.status_code == 200, page.text
    assert page.text.index(str(org_b)) < page.text.index(str(org_a))
    assert f'href="{UI}/orgs/{org_a}?tz=UTC' in page.text
    assert 'data-v="5.0000"' in page.text
    assert 'data-v="2.0000"' in page.text
    for org in (org_a, org_b):  # each org's freshness is the API's for that org
        status = ui_client.simulate_get(f"{PREFIX}/orgs/{org}/freshness",
                                        headers=auth(None, "admin")).json["status"]
        assert re.search(rf'{org}</a></th>.*?data-v="{status}"', page.text, re.S)
    assert 'class="banner ' in page.text


def test_sign_out_needs_the_csrf_token_then_ends_the_session(
    signed_in: Browser, org_a: uuid.UUID,
) -> None:
    """A CSRF-less sign-out is refused; with the token the session is gone."""
    page = signed_in.get(f"{UI}/orgs/{org_a}", tz="UTC")
    refused = signed_in.post(f"{UI}/sign-out", {})
    assert refused.status_code == 403
    assert signed_in.get(f"{UI}/orgs/{org_a}", tz="UTC").status_code == 200
    token = signed_in.cookies["analytics_session"]
    done = signed_in.post(f"{UI}/sign-out", {"csrf": hidden(page.text, "csrf")})
    assert done.status_code == 303
    assert done.headers["location"] == f"{UI}/sign-in"
    assert "analytics_session" not in signed_in.cookies
    again = signed_in.client.simulate_get(f"{UI}/orgs/{org_a}",
                                          cookies={"analytics_session": token})
    assert again.status_code == 303


def test_a_revoked_key_ends_its_sessions(
    signed_in: Browser, application: Application, org_a: uuid.UUID,
) -> None:
    """Revoking the key a session was opened with signs that session out."""
    for record in application.use_cases.list_api_keys(org_a):
        application.use_cases.revoke_api_key(record.key_id, "test")
    assert signed_in.get(f"{UI}/orgs/{org_a}").status_code == 303


def test_a_bearer_token_signs_in_as_its_subject(
    browser: Browser, make_token: TokenFactory, org_a: uuid.UUID,
) -> None:
    """A JWT (with or without the `Bearer ` prefix) opens a session for its subject and org;
    an expired one is refused with the reason."""
    token = make_token(org_a, ["analytics:usage:read"], sub="ada@example.com")
    assert browser.sign_in(f"Bearer {token}").status_code == 303
    page = browser.get(UI)
    assert page.headers["location"] == f"{UI}/orgs/{org_a}"
    assert "ada@example.com" in browser.get(f"{UI}/orgs/{org_a}", tz="UTC").text
    expired = Browser(browser.client).sign_in(make_token(org_a, ["org_admin"], exp=1000))
    assert expired.status_code == 401
    assert "bearer token has expired" in expired.text


def test_exports_are_created_listed_and_downloaded(
    signed_in: Browser, application: Application, org_a: uuid.UUID,
    ui_client: falcon.testing.TestClient, admin_of_a: dict[str, str], make_event: EventFactory,
) -> None:
    """Create an export from the form, run it, and download the file from the list."""
    _events(ui_client, admin_of_a, [make_event(org_a)])
    page = signed_in.get(f"{UI}/orgs/{org_a}/exports", tz="UTC")
    created = signed_in.post(f"{UI}/orgs/{org_a}/exports", {
        "csrf": hidden(page.text, "csrf"), "kind": "usage", "granularity": "daily",
        "from": "2024-03-01", "to": "2024-03-15", "tz": "UTC"})
    assert created.status_code == 303, created.text
    application.export_worker().run_round()
    listing = signed_in.get(f"{UI}/orgs/{org_a}/exports", tz="UTC")
    link = re.search(r'class="download" href="([^"]+)"', listing.text)
    assert link, listing.text
    download = signed_in.get(link.group(1))
    assert download.status_code == 200
    assert download.text.splitlines()[0].startswith("bucket_start") or "," in download.text


def test_an_export_form_without_csrf_is_refused(
    signed_in: Browser, org_a: uuid.UUID, application: Application,
) -> None:
    """A cross-site POST (no CSRF token) creates nothing."""
    result = signed_in.post(f"{UI}/orgs/{org_a}/exports", {
        "kind": "usage", "from": "2024-03-01", "to": "2024-03-15", "tz": "UTC"})
    assert result.status_code == 403
    assert application.use_cases.list_exports(org_a, None, 10, None).jobs == ()


def test_a_bad_export_form_names_the_field(signed_in: Browser, org_a: uuid.UUID) -> None:
    """Dates in the wrong order are a 400 naming `to`."""
    page = signed_in.get(f"{UI}/orgs/{org_a}/exports", tz="UTC")
    result = signed_in.post(f"{UI}/orgs/{org_a}/exports", {
        "csrf": hidden(page.text, "csrf"), "kind": "usage", "from": "2024-03-10",
        "to": "2024-03-01", "tz": "UTC"})
    assert result.status_code == 400
    assert "<code>to</code>" in result.text


def test_chart_tables_download_as_csv_with_exact_values(
    signed_in: Browser, ui_client: falcon.testing.TestClient, org_a: uuid.UUID,
    admin_of_a: dict[str, str], make_event: EventFactory,
) -> None:
    """The spend chart's CSV carries the exact cents the table shows."""
    _events(ui_client, admin_of_a, [make_event(org_a, costEstimateCents="1.2345")])
    result = signed_in.get(f"{UI}/orgs/{org_a}/tables/spend-by-model.csv", tz="UTC")
    assert result.status_code == 200
    assert result.headers["content-type"].startswith("text/csv")
    assert "1.2345" in result.text
    clients = signed_in.get(f"{UI}/orgs/{org_a}/tables/clients.csv", tz="UTC")
    assert clients.text.splitlines()[0] == "Client,Reported cost,Catalog cost,Invocations"
    assert "1.2345" in clients.text
    codes = signed_in.get(f"{UI}/orgs/{org_a}/tables/error-codes.csv", tz="UTC")
    assert codes.text.splitlines()[0] == "Error code,Count"
    missing = signed_in.get(f"{UI}/orgs/{org_a}/tables/nope.csv")
    assert missing.status_code == 404
    assert "clients" in missing.text


def test_reliability_page_shows_error_rates_and_codes(
    signed_in: Browser, ui_client: falcon.testing.TestClient, org_a: uuid.UUID,
    admin_of_a: dict[str, str], make_event: EventFactory,
) -> None:
    """Failures by class and the top error code appear with the API's rates."""
    _events(ui_client, admin_of_a, [
        make_event(org_a), make_event(org_a, status="error", errorCode="rate_limit_x")])
    page = signed_in.get(f"{UI}/orgs/{org_a}/reliability", tz="UTC", range="7d")
    assert page.status_code == 200, page.text
    assert "rate_limit_x" in page.text
    assert 'data-kpi="Failure rate"' in page.text
    assert "50.00 %" in page.text


def test_static_assets_are_served_compressed_and_cacheable(
    ui_client: falcon.testing.TestClient,
) -> None:
    """app.js comes from the package, gzip when accepted, immutable when the URL has its hash;
    unknown files are 404."""
    form = ui_client.simulate_get(f"{UI}/sign-in")
    css = re.search(r'href="(/analytics/ui/static/app\.css\?v=[0-9a-f]+)"', form.text)
    assert css
    result = ui_client.simulate_get(css.group(1).split("?")[0],
                                    params={"v": css.group(1).split("=")[1]},
                                    headers={"Accept-Encoding": "gzip"})
    assert result.status_code == 200
    assert result.headers["content-encoding"] == "gzip"
    assert "immutable" in result.headers["cache-control"]
    assert ui_client.simulate_get(f"{UI}/static/../pyproject.toml").status_code == 404
    assert ui_client.simulate_get(f"{UI}/static/nope.js").status_code == 404


def test_this_months_overview_forecasts_the_month_like_a_budget(
    signed_in: Browser, ui_client: falcon.testing.TestClient, org_a: uuid.UUID,
    admin_of_a: dict[str, str], make_event: EventFactory,
) -> None:
    """Spent so far plus the last 7 days' run rate for the rest of the month (16.5 days left
    of March on the 15th at noon UTC: 10 cents in 7 days projects 10 + 10 * 16.5 / 7)."""
    _events(ui_client, admin_of_a, [make_event(org_a, costEstimateCents="10")])
    page = signed_in.get(f"{UI}/orgs/{org_a}", tz="UTC", range="month")
    assert exact_kpi(page.text, "Forecast for the month") == "33.5714"
    other = signed_in.get(f"{UI}/orgs/{org_a}", tz="UTC", range="7d")
    assert 'data-kpi="Forecast for the month"' not in other.text


def test_pages_show_registered_model_and_client_names(
    signed_in: Browser, ui_client: falcon.testing.TestClient, org_a: uuid.UUID,
    admin_of_a: dict[str, str], auth: Callable[..., dict[str, str]], make_event: EventFactory,
) -> None:
    """The spend chart's columns and the top clients carry registry names, not ids; renaming
    changes the labels and never the numbers."""
    model = uuid.uuid4()
    _events(ui_client, admin_of_a, [make_event(org_a, model, clientId="svc-search",
                                               costEstimateCents="4")])
    put = ui_client.simulate_put(f"{PREFIX}/models/{model}", json={"name": "gpt-4.1-mini"},
                                 headers=auth(None, "admin"))
    assert put.status_code == 201, put.text
    named = ui_client.simulate_put(f"{PREFIX}/orgs/{org_a}/clients/svc-search",
                                   json={"name": "Search"}, headers=admin_of_a)
    assert named.status_code == 200, named.text
    page = signed_in.get(f"{UI}/orgs/{org_a}", tz="UTC")
    assert '<th scope="col">gpt-4.1-mini</th>' in page.text
    assert ">Search</th>" in page.text
    assert str(model) not in page.text
    before = exact_kpi(page.text, "Reported cost")
    ui_client.simulate_put(f"{PREFIX}/models/{model}", json={"name": "GPT-4.1 mini"},
                           headers=auth(None, "admin"))
    again = signed_in.get(f"{UI}/orgs/{org_a}", tz="UTC")
    assert '<th scope="col">GPT-4.1 mini</th>' in again.text
    assert exact_kpi(again.text, "Reported cost") == before


def test_every_org_page_has_a_freshness_banner(signed_in: Browser, org_a: uuid.UUID) -> None:
    """Overview, reliability, exports and budgets all say how fresh the data is."""
    for page in ("", "/reliability", "/exports", "/budgets"):
        result = signed_in.get(f"{UI}/orgs/{org_a}{page}", tz="UTC")
        assert 'class="banner ' in result.text, page
        assert "complete through" in result.text, page


def test_exports_and_budgets_pages_follow_the_zone_picker(
    signed_in: Browser, org_a: uuid.UUID,
) -> None:
    """The zone picker is on every page: export times are shown in the chosen zone and the
    create form starts with the chosen window."""
    page = signed_in.get(f"{UI}/orgs/{org_a}/exports", tz="Asia/Kolkata", range="7d")
    signed_in.post(f"{UI}/orgs/{org_a}/exports", {
        "csrf": hidden(page.text, "csrf"), "kind": "events", "granularity": "daily",
        "from": "2024-03-09", "to": "2024-03-15", "tz": "Asia/Kolkata"})
    listing = signed_in.get(f"{UI}/orgs/{org_a}/exports", tz="Asia/Kolkata", range="7d")
    assert "Created (Asia/Kolkata)" in listing.text
    assert ">2024-03-15 17:30</time>" in listing.text  # 12:00 UTC
    assert 'name="from" required value="2024-03-09"' in listing.text
    budgets = signed_in.get(f"{UI}/orgs/{org_a}/budgets", tz="Asia/Kolkata")
    assert 'select name="tz"' in budgets.text


def test_the_export_workers_housekeeping_deletes_ended_sessions(
    signed_in: Browser, browser_factory: Callable[[], Browser], application: Application,
    clock: ManualClock, api_key: KeyFactory, org_a: uuid.UUID,
) -> None:
    """Sessions past their absolute expiry are deleted by the worker's housekeeping; live
    ones are kept."""
    old = session_hash(signed_in.cookies["analytics_session"])
    clock.advance(timedelta(hours=13))
    fresh = browser_factory()
    fresh.sign_in(api_key(org_a, "org_admin"))
    new = session_hash(fresh.cookies["analytics_session"])
    with application.ports.uow_factory() as uow:
        assert uow.sessions.find(old) is not None  # ended, not yet deleted
    application.export_worker().housekeeping()
    with application.ports.uow_factory() as uow:
        assert uow.sessions.find(old) is None
        assert uow.sessions.find(new) is not None
