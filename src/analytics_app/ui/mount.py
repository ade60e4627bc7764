"""`mount_dashboard(app, api)`: add the dashboard's routes to the API's Falcon app."""

from __future__ import annotations

import falcon

from analytics_app.http.auth import Authenticator
from analytics_app.ui.api import DashboardApi
from analytics_app.ui.assets import STATIC_PREFIX, StaticResource, load_assets
from analytics_app.ui.pages import (
    UI,
    BudgetsPage,
    CsvPage,
    DownloadPage,
    ExportsPage,
    FleetPage,
    HomePage,
    OverviewPage,
    ReliabilityPage,
    Shell,
    SignInPage,
    SignOutPage,
)

UI_ROUTES = (
    f"{UI}", f"{UI}/sign-in", f"{UI}/sign-out", f"{UI}/fleet", f"{UI}/orgs/{{orgId}}",
    f"{UI}/orgs/{{orgId}}/reliability", f"{UI}/orgs/{{orgId}}/tables/{{name}}.csv",
    f"{UI}/orgs/{{orgId}}/exports", f"{UI}/orgs/{{orgId}}/exports/{{jobId}}/download",
    f"{UI}/orgs/{{orgId}}/budgets", f"{STATIC_PREFIX}/{{name:path}}",
)


def mount_dashboard(app: falcon.App[falcon.Request, falcon.Response], api: DashboardApi) -> None:
    """Serve the dashboard at /analytics/ui/ from the same app (and process) as the API."""
    assets = load_assets()
    shell = Shell(api, Authenticator(api.http.settings, api.http.authenticate_api_key), assets)
    keys = api.attribution_keys
    resources: tuple[object, ...] = (
        HomePage(shell), SignInPage(shell), SignOutPage(shell), FleetPage(shell),
        OverviewPage(shell, keys), ReliabilityPage(shell), CsvPage(shell, keys),
        ExportsPage(shell), DownloadPage(shell), BudgetsPage(shell), StaticResource(assets),
    )
    for template, resource in zip(UI_ROUTES, resources, strict=True):
        app.add_route(template, resource)
