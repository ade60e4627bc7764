"""A bare Falcon JSON endpoint: the baseline `bench/quick.py` serves under the same gunicorn
worker class as `analytics serve`, to compare the freshness and status endpoints with."""

from __future__ import annotations

import falcon


class _Json:
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.media = {"status": "ok"}


app = falcon.App()
app.add_route("/json", _Json())
