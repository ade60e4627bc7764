"""Helpers for the dashboard tests: the app with the dashboard mounted, sign-in, page parsing."""

from __future__ import annotations

import html
import re
import urllib.parse

import falcon
import falcon.testing

from analytics_app.bootstrap.application import Application
from analytics_app.http.app import create_app
from analytics_app.ui.mount import mount_dashboard

UI = "/analytics/ui"
FORM = {"Content-Type": "application/x-www-form-urlencoded"}


def dashboard_app(application: Application) -> falcon.App[falcon.Request, falcon.Response]:
    """The API with the dashboard mounted, as `start_runtime` builds it."""
    app = create_app(application.http_api())
    mount_dashboard(app, application.dashboard_api())
    return app


def hidden(page: str, name: str) -> str:
    """The value of a hidden input of a page."""
    found = re.search(rf'<input type="hidden" name="{name}" value="([^"]*)"', page)
    assert found, f"no hidden {name} field"
    return html.unescape(found.group(1))


def encode(fields: dict[str, str]) -> str:
    """A urlencoded form body."""
    return urllib.parse.urlencode(fields)


class Browser:
    """A cookie-keeping client over the TestClient (the way a browser holds the session)."""

    def __init__(self, client: falcon.testing.TestClient) -> None:
        self.client = client
        self.cookies: dict[str, str] = {}

    def _keep(self, result: falcon.testing.Result) -> None:
        for name, c in result.cookies.items():
            if c.value == "" or (c.max_age is not None and c.max_age <= 0):
                self.cookies.pop(name, None)
            else:
                self.cookies[name] = c.value

    def get(self, path: str, **params: str) -> falcon.testing.Result:
        """GET with the held cookies."""
        result = self.client.simulate_get(path, params=params or None, cookies=self.cookies)
        self._keep(result)
        return result

    def post(self, path: str, fields: dict[str, str], **kwargs: object
             ) -> falcon.testing.Result:
        """POST a form with the held cookies."""
        result = self.client.simulate_post(path, body=encode(fields), headers=FORM,
                                           cookies=self.cookies, **kwargs)  # type: ignore[arg-type]
        self._keep(result)
        return result

    def sign_in(self, credential: str) -> falcon.testing.Result:
        """Open the form, then post the credential with its CSRF token."""
        held = self.cookies.pop("analytics_session", None)  # signed in: the form redirects
        form = self.get(f"{UI}/sign-in")
        assert form.status_code == 200, form.text
        if held is not None:
            self.cookies["analytics_session"] = held
        return self.post(f"{UI}/sign-in", {"csrf": hidden(form.text, "csrf"),
                                           "credential": credential, "next": ""})


def exact_kpi(page: str, label: str) -> str:
    """The exact value behind a KPI tile."""
    found = re.search(rf'data-kpi="{re.escape(label)}">.*?data-exact="([^"]*)"', page, re.S)
    assert found, f"no KPI {label!r}"
    return found.group(1)
