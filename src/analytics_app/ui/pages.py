"""The dashboard's pages: sign-in and out, overview, reliability, exports, budgets, fleet.

Each page is a Falcon resource marked `public` (the API's header authentication does not
apply); it resumes the session from its cookie instead and then asks the same audited
`authorize` use case as the API for every org it shows.
"""

from __future__ import annotations

import functools
import gzip
import urllib.parse
import uuid
from collections.abc import Callable, Mapping
from typing import Any

import falcon
import jinja2

from analytics_app.http.auth import Authenticator
from analytics_app.http.bodies import export_request
from analytics_app.http.context import request_id_of
from analytics_app.http.render import (
    alert_body,
    budget_view_body,
    freshness_block,
    job_body,
    rule_view_body,
    usage_body,
)
from analytics_app.http.resources.exports import send_download
from analytics_app.http.routes import PREFIX
from analytics_app.observability import metrics
from analytics_app.ui import views
from analytics_app.ui.api import DashboardApi
from analytics_app.ui.assets import ASSETS, Asset, asset_url
from analytics_app.ui.signin import (
    SESSION_COOKIE,
    SIGNIN_COOKIE,
    clear_cookie,
    cookie,
    identify,
    new_signin_token,
    same_token,
    set_cookie,
)
from analytics_app.ui.tables import Table, amount_display, local_time
from analytics_app.ui.window import RANGES, Window, resolve_window
from analytics_core.access import ADMIN, Action, Actor
from analytics_core.errors import (
    FieldError,
    Forbidden,
    NotFound,
    StoreUnavailable,
    Unauthenticated,
    ValidationFailed,
)
from analytics_core.sessions import UiSession
from analytics_core.timegrid import available_zones, zone
from analytics_core.usecases.fleet import FleetWindow

UI = "/analytics/ui"
MAX_FORM_BYTES = 64 * 1024
GZIP_FROM_BYTES = 1024
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'; "
       "object-src 'none'")


def org_path(org_id: uuid.UUID, page: str = "") -> str:
    """The dashboard path of one org's page ("" is the overview)."""
    return f"{UI}/orgs/{org_id}" + (f"/{page}" if page else "")


def _safe_next(target: str | None) -> str | None:
    """Only our own pages are redirect targets (never another host or a scheme-relative URL)."""
    if not target or not target.startswith(UI + "/") or "//" in target or "\\" in target:
        return None
    return target


class Redirect(Exception):
    """Answer with 303 See Other to `location` (raised from inside a page)."""

    def __init__(self, location: str) -> None:
        super().__init__(location)
        self.location = location


