"""Export files: content, determinism, Range, HEAD, expiry, signatures, download faults."""

from __future__ import annotations

import csv
import io
import json
import time
from datetime import timedelta
from http.client import HTTPConnection, IncompleteRead
from typing import Any
from urllib.parse import urlsplit

import pytest

from airflow_provider_sesexport.emulator import SesExportEmulator
from airflow_provider_sesexport.emulator.exportfile import MESSAGE_INSIGHTS_COLUMNS, METRICS_COLUMNS

from .conftest import NO_RETRIES
from .helpers import START, create, download, http, insights_source, metrics_source, wait_status

pytestmark = pytest.mark.integration


def _completed(client: Any, source: dict[str, Any], data_format: str = "CSV") -> dict[str, Any]:
    job = wait_status(client, create(client, source, data_format))
    assert job["JobStatus"] == "COMPLETED"
    return job


def _fetch(job: dict[str, Any]) -> bytes:
    status, headers, body = download(job["ExportDestination"]["S3Url"])
    assert status == 200
    assert int(headers["Content-Length"]) == len(body)
    assert headers["ETag"].startswith('"')
    return body


@pytest.mark.parametrize("data_format", ["CSV", "JSON"])
@pytest.mark.parametrize("max_results", [None, 1, 37])
def test_message_insights_rows(client: Any, data_format: str, max_results: int | None) -> None:
    job = _completed(client, insights_source(max_results), data_format)
    body = _fetch(job)
    expected = max_results or 1000
    assert job["Statistics"]["ExportedRecordsCount"] == expected
    lines = body.decode().splitlines()
    if data_format == "CSV":
        rows = list(csv.DictReader(io.StringIO(body.decode())))
        assert lines[0] == ",".join(MESSAGE_INSIGHTS_COLUMNS)
        assert len(rows) == expected
        assert [int(r["row_number"]) for r in rows] == list(range(expected))
        assert len({r["message_id"] for r in rows}) == expected
    else:
        rows = [json.loads(line) for line in lines]
        assert len(rows) == expected and set(rows[0]) == set(MESSAGE_INSIGHTS_COLUMNS)
    assert len({len(line) for line in lines[1 if data_format == "CSV" else 0 :]}) == 1  # fixed width


@pytest.mark.parametrize("data_format", ["CSV", "JSON"])
def test_vdm_rows_are_days_x_dimension_values_x_metrics(client: Any, data_format: str) -> None:
    dims = {"ISP": ["Gmail", "Yahoo, Inc."], "EMAIL_IDENTITY": ["a@example.com"]}
    metrics = [
        {"Name": "SEND", "Aggregation": "VOLUME"},
        {"Name": "DELIVERY", "Aggregation": "RATE"},
        {"Name": "OPEN", "Aggregation": "RATE"},
    ]
    job = _completed(client, metrics_source(dims, metrics, START, START + timedelta(days=4)), data_format)
    body = _fetch(job)
    expected = 5 * 3 * 3
    assert job["Statistics"]["ExportedRecordsCount"] == expected
    if data_format == "CSV":
        rows = list(csv.DictReader(io.StringIO(body.decode())))
        assert list(rows[0]) == list(METRICS_COLUMNS)
    else:
        rows = [json.loads(line) for line in body.decode().splitlines()]
    assert len(rows) == expected
    assert {r["date"] for r in rows} == {(START + timedelta(days=d)).date().isoformat() for d in range(5)}
    assert {r["dimension_value"] for r in rows} == {"Gmail", "Yahoo, Inc.", "a@example.com"}
    assert {(r["metric"], r["aggregation"]) for r in rows} == {(m["Name"], m["Aggregation"]) for m in metrics}
    for row in rows:
        value = float(row["value"]) if data_format == "CSV" else row["value"]
        assert 0 <= value <= (1 if row["aggregation"] == "RATE" else 100000)


def test_same_seed_same_bytes(ses_export_emulator_factory: Any) -> None:
    bodies = []
    for seed in (3, 3, 4):
        emu = ses_export_emulator_factory(seed=seed, create_rate_limit=None)
        client = emu.client(config=NO_RETRIES)
        bodies.append(_fetch(_completed(client, insights_source(50))))
    assert bodies[0] == bodies[1] != bodies[2]


def test_row_multiplier_scales_rows_and_size(ses_export_emulator_factory: Any) -> None:
    emu = ses_export_emulator_factory(row_multiplier=25, create_rate_limit=None)
    client = emu.client(config=NO_RETRIES)
    job = _completed(client, insights_source(100))
    assert job["Statistics"]["ExportedRecordsCount"] == 2500
    status, headers, body = http("HEAD", job["ExportDestination"]["S3Url"])
    assert status == 200 and body == b""
    full = _fetch(job)
    assert int(headers["Content-Length"]) == len(full)
    assert len(full.decode().splitlines()) == 2501


