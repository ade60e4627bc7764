"""The names registry over HTTP: models (read by anyone signed in, written by admin) and each
org's client names (read with a read grant, written by org_admin)."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import falcon

from analytics_app.http.auth import Guard, actor_of
from analytics_app.http.bodies import json_object, read_json
from analytics_app.http.params import path_uuid
from analytics_app.http.render import model_body
from analytics_core.access import Action, Actor, decide
from analytics_core.errors import FieldError, ValidationFailed
from analytics_core.events import MAX_CLIENT_ID
from analytics_core.registry import ClientName, ModelEntry, client_name, model_entry

MAX_REGISTRY_BODY = 64 * 1024
ListModels = Callable[[], list[ModelEntry]]
GetModel = Callable[[uuid.UUID], ModelEntry]
PutModel = Callable[[Actor, ModelEntry], bool]
DeleteModel = Callable[[Actor, uuid.UUID], None]
ListClients = Callable[[uuid.UUID], list[ClientName]]
PutClient = Callable[[ClientName], None]
DeleteClient = Callable[[uuid.UUID, str], None]


class ModelsResource:
    """GET /models: every registered model, by model id."""

    def __init__(self, list_models: ListModels) -> None:
        self._list = list_models

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        """Names are platform-wide and not secret: any authenticated caller may read them."""
        actor_of(req)
        resp.media = {"models": [model_body(e) for e in self._list()]}


class ModelResource:
    """GET, PUT and DELETE /models/{modelId}."""

    def __init__(self, get: GetModel, put: PutModel, delete: DeleteModel) -> None:
        self._get, self._put, self._delete = get, put, delete

    def on_get(self, req: falcon.Request, resp: falcon.Response, **path: str) -> None:
        """One model's names; 404 when unregistered."""
        actor_of(req)
        model_id = path_uuid(path["modelId"], "modelId")
        resp.media = model_body(self._get(model_id))

    def on_put(self, req: falcon.Request, resp: falcon.Response, **path: str) -> None:
        """Register (201) or rename (200) a model; admin only; 409 when a name or alias
        already names another model."""
        actor = actor_of(req)
        model_id = path_uuid(path["modelId"], "modelId")
        entry = model_entry(model_id, json_object(read_json(req, MAX_REGISTRY_BODY)))
        created = self._put(actor, entry)
        resp.status = falcon.HTTP_201 if created else falcon.HTTP_200
        resp.media = model_body(entry)

    def on_delete(self, req: falcon.Request, resp: falcon.Response, **path: str) -> None:
        """Forget a model's names (its data stays); admin only; 404 when unregistered."""
        actor = actor_of(req)
        model_id = path_uuid(path["modelId"], "modelId")
        self._delete(actor, model_id)
        resp.status = falcon.HTTP_204


def _client_id(value: str) -> str:
    if not value or len(value) > MAX_CLIENT_ID:
        raise ValidationFailed([FieldError("clientId", f"must be 1-{MAX_CLIENT_ID} characters")])
    return value


class ClientsResource:
    """GET /orgs/{orgId}/clients: the org's client names, by client id."""

    def __init__(self, guard: Guard, list_clients: ListClients) -> None:
        self._guard, self._list = guard, list_clients

    def on_get(self, req: falcon.Request, resp: falcon.Response, **path: str) -> None:
        """Readable with the usage or the reliability grant (names label those reports)."""
        org_id = path_uuid(path["orgId"], "orgId")
        usage_allowed = decide(actor_of(req), Action.USAGE_READ, org_id).allowed
        action = Action.USAGE_READ if usage_allowed else Action.RELIABILITY_READ
        self._guard.require(req, action, org_id, resource=f"clients:{org_id}")
        resp.media = {"orgId": str(org_id), "clients": [
            {"clientId": c.client_id, "name": c.name} for c in self._list(org_id)]}


class ClientResource:
    """PUT and DELETE /orgs/{orgId}/clients/{clientId}."""

    def __init__(self, guard: Guard, put: PutClient, delete: DeleteClient) -> None:
        self._guard, self._put, self._delete = guard, put, delete

    def on_put(self, req: falcon.Request, resp: falcon.Response,
               **path: str) -> None:
        """Name (or rename) one of the org's clients: `{"name": "..."}`."""
        org_id = path_uuid(path["orgId"], "orgId")
        client_id = _client_id(path["clientId"])
        self._guard.require(req, Action.CLIENTS_WRITE, org_id, resource=f"client:{client_id}")
        body = json_object(read_json(req, MAX_REGISTRY_BODY))
        entry = client_name(org_id, client_id, body.get("name"))
        self._put(entry)
        resp.media = {"orgId": str(org_id), "clientId": entry.client_id, "name": entry.name}

    def on_delete(self, req: falcon.Request, resp: falcon.Response,
                  **path: str) -> None:
        """Forget a client's name; 404 when it had none."""
        org_id = path_uuid(path["orgId"], "orgId")
        client_id = _client_id(path["clientId"])
        self._guard.require(req, Action.CLIENTS_WRITE, org_id, resource=f"client:{client_id}")
        self._delete(org_id, client_id)
        resp.status = falcon.HTTP_204