class Shell:
    """What every page shares: templates, assets, sessions, authorization and error pages."""

    def __init__(self, api: DashboardApi, authenticator: Authenticator,
                 assets: Mapping[str, Asset]) -> None:
        self.api = api
        self.authenticator = authenticator
        self.env = jinja2.Environment(
            loader=jinja2.PackageLoader("analytics_app.ui", "templates"),
            autoescape=True, undefined=jinja2.StrictUndefined,
        )
        self.env.filters["amount"] = amount_display
        self.env.filters["local"] = local_time
        self.env.globals.update(
            ui=UI, org_path=org_path, ranges=RANGES, zones=available_zones(),
            asset={name: asset_url(assets, name) for name in ASSETS},
        )

    def render(self, req: falcon.Request, resp: falcon.Response, template: str,
               status: int = 200, **context: Any) -> None:
        """An HTML page with the dashboard's security headers, gzip when the browser takes it;
        never cached."""
        resp.status = status
        resp.content_type = "text/html; charset=utf-8"
        resp.cache_control = ["no-store"]
        resp.set_header("Content-Security-Policy", CSP)
        resp.set_header("X-Content-Type-Options", "nosniff")
        resp.set_header("X-Frame-Options", "DENY")
        resp.set_header("Referrer-Policy", "no-referrer")
        body = self.env.get_template(template).render(**context).encode()
        resp.vary = ["Accept-Encoding"]
        if len(body) > GZIP_FROM_BYTES and "gzip" in (req.get_header("Accept-Encoding") or ""):
            resp.set_header("Content-Encoding", "gzip")
            body = gzip.compress(body, 6)
        resp.data = body

    def session(self, req: falcon.Request) -> UiSession:
        """The caller's live session (Unauthenticated when there is none)."""
        token = cookie(req, SESSION_COOKIE)
        if token is None:
            raise Unauthenticated("sign in first")
        return self.api.resume_session(token)

    def require(self, req: falcon.Request, actor: Actor, action: Action, org_id: uuid.UUID,
                resource: str = "") -> None:
        """The API's audited decision for this actor, action and org (Forbidden when denied)."""
        self.api.http.authorize(actor, action, org_id, resource=resource,
                                request_id=request_id_of(req))

    def check_csrf(self, session: UiSession, form: Mapping[str, str]) -> None:
        """Forbidden unless the form carries this session's CSRF token."""
        if not same_token(session.csrf_token, form.get("csrf")):
            raise Forbidden("the form's CSRF token is missing or stale: reload the page")

    def window(self, req: falcon.Request) -> Window:
        """The zone and range the query string selects (defaults: UTC, this month)."""
        params = {k: v for k, v in req.params.items() if isinstance(v, str)}
        return resolve_window(params, self.api.now())

    def error(self, req: falcon.Request, resp: falcon.Response, status: int, *, title: str,
              detail: str, errors: tuple[FieldError, ...] = ()) -> None:
        """An error page that says what went wrong and where to go next."""
        self.render(req, resp, "error.html", status, title=title, detail=detail, errors=errors)


def form(req: falcon.Request) -> dict[str, str]:
    """A urlencoded form body (ValidationFailed when it is too large or not a form)."""
    if not (req.content_type or "").startswith("application/x-www-form-urlencoded"):
        raise ValidationFailed([FieldError("body", "must be a form (urlencoded)")], "bad form")
    raw = req.bounded_stream.read(MAX_FORM_BYTES + 1)
    if len(raw) > MAX_FORM_BYTES:
        raise ValidationFailed([FieldError("body", f"at most {MAX_FORM_BYTES} bytes")],
                               "form too large")
    try:
        pairs = urllib.parse.parse_qsl(raw.decode(), keep_blank_values=True,
                                       max_num_fields=50)
    except (UnicodeDecodeError, ValueError) as e:
        raise ValidationFailed([FieldError("body", "is not a valid form")], "bad form") from e
    return dict(pairs)


Handler = Callable[..., None]


def page(handler: Handler) -> Handler:
    """Map the use cases' errors to HTML pages: sign-in, 403, 404, 400 and 503."""
    @functools.wraps(handler)
    def wrapped(self: Any, req: falcon.Request, resp: falcon.Response, *args: Any,
                **kwargs: Any) -> None:
        shell: Shell = self.shell
        try:
            handler(self, req, resp, *args, **kwargs)
        except Redirect as r:
            resp.status, resp.location = 303, r.location
        except Unauthenticated:
            target = req.relative_uri if req.method == "GET" else UI
            resp.status = 303
            resp.location = f"{UI}/sign-in?" + urllib.parse.urlencode({"next": target})
        except Forbidden as e:
            shell.error(req, resp, 403, title="Access denied", detail=str(e))
        except NotFound as e:
            shell.error(req, resp, 404, title="Not found", detail=str(e))
        except ValidationFailed as e:
            shell.error(req, resp, 400, title="Please check the request", detail=str(e),
                        errors=tuple(e.errors))
        except StoreUnavailable:
            resp.set_header("Retry-After", "5")
            shell.error(req, resp, 503, title="Temporarily unavailable",
                        detail="A backing service is unavailable; retry in a few seconds.")
    return wrapped


def _org(text: str) -> uuid.UUID:
    try:
        return uuid.UUID(text)
    except ValueError as e:
        raise NotFound("no such org") from e


