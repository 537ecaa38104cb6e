"""
Facts 12 and 13 of the real-SES issue: the files real SES writes, checked over HTTP.

Each job is created with an unmodified boto3 client and its file downloaded through the returned
``S3Url`` with ``requests``, as a user's code would.
"""

from __future__ import annotations

import csv
import io
import json
import re
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import urlsplit

import boto3
import pytest
import requests

from ses_export_emulator import SesExportEmulator

from .helpers import START, insights_source, metrics_source, wait_status

pytestmark = pytest.mark.integration


@pytest.fixture
def emu(ses_export_emulator_factory: Any) -> SesExportEmulator:
    """A fast emulator that also reports ``ExportedRecordsCount``, to check it against the files."""
    return ses_export_emulator_factory(create_rate_limit=None, exported_records_count=True)


COLUMNS = [
    "messageid",
    "sendtimestamp",
    "isp",
    "fromaddress",
    "destination",
    "subject",
    "last_delivery_event",
    "last_engagement_event",
    "last_delivery_event_timestamp",
    "last_engagement_event_timestamp",
    "bounce_sub_type",
    "diagnostic_code",
]
SES_TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}\.\d{3} UTC$")
FOUR_DECIMALS = re.compile(r"^\d+\.\d{4}$")
DAY = datetime(2026, 9, 22, tzinfo=timezone.utc)
METRICS = [
    {"Name": "SEND", "Aggregation": "VOLUME"},
    {"Name": "DELIVERY", "Aggregation": "RATE"},
    {"Name": "OPEN", "Aggregation": "RATE"},
    {"Name": "COMPLAINT", "Aggregation": "RATE"},
    {"Name": "PERMANENT_BOUNCE", "Aggregation": "VOLUME"},
]


@pytest.fixture
def boto(emu: SesExportEmulator) -> Any:
    """A plain boto3 sesv2 client, nothing of this package involved."""
    return boto3.client(
        "sesv2",
        endpoint_url=emu.endpoint_url,
        region_name="us-east-1",
        aws_access_key_id="x",
        aws_secret_access_key="y",
    )


def export(client: Any, source: dict[str, Any], data_format: str) -> tuple[dict[str, Any], requests.Response]:
    """Create a job, wait for COMPLETED, download its file through the S3Url."""
    job_id = client.create_export_job(ExportDataSource=source, ExportDestination={"DataFormat": data_format})["JobId"]
    job = wait_status(client, job_id)
    assert job["JobStatus"] == "COMPLETED"
    response = requests.get(job["ExportDestination"]["S3Url"], timeout=30)
    response.raise_for_status()
    return job, response


def test_fact12_message_insights_csv_is_fully_quoted_with_trailing_comma(boto: Any) -> None:
    job, response = export(boto, insights_source(200), "CSV")
    assert response.headers["Content-Type"].startswith("text/csv")
    assert "Content-Encoding" not in response.headers
    text = response.content.decode()
    lines = text.split("\n")
    assert lines[-1] == ""  # newline-terminated
    lines = lines[:-1]
    assert lines[0] == "".join(f'"{c}",' for c in COLUMNS)
    field = r'"(?:[^"]|"")*",'
    assert all(re.fullmatch(f"(?:{field}){{12}}", line) for line in lines), "a line not fully quoted + comma"
    header, *rows = csv.reader(io.StringIO(text))
    assert header == [*COLUMNS, ""]  # a CSV reader sees a 13th, unnamed, empty column
    assert all(len(row) == 13 and row[12] == "" for row in rows)
    assert len(rows) == job["Statistics"]["ExportedRecordsCount"]
    records = [dict(zip(COLUMNS, row[:12], strict=True)) for row in rows]
    assert all(SES_TIMESTAMP.match(r["sendtimestamp"]) for r in records)
    assert all(SES_TIMESTAMP.match(r["last_delivery_event_timestamp"]) for r in records)
    assert any(r["last_engagement_event_timestamp"] == "" for r in records)  # an empty value is ""
    assert '"",' in text
    # one row per recipient: a message sent to several recipients has several rows
    by_message: dict[str, set[str]] = {}
    for r in records:
        by_message.setdefault(r["messageid"], set()).add(r["destination"])
    assert len(by_message) == 200 < len(records)
    assert max(len(d) for d in by_message.values()) > 1


