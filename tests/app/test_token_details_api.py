"""Token categories over the API (SPEC §12): accepted, rolled up exactly, in usage and CSVs."""

from __future__ import annotations

import csv
import io
import uuid
from typing import Any

import falcon.testing

from analytics_app.bootstrap.ports import Ports
from analytics_core.usecases.export_runner import ExportRunner
from tests.app.conftest import PREFIX

KEYS = ("cacheReadTokens", "cacheWriteTokens", "audioInputTokens", "reasoningTokens",
        "audioOutputTokens")
COLUMNS = ("cache_read_tokens", "cache_write_tokens", "audio_input_tokens", "reasoning_tokens",
           "audio_output_tokens")


def _details(*counts: int) -> dict[str, int]:
    return dict(zip(KEYS, counts, strict=True))


def test_usage_reports_every_category_summed_exactly_and_old_events_as_zero(
    client: falcon.testing.TestClient, admin_of_a: dict[str, str], org_a: uuid.UUID,
    make_event: Any, ingest: Any,
) -> None:
    """Per model and in the totals each category is the sum over the events; an event without
    tokenDetails adds zero to every category and its tokens to the totals only."""
    m1, m2 = uuid.uuid4(), uuid.uuid4()
    events = [
        make_event(org_a, m1, inputTokens=100, outputTokens=40,
                   tokenDetails=_details(60, 30, 10, 25, 15)),
        make_event(org_a, m1, inputTokens=50, outputTokens=10,
                   tokenDetails={"cacheReadTokens": 5, "reasoningTokens": 10}),
        make_event(org_a, m2, inputTokens=7, outputTokens=3),  # an older producer
    ]
    assert ingest(events)["accepted"] == 3
    result = client.simulate_get(f"{PREFIX}/orgs/{org_a}/usage", headers=admin_of_a,
                                 params={"groupBy": "model", "granularity": "day",
                                         "start": "2024-03-15T00:00:00Z",
                                         "end": "2024-03-16T00:00:00Z"})
    assert result.status_code == 200, result.text
    by_model = {p["modelId"]: p["tokenDetails"] for p in result.json["series"]}
    assert by_model == {str(m1): _details(65, 30, 10, 35, 15), str(m2): _details(0, 0, 0, 0, 0)}
    totals = result.json["totals"]
    assert totals["tokenDetails"] == _details(65, 30, 10, 35, 15)
    assert (totals["inputTokens"], totals["outputTokens"]) == (157, 53)


def test_an_event_whose_parts_exceed_its_total_is_rejected_alone(
    client: falcon.testing.TestClient, admin_of_a: dict[str, str], org_a: uuid.UUID,
    make_event: Any,
) -> None:
    """The bad event is rejected naming tokenDetails; its neighbour is stored."""
    good = make_event(org_a, tokenDetails={"cacheReadTokens": 10})
    bad = make_event(org_a, inputTokens=10, tokenDetails={"cacheReadTokens": 8,
                                                         "cacheWriteTokens": 3})
    result = client.simulate_post(f"{PREFIX}/events", json={"events": [good, bad]},
                                  headers=admin_of_a)
    assert result.status_code == 202, result.text
    assert (result.json["accepted"], result.json["rejected"]) == (1, 1)
    assert [r["status"] for r in result.json["results"]] == ["accepted", "rejected"]
    assert [e["field"] for e in result.json["results"][1]["errors"]] == ["tokenDetails"]


def test_exports_carry_the_categories_after_the_earlier_columns(
    client: falcon.testing.TestClient, admin_of_a: dict[str, str], org_a: uuid.UUID,
    make_event: Any, ingest: Any, services: Ports,
) -> None:
    """Usage and event CSVs end with the five category columns (zero when none reported)."""
    runner = ExportRunner("w", services.uow_factory, services.objects, services.clock,
                          services.progress, services.exports)
    model = uuid.uuid4()
    ingest([make_event(org_a, model, occurredAt="2024-03-15T08:00:00Z", inputTokens=100,
                       outputTokens=40, tokenDetails=_details(60, 30, 10, 25, 15)),
            make_event(org_a, model, occurredAt="2024-03-15T09:00:00Z")])
    url = f"{PREFIX}/orgs/{org_a}/exports"
    for kind in ("usage", "events"):
        body = {"timeRange": {"start": "2024-03-15T00:00:00Z", "end": "2024-03-16T00:00:00Z"},
                "granularity": "daily", "kind": kind}
        job_id = client.simulate_post(url, json=body, headers=admin_of_a).json["jobId"]
        runner.run_next()
        download = client.simulate_get(f"{url}/{job_id}/download", headers=admin_of_a)
        assert download.status_code == 200, download.text
        rows = list(csv.DictReader(io.StringIO(download.text)))
        assert tuple(rows[0])[-7 if kind == "usage" else -6:][:5] == COLUMNS
        counts = [tuple(int(r[c]) for c in COLUMNS) for r in rows]
        if kind == "usage":
            assert counts == [(60, 30, 10, 25, 15)]
        else:
            assert sorted(counts) == [(0, 0, 0, 0, 0), (60, 30, 10, 25, 15)]