class _Page:
    public = True  # the session, not the API's headers, authenticates a page

    def __init__(self, shell: Shell) -> None:
        self.shell = shell

    def org_page(self, req: falcon.Request, path: Mapping[str, str], action: Action,
                 resource: str) -> tuple[UiSession, uuid.UUID, Window]:
        """The session, the org of the path (authorized for `action`, audited) and the window
        of an org page."""
        session, org_id = self.shell.session(req), _org(path["orgId"])
        self.shell.require(req, session.actor, action, org_id, resource=f"{resource}:{org_id}")
        return session, org_id, self.shell.window(req)

    def context(self, session: UiSession, window: Window, org_id: uuid.UUID | None,
                nav: str, freshness: dict[str, Any] | None = None) -> dict[str, Any]:
        """What base.html needs: the banner shows `freshness` (a page's report's), else the
        pipeline's, which is what every org's freshness report carries."""
        actor = session.actor
        context = {"actor": actor, "csrf": session.csrf_token, "window": window,
                   "org_id": org_id, "nav": nav, "is_admin": ADMIN in actor.roles,
                   "query": urllib.parse.urlencode(window.query())}
        context["freshness"] = freshness if freshness is not None else freshness_block(
            self.shell.api.freshness(), zone(window.tz))
        return context


class HomePage(_Page):
    """GET /analytics/ui: the caller's org overview, the fleet for an admin."""

    @page
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        """Redirect to where the caller starts."""
        actor = self.shell.session(req).actor
        raise Redirect(f"{UI}/fleet" if actor.org_id is None else org_path(actor.org_id))


class SignInPage(_Page):
    """GET the sign-in form; POST a credential to open a session."""

    def _form(self, req: falcon.Request, resp: falcon.Response, status: int = 200,
              message: str = "", next_path: str | None = None) -> None:
        token = new_signin_token()
        set_cookie(resp, req, SIGNIN_COOKIE, token, max_age=3600,
                   secure=self.shell.api.secure_cookies)
        target = next_path if next_path is not None else req.get_param("next")
        self.shell.render(req, resp, "sign_in.html", status, csrf=token, message=message,
                          next=_safe_next(target) or "")

    @page
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        """The form (or home, when already signed in)."""
        try:
            self.shell.session(req)
        except Unauthenticated:
            self._form(req, resp)
            return
        raise Redirect(UI)

    @page
    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        """Exchange the credential for a brand-new session (never reuse a presented one)."""
        fields = form(req)
        if not same_token(cookie(req, SIGNIN_COOKIE), fields.get("csrf")):
            raise Forbidden("the sign-in form expired: reload the page and sign in again")
        try:
            actor, key_id, not_after = identify(fields.get("credential", ""),
                                                self.shell.authenticator)
        except Unauthenticated as e:
            self._form(req, resp, 401, f"Sign-in failed: {e}", fields.get("next", ""))
            return
        old = cookie(req, SESSION_COOKIE)
        if old is not None:
            self.shell.api.end_session(old)
        token, session = self.shell.api.start_session(actor, key_id, not_after)
        lifetime = int((session.expires_at - session.created_at).total_seconds())
        set_cookie(resp, req, SESSION_COOKIE, token, max_age=lifetime,
                   secure=self.shell.api.secure_cookies)
        clear_cookie(resp, SIGNIN_COOKIE)
        raise Redirect(_safe_next(fields.get("next")) or UI)


class SignOutPage(_Page):
    """POST: end the session (CSRF-checked) and forget the cookie."""

    @page
    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        """Sign out."""
        session = self.shell.session(req)
        self.shell.check_csrf(session, form(req))
        token = cookie(req, SESSION_COOKIE)
        if token is not None:
            self.shell.api.end_session(token)
        clear_cookie(resp, SESSION_COOKIE)
        raise Redirect(f"{UI}/sign-in")


