"""Budgets, reliability rules and their alerts over HTTP (SPEC §13): `org_admin` manages an
org's budgets and rules; readers of the org's usage (budgets) or reliability (rules) read them
with their status, and the alerts they fired."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import falcon

from analytics_app.http.auth import Guard, actor_of
from analytics_app.http.bodies import read_json
from analytics_app.http.params import QueryReader, path_uuid
from analytics_app.http.render import (
    alert_body,
    budget_body,
    budget_view_body,
    rule_body,
    rule_view_body,
)
from analytics_app.http.resources.exports import Cursor, cursor_param, encode_cursor
from analytics_core.access import Action, Actor
from analytics_core.budgets import Budget
from analytics_core.rules import ReliabilityRule
from analytics_core.usecases.budgets import AlertPage, BudgetView
from analytics_core.usecases.rules import RuleView

MAX_BUDGET_BODY = 64 * 1024
MAX_ALERTS_PAGE = 200
DEFAULT_ALERTS_PAGE = 50

CreateBudget = Callable[[Actor, uuid.UUID, object], Budget]
UpdateBudget = Callable[[Actor, uuid.UUID, uuid.UUID, object], Budget]
DeleteBudget = Callable[[Actor, uuid.UUID, uuid.UUID], None]
ListBudgets = Callable[[uuid.UUID], list[BudgetView]]
GetBudget = Callable[[uuid.UUID, uuid.UUID], BudgetView]
ListAlerts = Callable[[uuid.UUID, int, Cursor | None, uuid.UUID | None, uuid.UUID | None],
                      AlertPage]
CreateRule = Callable[[Actor, uuid.UUID, object], ReliabilityRule]
UpdateRule = Callable[[Actor, uuid.UUID, uuid.UUID, object], ReliabilityRule]
DeleteRule = Callable[[Actor, uuid.UUID, uuid.UUID], None]
ListRules = Callable[[uuid.UUID], list[RuleView]]
GetRule = Callable[[uuid.UUID, uuid.UUID], RuleView]


class BudgetsResource:
    """GET (with status) and POST /orgs/{orgId}/budgets."""

    def __init__(self, guard: Guard, create: CreateBudget, list_budgets: ListBudgets) -> None:
        self._guard, self._create, self._list = guard, create, list_budgets

    def on_get(self, req: falcon.Request, resp: falcon.Response, **path: str) -> None:
        """The org's budgets, oldest first, each with its current period's status."""
        org_id = path_uuid(path["orgId"], "orgId")
        self._guard.require(req, Action.USAGE_READ, org_id, resource=f"budgets:{org_id}")
        QueryReader(req.params).done()
        resp.media = {"orgId": str(org_id),
                      "budgets": [budget_view_body(v) for v in self._list(org_id)]}

    def on_post(self, req: falcon.Request, resp: falcon.Response, **path: str) -> None:
        """201 with the new budget (org_admin or admin)."""
        org_id = path_uuid(path["orgId"], "orgId")
        self._guard.require(req, Action.BUDGETS_WRITE, org_id, resource=f"budgets:{org_id}")
        budget = self._create(actor_of(req), org_id, read_json(req, MAX_BUDGET_BODY))
        resp.status = falcon.HTTP_201
        resp.location = f"{req.path.rstrip('/')}/{budget.budget_id}"
        resp.media = budget_body(budget)


class BudgetResource:
    """GET, PATCH and DELETE /orgs/{orgId}/budgets/{budgetId}."""

    def __init__(self, guard: Guard, get: GetBudget, update: UpdateBudget,
                 delete: DeleteBudget) -> None:
        self._guard, self._get, self._update, self._delete = guard, get, update, delete

    def _ids(self, req: falcon.Request, path: dict[str, str], action: Action
             ) -> tuple[uuid.UUID, uuid.UUID]:
        org_id = path_uuid(path["orgId"], "orgId")
        budget_id = path_uuid(path["budgetId"], "budgetId")
        self._guard.require(req, action, org_id, resource=f"budget:{budget_id}")
        return org_id, budget_id

    def on_get(self, req: falcon.Request, resp: falcon.Response, **path: str) -> None:
        """One budget with its status; 404 for unknown ids and other orgs' budgets."""
        org_id, budget_id = self._ids(req, path, Action.USAGE_READ)
        QueryReader(req.params).done()
        resp.media = budget_view_body(self._get(org_id, budget_id))

    def on_patch(self, req: falcon.Request, resp: falcon.Response, **path: str) -> None:
        """Change name, amount, thresholds or forecast."""
        org_id, budget_id = self._ids(req, path, Action.BUDGETS_WRITE)
        budget = self._update(actor_of(req), org_id, budget_id,
                              read_json(req, MAX_BUDGET_BODY))
        resp.media = budget_body(budget)

    def on_delete(self, req: falcon.Request, resp: falcon.Response, **path: str) -> None:
        """204; the budget's alerts stay readable."""
        org_id, budget_id = self._ids(req, path, Action.BUDGETS_WRITE)
        self._delete(actor_of(req), org_id, budget_id)
        resp.status = falcon.HTTP_204


