"""The set_volumes control: a day's SEND / PERMANENT_BOUNCE / COMPLAINT volumes per identity in metrics exports."""

from __future__ import annotations

import csv
import io
import json
from datetime import datetime, timezone
from typing import Any

import pytest

from ses_export_emulator import SesExportEmulator

from .helpers import create, download, http, metrics_source, wait_status

pytestmark = pytest.mark.integration

DAY = datetime(2024, 1, 2, tzinfo=timezone.utc)
NEXT_DAY = datetime(2024, 1, 3, tzinfo=timezone.utc)
METRICS = [
    {"Name": "SEND", "Aggregation": "VOLUME"},
    {"Name": "PERMANENT_BOUNCE", "Aggregation": "VOLUME"},
    {"Name": "COMPLAINT", "Aggregation": "VOLUME"},
    {"Name": "PERMANENT_BOUNCE", "Aggregation": "RATE"},
    {"Name": "DELIVERY", "Aggregation": "VOLUME"},
]


def rows(client: Any, dimensions: dict[str, list[str]], start: datetime = DAY, end: datetime = NEXT_DAY, fmt="CSV"):
    job_id = create(client, metrics_source(dimensions, METRICS, start, end), fmt)
    url = wait_status(client, job_id)["ExportDestination"]["S3Url"]
    status, _, body = download(url)
    assert status == 200
    if fmt == "JSON":
        return [{**{k.upper(): v for k, v in r.items() if k != "metrics"}, **r["metrics"]} for r in json.loads(body)]
    return [
        {k: v if k in dimensions else float(v) for k, v in r.items()}
        for r in csv.DictReader(io.StringIO(body.decode()))
    ]


@pytest.mark.parametrize("fmt", ["CSV", "JSON"])
def test_set_day_replaces_the_identity_volumes(emu: SesExportEmulator, client: Any, fmt: str) -> None:
    before = {r["EMAIL_IDENTITY"]: r for r in rows(client, {"EMAIL_IDENTITY": ["example.com", "example.org"]}, fmt=fmt)}
    assert emu.set_volumes("example.com", "2024-01-02", 2000, permanent_bounce=150, complaint=3) == {
        "identity": "example.com",
        "date": "2024-01-02",
        "send": 2000,
        "permanent_bounce": 150,
        "complaint": 3,
    }
    after = {r["EMAIL_IDENTITY"]: r for r in rows(client, {"EMAIL_IDENTITY": ["example.com", "example.org"]}, fmt=fmt)}
    assert after["example.com"]["SEND_VOLUME"] == 2000
    assert after["example.com"]["PERMANENT_BOUNCE_VOLUME"] == 150
    assert after["example.com"]["COMPLAINT_VOLUME"] == 3
    assert after["example.com"]["PERMANENT_BOUNCE_RATE"] == 0.075
    assert 0.95 * 2000 <= after["example.com"]["DELIVERY_VOLUME"] <= 2000  # other metrics follow the new SEND
    assert before["example.com"]["SEND_VOLUME"] != 2000
    assert after["example.org"]["SEND_VOLUME"] != 2000  # the other identity keeps generated data


def test_other_days_and_dimensions(emu: SesExportEmulator, client: Any) -> None:
    emu.set_volumes("example.com", "2024-01-02", 1000, permanent_bounce=100)
    # another day: untouched
    other_day = rows(
        client,
        {"EMAIL_IDENTITY": ["example.com"]},
        datetime(2024, 1, 5, tzinfo=timezone.utc),
        datetime(2024, 1, 6, tzinfo=timezone.utc),
    )
    assert other_day[0]["SEND_VOLUME"] != 1000
    # two days, one set: the set day plus the other day's generated volumes
    two_days = rows(client, {"EMAIL_IDENTITY": ["example.com"]}, DAY, datetime(2024, 1, 4, tzinfo=timezone.utc))
    assert two_days[0]["SEND_VOLUME"] > 1000 and two_days[0]["PERMANENT_BOUNCE_VOLUME"] >= 100
    # broken down by ISP too: the day's volumes split evenly over the identity's rows
    split = rows(client, {"EMAIL_IDENTITY": ["example.com"], "ISP": ["Gmail", "Yahoo"]})
    assert [r["SEND_VOLUME"] for r in split] == [500, 500]
    assert sum(r["PERMANENT_BOUNCE_VOLUME"] for r in split) == 100
    # not broken down by identity: generated data
    assert rows(client, {"ISP": ["Gmail"]})[0]["SEND_VOLUME"] != 1000


def test_a_job_keeps_the_volumes_of_its_creation(emu: SesExportEmulator, client: Any) -> None:
    emu.set_volumes("example.com", "2024-01-02", 1000)
    job_id = create(client, metrics_source({"EMAIL_IDENTITY": ["example.com"]}, METRICS, DAY, NEXT_DAY))
    emu.clear_volumes()
    url = wait_status(client, job_id)["ExportDestination"]["S3Url"]
    assert "1000.0000" in download(url)[2].decode()
    assert rows(client, {"EMAIL_IDENTITY": ["example.com"]})[0]["SEND_VOLUME"] != 1000


def test_over_http_and_bad_input(emu: SesExportEmulator, client: Any) -> None:
    base = f"{emu.endpoint_url}/_emulator/volumes"
    status, _, body = http("POST", base, {"identity": "example.com", "date": "2024-01-02", "send": 10, "complaint": 5})
    assert status == 200 and json.loads(body)["complaint"] == 5
    assert rows(client, {"EMAIL_IDENTITY": ["example.com"]})[0]["COMPLAINT_VOLUME"] == 5
    for bad in (
        {"identity": "example.com", "date": "2024-1-2", "send": 1},
        {"identity": "example.com", "date": "2024-02-30", "send": 1},
        {"identity": "example.com", "date": "2024-01-02", "send": -1},
        {"identity": "example.com", "date": "2024-01-02"},
    ):
        assert http("POST", base, bad)[0] == 400, bad
    assert http("DELETE", base)[0] == 200
    assert rows(client, {"EMAIL_IDENTITY": ["example.com"]})[0]["SEND_VOLUME"] != 10