class OverviewPage(_Page):
    """GET /orgs/{orgId}: spend, budgets, spend by model over time, top groups."""

    def __init__(self, shell: Shell, attribution_keys: tuple[str, ...]) -> None:
        super().__init__(shell)
        self._keys = attribution_keys

    @page
    def on_get(self, req: falcon.Request, resp: falcon.Response, **path: str) -> None:
        """The page."""
        session, org_id, window = self.org_page(req, path, Action.USAGE_READ, "ui:overview")
        data = views.overview(self.shell.api, org_id, window, self._keys)
        self.shell.render(req, resp, "overview.html",
                          **{**data, **self.context(session, window, org_id, "overview",
                                                    data["freshness"])})


class ReliabilityPage(_Page):
    """GET /orgs/{orgId}/reliability."""

    @page
    def on_get(self, req: falcon.Request, resp: falcon.Response, **path: str) -> None:
        """The page."""
        session, org_id, window = self.org_page(req, path, Action.RELIABILITY_READ,
                                                "ui:reliability")
        data = views.reliability(self.shell.api, org_id, window)
        data["rules"] = [rule_view_body(v) for v in self.shell.api.http.list_rules(org_id)]
        self.shell.render(req, resp, "reliability.html",
                          **{**data, **self.context(session, window, org_id, "reliability",
                                                    data["freshness"])})


class CsvPage(_Page):
    """GET /orgs/{orgId}/tables/{name}.csv: any chart's table as CSV, exact values."""

    def __init__(self, shell: Shell, attribution_keys: tuple[str, ...]) -> None:
        super().__init__(shell)
        self._keys = attribution_keys

    def _table(self, req: falcon.Request, session: UiSession, org_id: uuid.UUID,
               window: Window, name: str) -> Table:
        """Only the reads the named table needs, under the grant of its page."""
        api, actor = self.shell.api, session.actor
        reliability = ("error-rates", "latency", "error-codes")
        usage = ("spend-by-model", *views.top_names(self._keys))
        if name not in (*reliability, *usage):
            known = ", ".join(sorted((*reliability, *usage)))
            raise NotFound(f"no table {name!r}; tables: {known}")
        if name in reliability:
            self.shell.require(req, actor, Action.RELIABILITY_READ, org_id,
                               resource=f"ui:reliability:{org_id}")
            data = views.reliability(api, org_id, window)
            table: Table = {t.name: t for t in (data["rates"], data["latency"],
                                                data["codes"])}[name]
            return table
        self.shell.require(req, actor, Action.USAGE_READ, org_id,
                           resource=f"ui:overview:{org_id}")
        if name == "spend-by-model":
            return views.spend_table(usage_body(api.http.usage(views.usage_query(
                org_id, window)), api.http.names(org_id)))
        return views.top_table(api, org_id, window, name)

    @page
    def on_get(self, req: falcon.Request, resp: falcon.Response, **path: str) -> None:
        """The CSV download."""
        session, org_id = self.shell.session(req), _org(path["orgId"])
        window = self.shell.window(req)
        name = path["name"]
        table = self._table(req, session, org_id, window, name)
        resp.content_type = "text/csv; charset=utf-8"
        resp.cache_control = ["no-store"]
        resp.downloadable_as = f"{name}-{window.first}-{window.last}.csv"
        resp.text = table.csv()