class AlertsResource:
    """GET /orgs/{orgId}/alerts: fired alerts, newest first, with a cursor."""

    def __init__(self, guard: Guard, list_alerts: ListAlerts) -> None:
        self._guard, self._list = guard, list_alerts

    def on_get(self, req: falcon.Request, resp: falcon.Response, **path: str) -> None:
        """`limit` (1-200), `cursor` (from `nextCursor`), `budgetId` or `ruleId`."""
        org_id = path_uuid(path["orgId"], "orgId")
        self._guard.require(req, Action.USAGE_READ, org_id, resource=f"alerts:{org_id}")
        reader = QueryReader(req.params)
        limit = reader.integer("limit", 1, MAX_ALERTS_PAGE, DEFAULT_ALERTS_PAGE)
        budgets = reader.uuids("budgetId")
        rules = reader.uuids("ruleId")
        if budgets and rules:
            reader.fail("ruleId", "cannot be combined with budgetId")
        before = cursor_param(reader)
        reader.done()
        page = self._list(org_id, limit, before, budgets[0] if budgets else None,
                          rules[0] if rules else None)
        resp.media = {
            "orgId": str(org_id),
            "alerts": [alert_body(a) for a in page.alerts],
            "nextCursor": encode_cursor(page.next_cursor) if page.next_cursor else None,
        }


class RulesResource:
    """GET (with state) and POST /orgs/{orgId}/reliability-rules."""

    def __init__(self, guard: Guard, create: CreateRule, list_rules: ListRules) -> None:
        self._guard, self._create, self._list = guard, create, list_rules

    def on_get(self, req: falcon.Request, resp: falcon.Response, **path: str) -> None:
        """The org's rules, oldest first, each with its state and current window."""
        org_id = path_uuid(path["orgId"], "orgId")
        self._guard.require(req, Action.RELIABILITY_READ, org_id, resource=f"rules:{org_id}")
        QueryReader(req.params).done()
        resp.media = {"orgId": str(org_id),
                      "rules": [rule_view_body(v) for v in self._list(org_id)]}

    def on_post(self, req: falcon.Request, resp: falcon.Response, **path: str) -> None:
        """201 with the new rule (org_admin or admin)."""
        org_id = path_uuid(path["orgId"], "orgId")
        self._guard.require(req, Action.BUDGETS_WRITE, org_id, resource=f"rules:{org_id}")
        rule = self._create(actor_of(req), org_id, read_json(req, MAX_BUDGET_BODY))
        resp.status = falcon.HTTP_201
        resp.location = f"{req.path.rstrip('/')}/{rule.rule_id}"
        resp.media = rule_body(rule)


class RuleResource:
    """GET, PATCH and DELETE /orgs/{orgId}/reliability-rules/{ruleId}."""

    def __init__(self, guard: Guard, get: GetRule, update: UpdateRule,
                 delete: DeleteRule) -> None:
        self._guard, self._get, self._update, self._delete = guard, get, update, delete

    def _ids(self, req: falcon.Request, path: dict[str, str], action: Action
             ) -> tuple[uuid.UUID, uuid.UUID]:
        org_id = path_uuid(path["orgId"], "orgId")
        rule_id = path_uuid(path["ruleId"], "ruleId")
        self._guard.require(req, action, org_id, resource=f"rule:{rule_id}")
        return org_id, rule_id

    def on_get(self, req: falcon.Request, resp: falcon.Response, **path: str) -> None:
        """One rule with its state; 404 for unknown ids and other orgs' rules."""
        org_id, rule_id = self._ids(req, path, Action.RELIABILITY_READ)
        QueryReader(req.params).done()
        resp.media = rule_view_body(self._get(org_id, rule_id))

    def on_patch(self, req: falcon.Request, resp: falcon.Response, **path: str) -> None:
        """Change name, thresholds, minimum volume or window."""
        org_id, rule_id = self._ids(req, path, Action.BUDGETS_WRITE)
        resp.media = rule_body(self._update(actor_of(req), org_id, rule_id,
                                            read_json(req, MAX_BUDGET_BODY)))

    def on_delete(self, req: falcon.Request, resp: falcon.Response, **path: str) -> None:
        """204; its transitions stay in the alerts."""
        org_id, rule_id = self._ids(req, path, Action.BUDGETS_WRITE)
        self._delete(actor_of(req), org_id, rule_id)
        resp.status = falcon.HTTP_204