def test_range_requests(client: Any) -> None:
    job = _completed(client, insights_source(300))
    url = job["ExportDestination"]["S3Url"]
    full = _fetch(job)
    size = len(full)
    for first, last in [(0, 0), (0, 99), (5, 1000), (size - 10, size - 1), (size - 1, size + 50), (123, 123)]:
        status, headers, body = download(url, {"Range": f"bytes={first}-{last}"})
        assert status == 206
        assert body == full[first : last + 1]
        assert headers["Content-Range"] == f"bytes {first}-{min(last, size - 1)}/{size}"
        assert int(headers["Content-Length"]) == len(body)
    status, headers, body = download(url, {"Range": "bytes=-77"})
    assert status == 206 and body == full[-77:]
    status, headers, body = download(url, {"Range": "bytes=4000-"})
    assert status == 206 and body == full[4000:]
    status, headers, body = download(url, {"Range": f"bytes={size}-{size + 10}"})
    assert status == 416 and headers["Content-Range"] == f"bytes */{size}" and b"InvalidRange" in body
    status, headers, _ = download(url, {"Range": "bytes=10-5"})  # invalid: ignored, whole object
    assert status == 200


def test_url_expires_after_scaled_300s_and_get_returns_fresh_url(ses_export_emulator_factory: Any) -> None:
    emu = ses_export_emulator_factory(time_scale=0.001, create_rate_limit=None)  # 300 s -> 0.3 s
    client = emu.client(config=NO_RETRIES)
    job = _completed(client, insights_source(5))
    url = job["ExportDestination"]["S3Url"]
    query = urlsplit(url).query
    assert "X-Amz-Expires=300" in query and "X-Amz-Algorithm=AWS4-HMAC-SHA256" in query
    assert download(url)[0] == 200
    time.sleep(0.35)
    status, headers, body = download(url)
    assert status == 403 and headers["Content-Type"].startswith("application/xml")
    assert b"<Code>AccessDenied</Code>" in body and b"<Message>Request has expired</Message>" in body
    fresh = client.get_export_job(JobId=job["JobId"])["ExportDestination"]["S3Url"]
    assert fresh != url
    assert download(fresh)[0] == 200
    again = client.get_export_job(JobId=job["JobId"])["ExportDestination"]["S3Url"]
    assert again != fresh
    assert emu.stats()["downloads"]["denied"] == 1


def test_expire_urls_now_and_bad_signatures(emu: SesExportEmulator, client: Any) -> None:
    job = _completed(client, insights_source(5))
    url = job["ExportDestination"]["S3Url"]
    tampered = url.replace("X-Amz-Signature=", "X-Amz-Signature=0")
    status, _, body = download(tampered)
    assert status == 403 and b"SignatureDoesNotMatch" in body
    status, _, body = download(url.split("?")[0])
    assert status == 403 and b"AccessDenied" in body
    other = url.replace(job["JobId"] + "/", "other-job/")
    assert download(other)[0] == 403
    assert emu.expire_urls() >= 1
    status, _, body = download(url)
    assert status == 403 and b"Request has expired" in body
    emu.set_faults(expire_urls_immediately=True)
    expired = client.get_export_job(JobId=job["JobId"])["ExportDestination"]["S3Url"]
    assert download(expired)[0] == 403
    emu.clear_faults()
    assert download(client.get_export_job(JobId=job["JobId"])["ExportDestination"]["S3Url"])[0] == 200


def test_failed_records_url_and_missing_files(emu: SesExportEmulator, client: Any) -> None:
    emu.fail_next(1)
    failed = wait_status(client, create(client))
    status, _, body = download(failed["FailureInfo"]["FailedRecordsS3Url"])
    assert status == 200 and body.startswith(b"record,")
    done = _completed(client, insights_source(5))
    emu.delete_job(done["JobId"])
    status, _, body = download(done["ExportDestination"]["S3Url"])
    assert status == 404 and b"NoSuchKey" in body


def test_download_dropped_after_k_bytes(emu: SesExportEmulator, client: Any) -> None:
    job = _completed(client, insights_source(2000))
    url = urlsplit(job["ExportDestination"]["S3Url"])
    emu.set_faults(download_drop_after=10_000)
    conn = HTTPConnection(url.hostname, url.port, timeout=10)
    conn.request("GET", f"{url.path}?{url.query}")
    response = conn.getresponse()
    assert response.status == 200
    total = int(response.getheader("Content-Length"))
    assert total > 10_000
    with pytest.raises(IncompleteRead) as info:
        response.read()
    assert len(info.value.partial) == 10_000
    conn.close()
    assert emu.stats()["downloads"]["dropped"] == 1
    emu.clear_faults()
    assert len(_fetch(client.get_export_job(JobId=job["JobId"]))) == total