def test_fact12_message_insights_json_is_an_array_one_object_per_line_leading_commas(boto: Any) -> None:
    job, response = export(boto, insights_source(200), "JSON")
    assert response.headers["Content-Type"].startswith("application/json")
    lines = response.content.decode().splitlines()
    assert lines[0] == "[" and lines[-1] == "]"
    objects = lines[1:-1]
    assert objects[0].startswith("{") and all(line.startswith(",{") for line in objects[1:])
    records = json.loads(response.content)
    assert [json.loads(line.lstrip(",")) for line in objects] == records
    assert len(records) == job["Statistics"]["ExportedRecordsCount"]
    for record in records:
        assert list(record) == [c for c in COLUMNS if c in record]  # keys as the CSV columns, in order
        assert all(value != "" for value in record.values())  # members without a value are omitted
    assert any("last_engagement_event" not in r for r in records)
    assert any("bounce_sub_type" in r for r in records)


def test_fact12_metrics_csv_is_wide_one_row_per_combination(boto: Any) -> None:
    dims = {"ISP": ["Gmail", "Yahoo"], "EMAIL_IDENTITY": ["example.com", "shop, inc."]}
    job, response = export(boto, metrics_source(dims, METRICS, DAY - timedelta(days=3), DAY), "CSV")
    assert response.headers["Content-Type"].startswith("text/csv")
    lines = response.content.decode().splitlines()
    assert lines[0] == "ISP,EMAIL_IDENTITY,SEND_VOLUME,DELIVERY_RATE,OPEN_RATE,COMPLAINT_RATE,PERMANENT_BOUNCE_VOLUME"
    assert any(line.startswith('Gmail,"shop, inc.",') for line in lines)  # quoted only when it must be
    assert all('"' not in line for line in lines if "shop" not in line)
    rows = list(csv.reader(io.StringIO(response.content.decode())))[1:]
    assert {(r[0], r[1]) for r in rows} == {(i, e) for i in dims["ISP"] for e in dims["EMAIL_IDENTITY"]}
    assert len(rows) == 4 == job["Statistics"]["ExportedRecordsCount"]  # totals over the range, no date column
    assert all(FOUR_DECIMALS.match(value) for row in rows for value in row[2:])


def test_fact12_metrics_csv_wildcard_lists_every_isp_zeros_included(boto: Any) -> None:
    _, response = export(boto, metrics_source({"ISP": ["*"]}, METRICS[:2]), "CSV")
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    isps = {r["ISP"] for r in rows}
    assert {"Gmail", "Yahoo", "Hotmail"} <= isps and len(isps) == len(rows) > 5
    assert any(r["SEND_VOLUME"] == "0.0000" and r["DELIVERY_RATE"] == "0.0000" for r in rows)


def test_fact12_metrics_json_is_one_line_array_nested_metrics(boto: Any) -> None:
    dims = {"ISP": ["Gmail", "Yahoo"], "CONFIGURATION_SET": ["marketing"]}
    job, response = export(boto, metrics_source(dims, METRICS[:2]), "JSON")
    assert response.headers["Content-Type"].startswith("application/json")
    text = response.content.decode()
    assert text.rstrip("\n").count("\n") == 0  # one line
    records = json.loads(text)
    assert len(records) == 2 == job["Statistics"]["ExportedRecordsCount"]
    for record in records:
        assert list(record) == ["isp", "configuration_set", "metrics"]  # dimension keys lower-cased
        assert list(record["metrics"]) == ["SEND_VOLUME", "DELIVERY_RATE"]
    # the numbers are written with four decimals, as in {"SEND_VOLUME":120.0000,"DELIVERY_RATE":0.9833}
    assert re.search(r'"metrics":\{"SEND_VOLUME":\d+\.\d{4},"DELIVERY_RATE":[01]\.\d{4}\}', text)
    assert text.startswith('[{"isp":"Gmail","configuration_set":"marketing","metrics":{')