class ExportsPage(_Page):
    """GET the org's exports; POST creates one (usage, events or FOCUS)."""

    def _show(self, req: falcon.Request, resp: falcon.Response, session: UiSession, *,
              org_id: uuid.UUID, status: int = 200, errors: tuple[FieldError, ...] = ()
              ) -> None:
        self.shell.require(req, session.actor, Action.EXPORTS_READ, org_id,
                           resource=f"exports:{org_id}")
        window = self.shell.window(req)
        jobs = [job_body(j, PREFIX) for j in
                self.shell.api.http.list_exports(org_id, None, 50, None).jobs]
        self.shell.render(req, resp, "exports.html", status, jobs=jobs, errors=errors,
                          **self.context(session, window, org_id, "exports"))

    @page
    def on_get(self, req: falcon.Request, resp: falcon.Response, **path: str) -> None:
        """The list, newest first, with the create form."""
        self._show(req, resp, self.shell.session(req), org_id=_org(path["orgId"]))

    @page
    def on_post(self, req: falcon.Request, resp: falcon.Response, **path: str) -> None:
        """Queue an export of [from, to] (zone-local days) and show the list again."""
        session, org_id = self.shell.session(req), _org(path["orgId"])
        fields = form(req)
        self.shell.check_csrf(session, fields)
        self.shell.require(req, session.actor, Action.EXPORTS_CREATE, org_id,
                           resource=f"exports:{org_id}")
        try:
            window = resolve_window({"tz": fields.get("tz", "UTC"), "range": "custom",
                                     "from": fields.get("from", ""),
                                     "to": fields.get("to", "")}, self.shell.api.now())
            request = export_request({
                "timeRange": {"start": window.start.isoformat(),
                              "end": window.end.isoformat()},
                "tz": window.tz, "kind": fields.get("kind", "usage"),
                "granularity": fields.get("granularity", "daily"),
            }, org_id)
        except ValidationFailed as e:
            self._show(req, resp, session, org_id=org_id, status=400, errors=tuple(e.errors))
            return
        job, created = self.shell.api.http.create_export(request, session.actor.subject, None)
        if created:
            metrics.observe_export_job(job.status.value)
        raise Redirect(org_path(org_id, "exports") + "?" + urllib.parse.urlencode(
            {"tz": window.tz, "created": str(job.job_id)}))


class DownloadPage(_Page):
    """GET /orgs/{orgId}/exports/{jobId}/download: the file, sent as the API sends it."""

    @page
    def on_get(self, req: falcon.Request, resp: falcon.Response, **path: str) -> None:
        """The file itself, or a redirect to a freshly signed URL."""
        session, org_id, job_id = self.shell.session(req), _org(path["orgId"]), _org(path["jobId"])
        self.shell.require(req, session.actor, Action.EXPORTS_DOWNLOAD, org_id,
                           resource=f"export:{job_id}")
        send_download(resp, self.shell.api.http.download(org_id, job_id))


class BudgetsPage(_Page):
    """GET /orgs/{orgId}/budgets: budgets with their current period, and fired alerts."""

    @page
    def on_get(self, req: falcon.Request, resp: falcon.Response, **path: str) -> None:
        """The page."""
        session, org_id, window = self.org_page(req, path, Action.USAGE_READ, "budgets")
        http = self.shell.api.http
        budgets = [budget_view_body(v) for v in http.list_budgets(org_id)]
        alerts = [alert_body(a) for a in http.list_alerts(org_id, 50, None, None, None).alerts]
        self.shell.render(req, resp, "budgets.html", budgets=budgets, alerts=alerts,
                          **self.context(session, window, org_id, "budgets"))


class FleetPage(_Page):
    """GET /fleet (admin): every org's spend, change, failure rate and freshness."""

    @page
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        """The page; each org shown is authorized (and audited) like an API read."""
        session = self.shell.session(req)
        window = self.shell.window(req)
        api, actor = self.shell.api, session.actor
        if ADMIN not in actor.roles:
            raise Forbidden("the fleet view needs the admin role")
        rows = api.fleet(FleetWindow(window.start, window.end))
        for r in rows:
            self.shell.require(req, actor, Action.USAGE_READ, r.org_id, resource="ui:fleet")
        pipeline = api.freshness()
        query = urllib.parse.urlencode(window.query())
        table = views.fleet(rows, pipeline.status.value, lambda o: f"{org_path(o)}?{query}")
        self.shell.render(req, resp, "fleet.html", table=table,
                          **self.context(session, window, None, "fleet",
                                         freshness_block(pipeline, zone(window.tz))))
