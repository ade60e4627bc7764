"""The price catalog over HTTP (SPEC §12): admin manages `/prices`; an org reads the prices
that apply to it and the restatements that changed its numbers."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import falcon

from analytics_app.http.auth import Guard, actor_of
from analytics_app.http.bodies import json_object, read_json
from analytics_app.http.params import QueryReader, path_uuid
from analytics_app.http.render import price_version_body, restatement_body
from analytics_core.access import Action, Actor
from analytics_core.errors import FieldError, ValidationFailed
from analytics_core.prices import PriceVersion
from analytics_core.usecases.prices import AddedPrices, Drafts, read_drafts
from analytics_core.usecases.restatements import RestatementView

MAX_PRICES_BODY = 4 * 1024 * 1024
AddPrices = Callable[[Actor, Drafts], AddedPrices]
ListPrices = Callable[[Actor, uuid.UUID | None, uuid.UUID | None, bool], list[PriceVersion]]
GetPrice = Callable[[Actor, uuid.UUID], tuple[PriceVersion, uuid.UUID | None]]
OrgPrices = Callable[[uuid.UUID], list[PriceVersion]]
OrgRestatements = Callable[[uuid.UUID], list[RestatementView]]


def drafts_of(body: object) -> Drafts:
    """`{"versions": [...]}` or one version object, each read (errors kept for the use case,
    which reports them with its own checks)."""
    data = json_object(body)
    raws = data.get("versions", [data])
    if not isinstance(raws, list) or not raws:
        raise ValidationFailed([FieldError("versions", "must be a non-empty array")])
    listed = "versions" in data
    return read_drafts(raws, lambda i: f"versions[{i}]." if listed else "")


class PricesResource:
    """GET /prices (list, `history=true` for superseded versions too) and POST /prices."""

    def __init__(self, add: AddPrices, list_prices: ListPrices) -> None:
        self._add, self._list = add, list_prices

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        """Versions by model, org and start; admin only."""
        actor = actor_of(req)
        reader = QueryReader(req.params)
        models = reader.uuids("modelId")
        orgs = reader.uuids("orgId")
        history = reader.flag("history")
        reader.done()
        versions = self._list(actor, models[0] if models else None, orgs[0] if orgs else None,
                              history)
        resp.media = {"versions": [price_version_body(v) for v in versions]}

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        """Add versions (all or none); 201 with them and the restatements they started."""
        actor = actor_of(req)
        added = self._add(actor, drafts_of(read_json(req, MAX_PRICES_BODY)))
        resp.status = falcon.HTTP_201
        resp.media = {
            "versions": [price_version_body(v) for v in added.versions],
            "restatements": [restatement_body(r) for r in added.restatements],
        }


class PriceResource:
    """GET /prices/{versionId}: one version, with `supersededBy` once corrected."""

    def __init__(self, get: GetPrice) -> None:
        self._get = get

    def on_get(self, req: falcon.Request, resp: falcon.Response, **path: str) -> None:
        """Admin only; 404 when unknown."""
        version, by = self._get(actor_of(req), path_uuid(path["versionId"], "versionId"))
        resp.media = price_version_body(version, by)


class OrgPricesResource:
    """GET /orgs/{orgId}/prices: the live versions that price the org's events."""

    def __init__(self, guard: Guard, prices: OrgPrices) -> None:
        self._guard, self._prices = guard, prices

    def on_get(self, req: falcon.Request, resp: falcon.Response, **path: str) -> None:
        """Global versions and the org's own overrides (never another org's)."""
        org_id = path_uuid(path["orgId"], "orgId")
        self._guard.require(req, Action.USAGE_READ, org_id, resource=f"prices:{org_id}")
        resp.media = {"orgId": str(org_id),
                      "versions": [price_version_body(v) for v in self._prices(org_id)]}


class RestatementsResource:
    """GET /orgs/{orgId}/restatements: what repricing changed for the org."""

    def __init__(self, guard: Guard, restatements: OrgRestatements) -> None:
        self._guard, self._restatements = guard, restatements

    def on_get(self, req: falcon.Request, resp: falcon.Response, **path: str) -> None:
        """Newest first, each with the org's deltas per model and UTC day."""
        org_id = path_uuid(path["orgId"], "orgId")
        self._guard.require(req, Action.USAGE_READ, org_id, resource=f"restatements:{org_id}")
        resp.media = {"orgId": str(org_id), "restatements": [
            restatement_body(v.restatement, v.deltas) for v in self._restatements(org_id)]}
