"""The dashboard's JavaScript and CSS, shipped in the package and served from memory."""

from __future__ import annotations

import gzip
import hashlib
from collections.abc import Mapping
from importlib import resources

import attrs
import falcon

STATIC_PREFIX = "/analytics/ui/static"
_TYPES = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8"}
ASSETS = ("app.css", "vendor/uplot/uPlot.min.css", "vendor/uplot/uPlot.iife.min.js", "app.js")


@attrs.frozen
class Asset:
    """One file: its bytes, gzip-compressed bytes, type and content hash."""

    body: bytes
    gzipped: bytes
    content_type: str
    digest: str


def load_assets() -> Mapping[str, Asset]:
    """Every served file, read from the installed package once."""
    root = resources.files("analytics_app.ui") / "static"
    found = {}
    for name in ASSETS:
        body = root.joinpath(*name.split("/")).read_bytes()
        suffix = name[name.rfind("."):]
        found[name] = Asset(body, gzip.compress(body, 9, mtime=0), _TYPES[suffix],
                            hashlib.sha256(body).hexdigest()[:16])
    return found


def asset_url(assets: Mapping[str, Asset], name: str) -> str:
    """The URL of a file, with its content hash so that it can be cached for good."""
    return f"{STATIC_PREFIX}/{name}?v={assets[name].digest}"


class StaticResource:
    """GET /analytics/ui/static/{name}: a known file (gzip when accepted), else 404."""

    public = True

    def __init__(self, assets: Mapping[str, Asset]) -> None:
        self._assets = assets

    def on_get(self, req: falcon.Request, resp: falcon.Response, name: str) -> None:
        """The file, cacheable for a year when the URL names its current hash."""
        asset = self._assets.get(name)
        if asset is None:
            raise falcon.HTTPNotFound()
        resp.content_type = asset.content_type
        resp.set_header("X-Content-Type-Options", "nosniff")
        resp.vary = ["Accept-Encoding"]
        fresh = req.get_param("v") == asset.digest
        resp.cache_control = (["public", "max-age=31536000", "immutable"] if fresh
                              else ["no-cache"])
        resp.etag = f'"{asset.digest}"'
        if req.get_header("If-None-Match") == resp.etag:
            resp.status = 304
            return
        if "gzip" in (req.get_header("Accept-Encoding") or ""):
            resp.set_header("Content-Encoding", "gzip")
            resp.data = asset.gzipped
        else:
            resp.data = asset.body
