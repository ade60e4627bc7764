"""Metrics and logs of a real gunicorn with 2 workers started from deploy/gunicorn.conf.py."""

from __future__ import annotations

import json
import re
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from tests.ops.conftest import HEALTH, Gunicorn

REQUESTS = 40
MAX_BATCHES = 25
_SAMPLE = re.compile(r"^(?P<name>[a-zA-Z_:][\w:]*)(?:\{(?P<labels>[^}]*)\})? (?P<value>\S+)$")


def _health_requests(text: str) -> float:
    """The aggregated http_requests_total of GET healthz 200 in an exposition text."""
    total = 0.0
    for line in text.splitlines():
        match = _SAMPLE.match(line)
        if match and match["name"] == "http_requests_total":
            labels = match["labels"] or ""
            if f'route="{HEALTH}"' in labels and 'status="200"' in labels:
                total += float(match["value"])
    return total


def _scrape(server: Gunicorn) -> str:
    status, body = server.get("/metrics")
    assert status == 200
    return body.decode()


def _json_lines(text: str) -> list[dict[str, Any]]:
    lines = []
    for line in text.splitlines():
        if line.startswith("{"):
            lines.append(json.loads(line))
    return lines


def _serving_pids(server: Gunicorn, prefix: str) -> set[int]:
    """Pids of the workers whose access lines carry a request id starting with `prefix`."""
    return {line["pid"] for line in _json_lines(server.log_text())
            if str(line.get("request_id", "")).startswith(prefix)}


def test_http_requests_total_adds_up_across_both_workers(gunicorn: Gunicorn) -> None:
    """Requests served by both workers show, summed, as exactly as many more in one scrape."""
    before = _health_requests(_scrape(gunicorn))
    prefix, sent = f"count-{uuid.uuid4().hex}-", 0
    with ThreadPoolExecutor(max_workers=8) as pool:
        while sent < MAX_BATCHES * REQUESTS and len(_serving_pids(gunicorn, prefix)) < 2:
            ids = [f"{prefix}{sent + i}" for i in range(REQUESTS)]
            statuses = list(pool.map(
                lambda rid: gunicorn.get(HEALTH, {"X-Request-Id": rid})[0], ids))
            assert statuses == [200] * REQUESTS
            sent += REQUESTS
    assert len(_serving_pids(gunicorn, prefix)) == 2, "both workers served some requests"
    after = _health_requests(_scrape(gunicorn))
    assert after - before == sent


def test_a_request_log_line_carries_its_request_id(gunicorn: Gunicorn) -> None:
    """The JSON access line of a request has the X-Request-Id the client sent, which is echoed."""
    request_id = f"ops-{uuid.uuid4().hex}"
    status, _ = gunicorn.get(HEALTH, {"X-Request-Id": request_id})
    assert status == 200
    lines = [line for line in _json_lines(gunicorn.log_text())
             if line.get("request_id") == request_id]
    assert lines, "no log line carries the request id"
    access = [line for line in lines if line["logger"] == "analytics_app.http.access"]
    assert access[0]["route"] == HEALTH
    assert access[0]["status"] == 200


def test_every_log_line_of_the_server_is_json(gunicorn: Gunicorn) -> None:
    """Gunicorn's own lines and the app's lines are all JSON objects."""
    text = gunicorn.log_text().strip()
    assert text
    for line in text.splitlines():
        assert isinstance(json.loads(line), dict), line