def test_fact12_object_names(boto: Any, emu: SesExportEmulator) -> None:
    for source, data_format in ((metrics_source(), "CSV"), (insights_source(3), "JSON")):
        job_id = boto.create_export_job(ExportDataSource=source, ExportDestination={"DataFormat": data_format})["JobId"]
        job = wait_status(boto, job_id)
        name = urlsplit(job["ExportDestination"]["S3Url"]).path.rsplit("/", 1)[1]
        stamp = job["CompletedTimestamp"].astimezone(timezone.utc).strftime("%Y%m%d_%H%M%S")
        if "MetricsDataSource" in source:
            assert name == f"ses-metrics-{stamp}-{job_id}.csv"
        else:
            assert name == f"{stamp}_{job_id.replace('-', '')[:10]}.json"
        assert requests.get(job["ExportDestination"]["S3Url"], timeout=30).status_code == 200
        wrong = job["ExportDestination"]["S3Url"].replace(f"/{name}?", f"/{job_id}.csv?")
        assert requests.get(wrong, timeout=30).status_code in (403, 404)  # only the real name is served


def test_fact12_rates_are_fractions_of_send(boto: Any) -> None:
    metrics = [
        {"Name": name, "Aggregation": aggregation}
        for name in ("SEND", "DELIVERY")
        for aggregation in ("VOLUME", "RATE")
    ]
    _, response = export(boto, metrics_source({"ISP": ["*"]}, metrics, DAY - timedelta(days=7), DAY), "JSON")
    records = json.loads(response.content)
    sending = [r["metrics"] for r in records if r["metrics"]["SEND_VOLUME"] > 0]
    assert len(sending) >= 5
    for m in sending:
        assert m["SEND_RATE"] == 1
        assert 0.9 < m["DELIVERY_RATE"] <= 1  # a delivery rate near 0.98
        assert m["DELIVERY_RATE"] == pytest.approx(m["DELIVERY_VOLUME"] / m["SEND_VOLUME"], abs=5e-5)


def test_fact12_files_are_deterministic_per_job_and_data_source(ses_export_emulator_factory: Any) -> None:
    bodies = []
    for seed in (5, 5, 6):
        emulator = ses_export_emulator_factory(seed=seed, create_rate_limit=None)
        bodies.append(export(emulator.client(), metrics_source({"ISP": ["*"]}, METRICS), "CSV")[1].content)
    assert bodies[0] == bodies[1] != bodies[2]


def test_fact13_max_results_caps_at_10000_random_sample(boto: Any, ses_export_emulator_factory: Any) -> None:
    with pytest.raises(boto.exceptions.BadRequestException, match="MaxResults"):
        boto.create_export_job(ExportDataSource=insights_source(10_001), ExportDestination={"DataFormat": "CSV"})
    # one day holds 14,400 messages: more than 10,000 match
    source = insights_source(10_000, START, START + timedelta(days=1))
    job, response = export(boto, source, "CSV")
    rows = list(csv.reader(io.StringIO(response.content.decode())))[1:]
    messages = {row[0]: row[1] for row in rows}
    assert len(messages) == 10_000 and job["Statistics"]["ProcessedRecordsCount"] == 14_400
    sent = sorted(messages.values())
    # a random sample over the whole day, not the first 10,000 messages (which end after 16.7 hours)
    assert sent[0] < "2024-01-01 01:00" and sent[-1] > "2024-01-01 23:00"
    # the sample is deterministic: the same emulator seed gives the same file
    again = ses_export_emulator_factory(create_rate_limit=None).client()
    assert export(again, source, "CSV")[1].content == response.content
    # with no more matching messages than MaxResults, every one is exported
    hour = insights_source(10_000, START, START + timedelta(hours=1))
    rows = list(csv.reader(io.StringIO(export(boto, hour, "CSV")[1].content.decode())))[1:]
    assert len({row[0] for row in rows}) == 600
