"""Webhook endpoints and their delivery log over HTTP (SPEC §13). Everything here needs
`org_admin` of the org (or `admin`): endpoints hold where an org's alerts go, and the signing
secret is shown once, in the answer that creates or rotates it."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import falcon

from analytics_app.http.auth import Guard, actor_of
from analytics_app.http.bodies import read_json
from analytics_app.http.params import QueryReader, path_uuid
from analytics_app.http.render import delivery_body, webhook_body
from analytics_app.http.resources.exports import Cursor, cursor_param, encode_cursor
from analytics_core.access import Action, Actor
from analytics_core.usecases.webhooks import DeliveryPage
from analytics_core.webhooks import Delivery, WebhookEndpoint

MAX_WEBHOOK_BODY = 16 * 1024
MAX_DELIVERIES_PAGE = 200

WithSecret = tuple[WebhookEndpoint, str]
CreateWebhook = Callable[[Actor, uuid.UUID, object], WithSecret]
ListWebhooks = Callable[[uuid.UUID], list[WebhookEndpoint]]
GetWebhook = Callable[[uuid.UUID, uuid.UUID], WebhookEndpoint]
UpdateWebhook = Callable[[Actor, uuid.UUID, uuid.UUID, object], WebhookEndpoint]
DeleteWebhook = Callable[[Actor, uuid.UUID, uuid.UUID], None]
RotateSecret = Callable[[Actor, uuid.UUID, uuid.UUID], WithSecret]
ListDeliveries = Callable[[uuid.UUID, uuid.UUID, int, Cursor | None], DeliveryPage]
Redeliver = Callable[[Actor, uuid.UUID, uuid.UUID, uuid.UUID], Delivery]


def _org(req: falcon.Request, guard: Guard, path: dict[str, str]) -> uuid.UUID:
    org_id = path_uuid(path["orgId"], "orgId")
    guard.require(req, Action.WEBHOOKS_MANAGE, org_id, resource=f"webhooks:{org_id}")
    return org_id


class WebhooksResource:
    """GET and POST /orgs/{orgId}/webhooks."""

    def __init__(self, guard: Guard, create: CreateWebhook, list_all: ListWebhooks) -> None:
        self._guard, self._create, self._list = guard, create, list_all

    def on_get(self, req: falcon.Request, resp: falcon.Response, **path: str) -> None:
        """The org's endpoints, oldest first (never a secret)."""
        org_id = _org(req, self._guard, path)
        QueryReader(req.params).done()
        resp.media = {"orgId": str(org_id),
                      "webhooks": [webhook_body(e) for e in self._list(org_id)]}

    def on_post(self, req: falcon.Request, resp: falcon.Response, **path: str) -> None:
        """201 with the endpoint and its `secret`, shown this once."""
        org_id = _org(req, self._guard, path)
        endpoint, secret = self._create(actor_of(req), org_id, read_json(req, MAX_WEBHOOK_BODY))
        resp.status = falcon.HTTP_201
        resp.location = f"{req.path.rstrip('/')}/{endpoint.endpoint_id}"
        resp.set_header("Cache-Control", "no-store")
        resp.media = {**webhook_body(endpoint), "secret": secret}


class WebhookResource:
    """GET, PATCH and DELETE /orgs/{orgId}/webhooks/{webhookId}."""

    def __init__(self, guard: Guard, get: GetWebhook, update: UpdateWebhook,
                 delete: DeleteWebhook) -> None:
        self._guard, self._get, self._update, self._delete = guard, get, update, delete

    def on_get(self, req: falcon.Request, resp: falcon.Response, **path: str) -> None:
        """One endpoint; 404 for unknown ids and other orgs' endpoints."""
        org_id = _org(req, self._guard, path)
        QueryReader(req.params).done()
        resp.media = webhook_body(self._get(org_id, path_uuid(path["webhookId"], "webhookId")))

    def on_patch(self, req: falcon.Request, resp: falcon.Response, **path: str) -> None:
        """Change url, description or enabled."""
        org_id = _org(req, self._guard, path)
        endpoint = self._update(actor_of(req), org_id,
                                path_uuid(path["webhookId"], "webhookId"),
                                read_json(req, MAX_WEBHOOK_BODY))
        resp.media = webhook_body(endpoint)

    def on_delete(self, req: falcon.Request, resp: falcon.Response, **path: str) -> None:
        """204; its deliveries go with it."""
        org_id = _org(req, self._guard, path)
        self._delete(actor_of(req), org_id, path_uuid(path["webhookId"], "webhookId"))
        resp.status = falcon.HTTP_204


class RotateResource:
    """POST /orgs/{orgId}/webhooks/{webhookId}/rotate: a new secret, shown once."""

    def __init__(self, guard: Guard, rotate: RotateSecret) -> None:
        self._guard, self._rotate = guard, rotate

    def on_post(self, req: falcon.Request, resp: falcon.Response, **path: str) -> None:
        """200 with the endpoint and its new `secret`; the previous one signs beside it until
        `previousSecretValidUntil`."""
        org_id = _org(req, self._guard, path)
        endpoint, secret = self._rotate(actor_of(req), org_id,
                                        path_uuid(path["webhookId"], "webhookId"))
        resp.set_header("Cache-Control", "no-store")
        resp.media = {**webhook_body(endpoint), "secret": secret}


class DeliveriesResource:
    """GET /orgs/{orgId}/webhooks/{webhookId}/deliveries: the delivery log."""

    def __init__(self, guard: Guard, list_page: ListDeliveries) -> None:
        self._guard, self._list = guard, list_page

    def on_get(self, req: falcon.Request, resp: falcon.Response, **path: str) -> None:
        """Newest first, each with every attempt; `limit` (1-200) and `cursor`."""
        org_id = _org(req, self._guard, path)
        endpoint_id = path_uuid(path["webhookId"], "webhookId")
        reader = QueryReader(req.params)
        limit = reader.integer("limit", 1, MAX_DELIVERIES_PAGE, 50)
        before = cursor_param(reader)
        reader.done()
        page = self._list(org_id, endpoint_id, limit, before)
        resp.media = {
            "orgId": str(org_id), "webhookId": str(endpoint_id),
            "deliveries": [delivery_body(d, attempts) for d, attempts in page.deliveries],
            "nextCursor": encode_cursor(page.next_cursor) if page.next_cursor else None,
        }


class RedeliverResource:
    """POST /orgs/{orgId}/webhooks/{webhookId}/deliveries/{deliveryId}/redeliver."""

    def __init__(self, guard: Guard, redeliver: Redeliver) -> None:
        self._guard, self._redeliver = guard, redeliver

    def on_post(self, req: falcon.Request, resp: falcon.Response, **path: str) -> None:
        """202: the delivery is due again (same webhook-id and payload), retried for 24 h."""
        org_id = _org(req, self._guard, path)
        delivery = self._redeliver(actor_of(req), org_id,
                                   path_uuid(path["webhookId"], "webhookId"),
                                   path_uuid(path["deliveryId"], "deliveryId"))
        resp.status = falcon.HTTP_202
        resp.media = delivery_body(delivery, ())
